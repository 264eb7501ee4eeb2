"""jlstm.init_params, and LSTMParams / LSTMState as plain tuples.

init_stacked_params: test_stacked.py; the flax modules' initialisers: test_flax.py; errors: test_bad_inputs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np

import jlstm
from conftest import assert_close


def test_init_params_follows_keras_initialisers():
    input_dim, units = 64, 32
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    limit = np.sqrt(6 / (input_dim + 4 * units))  # Glorot uniform
    kernel = np.asarray(params.kernel)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.05 * limit
    rk = np.asarray(params.recurrent_kernel)
    np.testing.assert_allclose(rk @ rk.T, np.eye(units), atol=1e-5)  # orthonormal rows
    expected_bias = np.zeros(4 * units, np.float32)
    expected_bias[units : 2 * units] = 1.0
    np.testing.assert_array_equal(params.bias, expected_bias)
    no_forget = jlstm.init_params(jax.random.key(0), input_dim, units, unit_forget_bias=False)
    np.testing.assert_array_equal(no_forget.bias, 0)
    assert jlstm.init_params(jax.random.key(0), 2, 3, dtype=jnp.bfloat16).kernel.dtype == jnp.bfloat16


def test_init_params_with_proj_size_adds_a_projection_to_the_same_arrays():
    """proj_size=P: PyTorch's uniform(±1/sqrt(units)) projection_kernel (units, P); kernel and bias those of the
    same key without a projection; recurrent_kernel (P, 4 * units), orthogonal rows."""
    input_dim, units, proj_size = 6, 32, 24
    key = jax.random.key(0)
    params = jlstm.init_params(key, input_dim, units, proj_size=np.int64(proj_size))
    plain = jlstm.init_params(key, input_dim, units)
    assert isinstance(params, jlstm.LSTMPParams)
    assert (params.input_dim, params.units, params.proj_size) == (input_dim, units, proj_size)
    assert [np.shape(p) for p in params] == [(input_dim, 4 * units), (proj_size, 4 * units), (4 * units,),
                                             (units, proj_size)]
    np.testing.assert_array_equal(params.kernel, plain.kernel)
    np.testing.assert_array_equal(params.bias, plain.bias)
    rk = np.asarray(params.recurrent_kernel)
    np.testing.assert_allclose(rk @ rk.T, np.eye(proj_size), atol=1e-5)
    projection, bound = np.asarray(params.projection_kernel), 1 / np.sqrt(units)
    assert np.abs(projection).max() <= bound and np.abs(projection).max() > 0.95 * bound
    assert abs(projection.std() - bound / np.sqrt(3)) < 0.1 * bound  # uniform, not a narrower draw
    assert np.abs(projection.mean()) < 0.1 * bound
    half = jlstm.init_params(key, input_dim, units, proj_size=proj_size, dtype=jnp.bfloat16, unit_forget_bias=False)
    assert {a.dtype for a in half} == {jnp.dtype(jnp.bfloat16)}
    np.testing.assert_array_equal(half.bias, 0)


def test_plain_tuples_are_accepted_for_params_and_state():
    params = jlstm.init_params(jax.random.key(0), 4, 5)
    x = jax.random.normal(jax.random.key(1), (3, 6, 4))
    state = (jnp.ones((3, 5)), jnp.zeros((3, 5)))
    a = jlstm.lstm(tuple(params), x, initial_state=state)
    b = jlstm.lstm(params, x, initial_state=jlstm.LSTMState(*state))
    assert_close(a, b)
    new_state, y = jlstm.lstm_cell(tuple(params), list(state), x[:, 0])
    assert isinstance(new_state, list)  # the carry keeps its container, as a lax.scan needs
    expected_state, expected_y = jlstm.lstm_cell(params, jlstm.LSTMState(*state), x[:, 0])
    assert_close(y, expected_y)
    assert_close(new_state[0], expected_state.h)
    assert_close(new_state[1], expected_state.c)
