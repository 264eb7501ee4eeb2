"""Exact float64 numerics against the NumPy reference, the low-precision dtype policy, saturation and NaNs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_close

import jlstm
import reference

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


def test_reference_matches_keras():
    """The NumPy reference against the oracle, Keras with the TensorFlow backend, in float32."""
    import keras

    params, x, state, mask = _data(0)
    params, x, state = (jax.tree.map(lambda a: np.asarray(a, np.float32), t) for t in (params, x, state))
    for go_backwards in (False, True):
        layer = keras.layers.LSTM(H, return_sequences=True, return_state=True, go_backwards=go_backwards)
        layer.build((B, T, I))
        layer.set_weights(list(params))
        expected = layer(x, mask=mask, initial_state=list(state))
        actual = reference.lstm(params, x, mask=mask, initial_state=state, return_sequences=True,
                                return_state=True, go_backwards=go_backwards)
        for a, e in zip(actual, expected):
            assert_close(a, np.asarray(e))


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
def test_float64_matches_numpy_reference(jit, go_backwards, masked, time_major):
    params, x, state, mask = _data(1)
    if time_major:
        x, mask = x.swapaxes(0, 1), mask.T
    flags = dict(go_backwards=go_backwards, time_major=time_major, return_sequences=True, return_state=True)
    with jax.enable_x64(True):
        run = lambda p, x, s, m: jlstm.lstm(p, x, initial_state=s, mask=m, **flags)  # noqa: E731
        run = jax.jit(run) if jit else run
        actual = run(_cast(params, jnp.float64), jnp.asarray(x), _cast(state, jnp.float64),
                     jnp.asarray(mask) if masked else None)
        assert all(a.dtype == jnp.float64 for a in actual)
        actual = [np.asarray(a) for a in actual]
    expected = reference.lstm(params, x, initial_state=state, mask=mask if masked else None, **flags)
    for a, e in zip(actual, expected):
        assert_close(a, e, "float64")


def test_float64_gradient_matches_finite_differences():
    """Central differences of the reference (float64) are the oracle for jlstm's gradients."""
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
def test_low_precision_policy_keeps_float32_state(dtype):
    """16-bit params: operands in 16 bits, state and outputs in float32, gradients in the params' dtype."""
    params, x, state, mask = _data(3)
    p16, x16 = _cast(params, dtype), jnp.asarray(x, dtype)
    out = jlstm.lstm(p16, x16, initial_state=_cast(state, dtype), mask=jnp.asarray(mask),
                     return_sequences=True, return_state=True)
    assert [a.dtype for a in out] == [jnp.float32] * 3
    # The same rounded weights and inputs in float32: the only difference left is h rounded to 16 bits
    # before each recurrent matmul.
    expected = jlstm.lstm(_cast(p16, jnp.float32), x16.astype(jnp.float32), initial_state=_cast(state, dtype),
                          mask=jnp.asarray(mask), return_sequences=True, return_state=True)
    for a, e in zip(out, expected):
        assert_close(a, e, jnp.dtype(dtype).name)
    grads = jax.grad(lambda p: jnp.sum(jlstm.lstm(p, x16)))(p16)
    assert all(g.dtype == dtype for g in grads)
    # a returned state fed back loses nothing: two halves equal one call
    first = jlstm.lstm(p16, x16[:, :3], return_state=True)
    second = jlstm.lstm(p16, x16[:, 3:], initial_state=first[1:], return_state=True)
    whole = jlstm.lstm(p16, x16, return_state=True)
    for a, e in zip(second, whole):
        assert_close(a, e)


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
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=m, return_sequences=True,
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


def test_nan_in_one_row_stays_in_that_row():
    params, x, state, _ = _data(7, batch=4, time=9)
    params, x, state = (_cast(t, jnp.float32) for t in (params, x, state))
    bad, clean = 2, np.array([0, 1, 3])
    x_nan = x.at[bad, 4, 1].set(jnp.nan)
    x_zero = x.at[bad, 4, 1].set(0.0)

    def run(x):
        return jlstm.lstm(params, x, initial_state=state, return_sequences=True, return_state=True)

    out_nan, out_zero = run(x_nan), run(x_zero)
    for a, e in zip(out_nan, out_zero):
        np.testing.assert_array_equal(np.asarray(a)[clean], np.asarray(e)[clean])
    assert bool(jnp.isnan(out_nan[0][bad, 4:]).all())

    def clean_loss(x):  # depends on the clean rows only
        return jnp.sum(run(x)[0][clean] ** 2)

    gx_nan, gx_zero = jax.grad(clean_loss)(x_nan), jax.grad(clean_loss)(x_zero)
    np.testing.assert_array_equal(np.asarray(gx_nan)[clean], np.asarray(gx_zero)[clean])
    assert bool(jnp.isfinite(gx_nan[clean]).all())


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_nan_in_masked_steps_is_ignored_also_by_gradients(go_backwards):
    """Padding with NaN: masked steps do not touch the outputs, the state, or any gradient."""
    params, x, state, mask = _data(8, time=9)
    params, x, state = (_cast(t, jnp.float32) for t in (params, x, state))
    m = jnp.asarray(mask)
    x_nan = jnp.where(m[:, :, None], x, jnp.nan)
    x_zero = jnp.where(m[:, :, None], x, 0.0)

    def loss(params, x):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=m, go_backwards=go_backwards,
                               return_sequences=True, return_state=True)
        return jnp.sum(seq**2) + jnp.sum(h * c)

    v_nan, g_nan = jax.value_and_grad(loss, argnums=(0, 1))(params, x_nan)
    v_zero, g_zero = jax.value_and_grad(loss, argnums=(0, 1))(params, x_zero)
    assert bool(jnp.isfinite(v_nan))
    assert float(v_nan) == float(v_zero)
    for a, e in zip(jax.tree.leaves(g_nan), jax.tree.leaves(g_zero)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))
