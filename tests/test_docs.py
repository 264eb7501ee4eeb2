"""The documentation site builds without a warning: every page, link, anchor and API entry resolves."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    # NO_MKDOCS_2_WARNING silences the material theme's banner about its successor, which is not about our site.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "api" / "layers" / "index.html").read_text().count('id="jlstm.lstm"') == 1
