"""The LSTM layer: validation, then one ``lax.scan`` over the cell."""

import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp

from . import _recurrence, _validate
from ._cell import Activation, _step
from ._params import LSTMParams, LSTMState


def lstm(
    params: LSTMParams,
    inputs: jax.Array,
    *,
    initial_state: Optional[tuple[jax.Array, jax.Array]] = None,
    mask: Optional[jax.Array] = None,
    return_sequences: bool = False,
    return_state: bool = False,
    go_backwards: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    recurrence: str = "auto",
) -> Any:
    r"""Runs an LSTM over a sequence, with the flags and results of ``keras.layers.LSTM``.

    Each step is :func:`lstm_cell`: :math:`z = x W + h R + b`, gates
    :math:`i, f, o = \sigma(z_i), \sigma(z_f), \sigma(z_o)`,
    :math:`c' = f c + i \tanh(z_c)`, :math:`h' = o \tanh(c')`, iterated by
    one ``lax.scan`` that carries ``(h, c)`` (see ``recurrence`` for where
    :math:`x W` is computed and how gradients are formed).

    ==================================  ====================================================
    flags                               returns (``B`` batch, ``T`` time, ``H`` units)
    ==================================  ====================================================
    default                             ``h_T``: ``(B, H)``
    ``return_sequences``                every ``h_t``: ``(B, T, H)`` (``(T, B, H)`` if ``time_major``)
    ``return_state``                    ``(h_T, h_T, c_T)``: output, then the final state
    both                                ``(sequence, h_T, c_T)``; ``sequence[:, -1] == h_T`` unmasked
    ==================================  ====================================================

    Masks (Keras's TensorFlow semantics): a masked step leaves ``(h, c)``
    unchanged and outputs the previous step's output, which is zero before
    the first unmasked step even with a non-zero ``initial_state``. The last
    output is the last element of that sequence; a fully masked row outputs
    zeros and returns ``initial_state``.

    Warning:
      ``go_backwards=True`` reads the input from the last step to the first and
      returns the sequence in processing order, i.e. reversed in time, exactly
      as Keras does; flip it (``output[:, ::-1]``) to align it with the input.
      The mask is reversed with the input. PyTorch has no such flag: its
      bidirectional layers flip the backward outputs back, as
      :func:`bidirectional` does.

    Warning:
      Keras's JAX backend differs from its TensorFlow backend when a row's
      leading steps are masked and ``initial_state`` is non-zero (it outputs
      ``h0`` there, not zeros). jlstm follows the TensorFlow backend.

    Args:
      params: an :class:`LSTMParams`; its dtype is the compute dtype, and
        inputs and states are cast to it.
      inputs: ``(batch, time, input_dim)``, or ``(time, batch, input_dim)``
        when ``time_major``; floating. ``batch`` and ``time`` are at least 1.
      initial_state: ``(h0, c0)``, each ``(batch, units)``; zeros if None.
      mask: ``(batch, time)`` (``(time, batch)`` when ``time_major``), bool or
        0/1 numbers; True/1 marks the steps to process.
      return_sequences: return the output of every step, not only the last.
      return_state: also return the final ``h`` and ``c``.
      go_backwards: process the sequence in reverse (see the warning).
      time_major: inputs, mask and output sequence have time first.
      activation: cell activation, ``tanh`` by default.
      recurrent_activation: gate activation, ``sigmoid`` by default.
      unroll: how many steps ``lax.scan`` unrolls per iteration (``True``: all).
      recurrence: how the loop is run; every choice gives the same numbers.
        ``"auto"`` (default) picks the fastest measured on CPU: ``"fused"``.
        ``"fused"`` projects ``x_t`` inside the step and has a custom VJP that
        forms the weight gradients as large matmuls over all steps (no
        forward-mode ``jax.jvp``); ``"step"`` is the same forward pass under
        plain autodiff; ``"scan"`` hoists ``x W + b`` out of the loop.

    Returns:
      ``output`` if not ``return_state``, else ``(output, h, c)``.

    Raises:
      ValueError: a shape disagrees with the others (the message names the
        argument, the expected and the received shape).
      TypeError: a non-array argument, or a non-floating ``inputs`` or state.

    Example:
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
    fn = "lstm"
    params = _validate.params(fn, params)
    names = ("time", "batch", "input_dim") if time_major else ("batch", "time", "input_dim")
    inputs = _validate.array(fn, "inputs", inputs, (None, None, params.input_dim), names)
    time_axis, batch_axis = (0, 1) if time_major else (1, 0)
    batch, time = inputs.shape[batch_axis], inputs.shape[time_axis]
    if batch == 0 or time == 0:
        raise ValueError(
            f"{fn}: inputs must have at least one batch row and one time step, got shape {tuple(inputs.shape)}"
        )
    if initial_state is not None:
        initial_state = _validate.state(fn, "initial_state", initial_state, batch, params)
    if mask is not None:
        mask = _validate.mask(fn, mask, inputs.shape[:2], time_major)
    return _lstm(
        params,
        inputs.astype(params.kernel.dtype),
        initial_state,
        mask,
        return_sequences=bool(return_sequences),
        return_state=bool(return_state),
        go_backwards=bool(go_backwards),
        time_major=bool(time_major),
        activation=activation,
        recurrent_activation=recurrent_activation,
        unroll=_validate.unroll(fn, unroll),
        recurrence=_recurrence.check(fn, recurrence),
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "return_sequences",
        "return_state",
        "go_backwards",
        "time_major",
        "activation",
        "recurrent_activation",
        "unroll",
        "recurrence",
    ),
)
def _lstm(
    params: LSTMParams,
    inputs: jax.Array,
    initial_state: Optional[LSTMState],
    mask: Optional[jax.Array],
    *,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    time_major: bool,
    activation: Activation,
    recurrent_activation: Activation,
    unroll: int | bool,
    recurrence: str = "scan",
):
    xs = inputs if time_major else jnp.swapaxes(inputs, 0, 1)  # (T, B, I)
    batch, units = xs.shape[1], params.units
    if initial_state is None:
        zeros = jnp.zeros((batch, units), params.kernel.dtype)
        initial_state = LSTMState(zeros, zeros)
    ms = None if mask is None else (mask if time_major else mask.T)  # (T, B)
    if go_backwards:
        xs = xs[::-1]
        ms = None if ms is None else ms[::-1]
    if _recurrence.choose(recurrence) != "scan":  # the fast loops of _recurrence.py
        state, last, ys = _recurrence.run(_recurrence.choose(recurrence), params, xs, initial_state, ms,
                                          activation=activation, recurrent_activation=recurrent_activation,
                                          unroll=unroll)
        output = (ys if time_major else jnp.swapaxes(ys, 0, 1)) if return_sequences else last
        return (output, state.h, state.c) if return_state else output
    xs_proj = xs @ params.kernel + params.bias[None, None, :]  # (T, B, 4H)

    def step(state, x_proj):
        return _step(state, x_proj, params.recurrent_kernel, activation, recurrent_activation)

    if ms is None:
        def body(state, x_proj):
            state, y = step(state, x_proj)
            return state, (y if return_sequences else None)

        state, ys = jax.lax.scan(body, initial_state, xs_proj, unroll=unroll)
        last = state.h
    else:
        def body(carry, x_proj_and_mask):
            state, y_prev = carry
            x_proj, m = x_proj_and_mask
            new_state, y = step(state, x_proj)
            keep = m[:, None]
            state = LSTMState(*(jnp.where(keep, new, old) for new, old in zip(new_state, state)))
            y = jnp.where(keep, y, y_prev)
            return (state, y), (y if return_sequences else None)

        y0 = jnp.zeros((batch, units), params.kernel.dtype)
        (state, last), ys = jax.lax.scan(body, (initial_state, y0), (xs_proj, ms), unroll=unroll)

    if return_sequences:
        output = ys if time_major else jnp.swapaxes(ys, 0, 1)
    else:
        output = last
    if return_state:
        return output, state.h, state.c
    return output
