"""Keras 3's dropout and recurrent_dropout in jlstm.lstm, and their keys in bidirectional and stacked_lstm: the
masks' distribution, constant over time, identity when not training, one program per rate, which loop runs.

Exact parity with Keras on the same masks: test_keras.py; inter_layer_dropout: test_stacked.py; the flax
modules' dropout: test_flax.py; errors: test_bad_inputs.py.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm
from conftest import assert_close, counting_tanh, dropout_masks

BATCH, TIME, INPUT_DIM, UNITS = 3, 5, 4, 3
PROJ = 2  # proj_size, < UNITS


def make_case(seed=0, proj_size=None):
    rng = np.random.default_rng(seed)
    params = jlstm.init_params(jax.random.key(seed), INPUT_DIM, UNITS, proj_size=proj_size)
    params = params._replace(bias=params.bias + jnp.asarray(rng.normal(size=4 * UNITS), jnp.float32))
    x = rng.normal(size=(BATCH, TIME, INPUT_DIM)).astype(np.float32)
    mask = rng.random((BATCH, TIME)) > 0.3
    mask[0, :2] = False
    return params, x, mask


@pytest.mark.parametrize("recurrence", ["auto", "scan"])
def test_input_mask_is_constant_over_time(recurrence):
    """Black box: the output is the plain LSTM's on x * m for one m in {0, 1/(1-p)}^input_dim at all steps."""
    params, x, _ = make_case()
    x = x[:1]
    rate = 0.5
    candidates = [np.asarray(m, np.float32) / (1 - rate) for m in itertools.product([0, 1], repeat=INPUT_DIM)]
    # The same loop with and without dropout (x * m is exact: m is 0 or 2), so that equality can be bitwise.
    plain = [
        np.asarray(jlstm.lstm(params, x * m[None, None, :], return_sequences=True, recurrence=recurrence))
        for m in candidates
    ]
    hits = set()
    for seed in range(6):
        y = np.asarray(jlstm.lstm(params, x, dropout=rate, training=True, key=jax.random.key(seed),
                                  return_sequences=True, recurrence=recurrence))
        matches = [i for i, p in enumerate(plain) if np.array_equal(y, p)]
        assert len(matches) == 1
        hits.add(matches[0])
    assert len(hits) > 1  # different keys drew different masks


@pytest.mark.parametrize("recurrent_dropout", [0.0, 0.3])
def test_masks_keep_the_expected_value(recurrent_dropout):
    """Inverted dropout: a fraction ``rate`` of zeros, the rest 1 / (1 - rate); one input mask for the four gates
    without recurrent dropout (Keras's implementation 2), independent masks per gate with it (implementation 1)."""
    rate = 0.25
    batch, input_dim, units = 400, 50, 60
    key = jax.random.key(0)
    input_masks, recurrent_masks = dropout_masks(key, batch, input_dim, units, rate, recurrent_dropout)
    assert abs(float(np.mean(input_masks)) - 1.0) < 0.02
    assert abs(float(np.mean(input_masks == 0)) - rate) < 0.01
    if recurrent_dropout:
        assert not np.array_equal(input_masks[0], input_masks[1])  # per-gate input masks are independent draws
        assert abs(float(np.mean(recurrent_masks)) - 1.0) < 0.02
        assert abs(float(np.mean(recurrent_masks == 0)) - recurrent_dropout) < 0.01
        assert not np.array_equal(recurrent_masks[0], recurrent_masks[1])
    else:
        assert all(np.array_equal(m, input_masks[0]) for m in input_masks)  # one mask for the four gates
        np.testing.assert_array_equal(recurrent_masks, 1.0)  # h is not dropped
        # The values themselves: dropout is the plain LSTM on x * m, with m read back above.
        params = jlstm.init_params(jax.random.key(1), input_dim, units)
        x = jax.random.normal(jax.random.key(2), (batch, 2, input_dim))
        dropped = jlstm.lstm(params, x, dropout=rate, training=True, key=key, return_sequences=True)
        assert_close(dropped, jlstm.lstm(params, x * input_masks[0][:, None, :], return_sequences=True))


@pytest.mark.parametrize("proj_size", [None, PROJ], ids=["lstm", "projected"])
def test_identity_when_not_training_or_rate_zero(proj_size):
    params, x, mask = make_case(proj_size=proj_size)
    key = jax.random.key(1)
    plain = jlstm.lstm(params, x, mask=mask, return_sequences=True)
    same = [
        jlstm.lstm(params, x, mask=mask, return_sequences=True, dropout=0.5, recurrent_dropout=0.5),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, dropout=0.5, recurrent_dropout=0.5, key=key),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, training=True, key=key),
        jlstm.lstm(params, x, mask=mask, return_sequences=True, training=True),
    ]
    for y in same:
        np.testing.assert_array_equal(y, plain)
    # Not even traced: the same program as without the arguments.
    reference = str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x))(params, x))
    assert str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, dropout=0.5))(params, x)) == reference
    assert str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, training=True, key=key))(params, x)) == reference


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def dropped_projected_loop(params, x, state, mask, input_masks, recurrent_masks):
    """Keras's per-gate dropout (its implementation 1) written out in float64 for a projected LSTM:
    ``z_g = (x m_g) W_g + (r s_g) R_g + b_g``, ``r' = (o tanh(c')) W_hr``, a masked step keeping ``(r, c)`` and
    repeating the last output."""
    units = params.units
    kernel, recurrent_kernel, bias, projection = (np.asarray(a, np.float64) for a in params)
    r, c = (np.asarray(a, np.float64) for a in state)
    y, outputs = np.zeros_like(r), []
    for t in range(x.shape[1]):
        z = [
            (x[:, t] * input_masks[g]) @ kernel[:, g * units : (g + 1) * units]
            + (r * recurrent_masks[g]) @ recurrent_kernel[:, g * units : (g + 1) * units]
            + bias[g * units : (g + 1) * units]
            for g in range(4)
        ]
        c_new = _sigmoid(z[1]) * c + _sigmoid(z[0]) * np.tanh(z[2])
        r_new = (_sigmoid(z[3]) * np.tanh(c_new)) @ projection
        keep = mask[:, t, None]
        r, c, y = np.where(keep, r_new, r), np.where(keep, c_new, c), np.where(keep, r_new, y)
        outputs.append(y)
    return np.stack(outputs, axis=1), r, c


def test_projected_recurrent_dropout_masks_r_per_gate():
    """With proj_size, the recurrent masks are Keras's on h, and h is r: one (batch, proj_size) mask per gate,
    the same at every step, beside the per-gate input masks; the result is the loop above with those masks."""
    params, x, mask = make_case(proj_size=PROJ)
    rng = np.random.default_rng(1)
    state = (rng.normal(size=(BATCH, PROJ)).astype(np.float32), rng.normal(size=(BATCH, UNITS)).astype(np.float32))
    key, rates = jax.random.key(4), {"dropout": 0.3, "recurrent_dropout": 0.4}
    input_masks, recurrent_masks = dropout_masks(key, BATCH, INPUT_DIM, UNITS, **rates, proj_size=PROJ)
    assert input_masks.shape == (4, BATCH, INPUT_DIM) and recurrent_masks.shape == (4, BATCH, PROJ)
    assert set(np.unique(recurrent_masks)) == {0, np.float32(1 / 0.6)}
    assert len({m.tobytes() for m in recurrent_masks}) > 1  # a mask per gate
    outputs = jlstm.lstm(params, x, initial_state=state, mask=mask, training=True, key=key, return_sequences=True,
                         return_state=True, **rates)
    expected = dropped_projected_loop(params, x, state, mask, input_masks, recurrent_masks)
    for actual, want in zip(outputs, expected, strict=True):
        assert actual.shape == want.shape
        assert_close(actual, want)
    # The masks matter: without the recurrent ones the numbers differ.
    without = dropped_projected_loop(params, x, state, mask, input_masks, np.ones_like(recurrent_masks))
    assert not np.allclose(outputs[0], without[0], atol=1e-3)


def test_deterministic_per_key_and_no_retrace():
    """The key is data, traced once; the rates are static flags."""
    params, x, _ = make_case()
    traces = []
    tanh = counting_tanh(traces)  # grows only while jlstm traces

    def run(key, recurrent_dropout=0.3):
        rates = {"dropout": 0.3, "recurrent_dropout": recurrent_dropout}
        return jlstm.lstm(params, x, **rates, training=True, key=key, activation=tanh)

    a, b = run(jax.random.key(0)), run(jax.random.key(0))
    np.testing.assert_array_equal(a, b)
    traced = len(traces)
    c = run(jax.random.key(1))
    assert len(traces) == traced
    assert not np.allclose(a, c)
    run(jax.random.key(0), recurrent_dropout=0.2)  # another rate: traced again
    assert len(traces) > traced


def test_bidirectional_and_stacked_pass_dropout_through():
    params, x, mask = make_case()
    other = jlstm.init_params(jax.random.key(5), INPUT_DIM, UNITS)
    key = jax.random.key(2)
    kw = {"dropout": 0.3, "recurrent_dropout": 0.2, "training": True}
    out = jlstm.bidirectional(params, other, x, mask=mask, merge_mode=None, key=key, **kw)
    k_fwd, k_bwd = jax.random.split(key)
    np.testing.assert_array_equal(out[0], jlstm.lstm(params, x, mask=mask, key=k_fwd, **kw))
    np.testing.assert_array_equal(out[1], jlstm.lstm(other, x, mask=mask, go_backwards=True, key=k_bwd, **kw))
    stacked = jlstm.stacked_lstm([params, other], x, bidirectional=True, mask=mask, key=key, **kw)
    layer_key = jax.random.split(jax.random.split(key, 1)[0])[0]
    expected = jlstm.bidirectional(params, other, x, mask=mask, key=layer_key, **kw)
    np.testing.assert_array_equal(stacked, expected)


def test_input_dropout_alone_runs_the_fused_loop():
    """The documented rule for "auto": ``dropout`` alone runs "fused"; with ``recurrent_dropout``, the scan."""
    params, x, mask = make_case()
    key = jax.random.key(3)

    def jaxpr(recurrence, **rates):
        return str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, mask=mask, training=True, key=key,
                                                            recurrence=recurrence, **rates))(params, x))

    assert jaxpr("auto", dropout=0.3) == jaxpr("fused", dropout=0.3)
    assert jaxpr("auto", dropout=0.3, recurrent_dropout=0.2) == jaxpr("scan", dropout=0.3, recurrent_dropout=0.2)

    # The two loops agree on the same masks, values and gradients.
    def loss(params, recurrence):
        y = jlstm.lstm(params, x, mask=mask, dropout=0.3, training=True, key=key, return_sequences=True,
                       recurrence=recurrence)
        return jnp.sum(y ** 2)

    for want, got in zip(jax.value_and_grad(loss)(params, "scan"), jax.value_and_grad(loss)(params, "auto")):
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            assert_close(g, w, "float32_grad")


def test_dropout_with_16_bit_params_keeps_the_float32_state():
    """The same masks as float32 params of the same rounded values, and a float32 state and output."""
    params, x, mask = make_case()
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), params)
    p32 = jax.tree.map(lambda a: a.astype(jnp.float32), p16)
    x = jnp.asarray(x, jnp.bfloat16).astype(jnp.float32)  # exact in 16 bits
    kw = {"mask": mask, "return_sequences": True, "training": True, "key": jax.random.key(2)}
    for rates in ({"dropout": 0.3}, {"dropout": 0.3, "recurrent_dropout": 0.2}):
        out = jlstm.lstm(p16, x, **rates, **kw)
        assert out.dtype == jnp.float32 and bool(jnp.isfinite(out).all())
        assert_close(out, jlstm.lstm(p32, x, **rates, **kw), "bfloat16")
