"""The MkDocs hook that runs the tutorials (``hooks:`` in ``mkdocs.yml``).

The notebooks' sources are the jupytext percent-format files ``NN_name.py`` beside this one. Before the site is
put together, each is executed top to bottom in a fresh Jupyter kernel (nbclient), and the executed ``.ipynb``
takes the source's place: mkdocs-jupyter renders it, outputs and figures included, and copies it next to its
page for download. A notebook that raises fails the build, naming the notebook and the cell.

Executed notebooks are kept in ``.cache/tutorials/`` (or ``$JLSTM_TUTORIALS_CACHE``), under a key made of the
notebook's source and the sources of ``jlstm``: ``mkdocs serve`` re-executes a notebook only after a change to
either. ``tests/test_docs.py`` builds with an empty cache, so that every notebook runs. While editing other
pages, ``JLSTM_TUTORIALS_EXECUTE=0 mkdocs serve`` shows the notebooks without running them (no outputs).
"""

import hashlib
import os
import pathlib
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import jupyter_client
import jupytext
import nbclient
import nbformat
from mkdocs.exceptions import PluginError
from mkdocs.plugins import CombinedEvent, event_priority, get_plugin_logger
from mkdocs.structure.files import File
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PATTERN = "[0-9][0-9]_*.py"  # the notebooks; this file and conftest.py are not
CELL_TIMEOUT_S = 600  # a runaway cell fails the build instead of hanging it

log = get_plugin_logger(__name__)


def notebooks() -> list[pathlib.Path]:
    """The tutorial notebooks' sources, in reading order."""
    return sorted(HERE.glob(PATTERN))


def execute(source: pathlib.Path) -> nbformat.NotebookNode:
    """The notebook of ``source``, executed top to bottom in its own folder; raises on the first error."""
    notebook = jupytext.read(source)
    with tempfile.TemporaryDirectory() as sockets:  # the kernel talks over local sockets, not TCP
        kernel = jupyter_client.KernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel")
        )
        client = nbclient.NotebookClient(
            notebook, km=kernel, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(HERE)}}
        )
        try:
            client.execute()
        finally:
            if kernel.has_kernel:  # started here, so nbclient leaves it to us
                kernel.shutdown_kernel(now=True)
    return notebook


def _key(source: pathlib.Path) -> str:
    """What the executed notebook depends on: its source and jlstm's."""
    digest = hashlib.sha256(source.read_bytes())
    for module in sorted((ROOT / "jlstm").rglob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def _executed(source: pathlib.Path, cache: pathlib.Path) -> pathlib.Path:
    """The path of ``source``'s executed notebook in ``cache``, executing it first if it is not there."""
    if os.environ.get("JLSTM_TUTORIALS_EXECUTE", "1") == "0":
        target = cache / "not-executed" / f"{source.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(jupytext.read(source), target)
        log.info(f"{source.name}: not executed (JLSTM_TUTORIALS_EXECUTE=0)")
        return target
    target = cache / _key(source) / f"{source.stem}.ipynb"
    if target.exists():
        log.info(f"{source.name}: executed before, unchanged")
        return target
    start = time.perf_counter()
    try:
        notebook = execute(source)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the traceback without its terminal colours
        raise PluginError(f"tutorial {source.name} failed:\n{plain}") from error
    log.info(f"{source.name}: executed in {time.perf_counter() - start:.1f} s")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    nbformat.write(notebook, partial)
    partial.replace(target)  # a build stopped halfway leaves no half-written notebook behind
    return target


_executed_paths: dict[str, str] = {}  # src_uri of a tutorial -> its executed notebook, for this build


@event_priority(100)  # before mkdocs-jupyter's on_files, which takes the .ipynb files for pages
def _execute_tutorials(files, config):
    cache = pathlib.Path(os.environ.get("JLSTM_TUTORIALS_CACHE", ROOT / ".cache" / "tutorials"))
    sources = {f"tutorials/{source.name}": source for source in notebooks()}
    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels at a time
        paths = pool.map(lambda source: str(_executed(source, cache)), sources.values())
        _executed_paths.clear()
        _executed_paths.update(zip(sources, paths))
    for src_uri, path in _executed_paths.items():
        files.remove(files.get_file_from_path(src_uri))
        files.append(File.generated(config, src_uri, abs_src_path=path))
    return files


@event_priority(-100)  # after mkdocs-jupyter's on_files, whose page wrapper reads the path from the source dir
def _keep_executed_paths(files, config):
    for src_uri, path in _executed_paths.items():
        files.get_file_from_path(src_uri).abs_src_path = path
    return files


on_files = CombinedEvent(_execute_tutorials, _keep_executed_paths)
