"""The LSTM layer: validation, Keras's flags and layouts around one loop over the cell (``_recurrence``)."""

import functools
from collections.abc import Sequence
from typing import Any, Literal, overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _dropout, _options, _plan, _recurrence, _validate
from ._cell import Activation
from ._options import Options
from ._params import AnyParams, LSTMState, output_dim, state_dtype
from ._plan import Plan


# The overloads give mypy the result's type from the literal return_state; each lists every parameter.
@overload
def lstm(
    params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[False] = False,
    go_backwards: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array: ...
@overload
def lstm(
    params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[True],
    go_backwards: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]: ...
@overload
def lstm(
    params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array, jax.Array]: ...
def lstm(
    params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array, jax.Array]:
    r"""Runs an LSTM over a sequence, with the flags and results of ``keras.layers.LSTM``.

    Each step is [`lstm_cell`][jlstm.lstm_cell]: `z = x W + h R + b`, gates
    `i, f, o = σ(z_i), σ(z_f), σ(z_o)`, `c' = f c + i tanh(z_c)`,
    `h' = o tanh(c')`, iterated by one ``lax.scan`` that carries ``(h, c)``
    (see ``recurrence`` for where `x W` is computed and how gradients are
    formed).

    | flags                | returns (``B`` batch, ``T`` time, ``H`` units)                     |
    | -------------------- | ------------------------------------------------------------------ |
    | default              | ``h_T``: ``(B, H)``                                                |
    | ``return_sequences`` | every ``h_t``: ``(B, T, H)`` (``(T, B, H)`` if ``time_major``)     |
    | ``return_state``     | ``(h_T, h_T, c_T)``: output, then the final state                  |
    | both                 | ``(sequence, h_T, c_T)``; ``sequence[:, -1] == h_T`` unmasked      |

    Masks (Keras's TensorFlow semantics): a masked step leaves ``(h, c)``
    unchanged and outputs the previous step's output, which is zero before
    the first unmasked step even with a non-zero ``initial_state``. The last
    output is the last element of that sequence; a fully masked row outputs
    zeros and returns ``initial_state``.

    Resets (episodes, packed sequences): ``reset[b, t]`` True starts a new
    segment of row ``b`` at step ``t``: before that step ``h`` and ``c`` are
    zeros, and so is the mask rule's previous output, as at the start of a
    sequence with no ``initial_state``. The first segment of a row starts
    from ``initial_state`` unless ``reset[b, 0]``. The rule: every row's
    result equals running each of its segments on its own through this
    function with the same flags (the first from ``initial_state``, every
    later one from zeros) and joining the pieces; the last output and the
    final state are the last segment's. With ``go_backwards`` each segment is
    read from its last step to its first and the segments from the last to
    the first; the first one processed (the last in time) starts from
    ``initial_state`` and ``reset[b, 0]`` changes nothing. A mask applies
    inside each segment as if it were its own sequence; a reset on a masked
    step still restarts the state. Nothing before a reset reaches anything
    after it: the gradient across it is exactly zero.

    Warning:
      ``go_backwards=True`` reads the input from the last step to the first and
      returns the sequence in processing order, i.e. reversed in time, exactly
      as Keras does; flip it (``output[:, ::-1]``) to align it with the input.
      The mask is reversed with the input. PyTorch has no such flag: its
      bidirectional layers flip the backward outputs back, as
      [`bidirectional`][jlstm.bidirectional] does.

    Dtypes: the matmuls read their operands in the params' dtype (``inputs``
    are cast to it) and accumulate in the *state dtype*, which is float32 for
    bfloat16 and float16 params and the params' dtype otherwise (float32,
    float64). The gates, the carry ``(h, c)``, the output and the returned
    state all have the state dtype, so rounding does not build up in ``c``
    over long sequences and a returned state fed back as ``initial_state``
    loses nothing. Cast the output yourself if you want 16 bits.

    Warning:
      Keras (``dtype="bfloat16"`` or a ``mixed_bfloat16`` policy) and PyTorch
      autocast keep the state in 16 bits; jlstm's low-precision results are
      closer to float32 than theirs.

    Dropout (Keras's ``dropout`` / ``recurrent_dropout``), only when
    ``training``: masks are drawn from ``key`` once per call, one per sequence
    (batch row) and reused at every time step, with inverted scaling (kept
    values are multiplied by ``1 / (1 - rate)``). With ``recurrent_dropout == 0``
    one mask ``(batch, input_dim)`` multiplies ``x`` for all four gates; with
    ``recurrent_dropout > 0`` each gate (i, f, c, o) has its own input mask and
    its own mask ``(batch, units)`` on ``h``, as Keras's implementation 1 does.
    Not training, or both rates 0, is exactly the plain LSTM.

    Warning:
      PyTorch's ``nn.LSTM(dropout=p)`` is something else: ordinary dropout on the
      outputs between stacked layers ([`stacked_lstm`][jlstm.stacked_lstm]'s
      ``inter_layer_dropout``). Keras ignores a rate of exactly 1; jlstm rejects it.

    Warning:
      Keras's JAX backend differs from its TensorFlow backend when a row's
      leading steps are masked and ``initial_state`` is non-zero (it outputs
      ``h0`` there, not zeros). jlstm follows the TensorFlow backend.

    Args:
      params: an [`LSTMParams`][jlstm.LSTMParams] (or an [`LSTMPParams`][jlstm.LSTMPParams]); ``inputs``
        are cast to its dtype, and
        ``initial_state`` to the state dtype (see Dtypes above).
      inputs: ``(batch, time, input_dim)``, or ``(time, batch, input_dim)``
        when ``time_major``; floating. ``batch`` and ``time`` are at least 1.
      initial_state: ``(h0, c0)``, each ``(batch, units)``; zeros if None.
      mask: ``(batch, time)`` (``(time, batch)`` when ``time_major``), bool or
        0/1 numbers; True/1 marks the steps to process.
      reset: ``(batch, time)`` (``(time, batch)`` when ``time_major``), bool;
        True starts a new segment of that row at that step (see Resets above).
      return_sequences: return the output of every step, not only the last.
      return_state: also return the final ``h`` and ``c``.
      go_backwards: process the sequence in reverse (see the warning).
      time_major: inputs, mask and output sequence have time first.
      activation: cell activation, ``tanh`` by default.
      recurrent_activation: gate activation, ``sigmoid`` by default.
      unroll: how many steps ``lax.scan`` unrolls per iteration (``True``: all).
      dropout: fraction of the inputs dropped, in ``[0, 1)``.
      recurrent_dropout: fraction of ``h`` dropped in the recurrence, in ``[0, 1)``.
      training: apply dropout; when False (the default) the rates are ignored.
      key: a ``jax.random`` key, required when training with a rate above 0.
      remat_chunk: split the scan into chunks of this many steps and recompute
        each chunk in the backward pass (``jax.checkpoint``): training memory
        of order ``T / remat_chunk + remat_chunk`` steps instead of ``T``, for
        one more forward pass; the same results and gradients to float32 round-off. ``T`` need not be a
        multiple of it. About ``sqrt(T)`` is a good choice for long sequences.
      recurrence: how the loop is run; every choice gives the same numbers
        to float32 round-off (to 16-bit round-off in the gradients of
        16-bit params), and every choice supports every JAX transformation
        (``grad``, ``jvp``, ``jacfwd``, ``linearize``, ``hessian``, ``vmap``).
        ``"fused"`` projects ``x_t`` inside the step and has a custom JVP
        whose transpose, in reverse mode, forms the weight gradients as a few
        large matmuls over chunks of steps, cuDNN's approach; ``"step"`` is the
        same forward pass under plain autodiff; ``"scan"`` hoists ``x W + b``
        out of the loop and is the only one that runs ``recurrent_dropout`` in
        training or ``remat_chunk``. A [`Plan`][jlstm.Plan] says how the
        loop runs in full (layout, batch chains, where ``x W`` is computed,
        which backward). ``"auto"`` (the default) runs the plan that
        [`tune`][jlstm.tune] recorded for these shapes, else the default plan
        for the shapes and the machine, and ``"scan"`` where only the scan
        applies; ``"fused"`` and ``"step"`` take the default plan's layout
        and chains with that backward. ``"auto"`` resolves when the call is
        traced, from the backend it is traced on: under ``jax.export`` on a
        CPU it is the CPU plan, whatever platforms the program is lowered
        for; pass ``recurrence=Plan.default_for(params, inputs, backend="cuda")``
        (see [`Plan.default_for`][jlstm.Plan.default_for]) to export the plan
        a GPU or TPU would run.
      precision: the precision of every matmul, in the forward pass and in
        every derivative: None (JAX's default), ``"default"``, ``"high"``,
        ``"highest"`` (or ``"bfloat16"``, ``"tensorfloat32"``, ``"float32"``),
        or a ``jax.lax.Precision``. On a CPU every setting computes float32
        matmuls in float32. JAX's default allows TF32 on recent NVIDIA GPUs
        and one bfloat16 pass on a TPU; ``"highest"`` computes float32 there
        too, as the parity with Keras and PyTorch (about 1e-5) assumes
        (see the numerics page).

    Returns:
      ``output`` if not ``return_state``, else ``(output, h, c)``.

    Raises:
      ValueError: a wrong shape, count or value, named with what was
        expected and what was received: a shape that disagrees with the
        others; ``params`` that is not three arrays or ``initial_state`` that
        is not two; an empty batch or sequence (``batch`` or ``time`` 0), on
        which Keras fails too; ``unroll`` or ``remat_chunk`` below 1; a flag
        given as an int other than 0 or 1; an unknown ``recurrence``; a
        dropout rate outside ``[0, 1)``; training with dropout and no ``key``,
        or with several keys.
      TypeError: a wrong type: a non-array argument, a ``params`` or
        ``initial_state`` that is not a tuple, a non-floating ``inputs`` or
        state, a flag that is not a Python bool, a non-int ``unroll`` or
        ``remat_chunk``, a non-number dropout rate, a ``key`` that is not a
        key, a non-string ``recurrence``, an activation that is not callable.

    Examples:
      The classic Keras tutorial, ``LSTM(1)`` on ``[0.1, 0.2, 0.3]``:

      >>> import jax, jax.numpy as jnp, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=1, units=1)
      >>> x = jnp.array([0.1, 0.2, 0.3]).reshape(1, 3, 1)
      >>> jlstm.lstm(params, x).shape
      (1, 1)
      >>> seq, h, c = jlstm.lstm(params, x, return_sequences=True, return_state=True)
      >>> seq.shape, h.shape, c.shape, bool((seq[:, -1] == h).all())
      ((1, 3, 1), (1, 1), (1, 1), True)
    """
    options = _options.check("lstm", locals())
    return run("lstm", params, inputs, initial_state, mask, key, options, reset=reset)


def run(
    fn: str,
    params: AnyParams,
    inputs: jax.Array | np.ndarray,
    initial_state: Sequence[jax.Array] | None,
    mask: jax.Array | None,
    key: jax.Array | None,
    options: Options,
    *,
    name: str = "params",
    reset: jax.Array | None = None,
) -> Any:
    """:func:`lstm` with checked ``options``: checks the arrays under ``fn``'s name and runs the layer.

    ``name`` is the argument that holds ``params`` in ``fn``'s signature.
    The plan is resolved here, outside ``jax.jit``, so that a plan that
    :func:`jlstm.tune` records takes effect at the next call (it is part of
    the static ``options``).
    """
    params = _validate.params(fn, params, name)
    names = ("time", "batch", "input_dim") if options.time_major else ("batch", "time", "input_dim")
    inputs = _validate.array(fn, "inputs", inputs, (None, None, params.input_dim), names)
    time, batch = inputs.shape[:2] if options.time_major else inputs.shape[1::-1]
    if batch == 0 or time == 0:
        raise ValueError(
            f"{fn}: inputs must have at least one batch row and one time step, got shape {tuple(inputs.shape)}"
        )
    if initial_state is not None:
        initial_state = _validate.state(fn, "initial_state", initial_state, batch, params)
    if mask is not None:
        mask = _validate.mask(fn, mask, inputs.shape[:2], options.time_major)
    if reset is not None:
        reset = _validate.reset(fn, reset, tuple(inputs.shape[:2]), names[:2])
    dropout = options.dropout > 0 or options.recurrent_dropout > 0
    options = options._replace(recurrence=_plan_for(fn, options, params, inputs))
    inputs = inputs.astype(params.kernel.dtype)
    return _lstm(params, inputs, initial_state, mask, reset, key if dropout else None, options)


def _plan_for(fn: str, options: Options, params: AnyParams, inputs: jax.Array) -> str | Plan:
    """``"scan"`` or the :class:`Plan` that runs ``options``' recurrence on these shapes."""
    recurrence, unroll = options.recurrence, options.unroll
    if isinstance(recurrence, Plan) and unroll != 1:
        raise ValueError(f"{fn}: with recurrence=Plan(...), give unroll in the plan, got unroll={unroll!r}")
    problem = _plan.problem(inputs, params.units, params.kernel.dtype, time_major=options.time_major)
    plain = options.remat_chunk is None and options.recurrent_dropout == 0
    plan = _plan.resolve(fn, recurrence, problem, plain=plain)
    if plan == "scan" or isinstance(recurrence, Plan) or unroll == 1:
        return plan
    return plan._replace(unroll=problem.time if unroll is True else max(int(unroll), 1))


@functools.partial(jax.jit, static_argnums=6)
def _lstm(
    params: AnyParams,
    inputs: jax.Array,
    initial_state: LSTMState | None,
    mask: jax.Array | None,
    reset: jax.Array | None,
    key: jax.Array | None,
    options: Options,
):
    xs = inputs if options.time_major else jnp.swapaxes(inputs, 0, 1)  # (T, B, I)
    batch, dtype = xs.shape[1], state_dtype(params.kernel.dtype)
    if initial_state is None:
        # Zeros laid out like the inputs' batch axis, so that the carry has one type under explicit sharding.
        zeros = jnp.zeros_like(xs[0, :, :1], dtype=dtype)
        h0 = jnp.broadcast_to(zeros, (batch, output_dim(params)))
        initial_state = LSTMState(h0, jnp.broadcast_to(zeros, (batch, params.units)))
    ms = None if mask is None else (mask if options.time_major else mask.T)  # (T, B)
    rs = None if reset is None else (reset if options.time_major else reset.T)  # (T, B)
    if options.go_backwards:
        xs = xs[::-1]
        ms = None if ms is None else ms[::-1]
        # In processing order a segment starts at its last input step: the step before an input-time reset.
        # The first step processed starts from initial_state, whatever reset[:, 0] says.
        rs = None if rs is None else jnp.concatenate([jnp.zeros_like(rs[:1]), rs[:0:-1]])
    if ms is not None:
        xs = jnp.where(ms[:, :, None], xs, 0)  # a NaN in a masked step stays out of the gradients
    if key is not None and options.recurrent_dropout == 0:  # runs before any loop, so every recurrence has it
        xs, key = _dropout.drop_inputs(key, xs, options.dropout, params.kernel.dtype), None
    if isinstance(options.recurrence, Plan):
        state, last, ys = _recurrence.run(
            options.recurrence, params, xs, initial_state, ms, rs,
            activation=options.activation, recurrent_activation=options.recurrent_activation,
            precision=options.precision,
        )
    else:  # "scan"
        state, last, ys = _recurrence.scan(
            params, xs, initial_state, ms, key, options.activation, options.recurrent_activation,
            return_sequences=options.return_sequences, unroll=options.unroll, remat_chunk=options.remat_chunk,
            dropout=options.dropout, recurrent_dropout=options.recurrent_dropout, precision=options.precision,
            rs=rs,
        )

    if options.return_sequences:
        output = ys if options.time_major else jnp.swapaxes(ys, 0, 1)
    else:
        output = last
    if options.return_state:
        return output, state.h, state.c
    return output
