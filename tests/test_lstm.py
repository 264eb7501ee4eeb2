"""The core on its own: the scan against a loop, tracing, transformations, init, errors, properties."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jlstm
from conftest import assert_close, counting_tanh


def make(batch=3, time=6, input_dim=4, units=5, seed=0):
    params = jlstm.init_params(jax.random.key(seed), input_dim, units)
    x = jax.random.normal(jax.random.key(seed + 1), (batch, time, input_dim))
    return params, x


def python_loop(params, x, state, mask=None, go_backwards=False):
    """The reference: Keras's masking rules, written as a Python loop over lstm_cell."""
    steps = list(range(x.shape[1]))[:: -1 if go_backwards else 1]
    y = jnp.zeros_like(state[0])
    outputs = []
    for t in steps:
        new_state, new_y = jlstm.lstm_cell(params, state, x[:, t])
        keep = jnp.ones((x.shape[0], 1), bool) if mask is None else mask[:, t, None]
        state = jlstm.LSTMState(*(jnp.where(keep, n, o) for n, o in zip(new_state, state)))
        y = jnp.where(keep, new_y, y)
        outputs.append(y)
    return jnp.stack(outputs, axis=1), state


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_scan_equals_python_loop_over_the_cell(go_backwards, masked, jit):
    params, x = make()
    state = jlstm.LSTMState(*jax.random.normal(jax.random.key(7), (2, 3, 5)))
    mask = jax.random.bernoulli(jax.random.key(8), 0.6, (3, 6)) if masked else None
    run = jax.jit(jlstm.lstm, static_argnames=("return_sequences", "return_state", "go_backwards"))
    run = run if jit else jlstm.lstm
    seq, h, c = run(
        params, x, initial_state=state, mask=mask, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    ref_seq, ref_state = python_loop(params, x, state, mask, go_backwards)
    assert_close(seq, ref_seq)
    assert_close(h, ref_state.h)
    assert_close(c, ref_state.c)


def test_jit_equals_eager_bitwise_for_the_cell():
    params, x = make()
    state = jlstm.LSTMState(jnp.ones((3, 5)), jnp.ones((3, 5)))
    eager = jlstm.lstm_cell(params, state, x[:, 0])
    jitted = jax.jit(jlstm.lstm_cell)(params, state, x[:, 0])
    jax.tree.map(assert_close, jitted, eager)


def test_cell_is_a_scan_body():
    params, x = make()
    state = jlstm.LSTMState(jnp.zeros((3, 5)), jnp.zeros((3, 5)))
    final, ys = jax.lax.scan(lambda s, xt: jlstm.lstm_cell(params, s, xt), state, x.swapaxes(0, 1))
    seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)
    assert_close(ys.swapaxes(0, 1), seq)
    assert_close(final.h, h)
    assert_close(final.c, c)


def test_second_call_with_same_shapes_and_flags_does_not_retrace():
    """Flags are static and cached: an eager call traces once per shapes and flags, not once per call."""
    params, x = make()
    traces = []
    tanh = counting_tanh(traces)  # grows only while jlstm traces

    def run(x, **flags):
        return jlstm.lstm(params, x, activation=tanh, return_sequences=True, **flags)

    run(x)
    traced = len(traces)
    assert traced > 0
    run(x * 2.0)  # other values
    run(x + 1.0, go_backwards=False, return_state=0)  # the defaults spelled out: the same flags
    assert len(traces) == traced
    run(x, go_backwards=True)  # another flag: traced again
    assert len(traces) > traced
    traced = len(traces)
    run(x[:, :4])  # another shape: traced again
    assert len(traces) > traced


def test_vmap_over_a_leading_axis_equals_a_loop():
    params, x = make()
    xs = jnp.stack([x, 2 * x, -x])
    batched = jax.vmap(lambda x: jlstm.lstm(params, x, return_sequences=True))(xs)
    for i in range(3):
        assert_close(batched[i], jlstm.lstm(params, xs[i], return_sequences=True))


def test_vmap_over_parameters_for_an_ensemble():
    keys = jax.random.split(jax.random.key(0), 3)
    ensemble = jax.vmap(lambda k: jlstm.init_params(k, 4, 5))(keys)
    _, x = make()
    out = jax.vmap(lambda p: jlstm.lstm(p, x))(ensemble)
    for i in range(3):
        assert_close(out[i], jlstm.lstm(jax.tree.map(lambda a: a[i], ensemble), x))


def test_grad_matches_finite_differences():
    params, x = make(batch=2, time=3, input_dim=2, units=2)
    with jax.enable_x64(True):
        params, x = jax.tree.map(lambda a: np.asarray(a, np.float64), (params, x))
        loss = lambda kernel: jnp.sum(jlstm.lstm(params._replace(kernel=kernel), x) ** 2)  # noqa: E731
        kernel = params.kernel
        grad = jax.grad(loss)(kernel)
        eps = 1e-6
        bump = np.zeros_like(kernel)
        bump[1, 3] = eps
        numeric = (loss(kernel + bump) - loss(kernel - bump)) / (2 * eps)
    assert abs(float(grad[1, 3]) - float(numeric)) < 1e-7


@pytest.mark.parametrize("recurrence", ["auto", "scan", "step", "fused"])
def test_hessian_vector_products_compose(recurrence):
    """Forward over reverse mode: the HVP equals central differences of the gradient, and the scan's HVP."""
    params, x = make(batch=2, time=3, input_dim=2, units=2)
    with jax.enable_x64(True):
        params, x = jax.tree.map(lambda a: np.asarray(a, np.float64), (params, x))
        direction = np.asarray(jax.random.normal(jax.random.key(9), params.kernel.shape), np.float64)

        def grad(kernel, recurrence=recurrence):
            def loss(k):
                return jnp.sum(jlstm.lstm(params._replace(kernel=k), x, recurrence=recurrence) ** 2)

            return jax.grad(loss)(kernel)

        def hvp(recurrence):
            return jax.jvp(lambda k: grad(k, recurrence), (params.kernel,), (direction,))[1]

        eps = 1e-6
        numeric = (grad(params.kernel + eps * direction) - grad(params.kernel - eps * direction)) / (2 * eps)
        actual, scan = hvp(recurrence), hvp("scan")
    assert_close(actual, numeric, "float64_fd")
    assert_close(actual, scan, "float64")


# --- init_params -----------------------------------------------------------------------------------------


def test_init_params_follows_keras_initialisers():
    input_dim, units = 64, 32
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    limit = np.sqrt(6 / (input_dim + 4 * units))  # Glorot uniform
    kernel = np.asarray(params.kernel)
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.05 * limit
    rk = np.asarray(params.recurrent_kernel)
    np.testing.assert_allclose(rk @ rk.T, np.eye(units), atol=1e-5)  # orthonormal rows
    expected_bias = np.zeros(4 * units, np.float32)
    expected_bias[units : 2 * units] = 1.0
    np.testing.assert_array_equal(params.bias, expected_bias)
    no_forget = jlstm.init_params(jax.random.key(0), input_dim, units, unit_forget_bias=False)
    np.testing.assert_array_equal(no_forget.bias, 0)
    assert jlstm.init_params(jax.random.key(0), 2, 3, dtype=jnp.bfloat16).kernel.dtype == jnp.bfloat16


def test_plain_tuples_are_accepted_for_params_and_state():
    params, x = make()
    state = (jnp.ones((3, 5)), jnp.zeros((3, 5)))
    a = jlstm.lstm(tuple(params), x, initial_state=state)
    b = jlstm.lstm(params, x, initial_state=jlstm.LSTMState(*state))
    assert_close(a, b)


def test_import_jlstm_does_not_import_frameworks():
    code = (
        "import sys, jlstm; "
        "bad = [m for m in ('flax', 'keras', 'tensorflow', 'torch', 'optax') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- bad input ---------------------------------------------------------------------------------------------

P, X = make()
STATE = (jnp.zeros((3, 5)), jnp.zeros((3, 5)))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(inputs=X[0]), ValueError, ["inputs", "(batch, time, 4)", "(6, 4)"]),
        (dict(inputs=X[..., :3]), ValueError, ["inputs", "(batch, time, 4)", "(3, 6, 3)"]),
        (dict(inputs=X[:, :0]), ValueError, ["inputs", "(3, 0, 4)"]),
        (dict(inputs=X.astype(jnp.int32)), TypeError, ["inputs", "int32"]),
        (dict(inputs=X > 0), TypeError, ["inputs", "bool"]),
        (dict(inputs=X.tolist()), TypeError, ["inputs", "list"]),
        (dict(initial_state=(STATE[0][:2], STATE[1])), ValueError, ["initial_state", "(3, 5)", "(2, 5)"]),
        (dict(initial_state=(STATE[0], STATE[1][:, :4])), ValueError, ["initial_state", "(3, 5)", "(3, 4)"]),
        (dict(initial_state=STATE[0]), TypeError, ["initial_state", "(h, c)"]),
        (dict(initial_state=(STATE[0],)), ValueError, ["initial_state", "(h, c)", "length 1"]),
        (dict(mask=jnp.ones((3, 5), bool)), ValueError, ["mask", "(3, 6)", "(3, 5)"]),
        (dict(mask=jnp.ones((6, 3), bool)), ValueError, ["mask", "(3, 6)", "(6, 3)"]),
        (dict(params=P._replace(kernel=P.kernel[:, :12])), ValueError, ["kernel", "(input_dim, 20)", "(4, 12)"]),
        (dict(params=P._replace(bias=P.bias[:-1])), ValueError, ["bias", "(20,)", "(19,)"]),
        (dict(params=P._replace(recurrent_kernel=P.recurrent_kernel[:4])), ValueError, ["recurrent_kernel", "(4, 20)"]),
        (dict(params=P._replace(bias=P.bias.astype(jnp.bfloat16))), TypeError, ["bias=bfloat16"]),
        (dict(params=P[:2]), ValueError, ["params", "LSTMParams", "length 2"]),
        (dict(unroll=0), ValueError, ["unroll"]),
    ],
)
def test_bad_inputs_raise_readable_errors(kwargs, error, words):
    args = dict(params=P, inputs=X) | kwargs
    params, inputs = args.pop("params"), args.pop("inputs")
    with pytest.raises(error) as info:
        jlstm.lstm(params, inputs, **args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    # The same check fires when traced under jit: no XLA error.
    if not isinstance(inputs, list):
        with pytest.raises(error):
            jax.jit(lambda p, x: jlstm.lstm(p, x, **args))(params, inputs)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: jlstm.lstm_cell(P, STATE, X[:, 0, :3]), ["lstm_cell", "x", "(batch, 4)", "(3, 3)"]),
        (lambda: jlstm.lstm_cell(P, (STATE[0][:1], STATE[1]), X[:, 0]), ["state", "(3, 5)", "(1, 5)"]),
        (lambda: jlstm.init_params(jax.random.key(0), 0, 5), ["input_dim", "positive"]),
        (lambda: jlstm.init_params(jax.random.key(0), 3, -2), ["units", "positive"]),
    ],
)
def test_bad_cell_and_init_arguments(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_integer_dtype_for_init_is_a_type_error():
    with pytest.raises(TypeError, match="dtype"):
        jlstm.init_params(jax.random.key(0), 3, 2, dtype=jnp.int32)


# --- properties --------------------------------------------------------------------------------------------

PROPERTY_PARAMS = jlstm.init_params(jax.random.key(3), 3, 4)
# (batch, time): a few shapes, so that hypothesis explores values and masks, not compilations
dims = st.sampled_from([(1, 1), (1, 5), (3, 1), (4, 6)])
SETTINGS = settings(max_examples=25, deadline=None)


def _inputs(seed, batch, time):
    return jax.random.normal(jax.random.key(seed), (batch, time, 3))


@SETTINGS
@given(dims=dims, seed=st.integers(0, 2**16), go_backwards=st.booleans())
def test_property_last_step_of_sequence_is_h(dims, seed, go_backwards):
    x = _inputs(seed, *dims)
    seq, h, _ = jlstm.lstm(PROPERTY_PARAMS, x, return_sequences=True, return_state=True, go_backwards=go_backwards)
    np.testing.assert_array_equal(seq[:, -1], h)  # one program: the very same numbers
    # Another program: without the (T, B, H) outputs, XLA compiles this tiny loop into one kernel, whose
    # float32 rounding may differ by an ulp from the loop of single operations.
    assert_close(jlstm.lstm(PROPERTY_PARAMS, x, go_backwards=go_backwards), h)


@SETTINGS
@given(dims=dims, seed=st.integers(0, 2**16), data=st.data())
def test_property_fully_masked_rows_return_initial_state_and_zeros(dims, seed, data):
    batch, time = dims
    x = _inputs(seed, batch, time)
    rows = np.array(data.draw(st.lists(st.booleans(), min_size=batch, max_size=batch)))  # True: fully masked
    mask = np.asarray(jax.random.bernoulli(jax.random.key(seed + 1), 0.7, (batch, time))) & ~rows[:, None]
    state = tuple(jax.random.normal(jax.random.key(seed + 2), (2, batch, 4)))
    seq, h, c = jlstm.lstm(
        PROPERTY_PARAMS, x, initial_state=state, mask=mask, return_sequences=True, return_state=True
    )
    np.testing.assert_array_equal(h[rows], state[0][rows])
    np.testing.assert_array_equal(c[rows], state[1][rows])
    np.testing.assert_array_equal(seq[rows], 0)


@SETTINGS
@given(dims=dims, seed=st.integers(0, 2**16), masked=st.booleans())
def test_property_go_backwards_equals_forward_on_reversed_input(dims, seed, masked):
    x = _inputs(seed, *dims)
    mask = jax.random.bernoulli(jax.random.key(seed + 1), 0.7, dims) if masked else None
    flags = dict(return_sequences=True, return_state=True)
    backwards = jlstm.lstm(PROPERTY_PARAMS, x, mask=mask, go_backwards=True, **flags)
    reversed_mask = None if mask is None else mask[:, ::-1]
    forward = jlstm.lstm(PROPERTY_PARAMS, x[:, ::-1], mask=reversed_mask, **flags)
    jax.tree.map(np.testing.assert_array_equal, backwards, forward)
