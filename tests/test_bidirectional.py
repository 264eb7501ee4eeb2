"""jlstm.bidirectional on its own: masked steps and merged outputs, and the loop options reach both directions.

Against keras.layers.Bidirectional: test_keras.py; dropout keys: test_dropout.py; errors: test_bad_inputs.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm
from conftest import assert_close

BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 4, 3


def make_case(seed=0):
    rng = np.random.default_rng(seed)
    fwd, bwd = (jlstm.init_params(jax.random.key(seed + i), INPUT_DIM, UNITS) for i in (1, 2))
    fwd, bwd = (p._replace(bias=p.bias + jnp.asarray(rng.normal(size=4 * UNITS), jnp.float32)) for p in (fwd, bwd))
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    mask[0, :2] = False  # leading steps masked: the backward direction ends there
    mask[1, -2:] = False  # trailing steps masked: the backward direction starts there
    mask[-1, :] = False  # a fully masked row
    return fwd, bwd, x, mask


def test_masked_steps_output_zero_and_states_carry():
    """Inside Bidirectional Keras outputs 0 at masked steps; a plain LSTM repeats the last output."""
    fwd, bwd, x, mask = make_case()
    y_fwd, y_bwd, h_fwd, c_fwd, h_bwd, c_bwd = jlstm.bidirectional(
        fwd, bwd, x, merge_mode=None, mask=mask, return_sequences=True, return_state=True
    )
    assert np.all(np.asarray(y_fwd)[~mask] == 0) and np.all(np.asarray(y_bwd)[~mask] == 0)
    plain = jlstm.lstm(fwd, x, mask=mask, return_sequences=True)
    assert_close(np.asarray(y_fwd)[mask], np.asarray(plain)[mask])
    _, h, c = jlstm.lstm(fwd, x, mask=mask, return_state=True)
    assert_close(h_fwd, h)
    assert_close(c_fwd, c)
    backward = jlstm.lstm(bwd, x, mask=mask, go_backwards=True, return_sequences=True, return_state=True)
    assert_close(np.asarray(y_bwd)[mask], np.asarray(backward[0])[:, ::-1][mask])  # flipped back to input order
    assert_close(h_bwd, backward[1])
    assert_close(c_bwd, backward[2])


def test_remat_chunk_and_recurrence_reach_both_directions():
    """The pair that only the scan runs is refused, so both options arrive; remat_chunk changes no gradient."""
    fwd, bwd, x, mask = make_case()
    with pytest.raises(ValueError, match="remat_chunk"):
        jlstm.bidirectional(fwd, bwd, x, remat_chunk=2, recurrence="fused")

    def loss(x, **options):
        return jnp.sum(jlstm.bidirectional(fwd, bwd, x, mask=mask, return_sequences=True, **options))

    assert_close(jax.grad(lambda x: loss(x, remat_chunk=3))(x), jax.grad(loss)(x), "float32_grad")
