"""Very long sequences: streaming in chunks through return_state / initial_state, and remat_chunk."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_close, counting_tanh

import jlstm

LONG, CHUNK = 100_000, 12_500


def test_streaming_100k_steps_in_chunks_equals_one_call():
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    x = jax.random.normal(jax.random.key(1), (2, LONG, 3))
    seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)
    state, pieces = None, []
    for start in range(0, LONG, CHUNK):
        piece, *state = jlstm.lstm(params, x[:, start : start + CHUNK], initial_state=state,
                                   return_sequences=True, return_state=True)
        pieces.append(piece)
    assert_close(jnp.concatenate(pieces, axis=1), seq)
    assert_close(state[0], h)
    assert_close(state[1], c)
    assert bool((seq[:, -1] == h).all())


def test_streaming_with_a_mask_carries_the_state():
    """With masks the state streams exactly (a chunk's leading masked steps output zeros, as in Keras)."""
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    time, chunk = 6_000, 1_000
    x = jax.random.normal(jax.random.key(1), (2, time, 3))
    mask = jax.random.bernoulli(jax.random.key(2), 0.7, (2, time))
    _, h, c = jlstm.lstm(params, x, mask=mask, return_state=True)
    state = None
    for start in range(0, time, chunk):
        _, *state = jlstm.lstm(params, x[:, start : start + chunk], mask=mask[:, start : start + chunk],
                               initial_state=state, return_state=True)
    assert_close(state[0], h)
    assert_close(state[1], c)


def _grads(params, x, state, mask, flags, remat_chunk):
    def loss(params, x, state, mask):
        out = jlstm.lstm(params, x, initial_state=state, mask=mask, remat_chunk=remat_chunk, **flags)
        out = out if isinstance(out, tuple) else (out,)
        return sum(jnp.sum(jnp.sin(o)) for o in out)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, x, state, mask)


CASES = [  # (flags, masked, remat_chunk); T = 23 is a multiple of no chunk but 1 and 23
    (dict(), False, 5),
    (dict(), True, 1),
    (dict(return_sequences=True), True, 5),
    (dict(go_backwards=True, return_state=True), True, 23),
    (dict(return_sequences=True, return_state=True, go_backwards=True), False, 4),
    (dict(return_sequences=True, return_state=True, go_backwards=True), True, 6),
    (dict(return_sequences=True, time_major=True), True, 40),
]


@pytest.mark.parametrize("flags, masked, remat_chunk", CASES,
                         ids=lambda v: ("-".join(v) or "default") if isinstance(v, dict) else str(v))
def test_remat_chunk_gives_the_same_values_and_gradients(flags, masked, remat_chunk):
    batch, time = 3, 23
    params = jlstm.init_params(jax.random.key(0), 4, 5)
    x = jax.random.normal(jax.random.key(1), (batch, time, 4))
    keys = jax.random.split(jax.random.key(2), 3)
    state = tuple(jax.random.normal(k, (batch, 5)) for k in keys[:2])
    mask = jax.random.bernoulli(keys[2], 0.7, (batch, time)) if masked else None
    if flags.get("time_major"):
        x = jnp.swapaxes(x, 0, 1)
        mask = None if mask is None else mask.T
    expected = _grads(params, x, state, mask, flags, None)
    actual = _grads(params, x, state, mask, flags, remat_chunk)
    assert_close(actual[0], expected[0])
    for a, e in zip(jax.tree.leaves(actual[1]), jax.tree.leaves(expected[1])):
        assert_close(a, e)


def test_remat_chunk_recomputes_instead_of_storing():
    """The compiled training step keeps far fewer temporary bytes (benchmarks/memory.py: T = 10,000)."""
    params = jlstm.init_params(jax.random.key(0), 4, 32)
    x = jnp.zeros((4, 1_000, 4))

    def temp_bytes(remat_chunk):
        loss = lambda p: jnp.sum(jlstm.lstm(p, x, remat_chunk=remat_chunk))  # noqa: E731
        return jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis().temp_size_in_bytes

    plain, chunked = temp_bytes(None), temp_bytes(32)
    assert chunked * 5 < plain, (chunked, plain)


def test_remat_chunk_is_static_and_does_not_retrace():
    params = jlstm.init_params(jax.random.key(0), 2, 3)
    x = np.ones((1, 7, 2), np.float32)
    traces = []
    tanh = counting_tanh(traces)  # grows only while jlstm traces
    jlstm.lstm(params, x, remat_chunk=3, activation=tanh)
    traced = len(traces)
    jlstm.lstm(params, x + 1, remat_chunk=3, activation=tanh)
    assert len(traces) == traced
    jlstm.lstm(params, x, remat_chunk=4, activation=tanh)  # another chunk: traced again
    assert len(traces) > traced
