"""Keras 3's dropout and recurrent_dropout in jlstm.lstm: exact parity with injected masks, and properties."""

import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf

import jlstm
from jlstm import _dropout
from conftest import assert_close, counting_tanh

BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 4, 3
RATES = [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)]  # (dropout, recurrent_dropout)


def make_case(seed=0):
    rng = np.random.default_rng(seed)
    params = jlstm.init_params(jax.random.key(seed), INPUT_DIM, UNITS)
    params = params._replace(bias=params.bias + jnp.asarray(rng.normal(size=4 * UNITS), jnp.float32))
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    mask[0, :2] = False
    return params, x, mask


def keras_with_masks(params, rates, key, **flags):
    """A Keras LSTM whose cell holds jlstm's masks for ``key``, as if it had drawn them itself."""
    dropout, recurrent_dropout = rates
    layer = keras.layers.LSTM(UNITS, dropout=dropout, recurrent_dropout=recurrent_dropout, **flags)
    layer.build((None, None, INPUT_DIM))
    layer.set_weights([np.asarray(w) for w in params])
    masks = _dropout.masks(key, BATCH, INPUT_DIM, UNITS, dropout, recurrent_dropout, jnp.float32)
    # Keras's cell caches one mask (implementation 2) or a list of four, one per gate (implementation 1).
    input_mask, recurrent_mask = (
        None if m is None else (tf.constant(m) if m.ndim == 2 else [tf.constant(g) for g in m]) for m in masks
    )
    layer.cell._dropout_mask = input_mask
    layer.cell._recurrent_dropout_mask = recurrent_mask
    return layer


# Input dropout alone runs on every recurrence ("auto" picks "fused"); recurrent dropout on "scan" only.
CASES = [(rates, "auto") for rates in RATES] + [((0.3, 0.0), "scan"), ((0.3, 0.0), "step")]


@pytest.mark.parametrize("rates, recurrence", CASES, ids=lambda c: f"{c}")
@pytest.mark.parametrize(
    "use_mask, go_backwards, jit",
    [(False, False, False), (True, True, True)],
    ids=["plain_eager", "mask_backwards_jit"],
)
def test_matches_keras_with_the_same_masks(rates, recurrence, use_mask, go_backwards, jit):
    params, x, mask = make_case()
    mask = mask if use_mask else None
    key = jax.random.key(7)
    flags = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer = keras_with_masks(params, rates, key, **flags)
    kwargs = {} if mask is None else {"mask": tf.constant(mask)}
    with tf.GradientTape() as tape:
        expected = layer(tf.constant(x), training=True, **kwargs)
        keras_loss = tf.reduce_sum(expected[0] ** 2)
    expected_grads = tape.gradient(keras_loss, layer.trainable_weights)
    assert layer.cell._dropout_mask is None  # Keras used, then reset, the injected masks

    def run(params, x, mask, key):
        return jlstm.lstm(params, x, mask=mask, dropout=rates[0], recurrent_dropout=rates[1], training=True,
                          key=key, recurrence=recurrence, **flags)

    def loss(params):
        return jnp.sum(run(params, x, mask, key)[0] ** 2)

    actual = (jax.jit(run) if jit else run)(params, x, mask, key)
    for a, e in zip(actual, expected):
        assert_close(a, np.asarray(e))
    grads = (jax.jit(jax.grad(loss)) if jit else jax.grad(loss))(params)
    for a, e in zip(grads, expected_grads):
        assert_close(a, np.asarray(e), "float32_grad")


@pytest.mark.parametrize("recurrence", ["auto", "scan"])
def test_input_mask_is_constant_over_time(recurrence):
    """Black box: the output is the plain LSTM's on x * m for one m in {0, 1/(1-p)}^input_dim at all steps."""
    params, x, _ = make_case()
    x = x[:1]
    rate = 0.5
    candidates = [np.asarray(m, np.float32) / (1 - rate) for m in itertools.product([0, 1], repeat=INPUT_DIM)]
    # The same loop with and without dropout (x * m is exact: m is 0 or 2), so that equality can be bitwise.
    plain = [
        np.asarray(jlstm.lstm(params, x * m[None, None, :], return_sequences=True, recurrence=recurrence))
        for m in candidates
    ]
    hits = set()
    for seed in range(6):
        y = np.asarray(jlstm.lstm(params, x, dropout=rate, training=True, key=jax.random.key(seed),
                                  return_sequences=True, recurrence=recurrence))
        matches = [i for i, p in enumerate(plain) if np.array_equal(y, p)]
        assert len(matches) == 1
        hits.add(matches[0])
    assert len(hits) > 1  # different keys drew different masks


@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3])
def test_masks_keep_expected_value(recurrent_dropout):
    rate = 0.25
    key = jax.random.key(0)
    input_mask, recurrent_mask = _dropout.masks(key, 400, 50, 60, rate, recurrent_dropout, jnp.float32)
    assert input_mask.shape == ((400, 50) if recurrent_dropout == 0 else (4, 400, 50))
    values = np.unique(np.asarray(input_mask))
    np.testing.assert_allclose(values, [0.0, 1 / (1 - rate)], rtol=1e-6)
    assert abs(float(jnp.mean(input_mask)) - 1.0) < 0.02
    assert abs(float(jnp.mean(input_mask == 0)) - rate) < 0.01
    if recurrent_dropout:
        assert recurrent_mask.shape == (4, 400, 60)
        assert abs(float(jnp.mean(recurrent_mask)) - 1.0) < 0.02
        # Per-gate masks are independent draws.
        assert not np.array_equal(recurrent_mask[0], recurrent_mask[1])
    else:
        assert recurrent_mask is None


def test_identity_when_not_training_or_rate_zero():
    params, x, mask = make_case()
    key = jax.random.key(1)
    plain = jlstm.lstm(params, x, mask=mask, return_sequences=True)
    same = [
        jlstm.lstm(params, x, mask=mask, return_sequences=True, dropout=0.5, recurrent_dropout=0.5),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, dropout=0.5, recurrent_dropout=0.5, key=key),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, training=True, key=key),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, training=True),
    ]
    for y in same:
        np.testing.assert_array_equal(y, plain)
    # Not even traced: the same program as without the arguments.
    reference = str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x))(params, x))
    assert str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, dropout=0.5))(params, x)) == reference
    assert str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, training=True, key=key))(params, x)) == reference


def test_deterministic_per_key_and_no_retrace():
    """The key is data, traced once; the rates are static flags."""
    params, x, _ = make_case()
    traces = []
    tanh = counting_tanh(traces)  # grows only while jlstm traces

    def run(key, recurrent_dropout=0.3):
        rates = dict(dropout=0.3, recurrent_dropout=recurrent_dropout)
        return jlstm.lstm(params, x, **rates, training=True, key=key, activation=tanh)

    a, b = run(jax.random.key(0)), run(jax.random.key(0))
    np.testing.assert_array_equal(a, b)
    traced = len(traces)
    c = run(jax.random.key(1))
    assert len(traces) == traced
    assert not np.allclose(a, c)
    run(jax.random.key(0), recurrent_dropout=0.2)  # another rate: traced again
    assert len(traces) > traced


def test_bidirectional_and_stacked_pass_dropout_through():
    params, x, mask = make_case()
    other = jlstm.init_params(jax.random.key(5), INPUT_DIM, UNITS)
    key = jax.random.key(2)
    kw = dict(dropout=0.3, recurrent_dropout=0.2, training=True)
    out = jlstm.bidirectional(params, other, x, mask=mask, merge_mode=None, key=key, **kw)
    k_fwd, k_bwd = jax.random.split(key)
    np.testing.assert_array_equal(out[0], jlstm.lstm(params, x, mask=mask, key=k_fwd, **kw))
    np.testing.assert_array_equal(out[1], jlstm.lstm(other, x, mask=mask, go_backwards=True, key=k_bwd, **kw))
    stacked = jlstm.stacked_lstm([params, other], x, bidirectional=True, mask=mask, key=key, **kw)
    layer_key = jax.random.split(jax.random.split(key, 1)[0])[0]
    expected = jlstm.bidirectional(params, other, x, mask=mask, key=layer_key, **kw)
    np.testing.assert_array_equal(stacked, expected)


def test_errors():
    params, x, _ = make_case()
    with pytest.raises(ValueError, match="needs a PRNG key"):
        jlstm.lstm(params, x, dropout=0.1, training=True)
    with pytest.raises(ValueError, match=r"recurrent_dropout must be a float in \[0, 1\), got 1.0"):
        jlstm.lstm(params, x, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match=r"lstm: dropout must be a float in \[0, 1\), got -0.1"):
        jlstm.lstm(params, x, dropout=-0.1)
    with pytest.raises(TypeError, match="dropout must be a float"):
        jlstm.lstm(params, x, dropout="0.1")
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        jlstm.lstm(params, x, dropout=0.1, training=True, key=3)
    with pytest.raises(ValueError, match="bidirectional: training with dropout"):
        jlstm.bidirectional(params, params, x, dropout=0.1, training=True)


def test_input_dropout_alone_runs_the_fused_loop():
    """``dropout`` alone runs the fused loop (its custom JVP); with ``recurrent_dropout``, the scan."""
    params, x, mask = make_case()
    key = jax.random.key(3)

    def jaxpr(**rates):
        return str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, mask=mask, training=True, key=key, **rates))(
            params, x))

    assert "custom_jvp_call" in jaxpr(dropout=0.3)
    assert "custom_jvp_call" not in jaxpr(dropout=0.3, recurrent_dropout=0.2)

    # The two loops agree on the same masks, values and gradients.
    def loss(params, recurrence):
        y = jlstm.lstm(params, x, mask=mask, dropout=0.3, training=True, key=key, return_sequences=True,
                       recurrence=recurrence)
        return jnp.sum(y ** 2)

    for want, got in zip(jax.value_and_grad(loss)(params, "scan"), jax.value_and_grad(loss)(params, "auto")):
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            assert_close(g, w, "float32_grad")
