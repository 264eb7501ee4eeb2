"""jlstm.bidirectional against keras.layers.Bidirectional(LSTM) (TensorFlow backend), same weights."""

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

BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 4, 3
MERGE_MODES = ["concat", "sum", "mul", "ave", None]
FLAGS = list(itertools.product([False, True], [False, True]))  # return_sequences x return_state


def random_params(seed, input_dim, units):
    params = jlstm.init_params(jax.random.key(seed), input_dim, units)
    bias = np.random.default_rng(seed).normal(size=4 * units).astype(np.float32)
    return params._replace(bias=params.bias + jnp.asarray(bias))


def make_case(mask_kind, with_state, seed=0, backward_units=UNITS):
    rng = np.random.default_rng(seed)
    fwd = random_params(seed + 1, INPUT_DIM, UNITS)
    bwd = random_params(seed + 2, INPUT_DIM, backward_units)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    state = None
    if with_state:
        units = (UNITS, UNITS, backward_units, backward_units)
        state = tuple(rng.normal(size=(BATCH, u)).astype(np.float32) for u in units)
    mask = None
    if mask_kind == "mask":
        mask = rng.random((BATCH, TIME)) > 0.3
        mask[0, :2] = False  # leading steps masked: the backward direction ends there
        mask[1, -2:] = False  # trailing steps masked: the backward direction starts there
        mask[-1, :] = False  # a fully masked row
    return fwd, bwd, x, state, mask


def keras_bidirectional(fwd, bwd, merge_mode, return_sequences, return_state):
    flags = dict(return_sequences=return_sequences, return_state=return_state)
    backward_layer = keras.layers.LSTM(bwd.units, go_backwards=True, **flags)
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(fwd.units, **flags), merge_mode=merge_mode, backward_layer=backward_layer
    )
    layer.build((None, None, fwd.input_dim))
    layer.forward_layer.set_weights([np.asarray(w) for w in fwd])
    layer.backward_layer.set_weights([np.asarray(w) for w in bwd])
    return layer


def flat(out):
    return list(out) if isinstance(out, tuple) else [out]


@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("mask_kind", ["no_mask", "mask"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
def test_matches_keras(merge_mode, mask_kind, with_state):
    fwd, bwd, x, state, mask = make_case(mask_kind, with_state)
    for return_sequences, return_state in FLAGS:
        layer = keras_bidirectional(fwd, bwd, merge_mode, return_sequences, return_state)
        expected = keras_call(layer, x, state, mask)
        actual = flat(
            jlstm.bidirectional(
                fwd, bwd, x, merge_mode=merge_mode, initial_state=state, mask=mask,
                return_sequences=return_sequences, return_state=return_state,
            )
        )
        assert len(actual) == len(expected), (return_sequences, return_state)
        for a, e in zip(actual, expected):
            assert a.shape == e.shape
            assert_close(a, e)


def test_masked_steps_output_zero_and_states_carry():
    """Inside Bidirectional Keras outputs 0 at masked steps; a plain LSTM repeats the last output."""
    fwd, bwd, x, _, mask = make_case("mask", False)
    y_fwd, y_bwd, h_fwd, c_fwd, h_bwd, c_bwd = jlstm.bidirectional(
        fwd, bwd, x, merge_mode=None, mask=mask, return_sequences=True, return_state=True
    )
    assert np.all(np.asarray(y_fwd)[~mask] == 0) and np.all(np.asarray(y_bwd)[~mask] == 0)
    plain = jlstm.lstm(fwd, x, mask=mask, return_sequences=True)
    assert_close(np.asarray(y_fwd)[mask], np.asarray(plain)[mask])
    assert_close(h_fwd, jlstm.lstm(fwd, x, mask=mask))


def test_different_units_concat_and_time_major(jit):
    fwd, bwd, x, state, mask = make_case("mask", True, backward_units=2)
    layer = keras_bidirectional(fwd, bwd, "concat", True, True)
    expected = keras_call(layer, x, state, mask)

    def run(fwd, bwd, x, state, mask):
        return jlstm.bidirectional(
            fwd, bwd, x, initial_state=state, mask=mask, return_sequences=True, return_state=True,
            time_major=True,
        )

    out = (jax.jit(run) if jit else run)(fwd, bwd, np.swapaxes(x, 0, 1), state, mask.T)
    assert_close(np.swapaxes(out[0], 0, 1), expected[0])
    for a, e in zip(out[1:], expected[1:]):
        assert_close(a, e)


@pytest.mark.parametrize("merge_mode", ["concat", "ave"])
def test_jit_and_grad(merge_mode, jit):
    fwd, bwd, x, state, mask = make_case("mask", True)

    def loss(params, x):
        y = jlstm.bidirectional(*params, x, merge_mode=merge_mode, initial_state=state, mask=mask,
                                return_sequences=True)
        return jnp.sum(y**2)

    grad = jax.grad(loss)
    grads = (jax.jit(grad) if jit else grad)((fwd, bwd), x)
    # Against Keras's gradients of the same loss.
    layer = keras_bidirectional(fwd, bwd, merge_mode, True, False)
    with tf.GradientTape() as tape:
        y = layer(tf.constant(x), initial_state=[tf.constant(s) for s in state], mask=tf.constant(mask))
        keras_loss = tf.reduce_sum(y**2)
    weights = layer.forward_layer.trainable_weights + layer.backward_layer.trainable_weights
    expected = tape.gradient(keras_loss, weights)
    for a, e in zip(jax.tree.leaves(grads), expected):
        assert_close(a, np.asarray(e), "float32_grad")


def test_errors():
    fwd, bwd, x, state, _ = make_case("no_mask", True)
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        jlstm.bidirectional(fwd, bwd, x, merge_mode="max")
    with pytest.raises(ValueError, match=r"initial_state must be \(h_fwd, c_fwd, h_bwd, c_bwd\), .*length 2"):
        jlstm.bidirectional(fwd, bwd, x, initial_state=state[:2])
    with pytest.raises(ValueError, match=r"initial_state\[3\] \(c_bwd\) must have shape \(3, 3\), got"):
        jlstm.bidirectional(fwd, bwd, x, initial_state=(*state[:3], state[3][:, :2]))
    with pytest.raises(ValueError, match=r"bidirectional: inputs must have shape \(batch, time, 4\), got"):
        jlstm.bidirectional(fwd, bwd, x[..., :2])
    other = random_params(9, INPUT_DIM, 2)
    with pytest.raises(ValueError, match="merge_mode='sum' needs both directions to have the same units"):
        jlstm.bidirectional(fwd, other, x, merge_mode="sum")
    with pytest.raises(ValueError, match=r"backward_params.kernel must have shape \(4, 4 \* units\)"):
        jlstm.bidirectional(fwd, random_params(9, 2, UNITS), x)
    with pytest.raises(TypeError, match="backward_params must be an LSTMParams"):
        jlstm.bidirectional(fwd, None, x)
