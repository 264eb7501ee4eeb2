"""The loop options (recurrence, remat_chunk) and flag checks reach every layer built on jlstm.lstm."""

import jax
import jax.numpy as jnp
import keras
import pytest
from flax import nnx

import jlstm
import jlstm.linen
import jlstm.nnx
from conftest import assert_close

B, T, I, H = 2, 7, 3, 4
X = jax.random.normal(jax.random.key(0), (B, T, I))
P = [jlstm.init_params(k, I if i < 2 else 2 * H, H) for i, k in enumerate(jax.random.split(jax.random.key(1), 4))]


def _sum(tree):
    return sum(jnp.sum(a) for a in jax.tree.leaves(tree))


CALLS = {
    "bidirectional": lambda x, **kw: jlstm.bidirectional(P[0], P[1], x, return_sequences=True, **kw),
    "stacked_lstm": lambda x, **kw: jlstm.stacked_lstm(P, x, bidirectional=True, return_sequences=True, **kw),
}


@pytest.mark.parametrize("name", CALLS)
def test_forward_mode_autodiff_through_the_scan_recurrence(name):
    call = CALLS[name]
    tangent = jnp.ones_like(X)
    value, jvp = jax.jvp(lambda x: _sum(call(x, recurrence="scan")), (X,), (tangent,))
    grad = jax.grad(lambda x: _sum(call(x)))(X)  # the default (fused) loop, reverse mode
    assert_close(value, _sum(call(X)))
    assert_close(jvp, jnp.sum(grad * tangent), "float32_grad")


@pytest.mark.parametrize("name", CALLS)
def test_remat_chunk_changes_nothing(name):
    call = CALLS[name]
    loss = lambda x, **kw: _sum(call(x, **kw))  # noqa: E731
    assert_close(jax.grad(lambda x: loss(x, remat_chunk=3))(X), jax.grad(loss)(X), "float32_grad")


def test_flax_modules_take_the_loop_options():
    linen = jlstm.linen.LSTM(H, return_sequences=True, recurrence="scan", remat_chunk=3)
    variables = linen.init(jax.random.key(0), X)
    params = jlstm.LSTMParams(**variables["params"])
    assert_close(linen.apply(variables, X), jlstm.lstm(params, X, return_sequences=True))
    model = jlstm.nnx.Bidirectional(I, H, rngs=nnx.Rngs(0), return_sequences=True, recurrence="scan")
    expected = jlstm.bidirectional(model.forward.params, model.backward.params, X, return_sequences=True)
    assert_close(model(X), expected)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: jlstm.bidirectional(P[0], P[1], X, return_state="no"), "return_state"),
        (lambda: jlstm.stacked_lstm(P, X, bidirectional="yes"), "bidirectional"),
        (lambda: jlstm.stacked_lstm(P[:2], X, return_sequences="False"), "return_sequences"),
        (lambda: jlstm.lstm(P[0], X, dropout=0.2, training=jnp.array(True), key=jax.random.key(0)), "training"),
    ],
)
def test_flags_must_be_python_bools(call, word):
    with pytest.raises(TypeError, match=word):
        call()


def test_dropout_with_16_bit_params_keeps_the_float32_state():
    params = jax.tree.map(lambda a: a.astype(jnp.bfloat16), P[0])
    kw = dict(return_sequences=True, training=True, key=jax.random.key(2))
    for rates in (dict(dropout=0.3), dict(dropout=0.3, recurrent_dropout=0.2)):
        out = jlstm.lstm(params, X, **rates, **kw)
        assert out.dtype == jnp.float32 and bool(jnp.isfinite(out).all())


def test_from_keras_rejects_a_bidirectional_whose_forward_half_runs_backwards():
    forward, backward = keras.layers.LSTM(H, go_backwards=True), keras.layers.LSTM(H, go_backwards=False)
    layer = keras.layers.Bidirectional(forward, backward_layer=backward)
    layer.build((None, T, I))
    with pytest.raises(ValueError, match="go_backwards"):
        jlstm.from_keras(layer)
