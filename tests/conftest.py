"""Shared settings and helpers: tolerances in one table, strict JAX promotion, Keras on TensorFlow, no tuned
plans from outside the session, and probes that read jlstm's behaviour through its public API only."""

import functools
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# jlstm after the settings above.
import jlstm

# (rtol, atol) for comparisons against an oracle, by what is compared.
TOLERANCES = {
    "float32": (1e-5, 1e-6),  # forward values vs Keras / PyTorch / a loop
    "float32_grad": (1e-4, 1e-5),  # gradients: summed over time and batch
    "float32_sharded": (1e-6, 1e-6),  # the same step with the batch split over devices: sums in another order
    "float64": (1e-12, 1e-12),  # vs a NumPy float64 reference
    "float64_fd": (1e-7, 1e-9),  # float64 gradients vs central differences (step 1e-6)
    "float32_long": (1e-4, 1e-5),  # a float32 carry summed over thousands of steps
    "float32_saturated": (1e-4, 1e-4),  # |x| = 1e4: float32 rounding of the pre-activations
    "bfloat16": (5e-2, 5e-2),
    "float16": (1e-2, 1e-2),
}


# For jax.jit(..., compiler_options=COMPILER_OPTIONS) in tests that compile many small programs, where compiling
# is almost all of their time: XLA's older elementwise emitters without LLVM optimisation compile the same HLO
# about 4x faster (test_sharding.py lowers the optimisation level the same way, by flags).
COMPILER_OPTIONS = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def assert_close(actual, expected, kind="float32"):
    rtol, atol = TOLERANCES[kind]
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol, atol=atol)


@pytest.fixture(params=[False, True], ids=["eager", "jit"])
def jit(request):
    """Runs a numerical test both as called and under ``jax.jit``."""
    return request.param


def bits(a):
    """The raw bits of an array, so that equality means bit-identical (-0.0 differs from 0.0)."""
    a = np.asarray(a)
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def assert_bit_identical(actual, expected):
    """Same leaves in the same order, with the same dtypes, shapes and bits."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(bits(a), bits(e))


def counting_tanh(traces):
    """``jnp.tanh`` that appends to ``traces`` each time it runs.

    Passed as ``activation=`` to a call of :func:`jlstm.lstm` not under an outer ``jax.jit``, it runs
    only while jlstm traces its computation, so ``len(traces)`` grows exactly when jlstm traces again.
    Reuse one such function across the calls compared: the activation is a static argument, hashed
    by identity, and a new function object is itself a reason to trace again.
    """

    def tanh(x):
        traces.append(None)
        return jnp.tanh(x)

    return tanh


@pytest.fixture(scope="session", autouse=True)
def no_tuned_plans_from_outside(tmp_path_factory):
    """Every test sees an empty plan cache of its own: no test writes to the user's, or loads it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JLSTM_CACHE_DIR", str(tmp_path_factory.mktemp("plan_cache")))
        jlstm.clear_tuned_plans()
        yield


def dropout_masks(key, batch, input_dim, units, dropout, recurrent_dropout, proj_size=None):
    """The dropout masks :func:`jlstm.lstm` draws from ``key`` for these shapes and rates, read back by gradients.

    Returns ``(input_masks, recurrent_masks)``, ``(4, batch, input_dim)`` and ``(4, batch, width)``, one per gate
    (i, f, c, o), where ``width`` is h's: ``units``, or ``proj_size`` for projected params (LSTMPParams). 0 where
    a value is dropped, ``1 / (1 - rate)`` where it is kept (1 everywhere for a rate of 0).

    The masks depend only on the key, the shapes and the rates (Keras draws them once per call). For each gate g,
    one step of an LSTM whose kernel and recurrent kernel are zero outside g's columns: the gradient of its
    outputs with respect to ``x`` is ``m_g * (W_g dz_g)`` and with respect to ``h0`` is ``r_g * (R_g dz_g)``,
    exactly zero where the mask is, and almost surely not elsewhere (random weights).
    """
    rng = np.random.default_rng(0)
    width = units if proj_size is None else proj_size
    x = rng.normal(size=(batch, 1, input_dim)).astype(np.float32)
    h0, c0, weights = (rng.normal(size=(batch, n)).astype(np.float32) for n in (width, units, width))
    input_masks, recurrent_masks = [], []
    for gate in range(4):
        columns = np.zeros(4 * units, np.float32)
        columns[gate * units : (gate + 1) * units] = 1.0
        params = jlstm.LSTMParams(
            (rng.normal(size=(input_dim, 4 * units)) * columns).astype(np.float32),
            (rng.normal(size=(width, 4 * units)) * columns).astype(np.float32),
            rng.normal(size=4 * units).astype(np.float32),
        )
        if proj_size is not None:
            params = jlstm.LSTMPParams(*params, rng.normal(size=(units, proj_size)).astype(np.float32))

        def loss(x, h0, params):
            _, h, c = jlstm.lstm(params, x, initial_state=(h0, c0), dropout=dropout,
                                 recurrent_dropout=recurrent_dropout, training=True, key=key, return_state=True)
            return jnp.sum(h * weights) + jnp.sum(c)

        gx, gh = jax.grad(loss, argnums=(0, 1))(x, h0, params)
        input_masks.append(np.where(gx[:, 0] != 0, np.float32(1.0 / (1.0 - dropout)), np.float32(0)))
        recurrent_masks.append(np.where(gh != 0, np.float32(1.0 / (1.0 - recurrent_dropout)), np.float32(0)))
    return np.stack(input_masks), np.stack(recurrent_masks)


# Every loop variant of jlstm.lstm, reached by passing its plan.
PLANS = [
    jlstm.Plan(layout, chains, projection, backward)
    for layout in ("batch", "stacked", "features")
    for chains in ((1,) if layout == "features" else (1, 2))
    for projection in (("step",) if layout == "stacked" else ("step", "hoisted"))
    for backward in ("fused", "autodiff")
]


def plan_id(recurrence):
    """A test id for a ``recurrence``: its name, or the plan's fields."""
    if isinstance(recurrence, str):
        return recurrence
    plan = recurrence
    unroll = f"-unroll{plan.unroll}" if plan.unroll != 1 else ""
    return f"{plan.layout}-{plan.chains}ch-{plan.projection}-{plan.backward}{unroll}"


PLAN_SHAPE = (4, 5, 4, 6)  # batch, time, input_dim, units: tiny weights, which "auto" runs stacked


@functools.cache
def plan_data():
    """Params, inputs, a state and a mask with holes, a gap and an empty row, on which every plan is compared."""
    batch, time, input_dim, units = PLAN_SHAPE
    rng = np.random.default_rng(0)
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    params = jlstm.LSTMParams(*(np.asarray(p) + 0.1 * rng.standard_normal(p.shape, np.float32) for p in params))
    x = rng.standard_normal((batch, time, input_dim), np.float32)
    h0, c0 = (rng.standard_normal((batch, units), np.float32) for _ in range(2))
    mask = np.array([[1, 1, 0, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)  # holes, gap, none
    return params, x, h0, c0, mask
