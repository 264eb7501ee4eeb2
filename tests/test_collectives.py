"""Data parallelism moves only gradients: read on the compiled programs, on 4 forced CPU devices.

With the batch sharded over the mesh's ``data`` axis and the parameters replicated, under an Explicit and an
Auto mesh, for every case of ``collectives_worker.CASES`` (``jlstm.lstm`` with every recurrence and every plan,
``bidirectional`` with every recurrence, ``stacked_lstm`` with one and two directions, the linen and nnx
``LSTM`` and ``Bidirectional``; with and without a mask), the optimised HLO of

- the forward pass has no collective at all;
- the training step (``value_and_grad`` with respect to the parameters and the inputs) has no all-gather,
  all-to-all, collective-permute or any other collective that moves activations, in any form, async
  included; its all-reduces (and reduce-scatters) of arrays carry at most twice the parameters' bytes in all
  (the parameter gradients' reduction; a plan with two batch chains and plain autodiff reduces each chain's
  share), besides the scalars of the loss's mean;
- and the input gradient is sharded like the inputs.

Values are checked elsewhere (``test_sharding.py``): a program that gathers the batch still returns the right
numbers, which is why these checks read the program. The sequences are long enough that the fused backward
runs several chunks. ``collectives_worker.py`` compiles every case of one mesh kind in one subprocess (the
devices must be forced before jax starts), with XLA's cheap optimisation settings, as ``test_sharding.py``
does: the collectives are placed by the partitioner whatever the optimisation level.
"""

import json

import pytest

from collectives_worker import CASES, DEVICES
from processes import run_modes_once

MODES = ("explicit", "auto")
MOVES_ACTIVATIONS = ("all-gather", "all-to-all", "collective-permute", "collective-broadcast", "ragged-all-to-all")


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """``mode -> {case/program: unit}``: the two modes' workers, run side by side once per session."""
    directory = run_modes_once(tmp_path_factory, "collectives", "collectives_worker.py", MODES, DEVICES)

    def read(mode):
        path = directory / mode
        if not path.exists():
            pytest.fail(f"the {mode} worker wrote no results: {(directory / f'{mode}.log').read_text()[-6000:]}",
                        pytrace=False)
        return json.loads(path.read_text())

    return read


def unit_of(compiled, mode, case, program):
    unit = compiled(mode)[f"{case}/{program}"]
    if "error" in unit:
        if mode == "explicit" and ".2ch." in case and "splits the batch evenly and unsharded" in unit["error"]:
            pytest.skip("a plan with two batch chains refuses an explicitly sharded batch (tests/test_bad_inputs.py)")
        pytest.fail(f"compiling raised {unit['error']}", pytrace=False)
    return unit


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_the_forward_pass_has_no_collective(compiled, mode, case):
    unit = unit_of(compiled, mode, case, "forward")
    assert unit["collectives"] == [], "\n".join(c["line"] for c in unit["collectives"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_the_training_step_reduces_only_gradients(compiled, mode, case):
    unit = unit_of(compiled, mode, case, "train")
    moved = [c["line"] for c in unit["collectives"] if c["op"] in MOVES_ACTIVATIONS]
    assert moved == [], "activations moved between devices:\n" + "\n".join(moved)
    reduced = sum(c["bytes"] for c in unit["collectives"] if c["op"] in ("all-reduce", "reduce-scatter"))
    assert 0 < reduced <= 2 * unit["param_bytes"], (reduced, unit["param_bytes"], unit["collectives"])
    assert unit["input_gradient_sharded"], f"the input gradient is {unit['input_gradient_sharding']}"
