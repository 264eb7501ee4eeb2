"""jlstm.lstm against the float64 NumPy oracle in reference.py: random calls (hypothesis), exact float64
numerics and gradients, long 16-bit carries, and saturating inputs.

The oracle itself is checked against Keras in test_keras.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jlstm
import reference
from conftest import assert_close
from strategies import SETTINGS, problems, time_major

B, T, I, H = 3, 6, 4, 5


def _data(seed, batch=B, time=T, input_dim=I, units=H, scale=1.0):
    rng = np.random.default_rng(seed)
    params = jlstm.LSTMParams(
        rng.normal(0, 0.5, (input_dim, 4 * units)),
        rng.normal(0, 0.5, (units, 4 * units)),
        rng.normal(0, 0.5, (4 * units,)),
    )
    x = scale * rng.normal(size=(batch, time, input_dim))
    state = (rng.normal(size=(batch, units)), rng.normal(size=(batch, units)))
    mask = rng.random((batch, time)) < 0.6
    mask[0] = True  # one unmasked row, one fully masked row, one mixed
    mask[1] = False
    return params, x, state, mask


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


@settings(max_examples=30, **SETTINGS)
@given(problems(), st.booleans(), st.booleans(), st.booleans())
def test_random_calls_match_the_reference(problem, go_backwards, return_sequences, major):
    params, x, mask, state = problem
    x, mask = time_major(x, mask, major)
    flags = {"go_backwards": go_backwards, "return_sequences": return_sequences, "time_major": major,
                 "return_state": True}
    actual = jlstm.lstm(params, x, mask=mask, initial_state=state, **flags)
    expected = reference.lstm(params, x, mask=mask, initial_state=state, **flags)
    for a, e in zip(actual, expected):
        assert_close(a, e)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("major", [False, True], ids=["batch_major", "time_major"])
def test_float64_matches_the_reference(jit, go_backwards, masked, major):
    params, x, state, mask = _data(1)
    x, mask = time_major(x, mask, major)
    flags = {"go_backwards": go_backwards, "time_major": major, "return_sequences": True, "return_state": True}
    with jax.enable_x64(True):
        run = lambda p, x, s, m: jlstm.lstm(p, x, initial_state=s, mask=m, **flags)
        run = jax.jit(run) if jit else run
        actual = run(_cast(params, jnp.float64), jnp.asarray(x), _cast(state, jnp.float64),
                     jnp.asarray(mask) if masked else None)
        assert all(a.dtype == jnp.float64 for a in actual)
        actual = [np.asarray(a) for a in actual]
    expected = reference.lstm(params, x, initial_state=state, mask=mask if masked else None, **flags)
    for a, e in zip(actual, expected):
        assert_close(a, e, "float64")


def test_float64_gradient_matches_finite_differences_of_the_reference():
    """Central differences of the reference (float64), every kernel entry, are the oracle for jlstm's gradients."""
    params, x, state, mask = _data(2, batch=2, time=4, input_dim=2, units=2)

    def ref_loss(kernel):
        out = reference.lstm((kernel, *params[1:]), x, mask=mask, initial_state=state, return_sequences=True)
        return float(np.sum(np.sin(out)))

    eps = 1e-6
    expected = np.zeros_like(params.kernel)
    for idx in np.ndindex(*params.kernel.shape):
        step = np.zeros_like(params.kernel)
        step[idx] = eps
        expected[idx] = (ref_loss(params.kernel + step) - ref_loss(params.kernel - step)) / (2 * eps)
    with jax.enable_x64(True):
        p = _cast(params, jnp.float64)
        grad = jax.grad(lambda p: jnp.sum(jnp.sin(jlstm.lstm(
            p, jnp.asarray(x), mask=jnp.asarray(mask), initial_state=_cast(state, jnp.float64),
            return_sequences=True))))(p)
        actual = np.asarray(grad.kernel)
    assert_close(actual, expected, "float64_fd")


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_low_precision_long_sequence_stays_finite_and_close(dtype):
    """3,000 steps, once with ordinary inputs and once driving c up by about 1 per step."""
    params = jlstm.init_params(jax.random.key(0), 4, 8, dtype=dtype)
    x = jax.random.normal(jax.random.key(1), (2, 3000, 4)).astype(dtype)
    seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)
    assert bool(jnp.isfinite(seq).all() and jnp.isfinite(c).all())
    expected = jlstm.lstm(_cast(params, jnp.float32), x.astype(jnp.float32), return_sequences=True)
    assert_close(seq, expected, jnp.dtype(dtype).name)
    # gates open, candidate near +1: c grows by almost 1 per step, past float16's 2048 where c + 1 == c
    drive = jlstm.LSTMParams(jnp.full((1, 4), 10.0, dtype), jnp.zeros((1, 4), dtype), jnp.zeros((4,), dtype))
    _, h, c = jlstm.lstm(drive, jnp.ones((1, 3000, 1), dtype), return_state=True)
    _, h_ref, c_ref = reference.lstm(drive, np.ones((1, 3000, 1)), return_state=True)
    assert float(c_ref[0, 0]) > 2500
    assert_close(c, c_ref, "float32_long")
    assert_close(h, h_ref, "float32_long")
    assert bool(jnp.isfinite(h).all())
    g = jax.grad(lambda p: jnp.sum(jlstm.lstm(p, x)))(params)
    assert all(bool(jnp.isfinite(a).all()) for a in g)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
def test_saturating_inputs_give_finite_outputs_and_gradients(masked):
    params, x, state, mask = _data(4, time=40)
    x = np.where(np.random.default_rng(5).random(x.shape) < 0.5, 1e4, -1e4) * np.sign(x)  # |x| = 1e4
    x[:, ::3] = np.random.default_rng(6).normal(size=x[:, ::3].shape)  # leave saturation now and then
    params, x, state = (_cast(t, jnp.float32) for t in (params, x, state))
    m = jnp.asarray(mask) if masked else None

    def loss(params, x):
        seq, _, c = jlstm.lstm(params, x, initial_state=state, mask=m, return_sequences=True,
                               return_state=True)
        return jnp.sum(seq**2) + jnp.sum(c)

    value, (gp, gx) = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
    assert bool(jnp.isfinite(value))
    assert all(bool(jnp.isfinite(g).all()) for g in (*gp, gx))
    out = jlstm.lstm(params, x, initial_state=state, mask=m, return_sequences=True, return_state=True)
    expected = reference.lstm(params, x, initial_state=state, mask=mask if masked else None,
                              return_sequences=True, return_state=True)
    for a, e in zip(out, expected):
        assert_close(a, e, "float32_saturated")
