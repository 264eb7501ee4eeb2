"""The README: it opens with the commands CI runs, its links resolve, the demo runs and agrees with Keras."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_the_demo_and_the_test_command():
    demo, tests = readme_commands()[:2]
    assert demo.endswith("python -m jlstm demo")
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_readme_links_point_at_files_that_exist():
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert "docs/getting_started.md" in targets
    assert [target for target in targets if not (ROOT / target).exists()] == []


def test_demo_prints_four_configurations_and_agrees_with_keras():
    result = subprocess.run(
        [sys.executable, "-m", "jlstm", "demo", "--keras"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for number in "1234":
        assert f"\n{number}. LSTM(1" in out
    assert "output == h: True" in out and "sequence[:, -1] == h: True" in out
    worst = float(re.search(r"over the four configurations: (\S+)", out).group(1))
    assert worst < 1e-6
