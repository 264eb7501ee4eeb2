"""Every recurrence of jlstm.lstm, each execution plan forced, against Keras (TensorFlow backend) and the scan."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm
from conftest import assert_close

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

B, T, I, H = 4, 5, 4, 6
RECURRENCES = ["auto", "scan", "step", "fused"]
# Every loop variant, reached by passing its plan (the weights here are tiny, which "auto" runs stacked).
PLANS = [
    jlstm.Plan(layout, chains, projection, backward)
    for layout in ("batch", "stacked", "features")
    for chains in ((1,) if layout == "features" else (1, 2))
    for projection in (("step",) if layout == "stacked" else ("step", "hoisted"))
    for backward in ("fused", "autodiff")
]


def plan_id(plan):
    return f"{plan.layout}-{plan.chains}ch-{plan.projection}-{plan.backward}" + (
        f"-unroll{plan.unroll}" if plan.unroll != 1 else "")


@functools.cache
def keras_layer(return_sequences, go_backwards):
    layer = keras.layers.LSTM(H, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    layer.build((B, T, I))
    return layer


@functools.cache
def data():
    rng = np.random.default_rng(0)
    params = jlstm.init_params(jax.random.key(0), I, H)
    params = jlstm.LSTMParams(*(np.asarray(p) + 0.1 * rng.standard_normal(p.shape, np.float32) for p in params))
    x = rng.standard_normal((B, T, I), np.float32)
    h0, c0 = (rng.standard_normal((B, H), np.float32) for _ in range(2))
    mask = np.array([[1, 1, 0, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)  # holes, gap, none
    return params, x, h0, c0, mask


@functools.cache
def keras_values_and_grads(return_sequences, go_backwards, use_mask, use_state):
    params, x, h0, c0, mask = data()
    layer = keras_layer(return_sequences, go_backwards)
    layer.set_weights(list(params))
    xs, h0s, c0s = (tf.Variable(a) for a in (x, h0, c0))
    with tf.GradientTape() as tape:
        out = layer(xs, mask=tf.constant(mask) if use_mask else None,
                    initial_state=[h0s, c0s] if use_state else None)
        loss = sum(tf.reduce_sum(tf.sin(o)) for o in out)
    grads = tape.gradient(loss, [*layer.trainable_variables, xs, h0s, c0s])
    return [o.numpy() for o in out], [None if g is None else g.numpy() for g in grads]


CASES = [  # return_sequences, go_backwards, mask, initial_state
    (False, False, False, False),
    (True, False, False, True),
    (True, False, True, True),
    (False, True, True, False),
    (True, True, True, True),
]


def case_id(case):
    return "-".join(n for n, on in zip(("seq", "back", "mask", "h0"), case) if on) or "plain"


def check_against_keras(case, recurrence):
    return_sequences, go_backwards, use_mask, use_state = case
    params, x, h0, c0, mask = data()
    expected, expected_grads = keras_values_and_grads(*case)

    def run(params, x, h0, c0):
        return jlstm.lstm(params, x, initial_state=(h0, c0) if use_state else None,
                          mask=mask if use_mask else None, return_sequences=return_sequences,
                          return_state=True, go_backwards=go_backwards, recurrence=recurrence)

    def loss(params, x, h0, c0):
        return sum(jnp.sum(jnp.sin(o)) for o in run(params, x, h0, c0))

    for actual, want in zip(jax.jit(run)(params, x, h0, c0), expected):
        assert_close(actual, want)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))(params, x, h0, c0)
    flat = [*grads[0], *grads[1:]]
    for actual, want in zip(flat, expected_grads):
        assert_close(actual, np.zeros_like(actual) if want is None else want, "float32_grad")


@pytest.mark.parametrize("recurrence", RECURRENCES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_keras(recurrence, case):
    check_against_keras(case, recurrence)


@pytest.mark.parametrize("plan", PLANS, ids=plan_id)
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]], ids=case_id)
def test_every_plan_matches_keras(plan, case):
    check_against_keras(case, plan)


@pytest.mark.parametrize("recurrence", ["step", "fused", *(p._replace(unroll=2) for p in PLANS[::3])],
                         ids=lambda r: r if isinstance(r, str) else plan_id(r))
def test_time_major_unroll_and_custom_activations_match_scan(recurrence):
    params, x, h0, c0, mask = data()
    kwargs = dict(initial_state=(h0, c0), mask=mask.T, time_major=True, return_sequences=True, return_state=True,
                  activation=jax.nn.relu, recurrent_activation=jax.nn.hard_sigmoid)
    if isinstance(recurrence, str):
        kwargs["unroll"] = 2
    xt = np.swapaxes(x, 0, 1)

    def loss(params, recurrence):
        return sum(jnp.sum(o ** 2) for o in jlstm.lstm(params, xt, recurrence=recurrence, **kwargs))

    assert_close(jlstm.lstm(params, xt, recurrence=recurrence, **kwargs)[0],
                 jlstm.lstm(params, xt, recurrence="scan", **kwargs)[0])
    for actual, want in zip(jax.grad(loss)(params, recurrence), jax.grad(loss)(params, "scan")):
        assert_close(actual, want, "float32_grad")


def test_recurrence_is_checked():
    params, x, *_ = data()
    with pytest.raises(ValueError, match="lstm: recurrence must be one of"):
        jlstm.lstm(params, x, recurrence="cudnn")


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_two_chains_equal_one_scan(masked):
    """Two concurrent batch chains, at a shape where their matmuls are CPU-sized, give the scan's values and grads."""
    batch, time, input_dim, units = 32, 4, 128, 256
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    mask = jax.random.bernoulli(jax.random.key(2), 0.7, (batch, time)) if masked else None
    state = tuple(jax.random.normal(jax.random.key(3), (2, batch, units)))

    def loss(params, x, state, recurrence):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=mask, return_sequences=True,
                               return_state=True, go_backwards=True, recurrence=recurrence)
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h * c)

    expected_value, expected_grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(params, x, state, "scan")
    for backward in ("fused", "autodiff"):
        plan = jlstm.Plan(chains=2, backward=backward)
        value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(params, x, state, plan)
        assert_close(value, expected_value, "float32_grad")
        jax.tree.map(lambda a, e: assert_close(a, e, "float32_grad"), grads, expected_grads)


@pytest.mark.parametrize("recurrence", ["auto", "step", "fused", *(p for p in PLANS if p.chains == 1)],
                         ids=lambda r: r if isinstance(r, str) else plan_id(r))
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16bit_params_match_float32_in_every_layout(dtype, recurrence):
    """16-bit weights run the fast loops, float32 state: the float32 results of the same rounded weights."""
    params, x, h0, c0, mask = data()
    p16, x16 = jax.tree.map(lambda a: jnp.asarray(a, dtype), params), jnp.asarray(x, dtype)
    p32, x32 = jax.tree.map(lambda a: a.astype(jnp.float32), p16), x16.astype(jnp.float32)

    def loss(params, x, h0, c0, recurrence):
        seq, h, c = jlstm.lstm(params, x, initial_state=(h0, c0), mask=mask, return_sequences=True,
                               return_state=True, go_backwards=True, recurrence=recurrence)
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h * c)

    if recurrence == "auto":  # picks the fused loop (its custom JVP), not the scan
        assert "custom_jvp_call" in str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x))(p16, x16))
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)), static_argnums=4)
    value, grads = value_and_grad(p16, x16, h0, c0, recurrence)
    want_value, want_grads = value_and_grad(p32, x32, h0, c0, "scan")
    assert value.dtype == jnp.float32
    flat, want_flat = [*grads[0], *grads[1:]], [*want_grads[0], *want_grads[1:]]
    assert [g.dtype.name for g in flat] == [dtype] * 4 + ["float32"] * 2  # params, x; h0 and c0 float32
    assert_close(value, want_value, dtype)
    for actual, want in zip(flat, want_flat):
        assert_close(actual, want, dtype)


@pytest.mark.parametrize("recurrence", ["step", "fused", PLANS[0]], ids=str)
def test_forced_loops_refuse_what_only_scan_runs(recurrence):
    params, x, *_ = data()
    message = re.escape(f"recurrence={recurrence!r} runs neither recurrent_dropout in training nor remat_chunk")
    with pytest.raises(ValueError, match=message):
        jlstm.lstm(params, x, remat_chunk=2, recurrence=recurrence)
    with pytest.raises(ValueError, match=message):
        jlstm.lstm(params, x, recurrent_dropout=0.2, training=True, key=jax.random.key(0),
                   recurrence=recurrence)
    # Recurrent dropout not in training is no dropout at all: nothing to refuse.
    jlstm.lstm(params, x, recurrent_dropout=0.2, recurrence=recurrence)
