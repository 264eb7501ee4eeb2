"""jlstm.stacked_lstm and init_stacked_params: one layer is lstm / bidirectional, inter-layer dropout, the loop
options reach every layer.

Against a stacked Keras model: test_keras.py; against torch.nn.LSTM(num_layers): test_torch.py; errors:
test_bad_inputs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm
from conftest import assert_close

BATCH, TIME, INPUT_DIM, UNITS, LAYERS = 3, 6, 4, 3, 3


def random_params_list(bidirectional, merge_mode="concat", seed=0):
    params = jlstm.init_stacked_params(
        jax.random.key(seed), INPUT_DIM, UNITS, LAYERS, bidirectional=bidirectional, merge_mode=merge_mode
    )
    rng = np.random.default_rng(seed)
    return [p._replace(bias=p.bias + jnp.asarray(rng.normal(size=4 * UNITS), jnp.float32)) for p in params]


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    mask[0, :2] = False
    mask[1, -2:] = False
    return x, mask


def test_init_stacked_params_gives_each_layer_the_width_below_it():
    for bidirectional, merge_mode, width in [(False, "concat", UNITS), (True, "concat", 2 * UNITS), (True, "sum", UNITS)]:
        params = jlstm.init_stacked_params(jax.random.key(0), INPUT_DIM, UNITS, np.int64(2),
                                           bidirectional=bidirectional, merge_mode=merge_mode)
        directions = 2 if bidirectional else 1
        assert len(params) == 2 * directions
        assert [p.input_dim for p in params] == [INPUT_DIM] * directions + [width] * directions
        assert all(p.units == UNITS for p in params)
        assert len({np.asarray(p.kernel).tobytes() for p in params}) == len(params)  # a key each


def test_init_stacked_params_with_proj_size_projects_every_layer():
    """Later layers read proj_size features (2 * proj_size when concatenated); h_n (L * D, B, P), c_n (L * D, B, H)."""
    proj_size = 2
    x, mask = inputs()
    for bidirectional, merge_mode, width in [(False, "concat", proj_size), (True, "concat", 2 * proj_size),
                                             (True, "ave", proj_size)]:
        params = jlstm.init_stacked_params(jax.random.key(0), INPUT_DIM, UNITS, 2, bidirectional=bidirectional,
                                           merge_mode=merge_mode, proj_size=proj_size)
        directions = 2 if bidirectional else 1
        assert all(isinstance(p, jlstm.LSTMPParams) for p in params)
        assert [p.input_dim for p in params] == [INPUT_DIM] * directions + [width] * directions
        assert all((p.units, p.proj_size) == (UNITS, proj_size) for p in params)
        y, h, c = jlstm.stacked_lstm(params, x, bidirectional=bidirectional, merge_mode=merge_mode, mask=mask,
                                     return_sequences=True, return_state=True)
        assert (y.shape, h.shape, c.shape) == ((BATCH, TIME, width), (2 * directions, BATCH, proj_size),
                                               (2 * directions, BATCH, UNITS))
        # The last layer is the same call on the layer below's sequence.
        below = jlstm.stacked_lstm(params[:directions], x, bidirectional=bidirectional, merge_mode=merge_mode,
                                   mask=mask, return_sequences=True)
        last = jlstm.stacked_lstm(params[directions:], below, bidirectional=bidirectional, merge_mode=merge_mode,
                                  mask=mask, return_sequences=True, return_state=True)
        for actual, expected in zip((y, h[directions:], c[directions:]), last, strict=True):
            assert_close(actual, expected)


def test_single_layer_is_lstm_and_bidirectional():
    x, mask = inputs()
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
    x, _ = inputs()
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


@pytest.mark.parametrize("bidirectional", [False, True], ids=["lstm", "bidirectional"])
def test_remat_chunk_and_recurrence_reach_every_layer(bidirectional):
    """The pair that only the scan runs is refused, so both options arrive; remat_chunk changes no gradient."""
    params_list = random_params_list(bidirectional)[: 2 * (2 if bidirectional else 1)]  # two layers
    x, mask = inputs()
    with pytest.raises(ValueError, match="remat_chunk"):
        jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, remat_chunk=2, recurrence="fused")

    def loss(x, **options):
        return jnp.sum(jlstm.stacked_lstm(params_list, x, bidirectional=bidirectional, mask=mask,
                                          return_sequences=True, **options))

    assert_close(jax.grad(lambda x: loss(x, remat_chunk=3))(x), jax.grad(loss)(x), "float32_grad")
