"""from_keras / to_keras against Keras 3 layers and models (TensorFlow backend)."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from conftest import assert_bit_identical, assert_close

import jlstm
from jlstm._keras import _ACTIVATIONS

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


def test_import_jlstm_leaves_keras_out():
    """Covered with torch in test_torch_convert; here: the converters are re-exported."""
    assert jlstm.from_keras.__module__ == "jlstm._keras" and jlstm.to_keras.__module__ == "jlstm._keras"


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
    with pytest.raises(ValueError, match="has use_bias=False, so params.bias must be all zeros"):
        jlstm.to_keras(_random_params(I, 4, 0), layer)


@pytest.mark.parametrize("name", sorted(_ACTIVATIONS))
def test_activation_map_equals_keras(name):
    z = np.linspace(-5, 5, 41, dtype=np.float32)
    assert_close(_ACTIVATIONS[name](jnp.asarray(z)), keras.activations.get(name)(z))


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


def test_unmappable_activations_are_rejected():
    def custom(z):
        return keras.ops.tanh(z)

    for activation, shown in ((custom, "custom"), ("softmax", "softmax")):
        model = keras.Sequential([keras.Input((T, I)), keras.layers.LSTM(2, activation=activation)])
        with pytest.raises(ValueError, match=f"layer 'lstm.*' has activation=.*{shown}.*no jax equivalent"):
            jlstm.from_keras(model)


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
        kwargs = dict(return_sequences=r.return_sequences, activation=r.activation)
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


@pytest.mark.parametrize(
    "layer, match",
    [
        (keras.layers.GRU(2), "got GRU"),
        (keras.layers.SimpleRNN(2), "got SimpleRNN"),
        (keras.layers.ConvLSTM1D(2, 3), "got ConvLSTM1D"),
        (keras.layers.Bidirectional(keras.layers.GRU(2)), "got GRU"),
        (keras.layers.RNN([keras.layers.LSTMCell(2), keras.layers.LSTMCell(2)]), "over a StackedRNNCells"),
        (keras.layers.Dense(2), "got Dense"),
    ],
    ids=["gru", "simple_rnn", "conv_lstm", "bidirectional_gru", "stacked_cells", "dense"],
)
def test_from_keras_rejects_other_layers(layer, match):
    with pytest.raises(TypeError, match="from_keras: expected a keras.layers.LSTM.*" + match + "|" + match):
        jlstm.from_keras(layer)


def test_from_keras_rejects_custom_cells_unbuilt_layers_and_models_without_lstm():
    class MyCell(keras.layers.LSTMCell):
        pass

    with pytest.raises(TypeError, match="RNN over a MyCell, expected the default keras.layers.LSTMCell"):
        jlstm.from_keras(_built(keras.layers.RNN(MyCell(2))))
    with pytest.raises(ValueError, match="layer 'unbuilt' is not built yet"):
        jlstm.from_keras(keras.layers.LSTM(2, name="unbuilt"))
    with pytest.raises(TypeError, match="got GRU 'gru_in_model'"):
        lstm = keras.layers.LSTM(2, return_sequences=True)
        gru = keras.layers.GRU(2, name="gru_in_model")
        jlstm.from_keras(keras.Sequential([keras.Input((T, I)), lstm, gru]))
    with pytest.raises(ValueError, match="model 'dense_only' has no LSTM layer"):
        jlstm.from_keras(keras.Sequential([keras.Input((I,)), keras.layers.Dense(2)], name="dense_only"))


def test_to_keras_rejects_what_does_not_fit(model):
    layer = _built(keras.layers.LSTM(4, name="four"))
    expected = r"params.kernel must have shape \(input_dim, 4 \* units\) = \(3, 16\) "
    with pytest.raises(ValueError, match=expected + r"to fit Keras layer 'four', got \(5, 16\)"):
        jlstm.to_keras(_random_params(5, 4, 0), layer)
    with pytest.raises(ValueError, match=expected + r".*got \(3, 8\)"):
        jlstm.to_keras(_random_params(I, 2, 0), layer)
    bi = _built(keras.layers.Bidirectional(keras.layers.LSTM(4)))
    with pytest.raises(TypeError, match=r"params must be a \(forward_params, backward_params\) pair "):
        jlstm.to_keras(_random_params(I, 4, 0), bi)
    with pytest.raises(ValueError, match=r"params\[1\].kernel must have shape .* = \(3, 16\) .*\(4, 16\)"):
        jlstm.to_keras((_random_params(I, 4, 0), _random_params(4, 4, 0)), bi)
    counted = r"has 4 LSTM layers \('first', 'bi', 'inner', 'last'\), so params must be a sequence of 4"
    with pytest.raises(ValueError, match=counted + " entries, got a list of length 1"):
        jlstm.to_keras([_random_params(I, 4, 0)], model)
    with pytest.raises(TypeError, match="expected a keras.layers.LSTM.*got GRU"):
        jlstm.to_keras(_random_params(I, 4, 0), keras.layers.GRU(4))


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
