"""jlstm.lstm on its own: a Python loop over the cell as the reference, tracing, vmap, the invariants (hypothesis),
remat_chunk, long sequences streamed in chunks, the low-precision dtype policy, and NaNs.

Against Keras: test_keras.py; against the float64 NumPy oracle: test_numpy.py; the plans: test_plan.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jlstm
from conftest import assert_close, counting_tanh
from strategies import SETTINGS, problems, time_major


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


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_projected_scan_equals_python_loop_over_the_cell(go_backwards, jit):
    """proj_size: the cell's output r (batch, proj_size) is the state's h and the output; a masked step keeps (r, c)."""
    params = jlstm.init_params(jax.random.key(0), 4, 5, proj_size=2)
    x = jax.random.normal(jax.random.key(1), (3, 6, 4))
    state = jlstm.LSTMState(jax.random.normal(jax.random.key(7), (3, 2)), jax.random.normal(jax.random.key(6), (3, 5)))
    mask = jax.random.bernoulli(jax.random.key(8), 0.6, (3, 6))
    run = jax.jit(jlstm.lstm, static_argnames=("return_sequences", "return_state", "go_backwards"))
    run = run if jit else jlstm.lstm
    seq, h, c = run(
        params, x, initial_state=state, mask=mask, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    ref_seq, ref_state = python_loop(params, x, state, mask, go_backwards)
    assert seq.shape == (3, 6, 2) and h.shape == (3, 2) and c.shape == (3, 5)
    assert_close(seq, ref_seq)
    assert_close(h, ref_state.h)
    assert_close(c, ref_state.c)


def test_second_call_with_same_shapes_and_options_does_not_retrace():
    """Flags and options are static and cached: an eager call traces once per shapes and options, not per call."""
    params, x = make()
    traces = []
    tanh = counting_tanh(traces)  # grows only while jlstm traces

    def run(x, **options):
        return jlstm.lstm(params, x, activation=tanh, return_sequences=True, **options)

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
    run(x, remat_chunk=3)
    traced = len(traces)
    run(x + 1.0, remat_chunk=3)  # the same chunk: not traced again
    assert len(traces) == traced
    run(x, remat_chunk=4)  # another chunk: traced again
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
        assert_close(out[i], jlstm.lstm(jax.tree.map(lambda a, i=i: a[i], ensemble), x))


# --- invariants (hypothesis) -------------------------------------------------------------------------------


@settings(max_examples=20, **SETTINGS)
@given(problems(masked=False), st.booleans(), st.booleans())
def test_last_element_of_the_sequence_is_h(problem, go_backwards, major):
    params, x, _, state = problem
    x, _ = time_major(x, None, major)
    flags = {"initial_state": state, "go_backwards": go_backwards, "time_major": major}
    seq, h, _ = jlstm.lstm(params, x, return_sequences=True, return_state=True, **flags)
    last = seq[-1] if major else seq[:, -1]
    np.testing.assert_array_equal(np.asarray(last), np.asarray(h))  # one program: the very same numbers
    # Another program: without the (T, B, H) outputs, XLA may compile this tiny loop into one kernel, whose
    # float32 rounding may differ by an ulp from the loop of single operations.
    assert_close(jlstm.lstm(params, x, **flags), h)


@settings(max_examples=20, **SETTINGS)
@given(problems(masked=True, with_state=True), st.booleans(), st.data())
def test_fully_masked_rows_return_the_initial_state_and_output_zeros(problem, go_backwards, data):
    params, x, mask, state = problem
    batch = x.shape[0]
    rows = np.array(data.draw(st.lists(st.booleans(), min_size=batch, max_size=batch)))  # True: fully masked
    rows[data.draw(st.integers(0, batch - 1))] = True  # at least one
    mask[rows] = False
    seq, h, c = jlstm.lstm(params, x, mask=mask, initial_state=state, go_backwards=go_backwards,
                           return_sequences=True, return_state=True)
    np.testing.assert_array_equal(np.asarray(h)[rows], state[0][rows])
    np.testing.assert_array_equal(np.asarray(c)[rows], state[1][rows])
    np.testing.assert_array_equal(np.asarray(seq)[rows], 0)  # Keras: zeros, not h0


@settings(max_examples=20, **SETTINGS)
@given(problems(), st.booleans())
def test_go_backwards_equals_running_forward_on_the_reversed_input(problem, return_sequences):
    params, x, mask, state = problem
    flags = {"initial_state": state, "return_sequences": return_sequences, "return_state": True}
    backwards = jlstm.lstm(params, x, mask=mask, go_backwards=True, **flags)
    reversed_mask = None if mask is None else mask[:, ::-1]
    forward = jlstm.lstm(params, x[:, ::-1], mask=reversed_mask, **flags)
    jax.tree.map(np.testing.assert_array_equal, backwards, forward)


# --- remat_chunk -------------------------------------------------------------------------------------------


@settings(max_examples=10, **SETTINGS)
@given(problems(), st.booleans(), st.integers(1, 6))
def test_remat_chunk_changes_no_value(problem, go_backwards, remat_chunk):
    params, x, mask, state = problem
    flags = {"mask": mask, "initial_state": state, "go_backwards": go_backwards, "return_sequences": True,
                 "return_state": True}
    chunked = jlstm.lstm(params, x, remat_chunk=remat_chunk, **flags)
    plain = jlstm.lstm(params, x, **flags)
    for a, e in zip(chunked, plain):
        assert_close(a, e)
    assert bool(jnp.all(jnp.isfinite(chunked[0])))


def _value_and_grads(params, x, state, mask, flags, remat_chunk):
    def loss(params, x, state, mask):
        out = jlstm.lstm(params, x, initial_state=state, mask=mask, remat_chunk=remat_chunk, **flags)
        out = out if isinstance(out, tuple) else (out,)
        return sum(jnp.sum(jnp.sin(o)) for o in out)

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, x, state, mask)


REMAT_CASES = [  # (flags, masked, remat_chunk); T = 23 is a multiple of no chunk but 1 and 23
    ({}, False, 5),
    ({}, True, 1),
    ({"return_sequences": True}, True, 5),
    ({"go_backwards": True, "return_state": True}, True, 23),
    ({"return_sequences": True, "return_state": True, "go_backwards": True}, False, 4),
    ({"return_sequences": True, "return_state": True, "go_backwards": True}, True, 6),
    ({"return_sequences": True, "time_major": True}, True, 40),
]


REMAT_PROJECTED = [(*REMAT_CASES[5], 2), (*REMAT_CASES[6], 2)]  # (..., proj_size)


@pytest.mark.parametrize("flags, masked, remat_chunk, proj_size", [(*c, None) for c in REMAT_CASES] + REMAT_PROJECTED,
                         ids=lambda v: ("-".join(v) or "default") if isinstance(v, dict) else str(v))
def test_remat_chunk_gives_the_same_values_and_gradients(flags, masked, remat_chunk, proj_size):
    batch, time, units = 3, 23, 5
    params = jlstm.init_params(jax.random.key(0), 4, units, proj_size=proj_size)
    x = jax.random.normal(jax.random.key(1), (batch, time, 4))
    keys = jax.random.split(jax.random.key(2), 3)
    state = (jax.random.normal(keys[0], (batch, proj_size or units)), jax.random.normal(keys[1], (batch, units)))
    mask = jax.random.bernoulli(keys[2], 0.7, (batch, time)) if masked else None
    if flags.get("time_major"):
        x = jnp.swapaxes(x, 0, 1)
        mask = None if mask is None else mask.T
    expected = _value_and_grads(params, x, state, mask, flags, None)
    actual = _value_and_grads(params, x, state, mask, flags, remat_chunk)
    assert_close(actual[0], expected[0])
    assert isinstance(actual[1][0], jlstm.LSTMPParams if proj_size else jlstm.LSTMParams)
    for a, e in zip(jax.tree.leaves(actual[1]), jax.tree.leaves(expected[1]), strict=True):
        assert_close(a, e)


def test_remat_chunk_recomputes_instead_of_storing():
    """The compiled training step keeps far fewer temporary bytes (benchmarks/memory.py: T = 10,000)."""
    params = jlstm.init_params(jax.random.key(0), 4, 32)
    x = jnp.zeros((4, 1_000, 4))

    def temp_bytes(remat_chunk):
        loss = lambda p: jnp.sum(jlstm.lstm(p, x, remat_chunk=remat_chunk))
        return jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis().temp_size_in_bytes

    plain, chunked = temp_bytes(None), temp_bytes(32)
    assert chunked * 5 < plain, (chunked, plain)


# --- long sequences in chunks ------------------------------------------------------------------------------


def test_streaming_100k_steps_in_chunks_equals_one_call():
    long, chunk = 100_000, 12_500
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    x = jax.random.normal(jax.random.key(1), (2, long, 3))
    seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)
    state, pieces = None, []
    for start in range(0, long, chunk):
        piece, *state = jlstm.lstm(params, x[:, start : start + chunk], initial_state=state,
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


# --- dtypes ------------------------------------------------------------------------------------------------


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), tree)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bfloat16", "float16"])
def test_low_precision_policy_keeps_float32_state(dtype):
    """16-bit params: operands in 16 bits, state and outputs in float32, gradients in the params' dtype."""
    params, x = make(seed=3)
    rng = np.random.default_rng(3)
    state = tuple(rng.normal(size=(3, 5)) for _ in "hc")
    mask = jnp.asarray(rng.random((3, 6)) < 0.6).at[0].set(True).at[1].set(False)  # unmasked, fully masked, mixed
    p16, x16 = _cast(params, dtype), jnp.asarray(x, dtype)
    out = jlstm.lstm(p16, x16, initial_state=_cast(state, dtype), mask=mask, return_sequences=True,
                     return_state=True)
    assert [a.dtype for a in out] == [jnp.float32] * 3
    # The same rounded weights and inputs in float32: the only difference left is h rounded to 16 bits
    # before each recurrent matmul.
    expected = jlstm.lstm(_cast(p16, jnp.float32), x16.astype(jnp.float32), initial_state=_cast(state, dtype),
                          mask=mask, return_sequences=True, return_state=True)
    for a, e in zip(out, expected):
        assert_close(a, e, jnp.dtype(dtype).name)
    grads = jax.grad(lambda p: jnp.sum(jlstm.lstm(p, x16)))(p16)
    assert all(g.dtype == dtype for g in grads)
    # a returned state fed back loses nothing: two halves equal one call
    first = jlstm.lstm(p16, x16[:, :3], return_state=True)
    second = jlstm.lstm(p16, x16[:, 3:], initial_state=first[1:], return_state=True)
    whole = jlstm.lstm(p16, x16, return_state=True)
    for a, e in zip(second, whole):
        assert_close(a, e)


# --- NaNs --------------------------------------------------------------------------------------------------


def test_nan_in_one_row_stays_in_that_row():
    params, x = make(batch=4, time=9, seed=7)
    state = tuple(jax.random.normal(jax.random.key(9), (2, 4, 5)))
    bad, clean = 2, np.array([0, 1, 3])
    x_nan = x.at[bad, 4, 1].set(jnp.nan)
    x_zero = x.at[bad, 4, 1].set(0.0)

    def run(x):
        return jlstm.lstm(params, x, initial_state=state, return_sequences=True, return_state=True)

    out_nan, out_zero = run(x_nan), run(x_zero)
    for a, e in zip(out_nan, out_zero):
        np.testing.assert_array_equal(np.asarray(a)[clean], np.asarray(e)[clean])
    assert bool(jnp.isnan(out_nan[0][bad, 4:]).all())

    def clean_loss(x):  # depends on the clean rows only
        return jnp.sum(run(x)[0][clean] ** 2)

    gx_nan, gx_zero = jax.grad(clean_loss)(x_nan), jax.grad(clean_loss)(x_zero)
    np.testing.assert_array_equal(np.asarray(gx_nan)[clean], np.asarray(gx_zero)[clean])
    assert bool(jnp.isfinite(gx_nan[clean]).all())


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
def test_nan_in_masked_steps_is_ignored_also_by_gradients(go_backwards):
    """Padding with NaN: masked steps do not touch the outputs, the state, or any gradient."""
    params, x = make(time=9, seed=8)
    state = tuple(jax.random.normal(jax.random.key(10), (2, 3, 5)))
    m = jax.random.bernoulli(jax.random.key(11), 0.6, (3, 9)).at[0].set(True).at[1].set(False)
    x_nan = jnp.where(m[:, :, None], x, jnp.nan)
    x_zero = jnp.where(m[:, :, None], x, 0.0)

    def loss(params, x):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=m, go_backwards=go_backwards,
                               return_sequences=True, return_state=True)
        return jnp.sum(seq**2) + jnp.sum(h * c)

    v_nan, g_nan = jax.value_and_grad(loss, argnums=(0, 1))(params, x_nan)
    v_zero, g_zero = jax.value_and_grad(loss, argnums=(0, 1))(params, x_zero)
    assert bool(jnp.isfinite(v_nan))
    assert float(v_nan) == float(v_zero)
    for a, e in zip(jax.tree.leaves(g_nan), jax.tree.leaves(g_zero)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))
