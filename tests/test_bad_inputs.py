"""The one catalogue of bad input: every public function and module, each bad argument, one case each.

The rule everywhere: a wrong type is a ``TypeError``; the right type with a wrong shape, count or value is a
``ValueError`` (never a subclass, never an error from inside JAX). Each message starts with the function's name,
names the argument, and says what was expected and what was received; a case lists the words its message must
hold, in order. The pure functions raise the same error while traced under ``jax.jit``: shapes are checked
before XLA sees anything.

Zero-length time or batch is an error, deliberately: Keras (TensorFlow backend) fails on both too (a
strided-slice error for ``time == 0``, a bias-add error for ``batch == 0``), and no sensible output exists for
an empty sequence.

Frameworks are imported inside the calls, so that a case builds its Keras / torch / flax object only when it runs.
"""

import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm

B, T, I, H = 2, 5, 3, 4
P = jlstm.init_params(jax.random.key(0), I, H)
P_NEXT = jlstm.init_params(jax.random.key(1), H, H)  # a second layer reads the first's (batch, time, H)
X = jnp.ones((B, T, I))
S = (jnp.zeros((B, H)), jnp.zeros((B, H)))
M = jnp.ones((B, T), bool)
P_MIXED = P._replace(bias=np.asarray(P.bias, np.float16))
PP = jlstm.init_params(jax.random.key(2), I, H, proj_size=2)  # projected: h (B, 2), c (B, 4)
PP_NEXT = jlstm.init_params(jax.random.key(3), 2, H, proj_size=2)
PP_NEXT_BI = jlstm.init_params(jax.random.key(4), 4, H, proj_size=2)  # over two projected directions, concatenated
SP = (jnp.zeros((B, 2)), jnp.zeros((B, H)))
KEY = jax.random.key(0)
KEYS = jax.random.split(KEY)  # two keys where one is expected
TRAIN = {"dropout": 0.5, "training": True}


def _arrays(value):
    """Whether ``value`` is an array or a pytree of arrays only, which jax.jit can trace."""
    leaves = jax.tree.leaves(value)
    return bool(leaves) and all(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in leaves)


class Call:
    """``function(*args, **kwargs)``, run as called or under ``jax.jit`` with its array arguments traced."""

    def __init__(self, function, *args, **kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs

    def __call__(self):
        return self.function(*self.args, **self.kwargs)

    def under_jit(self):
        arguments = {f"{i}": a for i, a in enumerate(self.args)} | self.kwargs
        traced = {name: value for name, value in arguments.items() if _arrays(value)}

        def run(traced):
            args = [traced.get(f"{i}", a) for i, a in enumerate(self.args)]
            return self.function(*args, **{k: traced.get(k, v) for k, v in self.kwargs.items()})

        return jax.jit(run)(traced)


def lstm(params=P, inputs=X, **kw):
    return Call(jlstm.lstm, params, inputs, **kw)


def cell(params=P, state=S, x=X[:, 0], **kw):
    return Call(jlstm.lstm_cell, params, state, x, **kw)


def bidirectional(forward_params=P, backward_params=P, inputs=X, **kw):
    return Call(jlstm.bidirectional, forward_params, backward_params, inputs, **kw)


def stacked(params_list=None, inputs=X, **kw):
    return Call(jlstm.stacked_lstm, [P, P_NEXT] if params_list is None else params_list, inputs, **kw)


def init(key=KEY, input_dim=I, units=H, **kw):
    return lambda: jlstm.init_params(key, input_dim, units, **kw)


def init_stacked(key=KEY, input_dim=I, units=H, num_layers=2, **kw):
    return lambda: jlstm.init_stacked_params(key, input_dim, units, num_layers, **kw)


def tune(**kw):
    return lambda: jlstm.tune(P, X, progress=False, record=False, **kw)


def keras_layer(kind="LSTM", built=True, **kw):
    import keras

    layer = getattr(keras.layers, kind)(H, **kw) if kind != "Bidirectional" else (
        keras.layers.Bidirectional(keras.layers.LSTM(H, **kw)))
    if built:
        layer.build((None, T, I))
    return layer


def from_keras(make):
    """``jlstm.from_keras`` of what ``make(keras)`` returns."""

    def call():
        import keras

        return jlstm.from_keras(make(keras))

    return call


def keras_model(keras, *layers, name=None):
    return keras.Sequential([keras.Input((T, I)), *layers], name=name)


def two_lstm_model():
    import keras

    return keras_model(keras, keras.layers.LSTM(H, return_sequences=True, name="one"), keras.layers.LSTM(H, name="two"))


def torch_module(kind="LSTM", *args, **kw):
    import torch

    return getattr(torch.nn, kind)(*(args or (I, H)), **kw)


def projected_state_dict(**shapes):
    """The state dict of ``torch.nn.LSTM(I, H, proj_size=2)``, with zero tensors of ``shapes`` for some keys."""
    import torch

    return torch_module("LSTM", I, H, proj_size=2).state_dict() | {k: torch.zeros(s) for k, s in shapes.items()}


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


def nnx_module(cls, call=False, **kw):
    """An nnx module built from ``nnx.Rngs(params=0)`` (no dropout stream), and called if ``call``."""

    def run():
        from flax import nnx

        import jlstm.nnx

        options = {"rngs": nnx.Rngs(params=0)} | kw
        module = getattr(jlstm.nnx, cls)(I, H, **options)
        return module(X) if call else module

    return run


def from_params(cls, params, **kw):
    def run():
        import jlstm.nnx

        return getattr(jlstm.nnx, cls).from_params(params, **kw)

    return run


def linen_variables(params):
    import jlstm.linen

    return jlstm.linen.variables_from_params(params)


class Case(NamedTuple):
    name: str  # the test id
    function: str  # the name the message starts with
    argument: str | None  # the argument it names (None: one message that names none)
    error: type
    call: object
    words: tuple  # what the message holds, in this order


def bad(name, function, argument, error, call, *words):
    return Case(name, function, argument, error, call, words)


FUSED = "runs neither recurrent_dropout in training nor remat_chunk"

CASES = [
    # lstm: inputs
    bad("inputs rank 2", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((T, I))),
        "inputs", "(batch, time, 3)", "(5, 3)", "rank 2"),
    bad("inputs rank 4", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((B, T, I, 1))),
        "inputs", "(batch, time, 3)", "rank 4"),
    bad("inputs input_dim", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((B, T, I + 1))),
        "inputs", "(batch, time, 3)", "(2, 5, 4)"),
    bad("inputs time_major dims", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((T, B, I + 1)), time_major=True),
        "inputs", "(time, batch, 3)"),
    bad("zero time steps", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((B, 0, I))),
        "inputs", "at least one", "time step", "(2, 0, 3)"),
    bad("zero batch rows", "lstm", "inputs", ValueError, lstm(inputs=jnp.ones((0, T, I))),
        "inputs", "at least one batch row", "(0, 5, 3)"),
    bad("integer inputs", "lstm", "inputs", TypeError, lstm(inputs=jnp.ones((B, T, I), jnp.int32)),
        "inputs", "floating", "int32"),
    bad("boolean inputs", "lstm", "inputs", TypeError, lstm(inputs=np.ones((B, T, I), bool)),
        "inputs", "floating", "bool"),
    bad("complex inputs", "lstm", "inputs", TypeError, lstm(inputs=np.ones((B, T, I), np.complex64)),
        "inputs", "floating", "complex64"),
    bad("inputs a list", "lstm", "inputs", TypeError, lstm(inputs=np.ones((B, T, I)).tolist()),
        "inputs", "must be an array", "list"),
    bad("inputs None", "lstm", "inputs", TypeError, lstm(inputs=None), "inputs", "must be an array", "NoneType"),
    bad("inputs a string", "lstm", "inputs", TypeError, lstm(inputs="hello"), "inputs", "must be an array", "str"),
    # lstm: initial_state
    bad("state a single array", "lstm", "initial_state", TypeError, lstm(initial_state=S[0]),
        "initial_state", "pair (h, c)", "one array"),
    bad("state h and c stacked", "lstm", "initial_state", TypeError, lstm(initial_state=jnp.stack(S)),
        "initial_state", "pair (h, c)", "one array of shape (2, 2, 4)"),
    bad("state of three arrays", "lstm", "initial_state", ValueError, lstm(initial_state=(*S, S[0])),
        "initial_state", "pair (h, c)", "length 3"),
    bad("state a dict", "lstm", "initial_state", TypeError, lstm(initial_state={"h": S[0], "c": S[1]}),
        "initial_state", "pair (h, c)", "dict"),
    bad("state h batch", "lstm", "initial_state", ValueError, lstm(initial_state=(jnp.zeros((B + 1, H)), S[1])),
        "initial_state[0] (h)", "(2, 4)", "(3, 4)"),
    bad("state c units", "lstm", "initial_state", ValueError, lstm(initial_state=(S[0], jnp.zeros((B, H + 1)))),
        "initial_state[1] (c)", "(2, 4)", "(2, 5)"),
    bad("state c rank 1", "lstm", "initial_state", ValueError, lstm(initial_state=(S[0], jnp.zeros((H,)))),
        "initial_state[1] (c)", "(2, 4)", "rank 1"),
    bad("state integer", "lstm", "initial_state", TypeError,
        lstm(initial_state=(S[0], jnp.zeros((B, H), jnp.int32))), "initial_state[1] (c)", "floating", "int32"),
    bad("state h a list", "lstm", "initial_state", TypeError, lstm(initial_state=([[0.0] * H] * B, S[1])),
        "initial_state[0] (h)", "array"),
    bad("projected state h of units", "lstm", "initial_state", ValueError, lstm(params=PP, initial_state=S),
        "initial_state[0] (h)", "(2, 2)", "(2, 4)", "h (2, 2), c (2, 4)"),
    bad("projected state c of proj_size", "lstm", "initial_state", ValueError,
        lstm(params=PP, initial_state=(SP[0], SP[0])), "initial_state[1] (c)", "(2, 4)", "(2, 2)"),
    bad("projected state of one array", "lstm", "initial_state", ValueError, lstm(params=PP, initial_state=SP[:1]),
        "initial_state", "(batch, proj_size) and (batch, units)", "length 1"),
    # lstm: mask
    bad("mask too long", "lstm", "mask", ValueError, lstm(mask=jnp.ones((B, T + 1), bool)), "mask", "(2, 5)", "(2, 6)"),
    bad("mask rank 3", "lstm", "mask", ValueError, lstm(mask=jnp.ones((B, T, 1), bool)), "mask", "(2, 5)", "(2, 5, 1)"),
    bad("mask batch-major with time_major", "lstm", "mask", ValueError,
        lstm(inputs=jnp.ones((T, B, I)), mask=M, time_major=True), "mask", "(5, 2)", "(time, batch)", "(2, 5)"),
    bad("mask complex", "lstm", "mask", TypeError, lstm(mask=np.ones((B, T), np.complex64)),
        "mask", "boolean or 0/1", "complex64"),
    bad("mask a list", "lstm", "mask", TypeError, lstm(mask=[[True] * T] * B), "mask", "must be an array", "list"),
    # lstm: params
    bad("params a dict", "lstm", "params", TypeError, lstm(params=P._asdict()),
        "params", "LSTMParams(kernel, recurrent_kernel, bias)", "dict"),
    bad("params of two arrays", "lstm", "params", ValueError, lstm(params=P[:2]), "params", "LSTMParams", "length 2"),
    bad("params of mixed dtypes", "lstm", "bias", TypeError, lstm(params=P_MIXED),
        "kernel, recurrent_kernel and bias", "one floating dtype", "kernel=float32", "bias=float16"),
    bad("params integer", "lstm", "kernel", TypeError,
        lstm(params=jlstm.LSTMParams(*(np.ones(p.shape, np.int32) for p in P))), "kernel", "floating dtype", "int32"),
    bad("recurrent_kernel not (units, 4 * units)", "lstm", "recurrent_kernel", ValueError,
        lstm(params=P._replace(recurrent_kernel=jnp.ones((H, 3 * H)))),
        "recurrent_kernel", "(units, 4 * units)", "(4, 12)"),
    bad("kernel columns", "lstm", "kernel", ValueError, lstm(params=P._replace(kernel=jnp.ones((I, 4 * H + 1)))),
        "kernel", "(input_dim, 16)", "(3, 17)"),
    bad("bias length", "lstm", "bias", ValueError, lstm(params=P._replace(bias=jnp.ones((4 * H - 1,)))),
        "bias", "(16,)", "(15,)"),
    bad("kernel a list", "lstm", "kernel", TypeError, lstm(params=P._replace(kernel=np.asarray(P.kernel).tolist())),
        "kernel", "must be an array", "list"),
    bad("params of five arrays", "lstm", "params", ValueError, lstm(params=(*PP, PP.bias)),
        "params", "LSTMParams", "LSTMPParams", "length 5"),
    bad("projection_kernel square", "lstm", "projection_kernel", ValueError,
        lstm(params=PP._replace(projection_kernel=jnp.ones((H, H)))),
        "projection_kernel", "(units, proj_size)", "0 < proj_size < units", "(4, 4)"),
    bad("projection_kernel transposed", "lstm", "projection_kernel", ValueError,
        lstm(params=PP._replace(projection_kernel=PP.projection_kernel.T)), "projection_kernel", "(2, 4)"),
    bad("projection_kernel rank 1", "lstm", "projection_kernel", ValueError,
        lstm(params=PP._replace(projection_kernel=jnp.ones((H,)))), "projection_kernel", "(4,)"),
    bad("projected recurrent_kernel (units, 4 * units)", "lstm", "recurrent_kernel", ValueError,
        lstm(params=PP._replace(recurrent_kernel=jnp.ones((H, 4 * H)))), "recurrent_kernel", "(2, 16)", "(4, 16)"),
    bad("projected recurrent_kernel of proj_size gates", "lstm", "recurrent_kernel", ValueError,
        lstm(params=PP._replace(recurrent_kernel=jnp.ones((2, 8)))), "recurrent_kernel", "(2, 16)", "(2, 8)"),
    bad("projected kernel columns", "lstm", "kernel", ValueError, lstm(params=PP._replace(kernel=jnp.ones((I, 8)))),
        "kernel", "(input_dim, 16)", "(3, 8)"),
    bad("projection_kernel of another dtype", "lstm", "projection_kernel", TypeError,
        lstm(params=PP._replace(projection_kernel=np.asarray(PP.projection_kernel, np.float16))),
        "kernel, recurrent_kernel, bias and projection_kernel", "one floating dtype", "projection_kernel=float16"),
    bad("projection_kernel a list", "lstm", "projection_kernel", TypeError,
        lstm(params=PP._replace(projection_kernel=np.asarray(PP.projection_kernel).tolist())),
        "projection_kernel must be an array", "list"),
    # lstm: flags and options
    bad("unroll 0", "lstm", "unroll", ValueError, lstm(unroll=0), "unroll", "positive int"),
    bad("unroll a string", "lstm", "unroll", TypeError, lstm(unroll="2"), "unroll", "positive int", "str"),
    bad("unroll a float", "lstm", "unroll", TypeError, lstm(unroll=2.0), "unroll", "positive int", "float"),
    bad("params a list of params", "lstm", "params", TypeError, lstm(params=[P]), "params", "list of 1", "as_list=False",
        "stacked_lstm"),
    bad("reset of numbers", "lstm", "reset", TypeError, lstm(reset=np.ones((B, T), np.int32)), "reset", "boolean",
        f"({B}, {T}) (batch, time)", "int32"),
    bad("reset of the wrong shape", "lstm", "reset", ValueError, lstm(reset=np.ones((T, B), bool)), "reset",
        f"({B}, {T}) (batch, time)", f"({T}, {B})"),
    bad("reset a list", "lstm", "reset", TypeError, lstm(reset=[[True] * T] * B), "reset", "array", "list"),
    bad("cell reset of the wrong shape", "lstm_cell", "reset", ValueError, cell(reset=np.ones((B, 1), bool)),
        "reset", f"({B},) (batch,)", f"({B}, 1)"),
    bad("precision unknown", "lstm", "precision", ValueError, lstm(precision="ultra"), "precision", "highest",
        "'ultra'"),
    bad("precision a number", "lstm", "precision", TypeError, lstm(precision=3), "precision", "jax.lax.Precision",
        "int"),
    bad("remat_chunk 0", "lstm", "remat_chunk", ValueError, lstm(remat_chunk=0), "remat_chunk", "positive int or None", "0"),
    bad("remat_chunk a float", "lstm", "remat_chunk", TypeError, lstm(remat_chunk=2.5),
        "remat_chunk", "positive int or None", "float"),
    bad("remat_chunk a bool", "lstm", "remat_chunk", TypeError, lstm(remat_chunk=True),
        "remat_chunk", "positive int or None", "bool"),
    bad("return_sequences a string", "lstm", "return_sequences", TypeError, lstm(return_sequences="yes"),
        "return_sequences", "Python bool"),
    bad("return_sequences 2", "lstm", "return_sequences", ValueError, lstm(return_sequences=2),
        "return_sequences", "Python bool", "0/1", "2"),
    bad("go_backwards an array", "lstm", "go_backwards", TypeError, lstm(go_backwards=jnp.array(True)),
        "go_backwards", "Python bool"),
    bad("time_major None", "lstm", "time_major", TypeError, lstm(time_major=None), "time_major", "Python bool", "None"),
    bad("activation a string", "lstm", "activation", TypeError, lstm(activation="tanh"),
        "activation", "callable", "'tanh'"),
    bad("recurrent_activation None", "lstm", "recurrent_activation", TypeError, lstm(recurrent_activation=None),
        "recurrent_activation", "callable"),
    # lstm: dropout
    bad("dropout of 1", "lstm", "dropout", ValueError, lstm(dropout=1.0, training=True, key=jax.random.key(0)),
        "dropout", "[0, 1)"),
    bad("dropout negative", "lstm", "dropout", ValueError, lstm(dropout=-0.1),
        "dropout must be a float in [0, 1), got -0.1"),
    bad("dropout a string", "lstm", "dropout", TypeError, lstm(dropout="0.5"), "dropout must be a float", "str"),
    bad("recurrent_dropout of 1", "lstm", "recurrent_dropout", ValueError, lstm(recurrent_dropout=1.0),
        "recurrent_dropout must be a float in [0, 1), got 1.0"),
    bad("training an array", "lstm", "training", TypeError,
        lstm(dropout=0.2, training=jnp.array(True), key=jax.random.key(0)), "training", "Python bool"),
    bad("training with dropout, no key", "lstm", "key", ValueError, lstm(**TRAIN),
        "training with dropout=0.5", "needs a PRNG key", "key=None"),
    bad("key an int", "lstm", "key", TypeError, lstm(key=3, **TRAIN), "key must be a jax.random key", "int"),
    bad("several keys", "lstm", "key", ValueError, lstm(key=KEYS, **TRAIN), "key", "several keys"),
    # lstm: recurrence and plans
    bad("recurrence an int", "lstm", "recurrence", TypeError, lstm(recurrence=1), "recurrence must be one of", "1"),
    bad("recurrence unknown", "lstm", "recurrence", ValueError, lstm(recurrence="cudnn"),
        "recurrence must be one of", "'cudnn'"),
    bad("plan layout unknown", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(layout="rows")),
        "recurrence.layout", "'rows'"),
    bad("plan layout an int", "lstm", "recurrence", TypeError, lstm(recurrence=jlstm.Plan(layout=1)),
        "recurrence.layout"),
    bad("plan chains 3", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(chains=3)),
        "recurrence.chains", "3"),
    bad("plan chains a float", "lstm", "recurrence", TypeError, lstm(recurrence=jlstm.Plan(chains=1.0)),
        "recurrence.chains", "int"),
    bad("plan projection unknown", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(projection="cudnn")),
        "recurrence.projection", "'cudnn'"),
    bad("plan backward unknown", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(backward="vjp")),
        "recurrence.backward", "'vjp'"),
    bad("plan unroll 0", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(unroll=0)),
        "recurrence.unroll", "0"),
    bad("plan features with two chains", "lstm", "recurrence", ValueError,
        lstm(recurrence=jlstm.Plan(layout="features", chains=2)), "recurrence", "features", "chains=2"),
    bad("plan stacked and hoisted", "lstm", "recurrence", ValueError,
        lstm(recurrence=jlstm.Plan(layout="stacked", projection="hoisted")), "recurrence", "hoisted"),
    bad("plan chains not splitting the batch", "lstm", "recurrence", ValueError,
        lstm(inputs=jnp.ones((3, T, I)), recurrence=jlstm.Plan(chains=2)), "recurrence=Plan(chains=2)", "batch 3"),
    bad("plan and an unroll", "lstm", "unroll", ValueError, lstm(recurrence=jlstm.Plan(), unroll=2),
        "give unroll in the plan", "unroll=2"),
    bad("step with remat_chunk", "lstm", "recurrence", ValueError, lstm(recurrence="step", remat_chunk=2),
        "recurrence='step'", FUSED),
    bad("fused with remat_chunk", "lstm", "recurrence", ValueError, lstm(recurrence="fused", remat_chunk=2),
        "recurrence='fused'", FUSED),
    bad("plan with remat_chunk", "lstm", "recurrence", ValueError, lstm(recurrence=jlstm.Plan(), remat_chunk=2),
        f"recurrence={jlstm.Plan()!r}", FUSED),
    bad("step with recurrent_dropout", "lstm", "recurrence", ValueError,
        lstm(recurrence="step", recurrent_dropout=0.2, training=True, key=jax.random.key(0)),
        "recurrence='step'", FUSED),
    bad("fused with recurrent_dropout", "lstm", "recurrence", ValueError,
        lstm(recurrence="fused", recurrent_dropout=0.2, training=True, key=jax.random.key(0)),
        "recurrence='fused'", FUSED),
    bad("plan with recurrent_dropout", "lstm", "recurrence", ValueError,
        lstm(recurrence=jlstm.Plan(), recurrent_dropout=0.2, training=True, key=jax.random.key(0)),
        f"recurrence={jlstm.Plan()!r}", FUSED),
    # lstm_cell
    bad("cell params None", "lstm_cell", "params", TypeError, cell(params=None), "params", "LSTMParams", "NoneType"),
    bad("cell precision unknown", "lstm_cell", "precision", ValueError, cell(precision="low"), "precision", "'low'"),
    bad("cell params of five arrays", "lstm_cell", "params", ValueError, cell(params=(*P, P.bias, P.bias)),
        "params", "length 5"),
    bad("cell a bias as projection_kernel", "lstm_cell", "projection_kernel", ValueError, cell(params=(*P, P.bias)),
        "projection_kernel", "(units, proj_size)", "(16,)"),
    bad("cell state a dict", "lstm_cell", "state", TypeError, cell(state={"h": S[0], "c": S[1]}),
        "state", "pair (h, c)", "dict"),
    bad("cell state of one array", "lstm_cell", "state", ValueError, cell(state=S[:1]), "state", "length 1"),
    bad("cell state batch", "lstm_cell", "state", ValueError, cell(state=(jnp.zeros((B + 1, H)),) * 2),
        "state[0] (h)", "(2, 4)", "(3, 4)"),
    bad("cell projected state h of units", "lstm_cell", "state", ValueError, cell(params=PP),
        "state[0] (h)", "(2, 2)", "(2, 4)"),
    bad("cell x a list", "lstm_cell", "x", TypeError, cell(x=X[:, 0].tolist()), "x must be an array", "list"),
    bad("cell x rank 3", "lstm_cell", "x", ValueError, cell(x=X), "x", "(batch, 3)", "(2, 5, 3)"),
    bad("cell x input_dim", "lstm_cell", "x", ValueError, cell(x=X[:, 0, :2]), "x", "(batch, 3)", "(2, 2)"),
    bad("cell activation an int", "lstm_cell", "activation", TypeError, cell(activation=1), "activation", "callable"),
    bad("cell recurrent_activation 0", "lstm_cell", "recurrent_activation", TypeError,
        cell(recurrent_activation=0), "recurrent_activation", "callable"),
    # init_params
    bad("key None", "init_params", "key", TypeError, init(key=None), "key", "jax.random key", "NoneType"),
    bad("several keys for init", "init_params", "key", ValueError, init(key=KEYS), "key", "several keys"),
    bad("input_dim a string", "init_params", "input_dim", TypeError, init(input_dim="3"), "input_dim", "str"),
    bad("zero input_dim", "init_params", "input_dim", ValueError, init(input_dim=0), "input_dim", "positive int", "0"),
    bad("negative units", "init_params", "units", ValueError, init(units=-3), "units", "positive int", "-3"),
    bad("float units", "init_params", "units", TypeError, init(units=4.0), "units", "int", "float"),
    bad("integer dtype", "init_params", "dtype", TypeError, init(dtype=jnp.int32), "dtype", "floating", "int32"),
    bad("dtype no dtype", "init_params", "dtype", TypeError, init(dtype="not a dtype"), "dtype", "'not a dtype'"),
    bad("unit_forget_bias a string", "init_params", "unit_forget_bias", TypeError, init(unit_forget_bias="no"),
        "unit_forget_bias", "Python bool"),
    # proj_size: PyTorch's rule, a ValueError for any value but an int in (0, units)
    bad("proj_size a string", "init_params", "proj_size", ValueError, init(proj_size="2"),
        "proj_size", "0 < proj_size < units", "'2'"),
    bad("proj_size a float", "init_params", "proj_size", ValueError, init(proj_size=2.0), "proj_size", "2.0"),
    bad("proj_size a bool", "init_params", "proj_size", ValueError, init(proj_size=True), "proj_size", "True"),
    bad("proj_size 0", "init_params", "proj_size", ValueError, init(proj_size=0),
        "proj_size", "0 < proj_size < units (4)", "got 0"),
    bad("proj_size -1", "init_params", "proj_size", ValueError, init(proj_size=-1), "proj_size", "got -1"),
    bad("proj_size equal to units", "init_params", "proj_size", ValueError, init(proj_size=H),
        "proj_size", "0 < proj_size < units (4)", "got 4"),
    bad("proj_size above units", "init_params", "proj_size", ValueError, init(proj_size=H + 1),
        "proj_size", "units (4)", "got 5"),
    # init_stacked_params
    bad("num_layers a bool", "init_stacked_params", "num_layers", TypeError, init_stacked(num_layers=True),
        "num_layers must be a positive int, got bool"),
    bad("num_layers 0", "init_stacked_params", "num_layers", ValueError, init_stacked(num_layers=0),
        "num_layers must be a positive int", "0"),
    bad("init_stacked units a float", "init_stacked_params", "units", TypeError, init_stacked(units=2.0), "units", "float"),
    bad("init_stacked input_dim negative", "init_stacked_params", "input_dim", ValueError, init_stacked(input_dim=-1),
        "input_dim", "-1"),
    bad("init_stacked bidirectional None", "init_stacked_params", "bidirectional", TypeError,
        init_stacked(bidirectional=None), "bidirectional", "Python bool"),
    bad("init_stacked merge_mode an int", "init_stacked_params", "merge_mode", TypeError,
        init_stacked(bidirectional=True, merge_mode=1), "merge_mode", "1"),
    bad("init_stacked merge_mode unknown", "init_stacked_params", "merge_mode", ValueError,
        init_stacked(bidirectional=True, merge_mode="max"), "merge_mode", "'max'"),
    bad("init_stacked proj_size a float", "init_stacked_params", "proj_size", ValueError,
        init_stacked(proj_size=1.5), "proj_size", "1.5"),
    bad("init_stacked proj_size 0", "init_stacked_params", "proj_size", ValueError, init_stacked(proj_size=0),
        "proj_size", "units (4)", "got 0"),
    bad("init_stacked proj_size equal to units", "init_stacked_params", "proj_size", ValueError,
        init_stacked(proj_size=H, bidirectional=True), "proj_size", "units (4)", "got 4"),
    # bidirectional
    bad("forward_params None", "bidirectional", "forward_params", TypeError, bidirectional(forward_params=None),
        "forward_params", "LSTMParams", "NoneType"),
    bad("backward_params None", "bidirectional", "backward_params", TypeError, bidirectional(backward_params=None),
        "backward_params must be an LSTMParams"),
    bad("backward_params of two arrays", "bidirectional", "backward_params", ValueError,
        bidirectional(backward_params=P[:2]), "backward_params", "length 2"),
    bad("bidirectional inputs input_dim", "bidirectional", "inputs", ValueError,
        bidirectional(inputs=jnp.ones((B, T, I + 1))), "inputs must have shape (batch, time, 3), got (2, 5, 4)"),
    bad("bidirectional backward input_dim", "bidirectional", "backward_params", ValueError,
        bidirectional(backward_params=jlstm.init_params(jax.random.key(1), I + 1, H)),
        "backward_params.kernel", "(3, 4 * units)"),
    bad("bidirectional sum of different units", "bidirectional", "merge_mode", ValueError,
        bidirectional(backward_params=jlstm.init_params(jax.random.key(1), I, H + 1), merge_mode="sum"),
        "merge_mode='sum'", "same output width", "got 4 (forward) and 5 (backward)"),
    bad("bidirectional sum of a projection and none", "bidirectional", "merge_mode", ValueError,
        bidirectional(forward_params=PP, merge_mode="ave"), "merge_mode='ave'", "same output width",
        "proj_size", "got 2 (forward) and 4 (backward)"),
    bad("bidirectional projected backward recurrent_kernel", "bidirectional", "backward_params", ValueError,
        bidirectional(backward_params=PP._replace(recurrent_kernel=jnp.ones((H, 4 * H)))),
        "backward_params.recurrent_kernel", "(2, 16)", "(4, 16)"),
    bad("unknown merge_mode", "bidirectional", "merge_mode", ValueError, bidirectional(merge_mode="max"),
        "merge_mode", "'concat', 'sum', 'mul', 'ave' or None", "'max'"),
    bad("merge_mode not a string", "bidirectional", "merge_mode", TypeError, bidirectional(merge_mode=1),
        "merge_mode", "'concat'", "1"),
    bad("bidirectional state stacked", "bidirectional", "initial_state", TypeError,
        bidirectional(initial_state=jnp.stack(S)), "initial_state", "(h_fwd, c_fwd, h_bwd, c_bwd)", "one array"),
    bad("bidirectional state of two", "bidirectional", "initial_state", ValueError, bidirectional(initial_state=S),
        "initial_state", "(h_fwd, c_fwd, h_bwd, c_bwd)", "length 2"),
    bad("bidirectional c_bwd units", "bidirectional", "initial_state", ValueError,
        bidirectional(initial_state=(*S, S[0], S[1][:, :2])), "initial_state[3] (c_bwd) must have shape (2, 4), got"),
    bad("bidirectional projected h_fwd of units", "bidirectional", "initial_state", ValueError,
        bidirectional(forward_params=PP, backward_params=PP, initial_state=(*S, *SP)),
        "initial_state[0] (h_fwd) must have shape (2, 2), got (2, 4)"),
    bad("bidirectional projected h_bwd of units", "bidirectional", "initial_state", ValueError,
        bidirectional(backward_params=PP, initial_state=(*S, *S)),
        "initial_state[2] (h_bwd) must have shape (2, 2), got (2, 4)"),
    bad("bidirectional projected state of two", "bidirectional", "initial_state", ValueError,
        bidirectional(forward_params=PP, backward_params=PP, initial_state=SP),
        "initial_state", "(h_fwd, c_fwd, h_bwd, c_bwd)", "(batch, proj_size) when projected", "length 2"),
    bad("bidirectional mask", "bidirectional", "mask", ValueError, bidirectional(mask=jnp.ones((B, T - 1), bool)),
        "mask", "(2, 5)", "(2, 4)"),
    bad("bidirectional return_state a string", "bidirectional", "return_state", TypeError,
        bidirectional(return_state="no"), "return_state", "Python bool"),
    bad("bidirectional activation", "bidirectional", "activation", TypeError, bidirectional(activation="tanh"),
        "activation", "callable"),
    bad("bidirectional unroll a float", "bidirectional", "unroll", TypeError, bidirectional(unroll=1.5),
        "unroll", "float"),
    bad("bidirectional unroll negative", "bidirectional", "unroll", ValueError, bidirectional(unroll=-1),
        "unroll", "-1"),
    bad("bidirectional remat_chunk 0", "bidirectional", "remat_chunk", ValueError, bidirectional(remat_chunk=0),
        "remat_chunk", "0"),
    bad("bidirectional recurrence None", "bidirectional", "recurrence", TypeError, bidirectional(recurrence=None),
        "recurrence", "None"),
    bad("bidirectional recurrence unknown", "bidirectional", "recurrence", ValueError,
        bidirectional(recurrence="loop"), "recurrence", "'loop'"),
    bad("bidirectional dropout negative", "bidirectional", "dropout", ValueError, bidirectional(dropout=-0.1),
        "dropout", "-0.1"),
    bad("bidirectional training, no key", "bidirectional", "key", ValueError, bidirectional(dropout=0.1, training=True),
        "training with dropout", "needs a PRNG key"),
    # stacked_lstm
    bad("params_list one LSTMParams", "stacked_lstm", "params_list", TypeError, stacked(params_list=P),
        "params_list", "got a single LSTMParams"),
    bad("params_list empty", "stacked_lstm", "params_list", ValueError, stacked(params_list=[]),
        "params_list", "at least one", "0"),
    bad("params_list odd for two directions", "stacked_lstm", "params_list", ValueError,
        stacked(params_list=[P, P, P_NEXT], bidirectional=True, merge_mode="sum"), "an even number > 0, got 3"),
    bad("params_list of two arrays", "stacked_lstm", "params_list", ValueError, stacked(params_list=[P, P_NEXT[:2]]),
        "params_list[1]", "length 2"),
    bad("params_list a layer too wide", "stacked_lstm", "params_list", ValueError,
        stacked(params_list=[P, P, P_NEXT, P_NEXT], bidirectional=True),
        "params_list[2].kernel must have shape (8, 16)", "got (4, 16)"),
    bad("stacked inputs input_dim", "stacked_lstm", "inputs", ValueError, stacked(inputs=jnp.ones((B, T, I + 1))),
        "inputs must have shape (batch, time, 3), got (2, 5, 4)"),
    bad("stacked state one array", "stacked_lstm", "initial_state", TypeError,
        stacked(initial_state=jnp.zeros((2, B, H))), "initial_state", "pair", "one array"),
    bad("stacked state of three arrays", "stacked_lstm", "initial_state", ValueError,
        stacked(initial_state=(jnp.zeros((2, B, H)),) * 3), "initial_state", "length 3"),
    bad("stacked state rows", "stacked_lstm", "initial_state", ValueError,
        stacked(initial_state=(jnp.zeros((1, B, H)),) * 2), "initial_state[0] (h) must have shape (2, 2, 4), got"),
    bad("stacked projected state h of units", "stacked_lstm", "initial_state", ValueError,
        stacked(params_list=[PP, PP_NEXT], initial_state=(jnp.zeros((2, B, H)),) * 2),
        "initial_state[0] (h) must have shape (2, 2, 2), got (2, 2, 4)"),
    bad("stacked projected state c of proj_size", "stacked_lstm", "initial_state", ValueError,
        stacked(params_list=[PP, PP, PP_NEXT_BI, PP_NEXT_BI], bidirectional=True,
                initial_state=(jnp.zeros((4, B, 2)),) * 2),
        "initial_state[1] (c) must have shape (4, 2, 4), got (4, 2, 2)"),
    bad("stacked a projected layer over a plain one", "stacked_lstm", "params_list", ValueError,
        stacked(params_list=[P, jlstm.init_params(KEY, H, H, proj_size=2)]),
        "params_list[1].recurrent_kernel must have shape (4, 16)", "the units and the proj_size", "got (2, 16)"),
    bad("stacked bidirectional a string", "stacked_lstm", "bidirectional", TypeError, stacked(bidirectional="yes"),
        "bidirectional", "Python bool"),
    bad("stacked return_sequences a string", "stacked_lstm", "return_sequences", TypeError,
        stacked(return_sequences="False"), "return_sequences", "Python bool"),
    bad("stacked merge_mode an int", "stacked_lstm", "merge_mode", TypeError,
        stacked(params_list=[P, P], bidirectional=True, merge_mode=2), "merge_mode", "2"),
    bad("stacked merge_mode unknown", "stacked_lstm", "merge_mode", ValueError,
        stacked(params_list=[P, P], bidirectional=True, merge_mode="max"), "merge_mode must be one of", "'max'"),
    bad("stacked merge_mode None", "stacked_lstm", "merge_mode", ValueError,
        stacked(params_list=[P, P], bidirectional=True, merge_mode=None), "merge_mode must be one of", "None"),
    bad("stacked mask transposed", "stacked_lstm", "mask", ValueError, stacked(mask=jnp.ones((T, B), bool)),
        "mask", "(2, 5)", "(5, 2)"),
    bad("stacked unroll a string", "stacked_lstm", "unroll", TypeError, stacked(unroll="1"), "unroll", "str"),
    bad("inter_layer_dropout a string", "stacked_lstm", "inter_layer_dropout", TypeError,
        stacked(inter_layer_dropout="0.5"), "inter_layer_dropout must be a float in [0, 1), got str"),
    bad("inter_layer_dropout 1", "stacked_lstm", "inter_layer_dropout", ValueError, stacked(inter_layer_dropout=1.0),
        "inter_layer_dropout must be a float in [0, 1), got 1.0"),
    bad("inter_layer_dropout, no key", "stacked_lstm", "key", ValueError,
        stacked(inter_layer_dropout=0.5, training=True), "inter_layer_dropout=0.5", "needs a PRNG key"),
    # tune
    bad("tune mode unknown", "tune", "mode", ValueError, tune(mode="fit"), "mode", "'fit'"),
    bad("tune mode an int", "tune", "mode", TypeError, tune(mode=1), "mode", "1"),
    bad("tune max_seconds 0", "tune", "max_seconds", ValueError, tune(max_seconds=0), "max_seconds", "0"),
    bad("tune max_rounds 0", "tune", "max_rounds", ValueError, tune(max_rounds=0), "max_rounds", "0"),
    # from_keras
    bad("from_keras an int", "from_keras", "layer_or_model", TypeError, lambda: jlstm.from_keras(3),
        "expected a keras.layers.LSTM", "int"),
    bad("from_keras unbuilt", "from_keras", "layer_or_model", ValueError,
        from_keras(lambda keras: keras.layers.LSTM(2, name="unbuilt")), "layer 'unbuilt' is not built yet"),
    *(bad(f"from_keras {what}", "from_keras", "layer_or_model", TypeError, from_keras(make), *words)
      for what, make, words in [
          ("gru", lambda keras: keras.layers.GRU(2), ("expected a keras.layers.LSTM", "got GRU")),
          ("simple_rnn", lambda keras: keras.layers.SimpleRNN(2), ("got SimpleRNN",)),
          ("conv_lstm", lambda keras: keras.layers.ConvLSTM1D(2, 3), ("got ConvLSTM1D",)),
          ("bidirectional_gru", lambda keras: keras.layers.Bidirectional(keras.layers.GRU(2)), ("got GRU",)),
          ("stacked_cells", lambda keras: keras.layers.RNN([keras.layers.LSTMCell(2), keras.layers.LSTMCell(2)]),
           ("over a StackedRNNCells",)),
          ("dense", lambda keras: keras.layers.Dense(2), ("got Dense",)),
      ]),
    bad("from_keras custom cell", "from_keras", "layer_or_model", TypeError,
        from_keras(lambda keras: keras_model(keras, keras.layers.RNN(type("MyCell", (keras.layers.LSTMCell,), {})(2)))),
        "RNN over a MyCell, expected the default keras.layers.LSTMCell"),
    bad("from_keras a model with a GRU", "from_keras", "layer_or_model", TypeError,
        from_keras(lambda keras: keras_model(keras, keras.layers.LSTM(2, return_sequences=True),
                                             keras.layers.GRU(2, name="gru_in_model"))),
        "got GRU 'gru_in_model'"),
    bad("from_keras a model without LSTM", "from_keras", "layer_or_model", ValueError,
        from_keras(lambda keras: keras.Sequential([keras.Input((I,)), keras.layers.Dense(2)], name="dense_only")),
        "model 'dense_only' has no LSTM layer"),
    bad("from_keras a custom activation", "from_keras", "layer_or_model", ValueError,
        from_keras(lambda keras: keras_model(keras, keras.layers.LSTM(2, activation=lambda z: keras.ops.tanh(z)))),
        "layer 'lstm", "has activation=", "lambda", "no jax equivalent"),
    bad("from_keras softmax", "from_keras", "layer_or_model", ValueError,
        from_keras(lambda keras: keras_model(keras, keras.layers.LSTM(2, activation="softmax"))),
        "layer 'lstm", "has activation=", "softmax", "no jax equivalent"),
    bad("from_keras forward half backwards", "from_keras", "layer_or_model", ValueError,
        from_keras(lambda keras: keras_model(keras, keras.layers.Bidirectional(
            keras.layers.LSTM(H, go_backwards=True), backward_layer=keras.layers.LSTM(H, go_backwards=False)))),
        "go_backwards"),
    # to_keras
    bad("to_keras LSTMParams for a Bidirectional", "to_keras", "params", TypeError,
        lambda: jlstm.to_keras(P, keras_layer("Bidirectional")),
        "params must be a (forward_params, backward_params) pair", "LSTMParams"),
    bad("to_keras one of a pair", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras((P,), keras_layer("Bidirectional")), "(forward_params, backward_params) pair", "length 1"),
    bad("to_keras backward input_dim", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras((P, P_NEXT), keras_layer("Bidirectional")),
        "params[1].kernel must have shape", "= (3, 16)", "(4, 16)"),
    bad("to_keras params of two arrays", "to_keras", "params", ValueError, lambda: jlstm.to_keras(P[:2], keras_layer()),
        "params", "length 2"),
    bad("to_keras input_dim", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras(jlstm.init_params(jax.random.key(0), 5, H), keras_layer(name="four")),
        "params.kernel must have shape (input_dim, 4 * units) = (3, 16) to fit Keras layer 'four', got (5, 16)"),
    bad("to_keras units", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras(jlstm.init_params(jax.random.key(0), I, 2), keras_layer()),
        "params.kernel must have shape (input_dim, 4 * units) = (3, 16)", "got (3, 8)"),
    bad("to_keras a bias for use_bias=False", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras(P, keras_layer(use_bias=False)), "has use_bias=False, so params.bias must be all zeros"),
    bad("to_keras too few for a model", "to_keras", "params", ValueError,
        lambda: jlstm.to_keras([P], two_lstm_model()),
        "has 2 LSTM layers ('one', 'two'), so params must be a sequence of 2 entries, got a list of length 1"),
    bad("to_keras LSTMPParams", "to_keras", "params", TypeError, lambda: jlstm.to_keras(PP, keras_layer()),
        "params is an LSTMPParams", "Keras has no", "no projection"),
    bad("to_keras LSTMPParams in a pair", "to_keras", "params", TypeError,
        lambda: jlstm.to_keras((P, PP), keras_layer("Bidirectional")), "params[1] is an LSTMPParams", "Keras has no"),
    bad("to_keras a string", "to_keras", "layer_or_model", TypeError, lambda: jlstm.to_keras(P, "lstm"),
        "expected a keras.layers.LSTM", "str"),
    bad("to_keras a GRU", "to_keras", "layer_or_model", TypeError, lambda: jlstm.to_keras(P, keras_layer("GRU")),
        "expected a keras.layers.LSTM", "got GRU"),
    # from_torch
    bad("from_torch a list", "from_torch", "module_or_state_dict", TypeError, lambda: jlstm.from_torch([]),
        "expected a torch.nn.LSTM, a torch.nn.LSTMCell or a state dict, got list"),
    bad("from_torch a GRU", "from_torch", "module_or_state_dict", TypeError, lambda: jlstm.from_torch(torch_module("GRU", 3, 2)),
        "expected a torch.nn.LSTM or torch.nn.LSTMCell, got GRU"),
    bad("from_torch an RNN", "from_torch", "module_or_state_dict", TypeError, lambda: jlstm.from_torch(torch_module("RNN", 3, 2)),
        "got RNN"),
    bad("from_torch another state dict", "from_torch", "module_or_state_dict", ValueError,
        lambda: jlstm.from_torch({"weight": np.zeros(2)}), "expected the state dict of one torch.nn.LSTM"),
    bad("from_torch a GRU's state dict", "from_torch", "weight_hh_l0", ValueError,
        lambda: jlstm.from_torch(torch_module("GRU", 3, 2).state_dict()),
        "weight_hh_l0 must have shape (4 * hidden_size, hidden_size), got (6, 2) (3 gates"),
    bad("from_torch weight_hr square", "from_torch", "weight_hr_l0", ValueError,
        lambda: jlstm.from_torch(projected_state_dict(weight_hr_l0=(H, H))),
        "weight_hr_l0 must have shape (proj_size, hidden_size) with proj_size < hidden_size, got (4, 4)"),
    bad("from_torch weight_hh of hidden_size with weight_hr", "from_torch", "weight_hh_l0", ValueError,
        lambda: jlstm.from_torch(projected_state_dict(weight_hh_l0=(4 * H, H))),
        "weight_hh_l0 must have shape (4 * hidden_size, proj_size) = (16, 2), got (16, 4)"),
    bad("from_torch weight_hr of one layer only", "from_torch", "weight_hr_l1", ValueError,
        lambda: jlstm.from_torch({k: v for k, v in torch_module("LSTM", I, H, num_layers=2, proj_size=2)
                                  .state_dict().items() if k != "weight_hr_l1"}),
        "weight_hr_l* keys (proj_size > 0) but no 'weight_hr_l1'"),
    bad("from_torch several LSTMs", "from_torch", "prefix", ValueError,
        lambda: jlstm.from_torch({f"{k}.{n}": v for k in ("enc", "dec") for n, v in torch_module().state_dict().items()}),
        "several: prefixes ['dec.', 'enc.']; pass prefix="),
    bad("from_torch prefix an int", "from_torch", "prefix", TypeError, lambda: jlstm.from_torch({}, prefix=0),
        "prefix", "int"),
    bad("from_torch prefix of nothing", "from_torch", "prefix", ValueError,
        lambda: jlstm.from_torch(torch_module().state_dict(), prefix="enc."), "prefix 'enc.'", "names no key"),
    bad("from_torch as_list a string", "from_torch", "as_list", TypeError,
        lambda: jlstm.from_torch(torch_module(), as_list="no"), "as_list", "Python bool", "'no'"),
    bad("from_torch as_list=False for two layers", "from_torch", "as_list", ValueError,
        lambda: jlstm.from_torch(torch_module("LSTM", I, H, num_layers=2), as_list=False),
        "as_list=False gives the params of one layer and one direction", "got 2", "as_list=True"),
    # to_torch
    bad("to_torch a dict", "to_torch", "params_list", TypeError, lambda: jlstm.to_torch(P._asdict(), torch_module()),
        "params_list must be a list of LSTMParams", "dict"),
    bad("to_torch too few", "to_torch", "params_list", ValueError,
        lambda: jlstm.to_torch([P, P], torch_module("LSTM", I, H, num_layers=2, bidirectional=True)),
        "needs 4 LSTMParams (one per layer and direction: l0, l0_reverse, l1, l1_reverse), got 2"),
    bad("to_torch a layer's input_dim", "to_torch", "params_list", ValueError,
        lambda: jlstm.to_torch([P, P, P_NEXT, P_NEXT], torch_module("LSTM", I, H, num_layers=2, bidirectional=True)),
        "params_list[2].kernel must have shape (input_dim, 4 * hidden_size) = (8, 16)",
        "for weights_l1 of LSTM(3, 4, num_layers=2, bidirectional=True), got (4, 16)"),
    bad("to_torch units", "to_torch", "params_list", ValueError,
        lambda: jlstm.to_torch([jlstm.init_params(jax.random.key(0), I, 2)], torch_module()),
        "params_list[0].kernel must have shape", "(3, 16)", "(3, 8)"),
    bad("to_torch bias length", "to_torch", "bias", ValueError,
        lambda: jlstm.to_torch([P._replace(bias=P.bias[:15])], torch_module("LSTMCell")),
        "bias must have shape (16,), got (15,)"),
    bad("to_torch a bias for bias=False", "to_torch", "params_list", ValueError,
        lambda: jlstm.to_torch([P], torch_module(bias=False)), "bias=False, so params_list[0].bias must be all zeros"),
    bad("to_torch LSTMParams for proj_size", "to_torch", "params_list", TypeError,
        lambda: jlstm.to_torch([P], torch_module("LSTM", I, H, proj_size=2)),
        "params_list[0] must be an LSTMPParams (the module has proj_size=2), got LSTMParams"),
    bad("to_torch LSTMPParams without proj_size", "to_torch", "params_list", TypeError,
        lambda: jlstm.to_torch([PP], torch_module()),
        "params_list[0] must be an LSTMParams", "no proj_size", "LSTMPParams"),
    bad("to_torch LSTMPParams for an LSTMCell", "to_torch", "params_list", TypeError,
        lambda: jlstm.to_torch(PP, torch_module("LSTMCell")), "must be an LSTMParams", "got LSTMPParams"),
    bad("to_torch another proj_size", "to_torch", "params_list", ValueError,
        lambda: jlstm.to_torch([PP], torch_module("LSTM", I, H, proj_size=1)),
        "params_list[0].recurrent_kernel must have shape", "= (1, 16)", "proj_size=1", "got (2, 16)"),
    bad("to_torch a GRU", "to_torch", "module", TypeError, lambda: jlstm.to_torch([P], torch_module("GRU", I, H)),
        "got GRU"),
    bad("to_torch a string", "to_torch", "module", TypeError, lambda: jlstm.to_torch([P], "lstm"),
        "module must be a torch.nn.LSTM or torch.nn.LSTMCell", "str"),
    # jlstm.linen
    bad("linen units a float", "LSTM", "units", TypeError, linen("LSTM", units=4.0), "units", "float"),
    bad("linen units 0", "LSTM", "units", ValueError, linen("LSTM", units=0), "units", "0"),
    bad("linen inputs a list", "LSTM", "inputs", TypeError, linen("LSTM", inputs=np.ones((B, T, I)).tolist()),
        "inputs", "list"),
    bad("linen inputs rank 2", "LSTM", "inputs", ValueError, linen("LSTM", inputs=X[0]), "inputs", "(5, 3)"),
    bad("linen dropout None", "LSTM", "dropout", TypeError, linen("LSTM", dropout=None), "dropout", "NoneType"),
    bad("linen recurrent_dropout 1.5", "LSTM", "recurrent_dropout", ValueError, linen("LSTM", recurrent_dropout=1.5),
        "recurrent_dropout", "1.5"),
    bad("linen param_dtype int32", "LSTM", "param_dtype", TypeError, linen("LSTM", param_dtype=jnp.int32),
        "param_dtype", "int32"),
    bad("linen dtype int8", "LSTM", "dtype", TypeError, linen("LSTM", dtype="int8"),
        "dtype must be a floating dtype or None, got 'int8'"),
    bad("linen proj_size equal to units", "LSTM", "proj_size", ValueError, linen("LSTM", proj_size=H),
        "proj_size", "units (4)", "got 4"),
    bad("linen proj_size a string", "LSTM", "proj_size", ValueError, linen("LSTM", proj_size="2"), "proj_size", "'2'"),
    bad("linen Bidirectional units -1", "Bidirectional", "units", ValueError, linen("Bidirectional", units=-1),
        "units", "-1"),
    bad("linen Bidirectional proj_size 0", "Bidirectional", "proj_size", ValueError,
        linen("Bidirectional", proj_size=0), "proj_size", "got 0"),
    bad("linen Bidirectional inputs None", "Bidirectional", "inputs", TypeError, linen("Bidirectional", inputs=None),
        "inputs", "NoneType"),
    bad("linen Bidirectional merge_mode", "bidirectional", "merge_mode", ValueError,
        linen("Bidirectional", merge_mode="max"), "merge_mode", "'max'"),
    # jlstm.nnx
    bad("nnx input_dim None", "LSTM", "input_dim", TypeError, nnx("LSTM", input_dim=None), "input_dim", "NoneType"),
    bad("nnx units 0", "LSTM", "units", ValueError, nnx("LSTM", units=0), "units", "0"),
    bad("nnx dropout 1", "LSTM", "dropout", ValueError, nnx("LSTM", dropout=1.0), "dropout", "1.0"),
    bad("nnx deterministic a string", "LSTM", "deterministic", TypeError, nnx("LSTM", deterministic="no"),
        "deterministic", "Python bool"),
    bad("nnx deterministic an array", "LSTM", "deterministic", TypeError,
        nnx("LSTM", call_kw={"deterministic": jnp.array(True)}), "deterministic", "Python bool"),
    bad("nnx param_dtype int32", "LSTM", "param_dtype", TypeError, nnx("LSTM", param_dtype="int32"),
        "param_dtype", "'int32'"),
    bad("nnx dtype int8", "LSTM", "dtype", TypeError, nnx("LSTM", dtype="int8"),
        "dtype must be a floating dtype or None, got 'int8'"),
    bad("nnx proj_size 0", "LSTM", "proj_size", ValueError, nnx("LSTM", proj_size=0),
        "proj_size", "units (4)", "got 0"),
    bad("nnx proj_size a float", "LSTM", "proj_size", ValueError, nnx("LSTM", proj_size=2.0), "proj_size", "2.0"),
    bad("nnx proj_size -1", "LSTM", "proj_size", ValueError, nnx("LSTM", proj_size=-1), "proj_size", "got -1"),
    bad("nnx Bidirectional units a float", "Bidirectional", "units", TypeError, nnx("Bidirectional", units=3.5),
        "units", "float"),
    bad("nnx Bidirectional proj_size above units", "Bidirectional", "proj_size", ValueError,
        nnx("Bidirectional", proj_size=H + 1), "proj_size", "got 5"),
    bad("nnx Bidirectional recurrent_dropout", "Bidirectional", "recurrent_dropout", ValueError,
        nnx("Bidirectional", recurrent_dropout=-0.5), "recurrent_dropout", "-0.5"),
    bad("nnx Bidirectional state of two", "bidirectional", "initial_state", ValueError,
        nnx("Bidirectional", call_kw={"initial_state": S}), "initial_state", "length 2"),
    bad("nnx rngs a seed", "LSTM", "rngs", TypeError, nnx_module("LSTM", rngs=0), "rngs must be an nnx.Rngs", "int"),
    bad("nnx dropout without a dropout stream", "LSTM", "rngs", ValueError,
        nnx_module("LSTM", call=True, dropout=0.5, deterministic=False), "rngs", "dropout=0.5",
        "pass rngs=nnx.Rngs(dropout=1)"),
    bad("nnx Bidirectional dropout without a dropout stream", "Bidirectional", "rngs", ValueError,
        nnx_module("Bidirectional", call=True, recurrent_dropout=0.5, deterministic=False), "rngs",
        "recurrent_dropout=0.5", "rngs=nnx.Rngs(params=0, dropout=1)"),
    # the flax modules around given weights
    bad("nnx from_params units", "LSTM.from_params", "units", TypeError, from_params("LSTM", P, units=H),
        "units come from params"),
    bad("nnx from_params a list", "LSTM.from_params", "params", TypeError, from_params("LSTM", [P]), "params", "list"),
    bad("nnx from_params a bias too long", "LSTM.from_params", "bias", ValueError,
        from_params("LSTM", P._replace(bias=jnp.zeros(4 * H + 1))), "bias", "(17,)"),
    bad("nnx Bidirectional from_params one direction", "Bidirectional.from_params", "params", TypeError,
        from_params("Bidirectional", P), "params must be a pair (forward, backward)", "LSTMParams"),
    bad("nnx Bidirectional from_params other sizes", "Bidirectional.from_params", "params", ValueError,
        from_params("Bidirectional", (P, P_NEXT)), "the same shapes", "forward", "backward"),
    bad("linen variables_from_params a dict", "variables_from_params", "params", TypeError,
        lambda: linen_variables(P._asdict()), "params must be an LSTMParams", "dict"),
    bad("linen variables_from_params a bias too long", "variables_from_params", "params[1].bias", ValueError,
        lambda: linen_variables((P, P._replace(bias=jnp.zeros(4 * H + 1)))), "params[1].bias", "(17,)"),
]


def _check(info, case):
    assert type(info.value) is case.error, f"{type(info.value).__name__}: {info.value}"
    message = str(info.value)
    assert message.startswith(f"{case.function}: "), message
    if case.argument is not None:
        assert re.search(rf"\b{re.escape(case.argument)}\b", message), (case.argument, message)
    position = 0
    for word in case.words:
        found = message.find(word, position)
        assert found >= 0, f"{word!r} not in {message[position:]!r} (the rest of {message!r})"
        position = found + len(word)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_raises_a_clear_error(case):
    with pytest.raises((TypeError, ValueError)) as info:
        case.call()
    _check(info, case)
    if isinstance(case.call, Call):  # the same error while traced under jax.jit: no XLA error
        with pytest.raises((TypeError, ValueError)) as info:
            case.call.under_jit()
        _check(info, case)


def test_the_catalogue_covers_every_public_function_with_both_errors():
    assert len({c.name for c in CASES}) == len(CASES)  # the ids are unique
    covered = {(c.function, c.error) for c in CASES}
    functions = {fn for fn, _ in covered}
    assert functions >= {
        "lstm", "lstm_cell", "bidirectional", "stacked_lstm", "init_params", "init_stacked_params", "tune",
        "from_keras", "to_keras", "from_torch", "to_torch", "LSTM", "Bidirectional",
    }
    for fn in functions:
        assert {(fn, TypeError), (fn, ValueError)} <= covered, fn


def test_the_baseline_arguments_pass_every_check():
    """Each case fails because of its one bad argument: the defaults it starts from are valid."""
    projected = (lstm(params=PP, initial_state=SP, mask=M), bidirectional(forward_params=PP, initial_state=(*SP, *S)),
                 cell(params=PP, state=SP), init(proj_size=H - 1), stacked(params_list=[PP, PP_NEXT]),
                 stacked(params_list=[PP, PP_NEXT], initial_state=(jnp.zeros((2, B, 2)), jnp.zeros((2, B, H)))),
                 stacked(params_list=[PP, PP, PP_NEXT_BI, PP_NEXT_BI], bidirectional=True),
                 init_stacked(proj_size=1, bidirectional=True))
    for call in (lstm(initial_state=S, mask=M), bidirectional(), cell(), init(), stacked(), init_stacked(), *projected):
        call()
        if isinstance(call, Call):
            call.under_jit()
    # Recurrent dropout not in training is no dropout at all: every recurrence runs it.
    for recurrence in ("step", "fused", jlstm.Plan()):
        lstm(recurrent_dropout=0.2, recurrence=recurrence)()
