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
     ValueError, ["initial_state", "pair (h, c)", "length 3"]),
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
    ("params of two arrays", lstm(params=P[:2]), ValueError, ["params", "LSTMParams", "length 2"]),
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
    ("merge_mode not a string", bidirectional(merge_mode=1), TypeError, ["merge_mode", "'concat'", "1"]),
    ("bidirectional state of two", bidirectional(initial_state=S),
     ValueError, ["bidirectional:", "initial_state", "(h_fwd, c_fwd, h_bwd, c_bwd)", "length 2"]),
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


# --- one rule everywhere --------------------------------------------------------------------------------
# A wrong type is a TypeError; the right type with a wrong shape, count or value is a ValueError. Each
# message starts with the function's name and names the argument, then says what it received ("got ...").
# Frameworks are imported inside the calls, so that a case builds its Keras / torch / flax object only when
# it runs.


P_NEXT = jlstm.init_params(jax.random.key(1), H, H)  # a second layer reads the first's (batch, time, H)


def stacked(**kw):
    kw = dict(dict(params_list=[P, P_NEXT], inputs=X), **kw)
    return lambda: jlstm.stacked_lstm(kw.pop("params_list"), kw.pop("inputs"), **kw)


def init_stacked(**kw):
    kw = dict(dict(key=jax.random.key(0), input_dim=I, units=H, num_layers=2), **kw)
    return lambda: jlstm.init_stacked_params(
        kw.pop("key"), kw.pop("input_dim"), kw.pop("units"), kw.pop("num_layers"), **kw
    )


def keras_layer(kind="LSTM", built=True):
    import keras

    layer = keras.layers.LSTM(H) if kind == "LSTM" else keras.layers.Bidirectional(keras.layers.LSTM(H))
    if built:
        layer.build((None, T, I))
    return layer


def torch_lstm():
    import torch

    return torch.nn.LSTM(I, H)


def linen(cls, units=H, inputs=X, **kw):
    def call():
        import jlstm.linen

        return getattr(jlstm.linen, cls)(units, **kw).init(jax.random.key(0), inputs)

    return call


def nnx(cls, input_dim=I, units=H, call_kw=None, **kw):
    def call():
        from flax import nnx

        import jlstm.nnx

        module = getattr(jlstm.nnx, cls)(input_dim, units, rngs=nnx.Rngs(0), **kw)
        return module(X, **(call_kw or {}))

    return call


KEYS = jax.random.split(jax.random.key(0))  # two keys where one is expected
ONE_BIDIRECTIONAL = dict(params_list=[P, P], bidirectional=True)
TRAIN = dict(dropout=0.5, training=True)

# (function, argument, call, error)
RULE = [
    ("lstm", "params", lstm(params=P._asdict()), TypeError),
    ("lstm", "params", lstm(params=P[:2]), ValueError),
    ("lstm", "inputs", lstm(inputs=np.ones((B, T, I)).tolist()), TypeError),
    ("lstm", "inputs", lstm(inputs=jnp.ones((B, T))), ValueError),
    ("lstm", "initial_state", lstm(initial_state=S[0]), TypeError),
    ("lstm", "initial_state", lstm(initial_state=(*S, S[0])), ValueError),
    ("lstm", "mask", lstm(mask=[[True] * T] * B), TypeError),
    ("lstm", "mask", lstm(mask=jnp.ones((B, T + 1), bool)), ValueError),
    ("lstm", "return_sequences", lstm(return_sequences="yes"), TypeError),
    ("lstm", "return_sequences", lstm(return_sequences=2), ValueError),
    ("lstm", "activation", lstm(activation="tanh"), TypeError),
    ("lstm", "unroll", lstm(unroll="2"), TypeError),
    ("lstm", "unroll", lstm(unroll=2.0), TypeError),
    ("lstm", "unroll", lstm(unroll=0), ValueError),
    ("lstm", "remat_chunk", lstm(remat_chunk=2.5), TypeError),
    ("lstm", "remat_chunk", lstm(remat_chunk=0), ValueError),
    ("lstm", "dropout", lstm(dropout="0.5"), TypeError),
    ("lstm", "recurrent_dropout", lstm(recurrent_dropout=1.0), ValueError),
    ("lstm", "key", lstm(key=3, **TRAIN), TypeError),
    ("lstm", "key", lstm(key=KEYS, **TRAIN), ValueError),
    ("lstm", "recurrence", lstm(recurrence=1), TypeError),
    ("lstm", "recurrence", lstm(recurrence="loop"), ValueError),
    ("lstm_cell", "params", cell(params=None), TypeError),
    ("lstm_cell", "params", cell(params=(*P, P.bias)), ValueError),
    ("lstm_cell", "state", cell(state={"h": S[0], "c": S[1]}), TypeError),
    ("lstm_cell", "state", cell(state=S[:1]), ValueError),
    ("lstm_cell", "x", cell(x=X[:, 0].tolist()), TypeError),
    ("lstm_cell", "x", cell(x=X), ValueError),
    ("lstm_cell", "recurrent_activation", cell(recurrent_activation=0), TypeError),
    ("bidirectional", "forward_params", bidirectional(forward_params=None), TypeError),
    ("bidirectional", "backward_params", bidirectional(backward_params=P[:2]), ValueError),
    ("bidirectional", "initial_state", bidirectional(initial_state=jnp.stack(S)), TypeError),
    ("bidirectional", "initial_state", bidirectional(initial_state=S), ValueError),
    ("bidirectional", "merge_mode", bidirectional(merge_mode=1), TypeError),
    ("bidirectional", "merge_mode", bidirectional(merge_mode="max"), ValueError),
    ("bidirectional", "mask", bidirectional(mask=jnp.ones((B, T - 1), bool)), ValueError),
    ("bidirectional", "activation", bidirectional(activation="tanh"), TypeError),
    ("bidirectional", "unroll", bidirectional(unroll=1.5), TypeError),
    ("bidirectional", "unroll", bidirectional(unroll=-1), ValueError),
    ("bidirectional", "remat_chunk", bidirectional(remat_chunk=0), ValueError),
    ("bidirectional", "recurrence", bidirectional(recurrence=None), TypeError),
    ("bidirectional", "recurrence", bidirectional(recurrence="loop"), ValueError),
    ("bidirectional", "dropout", bidirectional(dropout=-0.1), ValueError),
    ("stacked_lstm", "params_list", stacked(params_list=P), TypeError),
    ("stacked_lstm", "params_list", stacked(params_list=[]), ValueError),
    ("stacked_lstm", "params_list", stacked(params_list=[P, P_NEXT[:2]]), ValueError),
    ("stacked_lstm", "initial_state", stacked(initial_state=jnp.zeros((2, B, H))), TypeError),
    ("stacked_lstm", "initial_state", stacked(initial_state=(jnp.zeros((2, B, H)),) * 3), ValueError),
    ("stacked_lstm", "bidirectional", stacked(bidirectional="yes"), TypeError),
    ("stacked_lstm", "merge_mode", stacked(merge_mode=2, **ONE_BIDIRECTIONAL), TypeError),
    ("stacked_lstm", "merge_mode", stacked(merge_mode="max", **ONE_BIDIRECTIONAL), ValueError),
    ("stacked_lstm", "merge_mode", stacked(merge_mode=None, **ONE_BIDIRECTIONAL), ValueError),
    ("stacked_lstm", "mask", stacked(mask=jnp.ones((T, B), bool)), ValueError),
    ("stacked_lstm", "unroll", stacked(unroll="1"), TypeError),
    ("stacked_lstm", "inter_layer_dropout", stacked(inter_layer_dropout="0.5"), TypeError),
    ("stacked_lstm", "inter_layer_dropout", stacked(inter_layer_dropout=1.0), ValueError),
    ("init_params", "key", init(key=None), TypeError),
    ("init_params", "key", init(key=KEYS), ValueError),
    ("init_params", "input_dim", init(input_dim="3"), TypeError),
    ("init_params", "units", init(units=0), ValueError),
    ("init_params", "dtype", init(dtype=jnp.int8), TypeError),
    ("init_params", "dtype", init(dtype="not a dtype"), TypeError),
    ("init_params", "unit_forget_bias", init(unit_forget_bias="no"), TypeError),
    ("init_stacked_params", "num_layers", init_stacked(num_layers=True), TypeError),
    ("init_stacked_params", "num_layers", init_stacked(num_layers=0), ValueError),
    ("init_stacked_params", "units", init_stacked(units=2.0), TypeError),
    ("init_stacked_params", "input_dim", init_stacked(input_dim=-1), ValueError),
    ("init_stacked_params", "bidirectional", init_stacked(bidirectional=None), TypeError),
    ("init_stacked_params", "merge_mode", init_stacked(bidirectional=True, merge_mode=1), TypeError),
    ("init_stacked_params", "merge_mode", init_stacked(bidirectional=True, merge_mode="max"), ValueError),
    ("from_keras", "layer_or_model", lambda: jlstm.from_keras(3), TypeError),
    ("from_keras", "layer_or_model", lambda: jlstm.from_keras(keras_layer(built=False)), ValueError),
    ("to_keras", "params", lambda: jlstm.to_keras(P, keras_layer("Bidirectional")), TypeError),
    ("to_keras", "params", lambda: jlstm.to_keras((P,), keras_layer("Bidirectional")), ValueError),
    ("to_keras", "params", lambda: jlstm.to_keras(P[:2], keras_layer()), ValueError),
    ("to_keras", "layer_or_model", lambda: jlstm.to_keras(P, "lstm"), TypeError),
    ("from_torch", "module_or_state_dict", lambda: jlstm.from_torch([]), TypeError),
    ("from_torch", "prefix", lambda: jlstm.from_torch({}, prefix=0), TypeError),
    ("from_torch", "module_or_state_dict", lambda: jlstm.from_torch({"weight": np.zeros(2)}), ValueError),
    ("from_torch", "prefix", lambda: jlstm.from_torch(torch_lstm().state_dict(), prefix="enc."), ValueError),
    ("to_torch", "params_list", lambda: jlstm.to_torch(P._asdict(), torch_lstm()), TypeError),
    ("to_torch", "params_list", lambda: jlstm.to_torch([P, P], torch_lstm()), ValueError),
    ("to_torch", "module", lambda: jlstm.to_torch([P], "lstm"), TypeError),
    ("LSTM", "units", linen("LSTM", units=4.0), TypeError),
    ("LSTM", "units", linen("LSTM", units=0), ValueError),
    ("LSTM", "inputs", linen("LSTM", inputs=np.ones((B, T, I)).tolist()), TypeError),
    ("LSTM", "inputs", linen("LSTM", inputs=X[0]), ValueError),
    ("LSTM", "dropout", linen("LSTM", dropout=None), TypeError),
    ("LSTM", "recurrent_dropout", linen("LSTM", recurrent_dropout=1.5), ValueError),
    ("LSTM", "param_dtype", linen("LSTM", param_dtype=jnp.int32), TypeError),
    ("LSTM", "dtype", linen("LSTM", dtype="int8"), TypeError),
    ("Bidirectional", "units", linen("Bidirectional", units=-1), ValueError),
    ("Bidirectional", "inputs", linen("Bidirectional", inputs=None), TypeError),
    ("bidirectional", "merge_mode", linen("Bidirectional", merge_mode="max"), ValueError),
    ("LSTM", "input_dim", nnx("LSTM", input_dim=None), TypeError),
    ("LSTM", "units", nnx("LSTM", units=0), ValueError),
    ("LSTM", "dropout", nnx("LSTM", dropout=1.0), ValueError),
    ("LSTM", "deterministic", nnx("LSTM", deterministic="no"), TypeError),
    ("LSTM", "deterministic", nnx("LSTM", call_kw=dict(deterministic=jnp.array(True))), TypeError),
    ("LSTM", "param_dtype", nnx("LSTM", param_dtype="int32"), TypeError),
    ("Bidirectional", "units", nnx("Bidirectional", units=3.5), TypeError),
    ("Bidirectional", "recurrent_dropout", nnx("Bidirectional", recurrent_dropout=-0.5), ValueError),
    ("bidirectional", "initial_state", nnx("Bidirectional", call_kw=dict(initial_state=S)), ValueError),
]


def _rule_id(case):
    fn, arg, _, error = case.values if hasattr(case, "values") else case
    return f"{fn}-{arg}-{error.__name__}"


@pytest.mark.parametrize("fn, argument, call, error", RULE, ids=[_rule_id(c) for c in RULE])
def test_wrong_type_is_a_type_error_and_wrong_value_a_value_error(fn, argument, call, error):
    with pytest.raises((TypeError, ValueError), match=rf"^{fn}: .*\b{argument}\b") as info:
        call()
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"


def test_the_rule_covers_every_public_function_with_both_errors():
    covered = {(fn, error) for fn, _, _, error in (c.values if hasattr(c, "values") else c for c in RULE)}
    functions = {fn for fn, _ in covered}
    assert functions >= {
        "lstm", "lstm_cell", "bidirectional", "stacked_lstm", "init_params", "init_stacked_params",
        "from_keras", "to_keras", "from_torch", "to_torch", "LSTM", "Bidirectional",
    }
    for fn in functions:
        assert {(fn, TypeError), (fn, ValueError)} <= covered, fn


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
    for call in (lstm(initial_state=S, mask=M), bidirectional(), cell(), init(), stacked(), init_stacked()):
        call()
