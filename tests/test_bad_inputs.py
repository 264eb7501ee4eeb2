"""A catalogue of hostile inputs: each raises ValueError or TypeError naming the argument and what it expects.

Zero-length time or batch is an error, deliberately: Keras (TensorFlow backend)
fails on both too (a strided-slice error for ``time == 0``, a bias-add error for
``batch == 0``), and no sensible output exists for an empty sequence.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm

B, T, I, H = 2, 5, 3, 4
P = jlstm.init_params(jax.random.key(0), I, H)
X = jnp.ones((B, T, I))
S = (jnp.zeros((B, H)), jnp.zeros((B, H)))
M = jnp.ones((B, T), bool)
P_MIXED = P._replace(bias=np.asarray(P.bias, np.float16))


def lstm(**kw):
    kw = dict(dict(params=P, inputs=X), **kw)
    return lambda: jlstm.lstm(kw.pop("params"), kw.pop("inputs"), **kw)


def bidirectional(**kw):
    kw = dict(dict(forward_params=P, backward_params=P, inputs=X), **kw)
    return lambda: jlstm.bidirectional(
        kw.pop("forward_params"), kw.pop("backward_params"), kw.pop("inputs"), **kw
    )


def cell(**kw):
    kw = dict(dict(params=P, state=S, x=X[:, 0]), **kw)
    return lambda: jlstm.lstm_cell(kw.pop("params"), kw.pop("state"), kw.pop("x"), **kw)


def init(**kw):
    kw = dict(dict(key=jax.random.key(0), input_dim=I, units=H), **kw)
    return lambda: jlstm.init_params(kw.pop("key"), kw.pop("input_dim"), kw.pop("units"), **kw)


# (name, call, error, words that the message must contain)
CASES = [
    # inputs
    ("inputs rank 2", lstm(inputs=jnp.ones((T, I))),
     ValueError, ["lstm:", "inputs", "(batch, time, 3)", "(5, 3)", "rank 2"]),
    ("inputs rank 4", lstm(inputs=jnp.ones((B, T, I, 1))),
     ValueError, ["inputs", "(batch, time, 3)", "rank 4"]),
    ("inputs input_dim", lstm(inputs=jnp.ones((B, T, I + 1))),
     ValueError, ["inputs", "(batch, time, 3)", "(2, 5, 4)"]),
    ("inputs time_major dims", lstm(inputs=jnp.ones((T, B, I + 1)), time_major=True),
     ValueError, ["inputs", "(time, batch, 3)"]),
    ("zero time steps", lstm(inputs=jnp.ones((B, 0, I))),
     ValueError, ["inputs", "at least one", "time step", "(2, 0, 3)"]),
    ("zero batch rows", lstm(inputs=jnp.ones((0, T, I))),
     ValueError, ["inputs", "at least one batch row", "(0, 5, 3)"]),
    ("integer inputs", lstm(inputs=jnp.ones((B, T, I), jnp.int32)),
     TypeError, ["inputs", "floating", "int32"]),
    ("boolean inputs", lstm(inputs=np.ones((B, T, I), bool)), TypeError, ["inputs", "floating", "bool"]),
    ("complex inputs", lstm(inputs=np.ones((B, T, I), np.complex64)),
     TypeError, ["inputs", "floating", "complex64"]),
    ("inputs a list", lstm(inputs=np.ones((B, T, I)).tolist()),
     TypeError, ["inputs", "must be an array", "list"]),
    ("inputs None", lstm(inputs=None), TypeError, ["inputs", "must be an array", "NoneType"]),
    ("inputs a string", lstm(inputs="hello"), TypeError, ["inputs", "must be an array", "str"]),
    # initial_state
    ("state a single array", lstm(initial_state=S[0]),
     TypeError, ["initial_state", "pair (h, c)", "one array"]),
    ("state h and c stacked", lstm(initial_state=jnp.stack(S)),
     TypeError, ["initial_state", "pair (h, c)", "one array of shape (2, 2, 4)"]),
    ("state of three arrays", lstm(initial_state=(*S, S[0])),
     TypeError, ["initial_state", "pair (h, c)", "length 3"]),
    ("state a dict", lstm(initial_state={"h": S[0], "c": S[1]}),
     TypeError, ["initial_state", "pair (h, c)", "dict"]),
    ("state h batch", lstm(initial_state=(jnp.zeros((B + 1, H)), S[1])),
     ValueError, ["initial_state[0] (h)", "(2, 4)", "(3, 4)"]),
    ("state c units", lstm(initial_state=(S[0], jnp.zeros((B, H + 1)))),
     ValueError, ["initial_state[1] (c)", "(2, 4)", "(2, 5)"]),
    ("state c rank 1", lstm(initial_state=(S[0], jnp.zeros((H,)))),
     ValueError, ["initial_state[1] (c)", "(2, 4)", "rank 1"]),
    ("state integer", lstm(initial_state=(S[0], jnp.zeros((B, H), jnp.int32))),
     TypeError, ["initial_state[1] (c)", "floating", "int32"]),
    ("state h a list", lstm(initial_state=([[0.0] * H] * B, S[1])),
     TypeError, ["initial_state[0] (h)", "array"]),
    # mask
    ("mask too long", lstm(mask=jnp.ones((B, T + 1), bool)), ValueError, ["mask", "(2, 5)", "(2, 6)"]),
    ("mask rank 3", lstm(mask=jnp.ones((B, T, 1), bool)), ValueError, ["mask", "(2, 5)", "(2, 5, 1)"]),
    ("mask batch-major with time_major", lstm(inputs=jnp.ones((T, B, I)), mask=M, time_major=True),
     ValueError, ["mask", "(5, 2)", "(time, batch)", "(2, 5)"]),
    ("mask complex", lstm(mask=np.ones((B, T), np.complex64)),
     TypeError, ["mask", "boolean or 0/1", "complex64"]),
    ("mask a list", lstm(mask=[[True] * T] * B), TypeError, ["mask", "must be an array", "list"]),
    # params
    ("params a dict", lstm(params=P._asdict()),
     TypeError, ["params", "LSTMParams(kernel, recurrent_kernel, bias)", "dict"]),
    ("params of two arrays", lstm(params=P[:2]), TypeError, ["params", "LSTMParams"]),
    ("params of mixed dtypes", lstm(params=P_MIXED),
     TypeError, ["kernel, recurrent_kernel and bias", "one floating dtype", "kernel=float32", "bias=float16"]),
    ("params integer", lstm(params=jlstm.LSTMParams(*(np.ones(p.shape, np.int32) for p in P))),
     TypeError, ["kernel", "floating dtype", "int32"]),
    ("recurrent_kernel not (units, 4 * units)",
     lstm(params=P._replace(recurrent_kernel=jnp.ones((H, 3 * H)))),
     ValueError, ["recurrent_kernel", "(units, 4 * units)", "(4, 12)"]),
    ("kernel columns", lstm(params=P._replace(kernel=jnp.ones((I, 4 * H + 1)))),
     ValueError, ["kernel", "(input_dim, 16)", "(3, 17)"]),
    ("bias length", lstm(params=P._replace(bias=jnp.ones((4 * H - 1,)))),
     ValueError, ["bias", "(16,)", "(15,)"]),
    ("kernel a list", lstm(params=P._replace(kernel=np.asarray(P.kernel).tolist())),
     TypeError, ["kernel", "must be an array", "list"]),
    # flags and options
    ("unroll 0", lstm(unroll=0), ValueError, ["unroll", "positive int"]),
    ("remat_chunk 0", lstm(remat_chunk=0), ValueError, ["remat_chunk", "positive int or None", "0"]),
    ("remat_chunk a float", lstm(remat_chunk=2.5),
     TypeError, ["remat_chunk", "positive int or None", "float"]),
    ("remat_chunk a bool", lstm(remat_chunk=True),
     TypeError, ["remat_chunk", "positive int or None", "bool"]),
    ("return_sequences a string", lstm(return_sequences="yes"),
     TypeError, ["return_sequences", "Python bool"]),
    ("go_backwards an array", lstm(go_backwards=jnp.array(True)), TypeError, ["go_backwards", "Python bool"]),
    ("time_major None", lstm(time_major=None), TypeError, ["time_major", "Python bool", "None"]),
    ("activation a string", lstm(activation="tanh"), TypeError, ["activation", "callable", "'tanh'"]),
    ("recurrent_activation None", lstm(recurrent_activation=None),
     TypeError, ["recurrent_activation", "callable"]),
    ("dropout of 1", lstm(dropout=1.0, training=True, key=jax.random.key(0)),
     ValueError, ["dropout", "[0, 1)"]),
    ("training with dropout, no key", lstm(dropout=0.5, training=True), ValueError, ["key", "PRNG key"]),
    # lstm_cell
    ("cell x rank 3", cell(x=X), ValueError, ["lstm_cell:", "x", "(batch, 3)", "(2, 5, 3)"]),
    ("cell state batch", cell(state=(jnp.zeros((B + 1, H)),) * 2),
     ValueError, ["lstm_cell:", "state[0] (h)", "(2, 4)"]),
    ("cell activation an int", cell(activation=1), TypeError, ["lstm_cell:", "activation", "callable"]),
    # init_params
    ("negative units", init(units=-3), ValueError, ["init_params:", "units", "positive int", "-3"]),
    ("zero input_dim", init(input_dim=0), ValueError, ["init_params:", "input_dim", "positive int", "0"]),
    ("float units", init(units=4.0), TypeError, ["init_params:", "units", "int", "float"]),
    ("integer dtype", init(dtype=jnp.int32), TypeError, ["init_params:", "dtype", "floating", "int32"]),
    # bidirectional
    ("unknown merge_mode", bidirectional(merge_mode="max"),
     ValueError, ["bidirectional:", "merge_mode", "'concat', 'sum', 'mul', 'ave' or None", "'max'"]),
    ("merge_mode not a string", bidirectional(merge_mode=1), ValueError, ["merge_mode", "'concat'", "1"]),
    ("bidirectional state of two", bidirectional(initial_state=S),
     TypeError, ["bidirectional:", "initial_state", "(h_fwd, c_fwd, h_bwd, c_bwd)"]),
    ("bidirectional backward input_dim",
     bidirectional(backward_params=jlstm.init_params(jax.random.key(1), I + 1, H)),
     ValueError, ["backward_params.kernel", "(3, 4 * units)"]),
    ("bidirectional sum of different units",
     bidirectional(backward_params=jlstm.init_params(jax.random.key(1), I, H + 1), merge_mode="sum"),
     ValueError, ["merge_mode='sum'", "same units"]),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error  # not a subclass such as a JAX-internal error
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_catalogue_is_large_and_names_are_unique():
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", ["input_dim", "mask", "state"])
def test_errors_are_raised_at_trace_time_under_jit(bad):
    """Shapes are checked while tracing, before XLA sees anything."""
    x = jnp.ones((B, T, I + (bad == "input_dim")))
    mask = jnp.ones((B, T + (bad == "mask")), bool)
    state = (jnp.zeros((B, H + (bad == "state"))), S[1])
    run = jax.jit(lambda x, m, s: jlstm.lstm(P, x, mask=m, initial_state=s))
    with pytest.raises(ValueError, match="inputs|mask|initial_state"):
        run(x, mask, state)


def test_a_good_call_passes_every_check():
    """The catalogue's baseline arguments are valid: each case fails because of its one bad argument."""
    for call in (lstm(initial_state=S, mask=M), bidirectional(), cell(), init()):
        call()
