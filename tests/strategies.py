"""Hypothesis strategies for calls of jlstm.lstm, shared by the invariants (test_lstm.py) and the NumPy oracle
(test_numpy.py).

Shapes come from small fixed sets, so that hypothesis explores values, masks and flags, and jlstm's compiled
programs are reused across examples.
"""

import numpy as np
from hypothesis import HealthCheck
from hypothesis import strategies as st

import jlstm

SETTINGS = {"deadline": None, "database": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}
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


def time_major(x, mask, on):
    """``x`` and ``mask`` with time first when ``on``."""
    if not on:
        return x, mask
    return x.swapaxes(0, 1), (None if mask is None else mask.T)
