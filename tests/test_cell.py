"""jlstm.lstm_cell: one step, the same under jit, and the body of a lax.scan that is jlstm.lstm.

Against PyTorch's LSTMCell: test_torch.py; its errors: test_bad_inputs.py.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

import jlstm
from conftest import assert_bit_identical, assert_close


def make(batch=3, time=6, input_dim=4, units=5):
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    state = jlstm.LSTMState(*jax.random.normal(jax.random.key(2), (2, batch, units)))
    return params, x, state


def test_jit_equals_eager():
    """Close, not bitwise: XLA fuses the jitted step into other kernels, whose rounding may differ by an ulp."""
    params, x, state = make()
    eager = jlstm.lstm_cell(params, state, x[:, 0])
    jitted = jax.jit(jlstm.lstm_cell)(params, state, x[:, 0])
    assert isinstance(jitted[0], jlstm.LSTMState)
    jax.tree.map(assert_close, jitted, eager)


def test_the_cell_is_the_scan_body_of_lstm():
    params, x, state = make()
    final, ys = jax.lax.scan(lambda s, xt: jlstm.lstm_cell(params, s, xt), state, x.swapaxes(0, 1))
    assert isinstance(final, jlstm.LSTMState)
    seq, h, c = jlstm.lstm(params, x, initial_state=state, return_sequences=True, return_state=True)
    assert_close(ys.swapaxes(0, 1), seq)
    assert_close(final.h, h)
    assert_close(final.c, c)


@pytest.mark.parametrize("proj_size", [None, 3], ids=["plain", "projected"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64"])
def test_the_scan_body_keeps_the_carry_dtype(dtype, proj_size):
    """``lax.scan(partial(lstm_cell, params), zero_state(...), xs)`` for 16-bit, 32-bit and (x64) 64-bit carries.

    The carry must come out of the step in the dtype it went in, or ``lax.scan`` refuses it; the values
    follow ``lstm`` to the dtype's round-off.
    """
    with jax.enable_x64(dtype == "float64"):
        params_dtype = jnp.float32 if dtype == "float64" else jnp.dtype(dtype)  # float32 params, float64 state
        params = jlstm.init_params(jax.random.key(0), 4, 5, proj_size=proj_size, dtype=params_dtype)
        xs = jax.random.normal(jax.random.key(1), (6, 3, 4), params_dtype)  # time-major
        state = jlstm.zero_state(params, 3, dtype=dtype)
        assert state.h.shape == (3, proj_size or 5) and state.c.shape == (3, 5) and state.h.dtype == dtype
        final, ys = jax.lax.scan(functools.partial(jlstm.lstm_cell, params), state, xs)
        assert isinstance(final, jlstm.LSTMState)
        assert final.h.dtype == final.c.dtype == ys.dtype == jnp.dtype(dtype)
        seq, h, c = jlstm.lstm(params, xs, time_major=True, return_sequences=True, return_state=True)
        assert_close(final.h, h, "float32" if dtype not in ("bfloat16", "float16") else dtype)
        kind = dtype if dtype in ("bfloat16", "float16") else "float32"
        assert_close(ys, seq, kind)
        assert_close(final.c, c, kind)


def test_zero_state_is_the_state_lstm_starts_from():
    params = jlstm.init_params(jax.random.key(0), 2, 3, dtype=jnp.bfloat16)
    state = jlstm.zero_state(params, 4)
    assert state.h.dtype == state.c.dtype == jnp.float32  # the state dtype of 16-bit params
    x = jax.random.normal(jax.random.key(1), (4, 5, 2))
    assert_bit_identical(jlstm.lstm(params, x, initial_state=state), jlstm.lstm(params, x))
