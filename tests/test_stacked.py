"""jlstm.stacked_lstm against a stacked Keras model (with mask propagation) and torch.nn.LSTM(num_layers)."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import jlstm
from conftest import assert_close

BATCH, TIME, INPUT_DIM, UNITS, LAYERS = 3, 6, 4, 3, 3


def random_params_list(bidirectional, merge_mode="concat", seed=0):
    params = jlstm.init_stacked_params(
        jax.random.key(seed), INPUT_DIM, UNITS, LAYERS, bidirectional=bidirectional, merge_mode=merge_mode
    )
    rng = np.random.default_rng(seed)
    return [p._replace(bias=p.bias + jnp.asarray(rng.normal(size=4 * UNITS), jnp.float32)) for p in params]


def masked_inputs(seed=0):
    """Inputs whose masked steps are all zeros, so that keras.layers.Masking finds the same mask."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    mask[0, :2] = False
    mask[1, -2:] = False
    x[~mask] = 0.0
    return x, mask


def keras_stack(params_list, bidirectional, merge_mode, return_sequences):
    """Masking, then LAYERS Keras LSTM (or Bidirectional) layers: the mask propagates from layer to layer."""
    layers = [keras.Input((TIME, INPUT_DIM)), keras.layers.Masking(0.0)]
    for layer in range(LAYERS):
        sequences = return_sequences or layer < LAYERS - 1
        if bidirectional:
            layers.append(keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=sequences),
                                                     merge_mode=merge_mode))
        else:
            layers.append(keras.layers.LSTM(UNITS, return_sequences=sequences))
    model = keras.Sequential(layers)
    model.set_weights([np.asarray(w) for p in params_list for w in p])
    return model


@pytest.mark.parametrize(
    "bidirectional, merge_mode",
    [(False, "concat"), (True, "concat"), (True, "ave")],
    ids=["lstm", "bi_concat", "bi_ave"],
)
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_matches_keras_model_with_mask(bidirectional, merge_mode, return_sequences):
    params_list = random_params_list(bidirectional, merge_mode)
    x, mask = masked_inputs()
    model = keras_stack(params_list, bidirectional, merge_mode, return_sequences)
    expected = np.asarray(model(tf.constant(x)))

    actual = jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, merge_mode=merge_mode, mask=mask,
                                return_sequences=return_sequences)
    assert actual.shape == expected.shape
    assert_close(actual, expected)


def to_torch(params_list, bidirectional):
    module = torch.nn.LSTM(INPUT_DIM, UNITS, num_layers=LAYERS, bidirectional=bidirectional, batch_first=True)
    directions = 2 if bidirectional else 1
    with torch.no_grad():
        for i, p in enumerate(params_list):
            suffix = f"l{i // directions}" + ("_reverse" if i % directions else "")
            getattr(module, f"weight_ih_{suffix}").copy_(torch.tensor(np.array(p.kernel).T))
            getattr(module, f"weight_hh_{suffix}").copy_(torch.tensor(np.array(p.recurrent_kernel).T))
            getattr(module, f"bias_ih_{suffix}").copy_(torch.tensor(np.array(p.bias)))
            getattr(module, f"bias_hh_{suffix}").zero_()
    return module


@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bidirectional"])
def test_states_match_torch_num_layers(bidirectional, jit):
    """initial_state and the returned states are PyTorch's h_0/c_0 and h_n/c_n."""
    params_list = random_params_list(bidirectional)
    rows = LAYERS * (2 if bidirectional else 1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    h0, c0 = (rng.normal(size=(rows, BATCH, UNITS)).astype(np.float32) for _ in range(2))
    with torch.no_grad():
        module = to_torch(params_list, bidirectional)
        y_t, (h_t, c_t) = module(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))

    def run(params_list, x, h0, c0):
        return jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, initial_state=(h0, c0),
                                  return_sequences=True, return_state=True)

    y, h, c = (jax.jit(run) if jit else run)(params_list, x, h0, c0)
    for actual, expected in ((y, y_t), (h, h_t), (c, c_t)):
        assert actual.shape == tuple(expected.shape)
        assert_close(actual, expected.numpy())


def test_single_layer_is_lstm_and_bidirectional():
    x, mask = masked_inputs()
    p = random_params_list(True)[:2]
    out = jlstm.stacked_lstm(p, x, bidirectional=True, mask=mask, return_state=True)
    ref = jlstm.bidirectional(*p, x, mask=mask, return_state=True)
    assert_close(out[0], ref[0])
    assert_close(out[1], jnp.stack([ref[1], ref[3]]))
    assert_close(out[2], jnp.stack([ref[2], ref[4]]))
    out = jlstm.stacked_lstm(p[:1], x, mask=mask, return_sequences=True)
    assert_close(out, jlstm.lstm(p[0], x, mask=mask, return_sequences=True))


def test_inter_layer_dropout():
    params_list = random_params_list(False)
    x, _ = masked_inputs()
    key = jax.random.key(3)
    plain = jlstm.stacked_lstm(params_list, x, return_sequences=True)
    # Not training, or rate 0: no change.
    assert_close(jlstm.stacked_lstm(params_list, x, inter_layer_dropout=0.5, return_sequences=True), plain)
    assert_close(jlstm.stacked_lstm(params_list, x, training=True, key=key, return_sequences=True), plain)
    run = lambda key: jlstm.stacked_lstm(params_list, x, inter_layer_dropout=0.5, training=True, key=key,
                                         return_sequences=True)
    dropped, again = run(key), run(key)
    assert not np.allclose(dropped, plain)
    np.testing.assert_array_equal(dropped, again)
    # The same computation by hand: layer, dropout on every element, layer, ...
    keys = jax.random.split(key, LAYERS)
    y = x
    for layer, p in enumerate(params_list):
        y = jlstm.lstm(p, y, return_sequences=True)
        if layer < LAYERS - 1:
            keep = jax.random.bernoulli(jax.random.split(keys[layer])[1], 0.5, y.shape)
            y = jnp.where(keep, y * 2, 0)
    assert_close(dropped, y)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        jlstm.stacked_lstm(params_list, x, inter_layer_dropout=0.5, training=True)


def test_errors():
    params_list = random_params_list(True)
    x, _ = masked_inputs()
    with pytest.raises(TypeError, match="got a single LSTMParams"):
        jlstm.stacked_lstm(params_list[0], x)
    with pytest.raises(ValueError, match="an even number > 0, got 5"):
        jlstm.stacked_lstm(params_list[:5], x, bidirectional=True)
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        jlstm.stacked_lstm(params_list, x, bidirectional=True, merge_mode=None)
    with pytest.raises(ValueError, match=r"params_list\[2\].kernel must have shape \(3, 12\)"):
        jlstm.stacked_lstm(params_list, x, bidirectional=True, merge_mode="sum")
    with pytest.raises(ValueError, match=r"stacked_lstm: inputs must have shape \(batch, time, 4\), got"):
        jlstm.stacked_lstm(params_list, x[..., :2], bidirectional=True)
    h0 = np.zeros((LAYERS, BATCH, UNITS), np.float32)
    with pytest.raises(ValueError, match=r"initial_state\[0\] \(h\) must have shape \(6, 3, 3\), got"):
        jlstm.stacked_lstm(params_list, x, bidirectional=True, initial_state=(h0, h0))
    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        jlstm.init_stacked_params(jax.random.key(0), 2, 2, 0)
    with pytest.raises(TypeError, match="num_layers must be a positive int, got bool"):
        jlstm.init_stacked_params(jax.random.key(0), 2, 2, True)
    assert len(jlstm.init_stacked_params(jax.random.key(0), 2, 2, np.int64(2))) == 2
    with pytest.raises(TypeError, match=r"inter_layer_dropout must be a float in \[0, 1\), got str"):
        jlstm.stacked_lstm(params_list, x, bidirectional=True, inter_layer_dropout="0.5")
    with pytest.raises(ValueError, match=r"inter_layer_dropout must be a float in \[0, 1\), got 1.0"):
        jlstm.stacked_lstm(params_list, x, bidirectional=True, inter_layer_dropout=1.0)
