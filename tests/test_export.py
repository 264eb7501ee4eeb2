"""Every loop lowers for GPU and TPU, checked here on a CPU with ``jax.export``; exported programs serve.

``jax.export.export(..., platforms=("cpu", "cuda", "tpu"))`` lowers a jitted function for each platform without
the device: a primitive with no lowering there, a custom call that is not guaranteed stable (``jax.export``
refuses those itself), or a dtype that a platform rejects fails here, before a user with a GPU meets it. For
the forward pass and the training step of ``lstm`` under the GPU/TPU default plan and every other plan, in
float32 and with bfloat16 weights, and of ``bidirectional``, a 2-layer ``stacked_lstm``, the projected LSTM
and a flax module: the lowering succeeds, its module has no custom call outside the few that only carry
sharding, and the CPU lowering, serialised and deserialised, gives the direct call's results.
"""

import functools
import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jlstm
from conftest import PLANS, assert_close, plan_id

PLATFORMS = ("cpu", "cuda", "tpu")
BATCH, TIME, INPUT_DIM, UNITS = 4, 40, 3, 8  # 40 steps of 4 rows: the fused backward runs several chunks
# Custom calls that only annotate shardings; jax.export itself refuses any target not guaranteed stable.
ANNOTATIONS = {"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape", "shape_assertion"}
ACCELERATOR_PLAN = jlstm.Plan.default_for(  # what "auto" runs on a GPU
    jlstm.init_params(jax.random.key(0), INPUT_DIM, UNITS), jax.ShapeDtypeStruct((BATCH, TIME, INPUT_DIM), jnp.float32),
    backend="cuda",
)


def data(dtype=jnp.float32, proj_size=None):
    params = jlstm.init_params(jax.random.key(0), INPUT_DIM, UNITS, proj_size=proj_size, dtype=dtype)
    x = jax.random.normal(jax.random.key(1), (BATCH, TIME, INPUT_DIM))
    mask = jnp.arange(TIME)[None, :] < jnp.array([TIME, TIME - 3, 7, 1])[:, None]
    return params, x, mask


def forward_and_train(apply):
    """``apply(params, x, mask) -> outputs`` as one program: its forward pass, and its training step's loss and
    gradients with respect to the params and the inputs (one export per case: lowering is most of the time)."""

    def loss(params, x, mask):
        return sum(jnp.sum(leaf.astype(jnp.float32) ** 2) for leaf in jax.tree.leaves(apply(params, x, mask)))

    def program(params, x, mask):
        return apply(params, x, mask), jax.value_and_grad(loss, argnums=(0, 1))(params, x, mask)

    return program


def check_exports(fn, *args):
    """Lowers ``fn`` for every platform, checks its custom calls, and runs the CPU lowering after a round trip."""
    exported = export.export(jax.jit(fn), platforms=PLATFORMS)(*args)
    assert exported.platforms == PLATFORMS
    targets = set(re.findall(r"stablehlo\.custom_call @([\w.]+)", exported.mlir_module()))
    assert targets <= ANNOTATIONS, targets - ANNOTATIONS
    restored = export.deserialize(exported.serialize())
    actual, expected = restored.call(*args), jax.jit(fn)(*args)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert_close(a, e)
    return exported


# Masked runs every loop's mask rule as well as its unmasked steps; the accelerator's plan also runs unmasked
# (without a mask the fused backward reads the states from the outputs).
CASES = [(ACCELERATOR_PLAN, False)] + [(r, True) for r in dict.fromkeys([ACCELERATOR_PLAN, *PLANS, "auto", "scan"])]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize(("recurrence", "masked"), CASES, ids=[plan_id(r) + ("-masked" if m else "") for r, m in CASES])
def test_lstm_lowers_for_every_platform(recurrence, masked, dtype):
    params, x, mask = data(jnp.dtype(dtype))

    def apply(params, x, mask):
        return jlstm.lstm(params, x, mask=mask if masked else None, return_sequences=True, return_state=True,
                          recurrence=recurrence)

    check_exports(forward_and_train(apply), params, x, mask)


def stacked(params, x, mask):
    return jlstm.stacked_lstm(params, x, mask=mask, return_sequences=True, return_state=True)


def bidirectional(params, x, mask):
    return jlstm.bidirectional(*params, x, mask=mask, return_sequences=True, return_state=True)


def projected(params, x, mask):
    return jlstm.lstm(params, x, mask=mask, return_sequences=True, return_state=True)


@pytest.mark.parametrize("model", ["bidirectional", "stacked", "projected", "linen"])
def test_models_lower_for_every_platform(model):
    _, x, mask = data()
    if model == "bidirectional":
        keys = jax.random.split(jax.random.key(2))
        params, apply = tuple(jlstm.init_params(k, INPUT_DIM, UNITS) for k in keys), bidirectional
    elif model == "stacked":
        params, apply = jlstm.init_stacked_params(jax.random.key(2), INPUT_DIM, UNITS, 2), stacked
    elif model == "projected":
        params, apply = data(proj_size=UNITS // 2)[0], projected
    else:
        from jlstm import linen

        module = linen.LSTM(UNITS, return_sequences=True)
        params = module.init(jax.random.key(2), x)

        def apply(params, x, mask):
            return module.apply(params, x, mask=mask)

    check_exports(forward_and_train(apply), params, x, mask)


def test_auto_carries_the_plan_of_the_backend_it_is_traced_on():
    """``"auto"`` traced on this CPU exports the CPU plan; ``Plan.default_for(backend=...)`` exports another's."""
    params, x, _ = data()
    cpu = jlstm.Plan.default_for(params, x)
    assert cpu == jlstm.Plan.default_for(params, x, backend="cpu") and cpu.projection == "step"
    assert ACCELERATOR_PLAN == jlstm.Plan.default_for(params, x, backend="tpu")
    assert ACCELERATOR_PLAN.projection == "hoisted" and ACCELERATOR_PLAN.backward == "fused"

    def text(recurrence):  # the exported module without its source locations
        fn = jax.jit(lambda p, x: jlstm.lstm(p, x, recurrence=recurrence))
        module = export.export(fn, platforms=PLATFORMS)(params, x).mlir_module()
        lines = [line for line in module.splitlines() if not line.startswith("#loc")]
        return re.sub(r"\s*loc\((?:[^()]|\([^()]*\))*\)", "", "\n".join(lines))

    hoisted = text(ACCELERATOR_PLAN)
    assert text("auto") == text(cpu) != hoisted
    with pytest.raises(ValueError, match="backend must be"):
        jlstm.Plan.default_for(params, x, backend="metal")


SERVER = """
import sys

class NoJlstm:  # jlstm cannot be imported in this process
    def find_spec(self, name, path=None, target=None):
        if name == "jlstm" or name.startswith("jlstm."):
            raise ImportError(f"{name} is not importable in the server")

sys.meta_path.insert(0, NoJlstm())
import numpy as np
from jax import export

with open(sys.argv[1], "rb") as f:
    served = export.deserialize(bytearray(f.read()))
with np.load(sys.argv[2]) as arrays:
    weights = {k[len("weights/"):]: arrays[k] for k in arrays.files if k.startswith("weights/")}
    source, expected = arrays["source"], arrays["expected"]
predicted = np.asarray(served.call(weights, source))
assert predicted.dtype == expected.dtype and (predicted == expected).all(), (predicted, expected)
try:
    import jlstm  # noqa: F401
except ImportError:
    print("served without jlstm:", predicted.shape, predicted.dtype)
"""


def test_a_trained_model_serves_without_jlstm(tmp_path):
    """docs/export.md's recipe: the seq2seq example's decoder exported to a file, run where jlstm is absent."""
    from jlstm.examples import seq2seq

    params = seq2seq.init_seq2seq(jax.random.key(0), units=16)
    source, _ = seq2seq.make_batch(jax.random.key(1), batch=5, length=6)
    # What the server receives: a dict of plain arrays (no jlstm NamedTuple in the signature).
    weights = {name: np.asarray(leaf) for name, leaf in zip(weight_names(params), jax.tree.leaves(params))}

    def predict(weights, source):
        tree = jax.tree.unflatten(jax.tree.structure(params), [weights[n] for n in weight_names(params)])
        return seq2seq.greedy_decode(tree, source)

    exported = export.export(jax.jit(predict), platforms=PLATFORMS)(weights, source)
    (tmp_path / "decoder.bin").write_bytes(exported.serialize())
    expected = np.asarray(jax.jit(predict)(weights, source))
    np.savez(tmp_path / "inputs.npz", source=np.asarray(source), expected=expected,
             **{f"weights/{k}": v for k, v in weights.items()})
    (tmp_path / "server.py").write_text(textwrap.dedent(SERVER))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "server.py", "decoder.bin", "inputs.npz"], check=False, cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served without jlstm: (5, 6) int32" in result.stdout


def weight_names(params):
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


# A dot's precision config for both operands, as StableHLO prints it.
HIGHEST = re.compile(r"precision = \[HIGHEST, HIGHEST\]|precision_config = \[#stablehlo<precision HIGHEST>, "
                     r"#stablehlo<precision HIGHEST>\]")


@pytest.mark.parametrize("recurrence", list(dict.fromkeys([ACCELERATOR_PLAN, *PLANS, "scan", "scan-dropout"])), ids=plan_id)
def test_precision_reaches_every_matmul_of_the_accelerator_programs(recurrence):
    """``precision="highest"`` is in the precision config of every dot of the cuda and tpu lowerings.

    Forward pass and training step, every plan, a projected LSTM (its projection is a matmul too), masked;
    ``"scan-dropout"`` is the scan with Keras's per-gate recurrent dropout masks (their einsums). Without
    ``precision`` no dot carries it: the check can fail.
    """
    params, x, mask = data(proj_size=UNITS // 2)
    dropout = recurrence == "scan-dropout"
    options = {"recurrence": "scan" if dropout else recurrence}
    if dropout:
        options.update(dropout=0.2, recurrent_dropout=0.3, training=True, key=jax.random.key(3))

    def module(precision):
        def apply(params, x, mask):
            return jlstm.lstm(params, x, mask=mask, return_sequences=True, return_state=True, precision=precision,
                              **options)

        exported = export.export(jax.jit(forward_and_train(apply)), platforms=("cuda", "tpu"))(params, x, mask)
        return re.findall(r"stablehlo\.dot_general.*", exported.mlir_module())

    dots = module("highest")
    assert len(dots) >= 4 and all(HIGHEST.search(d) for d in dots), [d for d in dots if not HIGHEST.search(d)]
    assert not any("HIGHEST" in d for d in module(None))


def test_precision_is_passed_by_every_function():
    """``lstm_cell``, ``bidirectional``, ``stacked_lstm`` and the flax modules put ``precision`` in their matmuls."""
    from flax import nnx

    from jlstm import linen
    from jlstm import nnx as jlstm_nnx

    params, x, _ = data()
    state = jlstm.zero_state(params, BATCH)
    variables = linen.variables_from_params((params, params))

    def nnx_call(precision):
        return jlstm_nnx.Bidirectional(INPUT_DIM, UNITS, rngs=nnx.Rngs(0), precision=precision)(x)

    calls = {
        "lstm_cell": lambda precision: jlstm.lstm_cell(params, state, x[:, 0], precision=precision),
        "bidirectional": lambda precision: jlstm.bidirectional(params, params, x, precision=precision),
        "stacked_lstm": lambda precision: jlstm.stacked_lstm([params], x, precision=precision),
        "linen": lambda precision: linen.Bidirectional(UNITS, precision=precision).apply(variables, x),
        "nnx": nnx_call,
    }
    for name, call in calls.items():
        text = jax.jit(functools.partial(call, jax.lax.Precision.HIGHEST)).lower().as_text()
        dots = re.findall(r"stablehlo\.dot_general.*", text)
        assert dots and all(HIGHEST.search(d) for d in dots), name
        assert_close(call("highest")[-1], call(None)[-1])  # on a CPU, float32 either way
