"""The documentation site builds without a warning: every page, link, anchor and API entry resolves, and every
tutorial notebook runs top to bottom (the build executes them: docs/tutorials/hooks.py) and shows its outputs."""

import os
import pathlib
import re
import subprocess
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = sorted(path.stem for path in (ROOT / "docs" / "tutorials").glob("[0-9][0-9]_*.py"))


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    # NO_MKDOCS_2_WARNING silences the material theme's banner about its successor, which is not about our site.
    # An empty cache of executed notebooks makes the build run every tutorial; one that raises fails the build.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "JLSTM_TUTORIALS_CACHE": str(tmp_path / "executed")}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    site = tmp_path / "site"
    assert (site / "api" / "layers" / "index.html").read_text().count('id="jlstm.lstm"') == 1
    assert len(TUTORIALS) == 3
    for name in TUTORIALS:
        check_tutorial(site / "tutorials" / name, name)


def check_tutorial(page_dir: pathlib.Path, name: str) -> None:
    """The page shows the executed notebook, figures included, and offers it for download; no cell wrote to
    stderr; the results the notebooks promise are printed."""
    page = (page_dir / "index.html").read_text()
    assert "data:image/png;base64," in page, f"{name}: no figure on the page"
    assert f'href="{name}.ipynb"' in page, f"{name}: no download link"
    notebook = nbformat.read(page_dir / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{name}: not every cell ran"
    outputs = [output for cell in code for output in cell.outputs]
    stderr = [output.text for output in outputs if output.get("name") == "stderr"]
    # A new machine's first matplotlib import says it is building its font cache; nothing else may go there.
    stderr = [text for text in stderr if not text.startswith("Matplotlib is building the font cache")]
    assert stderr == [], f"{name} wrote to stderr: {stderr}"
    text = "".join(output.get("text", "") for output in outputs)
    if name == "02_digits":
        accuracy = float(re.search(r"held-out accuracy: ([\d.]+)%", text).group(1))
        assert accuracy >= 96.0, text
    if name == "03_sunspots":
        assert re.search(r"Lowest RMSE on the test years: ", text), text
