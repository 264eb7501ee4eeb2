"""The package: importing jlstm loads no framework, though the converters are already there; the Keras converters
need no TensorFlow; the wheel holds the package alone and installs and runs outside the checkout."""

import os
import pathlib
import shutil
import subprocess
import sys

import jlstm


def test_import_jlstm_loads_no_framework():
    code = (
        "import sys, jlstm; converters = (jlstm.from_keras, jlstm.to_keras, jlstm.from_torch, jlstm.to_torch); "
        "assert all(callable(f) for f in converters); "
        "heavy = {'flax', 'keras', 'tensorflow', 'torch', 'optax', 'orbax'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    root = str(pathlib.Path(jlstm.__file__).parent.parent)  # this checkout's jlstm, not an installed one
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": root}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_wheel_installs_without_the_checkout_and_holds_only_the_package(tmp_path):
    """A wheel built from this checkout: jlstm and py.typed, no tests, docs or benchmarks, the version in one place;
    installed (not editable) in a fresh venv, it imports and its console script runs."""
    import importlib.metadata
    import zipfile

    root = pathlib.Path(jlstm.__file__).parent.parent
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(root / name, source / name)
    for name in ("jlstm", "tests", "docs", "benchmarks"):
        shutil.copytree(root / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "results"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(source)])
    (wheel,) = (tmp_path / "dist").glob("jlstm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jlstm/py.typed" in names and "jlstm/__init__.py" in names
    assert [n for n in names if n.split("/")[0] not in ("jlstm", f"jlstm-{jlstm.__version__}.dist-info")] == []
    assert not [n for n in names if n.endswith((".md", ".png")) or "/tests/" in n or n.startswith("jlstm/test")]
    metadata = zipfile.ZipFile(wheel).read(f"jlstm-{jlstm.__version__}.dist-info/METADATA").decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["Requires-Dist: jax>=0.10.2", "Requires-Dist: numpy>=1.26"]
    assert [r for r in requires if "keras" in r and '"keras"' in r] == ['Requires-Dist: keras>=3.0; extra == "keras"']
    assert "Project-URL: Homepage, https://github.com/jlstm/jlstm" in metadata and "Classifier: Typing :: Typed" in metadata

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    # jax and numpy from this environment's site-packages (a path only: its editable jlstm is not installed there)
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    import jax

    pathlib.Path(site, "outside.pth").write_text(str(pathlib.Path(jax.__file__).parent.parent) + "\n")
    code = ("import importlib.metadata, jlstm, jax.numpy as jnp; "
            "print(jlstm.__file__, importlib.metadata.version('jlstm'), jlstm.lstm(jlstm.init_params("
            "jax.random.key(0), 1, 2), jnp.ones((1, 3, 1))).shape)")
    file, version, shape = run([str(python), "-c", "import jax; " + code], cwd=tmp_path).split(" ", 2)
    assert pathlib.Path(file).is_relative_to(venv) and version == jlstm.__version__ and shape.strip() == "(1, 2)"
    assert importlib.metadata.version("jlstm") == jlstm.__version__
    usage = run([str(venv / "bin" / "jlstm"), "--help"], cwd=tmp_path)
    assert usage.startswith("usage: jlstm ")



def test_the_keras_converters_need_no_tensorflow(tmp_path):
    """The ``keras`` extra installs Keras alone: on the JAX backend, with TensorFlow unimportable, the converters
    read a model, a saved ``.keras`` file and write the weights back."""
    code = (
        "import os, sys; sys.modules['tensorflow'] = None\n"
        "import numpy as np, keras, jlstm\n"
        "x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)\n"
        "model = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.LSTM(2))])\n"
        "(layer,) = jlstm.from_keras(model)\n"
        "y = jlstm.bidirectional(*layer.params, x, merge_mode=layer.merge_mode)\n"
        f"model.save({str(tmp_path / 'model.keras')!r})\n"
        f"(saved,) = jlstm.from_keras({str(tmp_path / 'model.keras')!r})\n"
        "jlstm.to_keras([saved.params], model)\n"
        "print(keras.backend.backend(), bool(np.allclose(y, model(x), atol=1e-5)))\n"
    )
    root = str(pathlib.Path(jlstm.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["jax", "True"]

def run(command, cwd=None):
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def test_the_package_has_no_import_circle():
    """Each module of jlstm imports only modules below it: the import graph of ``from . import`` has no cycle."""
    import ast

    package = pathlib.Path(jlstm.__file__).parent
    graph = {}
    for path in package.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported.update([node.module] if node.module else [a.name for a in node.names])
        graph[path.stem] = imported & {p.stem for p in package.glob("*.py")}

    def cycle_from(module, trail):
        if module in trail:
            return [*trail[trail.index(module):], module]
        return next((c for m in sorted(graph[module]) if (c := cycle_from(m, [*trail, module]))), None)

    cycles = [c for module in sorted(graph) if (c := cycle_from(module, []))]
    assert not cycles, f"import circles: {cycles}"
