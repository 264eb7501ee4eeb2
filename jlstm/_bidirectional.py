"""A bidirectional LSTM as ``keras.layers.Bidirectional(LSTM(...))``: two calls to :func:`lstm`."""

import functools
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias, overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _layer, _options, _validate
from ._cell import Activation
from ._options import Options
from ._params import AnyParams, output_dim
from ._plan import Plan

MERGE_MODES = ("concat", "sum", "mul", "ave", None)

# What bidirectional returns when merge_mode or return_state is not a literal: one of the overloads' results.
BidirectionalResult: TypeAlias = (
    jax.Array
    | tuple[jax.Array, jax.Array]
    | tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]
    | tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]
)


# The overloads give mypy the result's type from the literal merge_mode (None: a pair of outputs) and
# return_state (the four final states after the output, flat as in Keras); each lists every parameter.
@overload
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[False] = False,
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
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[True],
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
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]: ...
@overload
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: None,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[False] = False,
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
) -> tuple[jax.Array, jax.Array]: ...
@overload
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: None,
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[True],
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
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]: ...
@overload
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: str | None = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
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
) -> BidirectionalResult: ...
def bidirectional(
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    *,
    merge_mode: str | None = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
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
) -> BidirectionalResult:
    r"""Runs a forward and a backward LSTM over a sequence and merges them, as Keras's ``Bidirectional``.

    The forward direction is ``lstm(forward_params, inputs)``, the backward one
    ``lstm(backward_params, inputs, go_backwards=True)``. With
    ``return_sequences`` the backward sequence is flipped back to input time
    order, so that step ``t`` of both directions lines up, before merging:

    | ``merge_mode`` | output                                      | last axis          |
    | -------------- | ------------------------------------------- | ------------------ |
    | ``"concat"``   | ``concatenate([y_fwd, y_bwd], axis=-1)``    | ``H_fwd + H_bwd``  |
    | ``"sum"``      | ``y_fwd + y_bwd``                           | ``H``              |
    | ``"mul"``      | ``y_fwd * y_bwd``                           | ``H``              |
    | ``"ave"``      | ``(y_fwd + y_bwd) / 2``                     | ``H``              |
    | ``None``       | the pair ``(y_fwd, y_bwd)``, unmerged       | ``H``              |

    Without ``return_sequences`` the merged outputs are the forward direction's
    last step (``h`` after ``x_T``) and the backward direction's (``h`` after
    ``x_1``).

    Masks: each direction skips masked steps as [`lstm`][jlstm.lstm] does. With
    ``return_sequences``, masked steps output 0 in both directions (Keras sets
    ``zero_output_for_mask`` inside ``Bidirectional``), while the states are
    carried over them.

    Warning:
      The backward direction's sequence is in input time order here, as in
      Keras's ``Bidirectional`` and PyTorch's ``bidirectional=True``, unlike
      ``lstm(..., go_backwards=True)`` alone, which returns it reversed.
      PyTorch always concatenates; Keras's default is also ``"concat"``.

    Args:
      forward_params: [`LSTMParams`][jlstm.LSTMParams] of the forward direction.
      backward_params: [`LSTMParams`][jlstm.LSTMParams] of the backward direction, with the
        same ``input_dim`` (and the same ``units`` unless ``merge_mode`` is
        ``"concat"`` or None).
      inputs: ``(batch, time, input_dim)`` (``(time, batch, input_dim)`` if
        ``time_major``), floating.
      merge_mode: ``"concat"``, ``"sum"``, ``"mul"``, ``"ave"`` or None.
      initial_state: ``(h_fwd, c_fwd, h_bwd, c_bwd)``, each ``(batch, units)``,
        Keras's order; zeros if None.
      mask: ``(batch, time)`` (``(time, batch)`` if ``time_major``), True for the
        steps to process.
      reset: ``(batch, time)`` (``(time, batch)`` if ``time_major``), bool: the
        steps that start a new segment, as in [`lstm`][jlstm.lstm]; each direction
        runs each segment on its own.
      return_sequences: return every step, not only the last.
      return_state: also return the final states of both directions.
      time_major: inputs, mask and output sequence have time first, as in [`lstm`][jlstm.lstm].
      activation: cell activation, as in [`lstm`][jlstm.lstm].
      recurrent_activation: gate activation, as in [`lstm`][jlstm.lstm].
      unroll: how many steps ``lax.scan`` unrolls per iteration, as in [`lstm`][jlstm.lstm].
      dropout: fraction of the inputs dropped, as in [`lstm`][jlstm.lstm], for each direction.
      recurrent_dropout: fraction of ``h`` dropped in the recurrence, as in [`lstm`][jlstm.lstm], for
        each direction.
      training: apply dropout, as in [`lstm`][jlstm.lstm], in each direction.
      key: a ``jax.random`` key, split in two, one half per direction; needed
        only when training with dropout.
      remat_chunk: recompute chunks of this many steps in the backward pass, as in [`lstm`][jlstm.lstm],
        for each direction.
      recurrence: how the loop is run, as in [`lstm`][jlstm.lstm], for each direction.
      precision: every matmul's precision, as in [`lstm`][jlstm.lstm].

    Returns:
      ``output``; with ``return_state`` ``(output, h_fwd, c_fwd, h_bwd, c_bwd)``.
        With ``merge_mode=None`` the output is the pair ``(y_fwd, y_bwd)`` and,
        with ``return_state``, the whole result is flat as in Keras:
        ``(y_fwd, y_bwd, h_fwd, c_fwd, h_bwd, c_bwd)``.

    Raises:
      TypeError: an argument of the wrong type: a non-array, a non-floating
        ``inputs`` or state, an ``initial_state`` that is not a tuple or list,
        a ``merge_mode`` or ``recurrence`` that is not a string (or None), a
        flag that is not a Python bool, an activation that is not callable.
      ValueError: an argument of the right type with a wrong value: an unknown
        ``merge_mode`` or ``recurrence``, shapes that disagree (the message
        names the argument, the expected and the received shape), an
        ``initial_state`` that does not hold four arrays, a dropout rate
        outside ``[0, 1)``, training with dropout and no ``key``.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm
      >>> k_fwd, k_bwd = jax.random.split(jax.random.key(0))
      >>> fwd, bwd = jlstm.init_params(k_fwd, 3, 4), jlstm.init_params(k_bwd, 3, 4)
      >>> x = jnp.ones((2, 5, 3))
      >>> jlstm.bidirectional(fwd, bwd, x, return_sequences=True).shape
      (2, 5, 8)
      >>> y, h_fwd, c_fwd, h_bwd, c_bwd = jlstm.bidirectional(
      ...     fwd, bwd, x, merge_mode="sum", return_state=True)
      >>> y.shape, bool(jnp.allclose(y, h_fwd + h_bwd))
      ((2, 4), True)
    """
    options = _options.check("bidirectional", locals())
    return run(
        "bidirectional", forward_params, backward_params, inputs, merge_mode, initial_state, mask, key, options,
        reset=reset,
    )


def run(
    fn: str,
    forward_params: AnyParams,
    backward_params: AnyParams,
    inputs: jax.Array | np.ndarray,
    merge_mode: str | None,
    initial_state: Sequence[jax.Array] | None,
    mask: jax.Array | None,
    key: jax.Array | None,
    options: Options,
    *,
    reset: jax.Array | None = None,
) -> Any:
    """:func:`bidirectional` with checked ``options``: two calls of :func:`jlstm._layer.run`, then the merge.

    Checks what the two calls cannot: the parameters of the two directions
    against each other, ``merge_mode`` and the four arrays of ``initial_state``.
    """
    merge_mode = _validate.choice(fn, "merge_mode", merge_mode, MERGE_MODES)
    forward_params = _validate.params(fn, forward_params, "forward_params")
    backward_params = _validate.params(fn, backward_params, "backward_params")
    if backward_params.input_dim != forward_params.input_dim:
        raise ValueError(
            f"{fn}: backward_params.kernel must have shape ({forward_params.input_dim}, 4 * units) "
            f"like forward_params.kernel, got {tuple(backward_params.kernel.shape)}"
        )
    widths = output_dim(forward_params), output_dim(backward_params)
    if merge_mode in ("sum", "mul", "ave") and widths[0] != widths[1]:
        raise ValueError(
            f"{fn}: merge_mode={merge_mode!r} needs both directions to have the same output width (units, or "
            f"proj_size when projected), got {widths[0]} (forward) and {widths[1]} (backward)"
        )
    names = ("time", "batch", "input_dim") if options.time_major else ("batch", "time", "input_dim")
    inputs = _validate.array(fn, "inputs", inputs, (None, None, forward_params.input_dim), names)
    batch = inputs.shape[1 if options.time_major else 0]
    states: list = [None, None]
    if initial_state is not None:
        specs = [
            spec
            for p in (forward_params, backward_params)
            for spec in (_validate.hidden_spec(batch, p), ((batch, p.units), ("batch", "units")))
        ]
        initial_state = _validate.arrays(
            fn, "initial_state", initial_state, ("h_fwd", "c_fwd", "h_bwd", "c_bwd"), specs,
            "(h_fwd, c_fwd, h_bwd, c_bwd), each (batch, units) (h: (batch, proj_size) when projected)",
        )
        states = [initial_state[:2], initial_state[2:]]
    if mask is not None:
        mask = _validate.mask(fn, mask, tuple(inputs.shape[:2]), options.time_major)
    keys = [None, None]
    if key is not None and (options.dropout > 0 or options.recurrent_dropout > 0):
        keys = list(jax.random.split(key))
    directions = (forward_params, "forward_params", False), (backward_params, "backward_params", True)
    (y_fwd, h_fwd, c_fwd), (y_bwd, h_bwd, c_bwd) = (
        _layer.run(fn, p, inputs, s, mask, k, options._replace(return_state=True, go_backwards=back), name=name,
                   reset=reset)
        for (p, name, back), s, k in zip(directions, states, keys)
    )
    output = _merge(
        y_fwd, y_bwd, mask,
        merge_mode=merge_mode, return_sequences=options.return_sequences, time_major=options.time_major,
    )
    if not options.return_state:
        return output
    if merge_mode is None:
        return (*output, h_fwd, c_fwd, h_bwd, c_bwd)
    return output, h_fwd, c_fwd, h_bwd, c_bwd


@functools.partial(jax.jit, static_argnames=("merge_mode", "return_sequences", "time_major"))
def _merge(
    y_fwd: jax.Array,
    y_bwd: jax.Array,
    mask: jax.Array | None,
    *,
    merge_mode: str | None,
    return_sequences: bool,
    time_major: bool,
) -> Any:
    if return_sequences:
        y_bwd = jnp.flip(y_bwd, axis=0 if time_major else 1)
        if mask is not None:
            keep = mask[..., None]
            y_fwd = jnp.where(keep, y_fwd, jnp.zeros_like(y_fwd))
            y_bwd = jnp.where(keep, y_bwd, jnp.zeros_like(y_bwd))
    if merge_mode == "concat":
        return jnp.concatenate([y_fwd, y_bwd], axis=-1)
    if merge_mode == "sum":
        return y_fwd + y_bwd
    if merge_mode == "mul":
        return y_fwd * y_bwd
    if merge_mode == "ave":
        return (y_fwd + y_bwd) / 2
    return y_fwd, y_bwd
