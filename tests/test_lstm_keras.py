"""jlstm.lstm against keras.layers.LSTM (TensorFlow backend) with the same weights."""

import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf

import jlstm
from conftest import assert_close
from keras_helpers import keras_call

# (batch, time, input_dim, units); time 1 and units 1 included.
SHAPES = [(1, 1, 1, 1), (3, 5, 4, 6), (2, 7, 3, 1), (4, 1, 2, 3)]
MASKS = ["none", "mixed"]
FLAGS = list(itertools.product([False, True], [False, True]))  # return_sequences x return_state


def make_case(shape, mask_kind, with_state, seed=0):
    batch, time, input_dim, units = shape
    rng = np.random.default_rng(seed)
    params = jlstm.init_params(jax.random.key(seed), input_dim, units)
    # A non-zero bias everywhere so that every bias slice is exercised.
    params = params._replace(bias=params.bias + jnp.asarray(rng.normal(size=4 * units), jnp.float32))
    x = rng.normal(size=(batch, time, input_dim)).astype(np.float32)
    state = None
    if with_state:
        state = tuple(rng.normal(size=(batch, units)).astype(np.float32) for _ in range(2))
    mask = None
    if mask_kind == "mixed":  # random rows, a row with leading steps masked, a fully masked row
        mask = rng.random((batch, time)) > 0.3
        mask[0, : (time + 1) // 2] = False
        mask[-1, :] = False  # the same row as above when batch == 1
    return params, x, state, mask


def keras_layer(params, **flags):
    layer = keras.layers.LSTM(params.units, **flags)
    layer.build((None, None, params.input_dim))
    layer.set_weights([np.asarray(w) for w in params])
    return layer


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_forward_matches_keras(shape, mask_kind, with_state, go_backwards, jit):
    params, x, state, mask = make_case(shape, mask_kind, with_state)
    for return_sequences, return_state in FLAGS:
        flags = dict(return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards)
        expected = keras_call(keras_layer(params, **flags), x, state, mask)

        def run(params, x, state, mask):
            return jlstm.lstm(params, x, initial_state=state, mask=mask, **flags)

        out = (jax.jit(run) if jit else run)(params, x, state, mask)
        actual = list(out) if return_state else [out]
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert a.shape == e.shape
            assert_close(a, e)


@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
def test_time_major_is_a_transpose(time_major):
    params, x, state, mask = make_case((3, 5, 4, 6), "mixed", True)
    flags = dict(return_sequences=True, return_state=True)
    seq, h, c = keras_call(keras_layer(params, **flags), x, state, mask)
    if time_major:
        x, mask, seq = x.swapaxes(0, 1), mask.T, seq.swapaxes(0, 1)
    actual = jlstm.lstm(params, x, initial_state=state, mask=mask, time_major=time_major, **flags)
    for a, e in zip(actual, (seq, h, c)):
        assert_close(a, e)


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_gradients_match_tf_gradient_tape(mask_kind, go_backwards, return_sequences, jit):
    params, x, state, mask = make_case((3, 6, 4, 5), mask_kind, True, seed=1)
    flags = dict(return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    rng = np.random.default_rng(2)
    out_shape = (3, 6, 5) if return_sequences else (3, 5)
    w_out, w_h, w_c = (rng.normal(size=s).astype(np.float32) for s in (out_shape, (3, 5), (3, 5)))

    layer = keras_layer(params, **flags)
    xs, h0, c0 = (tf.Variable(v) for v in (x, *state))
    with tf.GradientTape() as tape:
        out, h, c = layer(xs, initial_state=[h0, c0], mask=None if mask is None else tf.constant(mask))
        loss = tf.reduce_sum(out * w_out) + tf.reduce_sum(h * w_h) + tf.reduce_sum(c * w_c)
    kernel, recurrent_kernel, bias = layer.trainable_weights
    expected = tape.gradient(loss, [kernel, recurrent_kernel, bias, xs, h0, c0])

    def loss_fn(params, x, state):
        out, h, c = jlstm.lstm(params, x, initial_state=state, mask=mask, **flags)
        return jnp.sum(out * w_out) + jnp.sum(h * w_h) + jnp.sum(c * w_c)

    grad_fn = jax.grad(loss_fn, argnums=(0, 1, 2))
    g_params, g_x, g_state = (jax.jit(grad_fn) if jit else grad_fn)(params, x, state)
    for a, e in zip([*g_params, g_x, *g_state], expected):
        assert_close(a, e, "float32_grad")
