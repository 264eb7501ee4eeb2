"""Everything compared against real Keras (TensorFlow backend), same weights: jlstm.lstm with its flags, masks and
gradients; every recurrence and every plan; bidirectional; stacked_lstm; dropout on the same masks; the NumPy
oracle itself; and the converters from_keras / to_keras.

The converters' errors: test_bad_inputs.py.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf

import jlstm
import reference
from conftest import PLAN_SHAPE, PLANS, assert_bit_identical, assert_close, dropout_masks, plan_data, plan_id
from keras_helpers import keras_call

FLAGS = list(itertools.product([False, True], [False, True]))  # return_sequences x return_state


def keras_lstm(params, **flags):
    """A built keras.layers.LSTM holding ``params``."""
    layer = keras.layers.LSTM(params.units, **flags)
    layer.build((None, None, params.input_dim))
    layer.set_weights([np.asarray(w) for w in params])
    return layer


# --- lstm ----------------------------------------------------------------------------------------------------

# (batch, time, input_dim, units); time 1 and units 1 included.
SHAPES = [(1, 1, 1, 1), (3, 5, 4, 6), (2, 7, 3, 1), (4, 1, 2, 3)]
MASKS = ["none", "mixed"]


def lstm_case(shape, mask_kind, with_state, seed=0):
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


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_lstm_matches_keras(shape, mask_kind, with_state, go_backwards, jit):
    params, x, state, mask = lstm_case(shape, mask_kind, with_state)
    for return_sequences, return_state in FLAGS:
        flags = {"return_sequences": return_sequences, "return_state": return_state, "go_backwards": go_backwards}
        expected = keras_call(keras_lstm(params, **flags), x, state, mask)

        def run(params, x, state, mask, flags=flags):
            return jlstm.lstm(params, x, initial_state=state, mask=mask, **flags)

        out = (jax.jit(run) if jit else run)(params, x, state, mask)
        actual = list(out) if return_state else [out]
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert a.shape == e.shape
            assert_close(a, e)


@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
def test_lstm_time_major_is_a_transpose(time_major):
    params, x, state, mask = lstm_case((3, 5, 4, 6), "mixed", True)
    flags = {"return_sequences": True, "return_state": True}
    seq, h, c = keras_call(keras_lstm(params, **flags), x, state, mask)
    if time_major:
        x, mask, seq = x.swapaxes(0, 1), mask.T, seq.swapaxes(0, 1)
    actual = jlstm.lstm(params, x, initial_state=state, mask=mask, time_major=time_major, **flags)
    for a, e in zip(actual, (seq, h, c)):
        assert_close(a, e)


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_lstm_gradients_match_tf_gradient_tape(mask_kind, go_backwards, return_sequences, jit):
    params, x, state, mask = lstm_case((3, 6, 4, 5), mask_kind, True, seed=1)
    flags = {"return_sequences": return_sequences, "return_state": True, "go_backwards": go_backwards}
    rng = np.random.default_rng(2)
    out_shape = (3, 6, 5) if return_sequences else (3, 5)
    w_out, w_h, w_c = (rng.normal(size=s).astype(np.float32) for s in (out_shape, (3, 5), (3, 5)))

    layer = keras_lstm(params, **flags)
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


# --- every recurrence and every plan ----------------------------------------------------------------------

RECURRENCES = ["auto", "scan", "step", "fused"]


@functools.cache
def plan_keras_layer(return_sequences, go_backwards):
    batch, time, input_dim, units = PLAN_SHAPE
    layer = keras.layers.LSTM(units, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    layer.build((batch, time, input_dim))
    return layer


@functools.cache
def keras_values_and_grads(return_sequences, go_backwards, use_mask, use_state):
    params, x, h0, c0, mask = plan_data()
    layer = plan_keras_layer(return_sequences, go_backwards)
    layer.set_weights(list(params))
    xs, h0s, c0s = (tf.Variable(a) for a in (x, h0, c0))
    with tf.GradientTape() as tape:
        out = layer(xs, mask=tf.constant(mask) if use_mask else None,
                    initial_state=[h0s, c0s] if use_state else None)
        loss = sum(tf.reduce_sum(tf.sin(o)) for o in out)
    grads = tape.gradient(loss, [*layer.trainable_variables, xs, h0s, c0s])
    return [o.numpy() for o in out], [None if g is None else g.numpy() for g in grads]


PLAN_CASES = [  # return_sequences, go_backwards, mask, initial_state
    (False, False, False, False),
    (True, False, False, True),
    (True, False, True, True),
    (False, True, True, False),
    (True, True, True, True),
]


def case_id(case):
    return "-".join(n for n, on in zip(("seq", "back", "mask", "h0"), case) if on) or "plain"


def check_recurrence_against_keras(case, recurrence):
    return_sequences, go_backwards, use_mask, use_state = case
    params, x, h0, c0, mask = plan_data()
    expected, expected_grads = keras_values_and_grads(*case)

    def run(params, x, h0, c0):
        return jlstm.lstm(params, x, initial_state=(h0, c0) if use_state else None,
                          mask=mask if use_mask else None, return_sequences=return_sequences,
                          return_state=True, go_backwards=go_backwards, recurrence=recurrence)

    def loss(params, x, h0, c0):
        return sum(jnp.sum(jnp.sin(o)) for o in run(params, x, h0, c0))

    for actual, want in zip(jax.jit(run)(params, x, h0, c0), expected):
        assert_close(actual, want)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(params, x, h0, c0)
    flat = [*grads[0], *grads[1:]]
    for actual, want in zip(flat, expected_grads):
        assert_close(actual, np.zeros_like(actual) if want is None else want, "float32_grad")


@pytest.mark.parametrize("recurrence", RECURRENCES)
@pytest.mark.parametrize("case", PLAN_CASES, ids=case_id)
def test_every_recurrence_matches_keras(recurrence, case):
    check_recurrence_against_keras(case, recurrence)


@pytest.mark.parametrize("plan", PLANS, ids=plan_id)
@pytest.mark.parametrize("case", [PLAN_CASES[0], PLAN_CASES[2], PLAN_CASES[4]], ids=case_id)
def test_every_plan_matches_keras(plan, case):
    check_recurrence_against_keras(case, plan)


# --- bidirectional ---------------------------------------------------------------------------------------

BI_SHAPE = (3, 5, 4, 3)  # batch, time, input_dim, units
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


def bi_params(seed, input_dim, units):
    params = jlstm.init_params(jax.random.key(seed), input_dim, units)
    bias = np.random.default_rng(seed).normal(size=4 * units).astype(np.float32)
    return params._replace(bias=params.bias + jnp.asarray(bias))


def bi_case(mask_kind, with_state, seed=0, backward_units=None):
    batch, time, input_dim, units = BI_SHAPE
    backward_units = backward_units or units
    rng = np.random.default_rng(seed)
    fwd = bi_params(seed + 1, input_dim, units)
    bwd = bi_params(seed + 2, input_dim, backward_units)
    x = rng.normal(size=(batch, time, input_dim)).astype(np.float32)
    state = None
    if with_state:
        state = tuple(rng.normal(size=(batch, u)).astype(np.float32)
                      for u in (units, units, backward_units, backward_units))
    mask = None
    if mask_kind == "mask":
        mask = rng.random((batch, time)) > 0.3
        mask[0, :2] = False  # leading steps masked: the backward direction ends there
        mask[1, -2:] = False  # trailing steps masked: the backward direction starts there
        mask[-1, :] = False  # a fully masked row
    return fwd, bwd, x, state, mask


def keras_bidirectional(fwd, bwd, merge_mode, return_sequences, return_state):
    flags = {"return_sequences": return_sequences, "return_state": return_state}
    backward_layer = keras.layers.LSTM(bwd.units, go_backwards=True, **flags)
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(fwd.units, **flags), merge_mode=merge_mode, backward_layer=backward_layer
    )
    layer.build((None, None, fwd.input_dim))
    layer.forward_layer.set_weights([np.asarray(w) for w in fwd])
    layer.backward_layer.set_weights([np.asarray(w) for w in bwd])
    return layer


@pytest.mark.parametrize("merge_mode", MERGE_MODES, ids=str)
@pytest.mark.parametrize("mask_kind", ["no_mask", "mask"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
def test_bidirectional_matches_keras(merge_mode, mask_kind, with_state):
    fwd, bwd, x, state, mask = bi_case(mask_kind, with_state)
    for return_sequences, return_state in FLAGS:
        layer = keras_bidirectional(fwd, bwd, merge_mode, return_sequences, return_state)
        expected = keras_call(layer, x, state, mask)
        out = jlstm.bidirectional(fwd, bwd, x, merge_mode=merge_mode, initial_state=state, mask=mask,
                                  return_sequences=return_sequences, return_state=return_state)
        actual = list(out) if isinstance(out, tuple) else [out]
        assert len(actual) == len(expected), (return_sequences, return_state)
        for a, e in zip(actual, expected):
            assert a.shape == e.shape
            assert_close(a, e)


def test_bidirectional_different_units_concat_and_time_major(jit):
    fwd, bwd, x, state, mask = bi_case("mask", True, backward_units=2)
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
def test_bidirectional_gradients_match_keras(merge_mode, jit):
    fwd, bwd, x, state, mask = bi_case("mask", True)

    def loss(params, x):
        y = jlstm.bidirectional(*params, x, merge_mode=merge_mode, initial_state=state, mask=mask,
                                return_sequences=True)
        return jnp.sum(y**2)

    grad = jax.grad(loss)
    grads = (jax.jit(grad) if jit else grad)((fwd, bwd), x)
    layer = keras_bidirectional(fwd, bwd, merge_mode, True, False)
    with tf.GradientTape() as tape:
        y = layer(tf.constant(x), initial_state=[tf.constant(s) for s in state], mask=tf.constant(mask))
        keras_loss = tf.reduce_sum(y**2)
    weights = layer.forward_layer.trainable_weights + layer.backward_layer.trainable_weights
    expected = tape.gradient(keras_loss, weights)
    for a, e in zip(jax.tree.leaves(grads), expected):
        assert_close(a, np.asarray(e), "float32_grad")


# --- stacked_lstm ------------------------------------------------------------------------------------------

STACK_SHAPE = (3, 6, 4, 3, 3)  # batch, time, input_dim, units, layers


def stack_params(bidirectional, merge_mode="concat", seed=0):
    _, _, input_dim, units, layers = STACK_SHAPE
    params = jlstm.init_stacked_params(
        jax.random.key(seed), input_dim, units, layers, bidirectional=bidirectional, merge_mode=merge_mode
    )
    rng = np.random.default_rng(seed)
    return [p._replace(bias=p.bias + jnp.asarray(rng.normal(size=4 * units), jnp.float32)) for p in params]


def masked_inputs(seed=0):
    """Inputs whose masked steps are all zeros, so that keras.layers.Masking finds the same mask."""
    batch, time, input_dim, _, _ = STACK_SHAPE
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, time, input_dim)).astype(np.float32)
    mask = rng.random((batch, time)) > 0.3
    mask[0, :2] = False
    mask[1, -2:] = False
    x[~mask] = 0.0
    return x, mask


def keras_stack(params_list, bidirectional, merge_mode, return_sequences):
    """Masking, then Keras LSTM (or Bidirectional) layers: the mask propagates from layer to layer."""
    _, time, input_dim, units, layers = STACK_SHAPE
    stack = [keras.Input((time, input_dim)), keras.layers.Masking(0.0)]
    for layer in range(layers):
        sequences = return_sequences or layer < layers - 1
        if bidirectional:
            stack.append(keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=sequences),
                                                    merge_mode=merge_mode))
        else:
            stack.append(keras.layers.LSTM(units, return_sequences=sequences))
    model = keras.Sequential(stack)
    model.set_weights([np.asarray(w) for p in params_list for w in p])
    return model


@pytest.mark.parametrize(
    "bidirectional, merge_mode",
    [(False, "concat"), (True, "concat"), (True, "ave")],
    ids=["lstm", "bi_concat", "bi_ave"],
)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_stacked_lstm_matches_a_keras_model_with_mask(bidirectional, merge_mode, return_sequences):
    params_list = stack_params(bidirectional, merge_mode)
    x, mask = masked_inputs()
    model = keras_stack(params_list, bidirectional, merge_mode, return_sequences)
    expected = np.asarray(model(tf.constant(x)))
    actual = jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, merge_mode=merge_mode, mask=mask,
                                return_sequences=return_sequences)
    assert actual.shape == expected.shape
    assert_close(actual, expected)


# --- dropout on the same masks ---------------------------------------------------------------------------

DROPOUT_SHAPE = (3, 5, 4, 3)  # batch, time, input_dim, units
RATES = [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)]  # (dropout, recurrent_dropout)


def dropout_case(seed=0):
    batch, time, input_dim, units = DROPOUT_SHAPE
    rng = np.random.default_rng(seed)
    params = jlstm.init_params(jax.random.key(seed), input_dim, units)
    params = params._replace(bias=params.bias + jnp.asarray(rng.normal(size=4 * units), jnp.float32))
    x = rng.normal(size=(batch, time, input_dim)).astype(np.float32)
    mask = rng.random((batch, time)) > 0.3
    mask[0, :2] = False
    return params, x, mask


def keras_with_masks(params, rates, key, **flags):
    """A Keras LSTM whose cell holds jlstm's masks for ``key`` (read back by conftest.dropout_masks), as if it had
    drawn them itself."""
    batch, _, input_dim, units = DROPOUT_SHAPE
    dropout, recurrent_dropout = rates
    layer = keras.layers.LSTM(units, dropout=dropout, recurrent_dropout=recurrent_dropout, **flags)
    layer.build((None, None, input_dim))
    layer.set_weights([np.asarray(w) for w in params])
    input_masks, recurrent_masks = dropout_masks(key, batch, input_dim, units, dropout, recurrent_dropout)
    # Keras's cell caches one mask (implementation 2) or a list of four, one per gate (implementation 1).
    if layer.cell.implementation == 1:
        input_mask = [tf.constant(m) for m in input_masks] if dropout else None
        recurrent_mask = [tf.constant(m) for m in recurrent_masks] if recurrent_dropout else None
    else:
        assert not recurrent_dropout
        input_mask, recurrent_mask = (tf.constant(input_masks[0]) if dropout else None), None
    layer.cell._dropout_mask = input_mask
    layer.cell._recurrent_dropout_mask = recurrent_mask
    return layer


# Input dropout alone runs on every recurrence ("auto" picks "fused"); recurrent dropout on "scan" only.
DROPOUT_CASES = [(rates, "auto") for rates in RATES] + [((0.3, 0.0), "scan"), ((0.3, 0.0), "step")]


@pytest.mark.parametrize("rates, recurrence", DROPOUT_CASES, ids=lambda c: f"{c}")
@pytest.mark.parametrize(
    "use_mask, go_backwards, jit",
    [(False, False, False), (True, True, True)],
    ids=["plain_eager", "mask_backwards_jit"],
)
def test_dropout_matches_keras_with_the_same_masks(rates, recurrence, use_mask, go_backwards, jit):
    params, x, mask = dropout_case()
    mask = mask if use_mask else None
    key = jax.random.key(7)
    flags = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
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


# --- the NumPy oracle ------------------------------------------------------------------------------------


def test_the_numpy_reference_matches_keras():
    """reference.lstm, the oracle of test_numpy.py, against Keras in float32."""
    batch, time, input_dim, units = 3, 6, 4, 5
    rng = np.random.default_rng(0)
    params = jlstm.LSTMParams(
        rng.normal(0, 0.5, (input_dim, 4 * units)).astype(np.float32),
        rng.normal(0, 0.5, (units, 4 * units)).astype(np.float32),
        rng.normal(0, 0.5, (4 * units,)).astype(np.float32),
    )
    x = rng.normal(size=(batch, time, input_dim)).astype(np.float32)
    state = tuple(rng.normal(size=(batch, units)).astype(np.float32) for _ in "hc")
    mask = rng.random((batch, time)) < 0.6
    mask[0], mask[1] = True, False  # one unmasked row, one fully masked row, one mixed
    for go_backwards in (False, True):
        flags = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
        expected = keras_call(keras_lstm(params, **flags), x, state, mask)
        actual = reference.lstm(params, x, mask=mask, initial_state=state, **flags)
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e)


# --- from_keras / to_keras -------------------------------------------------------------------------------

RNG = np.random.default_rng(0)
B, T, I = 2, 5, 3  # batch, time, input features


def _random(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _random_params(input_dim, units, seed):
    key = jax.random.key(seed)
    params = jlstm.init_params(key, input_dim, units)
    bias = jax.random.normal(jax.random.fold_in(key, 1), params.bias.shape).at[0].set(-0.0)
    return params._replace(bias=bias)


def _built(layer, input_dim=I):
    """A layer built on a random input, with a random (non-default) bias so that every slice counts."""
    layer(_random(1, 2, input_dim))
    for weight in layer.weights:
        if weight.path.endswith("bias"):
            weight.assign(_random(*weight.shape))
    return layer


def _outputs(out):
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


@pytest.fixture(scope="module")
def x():
    return _random(B, T, I)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_lstm_layer_matches_keras(x, jit, go_backwards):
    layer = _built(keras.layers.LSTM(4, return_sequences=True, return_state=True, go_backwards=go_backwards))
    params = jlstm.from_keras(layer)
    assert isinstance(params, jlstm.LSTMParams)

    def run(p, x):
        return jlstm.lstm(p, x, return_sequences=True, return_state=True, go_backwards=go_backwards)

    for ours, theirs in zip((jax.jit(run) if jit else run)(params, x), _outputs(layer(x)), strict=True):
        assert_close(ours, theirs)


def test_rnn_of_lstm_cell_matches_keras(x):
    layer = _built(keras.layers.RNN(keras.layers.LSTMCell(4), return_sequences=True))
    assert_close(jlstm.lstm(jlstm.from_keras(layer), x, return_sequences=True), layer(x))


def test_use_bias_false_gives_zero_bias(x):
    layer = _built(keras.layers.LSTM(4, use_bias=False))
    params = jlstm.from_keras(layer)
    np.testing.assert_array_equal(params.bias, np.zeros(16, np.float32))
    assert_close(jlstm.lstm(params, x), layer(x))
    no_bias = jlstm.to_keras(params, keras.layers.LSTM(4, use_bias=False))
    assert_bit_identical(jlstm.from_keras(no_bias), params)


# Keras's own elementwise activations: from_keras maps each to a jax function with the same values.
KERAS_ACTIVATIONS = [
    "tanh", "sigmoid", "hard_sigmoid", "relu", "relu6", "linear", "elu", "selu", "softplus", "softsign", "silu",
    "gelu", "hard_silu", "hard_tanh", "leaky_relu", "mish", "log_sigmoid", "exponential",
]


def test_every_keras_activation_maps_to_an_equal_jax_function():
    pairs = list(zip(KERAS_ACTIVATIONS[0::2], KERAS_ACTIVATIONS[1::2]))  # (activation, recurrent_activation)
    model = keras.Sequential([keras.Input((T, I))] + [
        keras.layers.LSTM(2, activation=a, recurrent_activation=r, return_sequences=True) for a, r in pairs
    ])
    records = jlstm.from_keras(model)
    assert len(records) == len(pairs)
    z = np.linspace(-5, 5, 41, dtype=np.float32)
    for record, (a, r) in zip(records, pairs):
        assert_close(record.activation(jnp.asarray(z)), keras.activations.get(a)(z))
        assert_close(record.recurrent_activation(jnp.asarray(z)), keras.activations.get(r)(z))


def test_non_default_activations_match_keras(x):
    model = keras.Sequential(
        [keras.Input((T, I)), keras.layers.LSTM(4, activation="relu", recurrent_activation="hard_sigmoid")]
    )
    _built(model.layers[0])
    [record] = jlstm.from_keras(model)
    assert record.activation is jax.nn.relu and record.recurrent_activation is jax.nn.hard_sigmoid
    ours = jlstm.lstm(
        record.params, x, activation=record.activation, recurrent_activation=record.recurrent_activation
    )
    assert_close(ours, model(x))


def test_bidirectional_layer_gives_forward_and_backward(x):
    layer = _built(keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)))
    forward, backward = jlstm.from_keras(layer)
    assert_bit_identical(forward, jlstm.from_keras(layer.forward_layer))
    assert_bit_identical(backward, jlstm.from_keras(layer.backward_layer))
    assert_close(jlstm.bidirectional(forward, backward, x, return_sequences=True), layer(x))


@pytest.fixture(scope="module")
def model():
    """Nested models, a Bidirectional in the middle and non-recurrent layers around the LSTMs."""
    inner = keras.Sequential(
        [keras.Input((T, 4)), keras.layers.LSTM(3, return_sequences=True, go_backwards=True, name="inner")]
    )
    inputs = keras.Input((T, I))
    y = keras.layers.LSTM(4, return_sequences=True, name="first")(inputs)
    bi = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode="sum", name="bi")
    y = bi(y)
    y = inner(y)
    y = keras.layers.Dense(2)(keras.layers.LSTM(5, name="last", dropout=0.1)(y))
    model = keras.Model(inputs, y)
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(_random(*weight.shape))
    return model


def test_model_records(model):
    records = jlstm.from_keras(model)
    assert [r.name for r in records] == ["first", "bi", "inner", "last"]
    assert [r.bidirectional for r in records] == [False, True, False, False]
    assert [r.merge_mode for r in records] == [None, "sum", None, None]
    assert [r.return_sequences for r in records] == [True, True, True, False]
    assert [r.go_backwards for r in records] == [False, False, True, False]
    assert [r.dropout for r in records] == [0.0, 0.0, 0.0, 0.1]
    assert all(r.activation is jnp.tanh and r.recurrent_activation is jax.nn.sigmoid for r in records)
    by_name = {layer.name: layer for layer in model.layers}
    assert_bit_identical(records[0].params, jlstm.from_keras(by_name["first"]))
    assert_bit_identical(records[1].params, jlstm.from_keras(by_name["bi"]))


def test_model_rebuilt_from_records_matches_keras(model, x):
    """The computation rebuilt from the records alone (with the Dense layer's weights by hand)."""
    y = x
    for r in jlstm.from_keras(model):
        kwargs = {"return_sequences": r.return_sequences, "activation": r.activation}
        kwargs.update(recurrent_activation=r.recurrent_activation)
        if r.bidirectional:
            y = jlstm.bidirectional(*r.params, y, merge_mode=r.merge_mode, **kwargs)
        else:
            y = jlstm.lstm(r.params, y, go_backwards=r.go_backwards, **kwargs)
    dense = model.layers[-1]
    y = y @ jnp.asarray(dense.kernel.numpy()) + jnp.asarray(dense.bias.numpy())[None, :]
    assert_close(y, model(x))


def test_keras_file_path(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    from_file, from_memory = jlstm.from_keras(path), jlstm.from_keras(model)
    assert [r._replace(params=None) for r in from_file] == [r._replace(params=None) for r in from_memory]
    assert_bit_identical([r.params for r in from_file], [r.params for r in from_memory])
    assert_bit_identical(jlstm.from_keras(str(path))[0].params, from_memory[0].params)


def test_round_trips_are_bit_identical(model):
    single = _random_params(I, 4, 1)
    assert_bit_identical(jlstm.from_keras(jlstm.to_keras(single, keras.layers.LSTM(4))), single)
    cell = keras.layers.RNN(keras.layers.LSTMCell(4))
    assert_bit_identical(jlstm.from_keras(jlstm.to_keras(single, cell)), single)
    pair = (_random_params(I, 4, 2), _random_params(I, 4, 3))
    bi = keras.layers.Bidirectional(keras.layers.LSTM(4))
    assert_bit_identical(jlstm.from_keras(jlstm.to_keras(pair, bi)), pair)
    # A whole model: every LSTM replaced, in from_keras order; records are accepted too.
    new = [
        _random_params(I, 4, 4),
        (_random_params(4, 4, 5), _random_params(4, 4, 6)),
        _random_params(4, 3, 7),
        _random_params(3, 5, 8),
    ]
    records = jlstm.from_keras(model)
    try:
        jlstm.to_keras(new, model)
        assert_bit_identical([r.params for r in jlstm.from_keras(model)], new)
    finally:
        jlstm.to_keras(records, model)
    assert_bit_identical([r.params for r in jlstm.from_keras(model)], [r.params for r in records])


def _flat(records):
    """from_keras records -> stacked_lstm's params_list: [l0, l1, ...] or [l0_fwd, l0_bwd, ...]."""
    return [p for r in records for p in (r.params if r.bidirectional else (r.params,))]


def test_worked_check_stacked_model_with_mask(jit):
    """Three stacked LSTMs behind a Masking layer == jlstm.stacked_lstm with the mask, and back."""
    x = _random(B, T, I)
    x[0, :2] = 0.0  # masked leading steps
    x[1, 3] = 0.0  # a masked step in the middle
    mask = np.any(x != 0, axis=-1)
    model = keras.Sequential(
        [keras.Input((T, I)), keras.layers.Masking()]
        + [keras.layers.LSTM(4, return_sequences=True) for _ in range(2)]
        + [keras.layers.LSTM(4)]
    )
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(_random(*weight.shape))
    params = _flat(jlstm.from_keras(model))
    assert len(params) == 3

    def run(p, x, mask):
        return jlstm.stacked_lstm(p, x, mask=mask)

    assert_close((jax.jit(run) if jit else run)(params, x, mask), model(x))
    new = [_random_params(d, 4, 10 + i) for i, d in enumerate((I, 4, 4))]
    assert_bit_identical(_flat(jlstm.from_keras(jlstm.to_keras(new, model))), new)


def test_worked_check_stacked_bidirectional_model(jit, x):
    """Two stacked Bidirectional(LSTM) layers == jlstm.stacked_lstm(bidirectional=True), and back."""
    model = keras.Sequential(
        [keras.Input((T, I))]
        + [keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)) for _ in range(2)]
    )
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(_random(*weight.shape))
    records = jlstm.from_keras(model)
    assert [(r.bidirectional, r.merge_mode) for r in records] == [(True, "concat")] * 2
    params = _flat(records)

    def run(p, x):
        return jlstm.stacked_lstm(p, x, bidirectional=True, return_sequences=True)

    assert_close((jax.jit(run) if jit else run)(params, x), model(x))
    new = [_random_params(d, 4, 20 + i) for i, d in enumerate((I, I, 8, 8))]
    pairs = [tuple(new[0:2]), tuple(new[2:4])]
    assert_bit_identical(_flat(jlstm.from_keras(jlstm.to_keras(pairs, model))), new)
