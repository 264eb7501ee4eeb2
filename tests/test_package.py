"""The jlstm namespace: importing it loads no framework, though the converters are already there."""

import os
import pathlib
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
