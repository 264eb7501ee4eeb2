"""Data parallelism over 2 processes of 2 CPU devices each (jax.distributed, gloo) trains like one process.

``distributed_worker.py`` runs in three processes side by side: two that join through
``jax.distributed.initialize`` on a free local port and split the global batch between them (each feeds its
rows with ``jax.make_array_from_process_local_data``), and one that trains on the whole batch on one device.
After 3 ``optax`` steps of a masked ``jlstm.lstm``, under an Explicit and an Auto mesh and two recurrences,
both processes' losses and parameters must equal the one-process run's. The processes are killed if they
outlive the timeout, whatever happens.
"""

import json
import os
import pathlib
import sys

import numpy as np
import pytest

from conftest import assert_close
from distributed_worker import BATCH, STEPS, VARIANTS
from processes import free_port, run_once, run_side_by_side

HERE = pathlib.Path(__file__).parent
PROCESSES, DEVICES_PER_PROCESS = 2, 2
CHEAP = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"  # see test_sharding.py


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> pathlib.Path:
    def run(directory):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        )
        many = dict(env, XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES_PER_PROCESS} {CHEAP}")
        worker, port = [sys.executable, str(HERE / "distributed_worker.py"), str(directory)], str(free_port())
        commands = {
            f"process{i}": (worker + [str(i), str(PROCESSES), port], many) for i in range(PROCESSES)
        }
        commands["reference"] = (worker + ["0", "1", "0"], dict(env, XLA_FLAGS=CHEAP))
        run_side_by_side(commands, directory, timeout=120)  # about 15 s when it works

    return run_once(tmp_path_factory, "distributed", run)


def _results(directory: pathlib.Path, stem: str):
    if not (directory / f"{stem}.json").exists():
        log = (directory / f"{stem}.log").read_text()[-6000:]
        pytest.fail(f"{stem} wrote no results:\n{log}", pytrace=False)
    with np.load(directory / f"{stem}.npz") as arrays:
        return json.loads((directory / f"{stem}.json").read_text()), dict(arrays)


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_processes_train_like_one(runs, variant):
    recurrence = variant.split("-")[1]
    meta, reference = _results(runs, "reference")
    if "error" in meta[recurrence]:
        pytest.fail(f"the one-process run raised {meta[recurrence]['error']}", pytrace=False)
    expected_losses = reference[f"{recurrence}/losses"]
    assert expected_losses.shape == (STEPS,) and expected_losses[-1] < expected_losses[0]  # it trains
    for i in range(PROCESSES):
        meta, arrays = _results(runs, f"process{i}")
        if "error" in meta[variant]:
            pytest.fail(f"process {i} raised {meta[variant]['error']}", pytrace=False)
        seen = meta[variant]["shardings"]
        assert seen["local_devices"] == DEVICES_PER_PROCESS
        assert seen["rows_per_device"] == [BATCH // (PROCESSES * DEVICES_PER_PROCESS)]
        assert seen["replicated"]  # the loss and the parameters, whole on every device
        assert_close(arrays[f"{variant}/losses"], expected_losses, "float32_sharded")
        leaves = sum(k.startswith(f"{recurrence}/params/") for k in reference)
        assert leaves == 3  # kernel, recurrent_kernel, bias
        for j in range(leaves):
            expected = reference[f"{recurrence}/params/{j}"]
            assert_close(arrays[f"{variant}/params/{j}"], expected, "float32_sharded")
