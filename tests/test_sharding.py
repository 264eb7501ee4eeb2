"""Data parallelism on 8 forced CPU devices, under an Explicit and an Auto mesh, equals one device.

For every case of ``sharding_worker.CASES`` (``jlstm.lstm``, with and without resets, ``bidirectional``,
``stacked_lstm`` with two layers, one and two directions, the linen and nnx ``LSTM`` and ``Bidirectional``; with
and without a mask; each ``recurrence`` for ``lstm`` and ``bidirectional``, the default one for the others unless
``JLSTM_SHARDING_FULL_GRID=1``) and every phase (the jitted forward pass; its ``jax.jvp``; a jitted training step,
``value_and_grad`` and an ``optax.sgd`` update), the batch sharded over the mesh's ``data`` axis with the
parameters replicated must give the single-device outputs, loss, gradients and updated parameters, the
outputs split by batch rows like the input and the gradients and parameters replicated.

``sharding_worker.py`` computes every case of one mesh mode in one subprocess (the devices must be forced
before jax starts); the two modes' subprocesses run side by side, once per session, shared by pytest-xdist's
workers through a lock, and each case's test reads its results. Both placements compile with XLA's cheap
optimisation settings (``processes.run_modes_once``): compiling is most of the time here, and what is compared is the
placement, not the optimisation level.
"""

import json

import numpy as np
import pytest

from conftest import assert_close
from processes import run_modes_once
from sharding_worker import BATCH, CASES, DEVICES, PHASES

MODES = ("explicit", "auto")


@pytest.fixture(scope="session")
def worker_results(tmp_path_factory):
    """``mode -> (out_dir, log)``: the two modes' workers, run side by side once per session."""
    directory = run_modes_once(tmp_path_factory, "sharding", "sharding_worker.py", MODES, DEVICES)
    return lambda mode: (directory / mode, (directory / f"{mode}.log").read_text()[-6000:])


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_data_parallel_equals_one_device(worker_results, mode, case, phase):
    out, log = worker_results(mode)
    name = case.split("-")[0]
    if not (out / f"{name}.json").exists():
        pytest.fail(f"the {mode} worker wrote no results for {name}: {log}", pytrace=False)
    unit = json.loads((out / f"{name}.json").read_text())[f"{case}/{phase}"]
    if "error" in unit:
        pytest.fail(f"{unit['placement']} run raised {unit['error']}", pytrace=False)
    with np.load(out / f"{name}.npz") as arrays:
        arrays = dict(arrays)
    shardings = unit["shardings"]
    single = [arrays[f"{case}/{phase}/single/{i}"] for i in range(len(shardings))]
    sharded = [arrays[f"{case}/{phase}/sharded/{i}"] for i in range(len(shardings))]

    if phase in ("forward", "jvp"):  # every output (sequence, h, c) and its tangent is split by batch rows
        for s in shardings:
            batch_axis = s["shape"].index(BATCH)
            rows = s["shape"][:batch_axis] + [BATCH // DEVICES] + s["shape"][batch_axis + 1 :]
            assert s["devices"] == DEVICES and s["shard_shapes"] == [rows], s
        for a, e in zip(sharded, single, strict=True):
            assert_close(a, e, "float32_sharded")
    else:  # loss, gradients, updated parameters: the same full value on every device
        for s in shardings:
            assert s["devices"] == DEVICES and s["replicated"], s
        for a, e in zip(sharded, single, strict=True):
            assert_close(a, e, "float32_sharded")
        grads = single[1 : 1 + (len(single) - 1) // 2]  # [loss, *gradients, *updated parameters]
        assert all(np.abs(g).max() > 0 for g in grads)
