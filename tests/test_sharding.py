"""Data-parallel jlstm with jax.sharding on 8 forced CPU devices equals one device."""

import os
import pathlib
import subprocess
import sys

import numpy as np
from conftest import assert_close

import jlstm

HERE = pathlib.Path(__file__).parent


def test_batch_sharded_over_8_devices_equals_one_device(tmp_path):
    out = tmp_path / "results.npz"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "sharding_worker.py"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = np.load(out)
    assert_close(r["sharded_seq"], r["single_seq"])
    assert_close(r["sharded_loss"], r["single_loss"])
    for name in jlstm.LSTMParams._fields:
        assert_close(r[f"sharded_grad_{name}"], r[f"single_grad_{name}"], "float32_grad")
    assert np.abs(r["single_grad_kernel"]).max() > 0
