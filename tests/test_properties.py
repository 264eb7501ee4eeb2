"""Property-based tests (hypothesis): shapes, flags and masks against the NumPy reference, and invariants.

Shapes come from small fixed sets so that the jit cache is reused across examples.
"""

import jax.numpy as jnp
import numpy as np
from conftest import assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jlstm
import reference

SETTINGS = dict(deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
INPUT_DIM = 2


@st.composite
def problems(draw, masked=None, with_state=None):
    """An LSTM call: params, inputs (batch-major), optional mask and initial state, as NumPy arrays."""
    batch = draw(st.sampled_from([1, 3]))
    time = draw(st.sampled_from([1, 5]))
    units = draw(st.sampled_from([1, 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    params = jlstm.LSTMParams(
        rng.normal(0, 0.7, (INPUT_DIM, 4 * units)).astype(np.float32),
        rng.normal(0, 0.7, (units, 4 * units)).astype(np.float32),
        rng.normal(0, 0.7, (4 * units,)).astype(np.float32),
    )
    x = rng.normal(size=(batch, time, INPUT_DIM)).astype(np.float32)
    mask = None
    if draw(st.booleans()) if masked is None else masked:
        bits = draw(st.lists(st.booleans(), min_size=batch * time, max_size=batch * time))
        mask = np.array(bits).reshape(batch, time)
    state = None
    if draw(st.booleans()) if with_state is None else with_state:
        state = tuple(rng.normal(size=(batch, units)).astype(np.float32) for _ in "hc")
    return params, x, mask, state


def _major(x, mask, time_major):
    if not time_major:
        return x, mask
    return x.swapaxes(0, 1), (None if mask is None else mask.T)


@settings(max_examples=30, **SETTINGS)
@given(problems(), st.booleans(), st.booleans(), st.booleans())
def test_matches_the_numpy_reference(problem, go_backwards, return_sequences, time_major):
    params, x, mask, state = problem
    x, mask = _major(x, mask, time_major)
    flags = dict(go_backwards=go_backwards, return_sequences=return_sequences, time_major=time_major,
                 return_state=True)
    actual = jlstm.lstm(params, x, mask=mask, initial_state=state, **flags)
    expected = reference.lstm(params, x, mask=mask, initial_state=state, **flags)
    for a, e in zip(actual, expected):
        assert_close(a, e)


@settings(max_examples=15, **SETTINGS)
@given(problems(masked=False), st.booleans(), st.booleans())
def test_last_element_of_the_sequence_is_h(problem, go_backwards, time_major):
    params, x, _, state = problem
    x, _ = _major(x, None, time_major)
    seq, h, c = jlstm.lstm(params, x, initial_state=state, go_backwards=go_backwards, time_major=time_major,
                           return_sequences=True, return_state=True)
    last = seq[-1] if time_major else seq[:, -1]
    np.testing.assert_array_equal(np.asarray(last), np.asarray(h))


@settings(max_examples=15, **SETTINGS)
@given(problems(masked=True, with_state=True), st.booleans(), st.data())
def test_a_fully_masked_row_returns_the_initial_state(problem, go_backwards, data):
    params, x, mask, state = problem
    row = data.draw(st.integers(0, x.shape[0] - 1))
    mask[row] = False
    seq, h, c = jlstm.lstm(params, x, mask=mask, initial_state=state, go_backwards=go_backwards,
                           return_sequences=True, return_state=True)
    np.testing.assert_array_equal(np.asarray(h[row]), state[0][row])
    np.testing.assert_array_equal(np.asarray(c[row]), state[1][row])
    np.testing.assert_array_equal(np.asarray(seq[row]), np.zeros(seq.shape[1:]))  # Keras: zeros, not h0


@settings(max_examples=15, **SETTINGS)
@given(problems(), st.booleans())
def test_go_backwards_equals_running_forward_on_the_reversed_input(problem, return_sequences):
    params, x, mask, state = problem
    flags = dict(initial_state=state, return_sequences=return_sequences, return_state=True)
    backwards = jlstm.lstm(params, x, mask=mask, go_backwards=True, **flags)
    reversed_mask = None if mask is None else mask[:, ::-1]
    forward = jlstm.lstm(params, x[:, ::-1], mask=reversed_mask, **flags)
    for a, e in zip(backwards, forward):
        assert_close(a, e)


@settings(max_examples=10, **SETTINGS)
@given(problems(), st.booleans(), st.integers(1, 6))
def test_remat_chunk_changes_nothing(problem, go_backwards, remat_chunk):
    params, x, mask, state = problem
    flags = dict(mask=mask, initial_state=state, go_backwards=go_backwards, return_sequences=True,
                 return_state=True)
    chunked = jlstm.lstm(params, x, remat_chunk=remat_chunk, **flags)
    plain = jlstm.lstm(params, x, **flags)
    for a, e in zip(chunked, plain):
        assert_close(a, e)
    assert bool(jnp.all(jnp.isfinite(chunked[0])))
