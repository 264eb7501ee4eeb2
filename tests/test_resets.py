"""``reset=``: episodes inside a sequence, checked against the rule that defines it.

The rule: for every row, the result equals running each segment on its own through the same function with the
same flags (the first segment from ``initial_state``, every later one from zeros) and joining the pieces; with
``go_backwards`` the segments are processed from the last to the first. The property tests draw random
segmentations and masks and compare every recurrence and plan, ``go_backwards``, ``initial_state``, the projected
LSTM, ``bidirectional`` and ``stacked_lstm`` with that composition, values and gradients with respect to the
params, the inputs and the initial state. The composition calls the scan recurrence on each segment, so that
every plan is also compared with the plain scan.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jlstm
from conftest import PLANS, assert_close, plan_id
from strategies import SETTINGS

BATCH, TIME, INPUT_DIM, UNITS = 4, 6, 2, 3  # an even batch, for the plans with two chains
RECURRENCES = ["auto", "scan", "step", "fused", *PLANS]


def segments(row_resets):
    """``[(start, end), ...]`` of one row: a segment starts at step 0 and at every reset after it."""
    starts = [0] + [t for t in range(1, len(row_resets)) if row_resets[t]] + [len(row_resets)]
    return list(itertools.pairwise(starts))


@st.composite
def cases(draw):
    """Params (plain or projected), inputs, an initial state, a mask or None, and resets, as NumPy arrays."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    proj_size = draw(st.sampled_from([None, 2]))
    params = jlstm.init_params(jax.random.key(int(rng.integers(1 << 30))), INPUT_DIM, UNITS, proj_size=proj_size)
    params = type(params)(*(np.asarray(p) + rng.normal(0, 0.3, p.shape).astype(np.float32) for p in params))
    width = proj_size or UNITS
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    state = (rng.normal(size=(BATCH, width)).astype(np.float32), rng.normal(size=(BATCH, UNITS)).astype(np.float32))
    reset = np.array(draw(st.lists(st.booleans(), min_size=BATCH * TIME, max_size=BATCH * TIME))).reshape(BATCH, TIME)
    mask = None
    if draw(st.booleans()):
        mask = np.array(draw(st.lists(st.booleans(), min_size=BATCH * TIME, max_size=BATCH * TIME)))
        mask = mask.reshape(BATCH, TIME)
    return params, x, state, mask, reset


def composed_lstm(params, x, state, mask, reset, go_backwards):
    """The rule, literally: each row's segments run on their own (scan recurrence) and are joined."""
    sequences, hs, cs = [], [], []
    for b in range(x.shape[0]):
        order = segments(reset[b])[:: -1 if go_backwards else 1]
        pieces = []
        for k, (s, e) in enumerate(order):
            starts_from_state = k == 0 and (go_backwards or not reset[b, 0])
            init = (state[0][b : b + 1], state[1][b : b + 1]) if starts_from_state else None
            piece, h, c = jlstm.lstm(
                params, x[b : b + 1, s:e], initial_state=init, mask=None if mask is None else mask[b : b + 1, s:e],
                go_backwards=go_backwards, return_sequences=True, return_state=True, recurrence="scan",
            )
            pieces.append(piece)
        sequences.append(jnp.concatenate(pieces, axis=1))
        hs.append(h)
        cs.append(c)
    return jnp.concatenate(sequences), jnp.concatenate(hs), jnp.concatenate(cs)


def loss_of(outputs, weights):
    return sum(jnp.sum(o * w) for o, w in zip(outputs, weights, strict=True))


def assert_same_function(actual_fn, expected_fn, args, argnums=(0, 1, 2)):
    """Equal values, and equal gradients of a random weighted sum of the outputs with respect to ``argnums``."""
    actual, expected = actual_fn(*args), expected_fn(*args)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape
        assert_close(a, e)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=e.shape).astype(np.float32) for e in expected]
    grad_actual = jax.grad(lambda *a: loss_of(actual_fn(*a), weights), argnums)(*args)
    grad_expected = jax.grad(lambda *a: loss_of(expected_fn(*a), weights), argnums)(*args)
    for a, e in zip(jax.tree.leaves(grad_actual), jax.tree.leaves(grad_expected), strict=True):
        assert_close(a, e, "float32_grad")


@functools.partial(jax.jit, static_argnames=("recurrence", "go_backwards"))
def lstm_with_resets(params, x, state, mask, reset, *, recurrence, go_backwards):
    """One compiled program per recurrence and flags, whatever the resets and the mask (traced arguments)."""
    return jlstm.lstm(params, x, initial_state=state, mask=mask, reset=reset, go_backwards=go_backwards,
                      return_sequences=True, return_state=True, recurrence=recurrence)


def check_lstm_against_segments(recurrence, case, go_backwards):
    params, x, state, mask, reset = case

    def actual(params, x, state):
        return lstm_with_resets(params, x, state, mask, reset, recurrence=recurrence, go_backwards=go_backwards)

    def expected(params, x, state):
        return composed_lstm(params, x, state, mask, reset, go_backwards)

    assert_same_function(actual, expected, (params, x, state))


@settings(max_examples=6, **SETTINGS)
@given(case=cases(), go_backwards=st.booleans())
def test_the_scan_is_its_segments_joined(case, go_backwards):
    check_lstm_against_segments("scan", case, go_backwards)


# Every other recurrence and plan with two examples each (hypothesis starts from the simplest case, then a random
# one): compiling the composition's per-segment calls is most of the time. test_every_plan_equals_the_scan compares
# them all with the scan on more.
@pytest.mark.parametrize("recurrence", [r for r in RECURRENCES if r != "scan"], ids=plan_id)
@settings(max_examples=2, **SETTINGS)
@given(case=cases(), go_backwards=st.booleans())
def test_lstm_is_its_segments_joined(recurrence, case, go_backwards):
    check_lstm_against_segments(recurrence, case, go_backwards)


@pytest.mark.parametrize("recurrence", RECURRENCES, ids=plan_id)
@settings(max_examples=3, **SETTINGS)
@given(case=cases(), go_backwards=st.booleans())
def test_every_plan_equals_the_scan(recurrence, case, go_backwards):
    params, x, state, mask, reset = case

    def call(recurrence):
        return lambda params, x, state: lstm_with_resets(params, x, state, mask, reset, recurrence=recurrence,
                                                         go_backwards=go_backwards)

    assert_same_function(call(recurrence), call("scan"), (params, x, state))


@settings(max_examples=5, **SETTINGS)
@given(case=cases(), time_major=st.booleans())
def test_the_last_output_and_the_state_are_the_last_segments(case, time_major):
    """Without ``return_sequences`` and ``return_state``: the last output is the joined sequence's last step."""
    params, x, state, mask, reset = case
    seq, h, c = composed_lstm(params, x, state, mask, reset, False)
    flip = (lambda a: None if a is None else np.swapaxes(a, 0, 1)) if time_major else (lambda a: a)
    last = jlstm.lstm(params, flip(x), initial_state=state, mask=flip(mask), reset=flip(reset), time_major=time_major)
    assert_close(last, seq[:, -1])
    _, h2, c2 = jlstm.lstm(params, flip(x), initial_state=state, mask=flip(mask), reset=flip(reset),
                           time_major=time_major, return_state=True)
    assert_close(h2, h)
    assert_close(c2, c)


@pytest.mark.parametrize("recurrence", ["auto", "scan"])
@settings(max_examples=3, **SETTINGS)
@given(case=cases())
def test_bidirectional_runs_each_segment_both_ways(recurrence, case):
    params, x, state, mask, reset = case
    backward = type(params)(*(p[::-1] if p.ndim == 1 else p[:, ::-1] * 0.5 for p in params))
    states = (*state, *(s[:, ::-1] for s in state))

    def actual(params, x, states):
        return jlstm.bidirectional(params, backward, x, initial_state=states, mask=mask, reset=reset,
                                   return_sequences=True, return_state=True, recurrence=recurrence)

    def expected(params, x, states):
        outputs, finals = [], []
        for b in range(x.shape[0]):
            pieces, parts = [], segments(reset[b])
            h_fwd = c_fwd = h_bwd = c_bwd = None
            for k, (s, e) in enumerate(parts):
                init_fwd = states[:2] if k == 0 and not reset[b, 0] else None
                init_bwd = states[2:] if k == len(parts) - 1 else None
                init = None
                if init_fwd is not None or init_bwd is not None:
                    zeros = [jnp.zeros_like(a) for a in states]
                    init = (*(init_fwd or zeros[:2]), *(init_bwd or zeros[2:]))
                    init = tuple(a[b : b + 1] for a in init)
                y, hf, cf, hb, cb = jlstm.bidirectional(
                    params, backward, x[b : b + 1, s:e], initial_state=init,
                    mask=None if mask is None else mask[b : b + 1, s:e], return_sequences=True, return_state=True,
                    recurrence="scan",
                )
                pieces.append(y)
                h_fwd, c_fwd = hf, cf  # the forward direction ends in the last segment
                if k == 0:
                    h_bwd, c_bwd = hb, cb  # the backward direction ends in the first
            outputs.append(jnp.concatenate(pieces, axis=1))
            finals.append((h_fwd, c_fwd, h_bwd, c_bwd))
        return (jnp.concatenate(outputs), *(jnp.concatenate(f) for f in zip(*finals)))

    assert_same_function(actual, expected, (params, x, states))


@settings(max_examples=3, **SETTINGS)
@given(seed=st.integers(0, 2**32 - 1), bidirectional=st.booleans())
def test_stacked_layers_get_the_same_resets(seed, bidirectional):
    rng = np.random.default_rng(seed)
    params = jlstm.init_stacked_params(jax.random.key(seed % 1000), INPUT_DIM, UNITS, 2, bidirectional=bidirectional)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    reset = rng.random((BATCH, TIME)) < 0.3

    def actual(params, x):
        return (jlstm.stacked_lstm(params, x, bidirectional=bidirectional, reset=reset, return_sequences=True),)

    def expected(params, x):
        rows = []
        for b in range(BATCH):
            pieces = [jlstm.stacked_lstm(params, x[b : b + 1, s:e], bidirectional=bidirectional,
                                         return_sequences=True) for s, e in segments(reset[b])]
            rows.append(jnp.concatenate(pieces, axis=1))
        return (jnp.concatenate(rows),)

    assert_same_function(actual, expected, (params, x), argnums=(0, 1))


@pytest.mark.parametrize("proj_size", [None, 2], ids=["plain", "projected"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_stepping_the_cell_is_the_sequence(masked, proj_size):
    """Acting step by step (``lstm_cell`` with ``reset[:, t]``) equals training on the whole sequence.

    With a mask, the step applies Keras's mask rule as ``lstm`` does: a masked row keeps its state.
    """
    rng = np.random.default_rng(1)
    params = jlstm.init_params(jax.random.key(1), INPUT_DIM, UNITS, proj_size=proj_size)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    state = jlstm.LSTMState(*(rng.normal(size=s).astype(np.float32) for s in ((BATCH, proj_size or UNITS),
                                                                               (BATCH, UNITS))))
    reset = rng.random((BATCH, TIME)) < 0.3
    reset[0, 0] = True
    mask = rng.random((BATCH, TIME)) < 0.7 if masked else np.ones((BATCH, TIME), bool)
    seq, h, c = jlstm.lstm(params, x, initial_state=state, reset=reset, mask=mask if masked else None,
                           return_sequences=True, return_state=True)
    carry, outputs, previous = state, [], jnp.zeros_like(state.h)
    for t in range(TIME):
        stepped, y = jlstm.lstm_cell(params, carry, x[:, t], reset=reset[:, t])
        # Keras's mask rule around the step: a masked row keeps its state and repeats its previous output
        previous = jnp.where(reset[:, t, None], 0.0, previous)
        keep = jnp.asarray(mask[:, t, None])
        carry = jlstm.LSTMState(*(jnp.where(keep, n, jnp.where(reset[:, t, None], 0.0, o))
                                  for n, o in zip(stepped, carry)))
        previous = jnp.where(keep, y, previous)
        outputs.append(previous)
    assert_close(jnp.stack(outputs, axis=1), seq)
    assert_close(carry.h, h)
    assert_close(carry.c, c)


@pytest.mark.parametrize("recurrence", RECURRENCES, ids=plan_id)
def test_nothing_crosses_a_reset(recurrence):
    """The gradient of anything at or after a reset with respect to what came before it is exactly zero."""
    rng = np.random.default_rng(2)
    params = jlstm.init_params(jax.random.key(2), INPUT_DIM, UNITS)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    state = tuple(rng.normal(size=(BATCH, UNITS)).astype(np.float32) for _ in "hc")
    reset = np.zeros((BATCH, TIME), bool)
    reset[:, 3] = True

    def after(x, state):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, reset=reset, return_sequences=True,
                               return_state=True, recurrence=recurrence)
        return jnp.sum(seq[:, 3:] ** 2) + jnp.sum(h) + jnp.sum(c)

    dx, dstate = jax.grad(after, argnums=(0, 1))(x, state)
    assert np.all(np.asarray(dx[:, :3]) == 0) and np.any(np.asarray(dx[:, 3:]) != 0)
    assert all(np.all(np.asarray(d) == 0) for d in dstate)
    # and forward mode: a tangent of the first steps does not reach the steps after the reset
    tangent = np.zeros_like(x)
    tangent[:, :3] = 1.0
    _, dseq = jax.jvp(lambda x: jlstm.lstm(params, x, reset=reset, return_sequences=True, recurrence=recurrence),
                      (x,), (tangent,))
    assert np.all(np.asarray(dseq[:, 3:]) == 0) and np.any(np.asarray(dseq[:, :3]) != 0)


def test_no_reset_is_the_plain_call():
    """``reset`` all False, or None, is bitwise the call without it; all True from step 0 ignores initial_state."""
    rng = np.random.default_rng(3)
    params = jlstm.init_params(jax.random.key(3), INPUT_DIM, UNITS)
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    state = tuple(rng.normal(size=(BATCH, UNITS)).astype(np.float32) for _ in "hc")
    plain = jlstm.lstm(params, x, initial_state=state, return_sequences=True)
    assert_close(jlstm.lstm(params, x, initial_state=state, reset=np.zeros((BATCH, TIME), bool),
                            return_sequences=True), plain)
    first = np.zeros((BATCH, TIME), bool)
    first[:, 0] = True
    assert_close(jlstm.lstm(params, x, initial_state=state, reset=first, return_sequences=True),
                 jlstm.lstm(params, x, return_sequences=True))
