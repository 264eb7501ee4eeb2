"""Project hygiene: ruff's default rules over the repository, mypy over jlstm/ (settings: pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"


def test_ruff():
    _run("ruff", "check", "--no-fix", ".")


def test_mypy():
    _run("mypy")  # what to check and how: [tool.mypy]
