"""Typed results: mypy infers each public function's result, and the README's and the docs' examples pass mypy.

Both checks run mypy with the project's settings (``[tool.mypy]`` in pyproject.toml, whose overrides let
untyped packages such as Keras, optax and orbax in as ``Any``), each with its own cache directory so that
parallel test workers do not share one.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import typed_usage

ROOT = Path(__file__).resolve().parent.parent

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(python|pycon)\n(.*?)^```", re.DOTALL | re.MULTILINE)
# What a fragment of a program may use unimported: the imports every page's examples start with.
FRAGMENT_PRELUDE = "import jax\nimport jax.numpy as jnp\nimport numpy as np\n\nimport jlstm\n"


def _mypy(files: list[Path], cache: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache" / cache), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, f"mypy: exit {done.returncode}\n{done.stdout}{done.stderr}"


def examples(page: Path) -> tuple[str | None, list[tuple[int, str]]]:
    """A page's examples as Python modules to check: ``(session, fragments)``.

    The rule:

    * Only README.md and the pages directly in docs/ are read; docs/tutorials/ holds notebooks that the
      site build executes, not examples of this kind.
    * Doctest examples, the ``>>>`` and ``...`` lines of the ```` ```pycon ```` blocks and of the
      ```` ```python ```` blocks that hold ``>>>`` prompts (their output lines left out), make one module
      per page, ``session``, in page order, since a page's doctests run in one namespace. An interactive
      session rebinds names to values of other types (``x`` a jax array, later a NumPy one), so the module
      allows redefinition. Every doctest example is checked.
    * A ```` ```python ```` block without prompts is a fragment of a program: checked on its own, after the
      imports that every page's examples start with (jax, jax.numpy as jnp, numpy as np, jlstm), with the
      names that it takes from the rest of the program (``params``, ``x``, ``one_hot`` ...) undefined and
      so ``Any`` (mypy's ``name-defined`` error is off for it). A fragment is deliberately partial, and
      skipped, when it holds ``...`` (a placeholder: ``params = ...``, ``# ... as above ...``) or is not
      valid Python (a signature shown as text).

    ``fragments`` holds ``(line, source)`` for each fragment checked, ``line`` its place in the page.
    """
    text = page.read_text()
    session: list[str] = []
    fragments = []
    for block in BLOCK.finditer(text):
        body = block.group(2)
        if ">>>" in body or block.group(1) == "pycon":
            session += [line[4:] for line in body.splitlines() if line[:3] in (">>>", "...")]
            continue
        try:
            ast.parse(body)
        except SyntaxError:
            continue
        if "..." not in body:
            fragments.append((text[: block.start()].count("\n") + 2, body))
    head = "# mypy: allow-redefinition\n"
    return (head + "\n".join(session) + "\n" if session else None), fragments


def test_the_examples_are_found():
    """The extraction reads what the rule says: guards against a rule that silently checks nothing."""
    sessions = {page.name: examples(page) for page in PAGES}
    assert all(name != "index.md" or session is None for name, (session, _) in sessions.items())
    readme, _ = sessions["README.md"]
    assert readme is not None and "seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)" in readme
    assert "(1, 1)" not in readme  # the outputs are left out
    assert sum(session is not None for session, _ in sessions.values()) >= 8
    fragments = [source for _, found in sessions.values() for _, source in found]
    assert any("remat_chunk=100" in source for source in fragments)
    assert not any("params = ..." in source for source in fragments)


def test_readme_and_docs_examples_pass_mypy(tmp_path):
    files = []
    for page in PAGES:
        session, fragments = examples(page)
        stem = page.stem.replace("-", "_")
        if session is not None:
            files.append(tmp_path / f"{stem}_session.py")
            files[-1].write_text(session)
        for line, source in fragments:
            files.append(tmp_path / f"{stem}_line{line}.py")
            files[-1].write_text('# mypy: disable-error-code="name-defined"\n' + FRAGMENT_PRELUDE + source)
    _mypy(files, "docs_examples")


def test_overloads_infer_each_result_type():
    """tests/typed_usage.py's ``assert_type`` calls: every combination of the literal flags."""
    _mypy([ROOT / "tests" / "typed_usage.py"], "typed_usage")


@pytest.mark.parametrize("flag", [False, True])
@pytest.mark.parametrize("mode", ["concat", None])
@pytest.mark.parametrize("size", [None, 2])
def test_each_result_has_the_inferred_type(flag, mode, size):
    """The same calls run: the real results have the types mypy infers (a tuple of so many arrays, ...)."""
    typed_usage.check(flag, mode, size)
