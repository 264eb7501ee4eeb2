"""Shared settings: tolerances in one table, strict JAX promotion, Keras on TensorFlow."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

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
