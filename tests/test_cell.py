"""jlstm.lstm_cell: one step, the same under jit, and the body of a lax.scan that is jlstm.lstm.

Against PyTorch's LSTMCell: test_torch.py; its errors: test_bad_inputs.py.
"""

import jax

import jlstm
from conftest import assert_close


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
