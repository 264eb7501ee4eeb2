"""One LSTM step as a pure function."""

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from . import _dropout, _validate
from ._params import LSTMParams, LSTMState, state_dtype

Activation = Callable[[jax.Array], jax.Array]


def lstm_cell(
    params: LSTMParams,
    state: LSTMState,
    x: jax.Array,
    *,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
) -> tuple[LSTMState | tuple[jax.Array, jax.Array], jax.Array]:
    r"""Advances an LSTM by one time step.

    With :math:`\sigma` the ``recurrent_activation`` and :math:`\tanh` the
    ``activation``, and the four gate blocks of the fused weights in Keras's
    order (i, f, c, o):

    .. math::

        z &= x W + h R + b \\
        i &= \sigma(z_i), \quad f = \sigma(z_f), \quad o = \sigma(z_o) \\
        c' &= f \odot c + i \odot \tanh(z_c) \\
        h' &= o \odot \tanh(c')

    The signature ``(carry, x) -> (carry, y)`` makes it a ``jax.lax.scan`` body
    once ``params`` is bound.

    Args:
      params: an :class:`LSTMParams` with ``kernel`` ``(input_dim, 4 * units)``.
      state: an :class:`LSTMState`, or a ``(h, c)`` tuple or list, each ``(batch, units)``.
      x: the input at this step, ``(batch, input_dim)``, floating.
      activation: applied to the candidate and to the new cell state.
      recurrent_activation: applied to the input, forget and output gates.

    Returns:
      ``(state', h')``: the new state, in the container ``state`` came in
      (an :class:`LSTMState`, a tuple or a list, so that the carry of a
      ``lax.scan`` keeps its type), and the output, which is ``h'``.

    Raises:
      ValueError: a wrong shape or count: ``x`` or ``state`` not of the
        shapes above, ``params`` that is not three arrays or ``state`` that is
        not two.
      TypeError: a wrong type: a non-array, a non-floating dtype, ``params``
        or ``state`` that is not a tuple, an activation that is not callable.

    Example:
      >>> import jax, jax.numpy as jnp, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=3, units=2)
      >>> state = jlstm.LSTMState(jnp.zeros((1, 2)), jnp.zeros((1, 2)))
      >>> state, y = jlstm.lstm_cell(params, state, jnp.ones((1, 3)))
      >>> bool((y == state.h).all()), y.shape
      (True, (1, 2))
    """
    params = _validate.params("lstm_cell", params)
    x = _validate.array("lstm_cell", "x", x, (None, params.input_dim))
    container = type(state) if isinstance(state, (LSTMState, list)) else tuple
    state = _validate.state("lstm_cell", "state", state, x.shape[0], params)
    dtype = state_dtype(params.kernel.dtype)
    x_proj = jnp.matmul(x.astype(params.kernel.dtype), params.kernel, preferred_element_type=dtype)
    x_proj = x_proj + params.bias.astype(dtype)[None]
    activation = _validate.function("lstm_cell", "activation", activation)
    recurrent_activation = _validate.function("lstm_cell", "recurrent_activation", recurrent_activation)
    (h, c), y = _step(state, x_proj, params.recurrent_kernel, activation, recurrent_activation)
    return (LSTMState(h, c) if container is LSTMState else container((h, c))), y


def _step(
    state: LSTMState,
    x_proj: jax.Array,
    recurrent_kernel: jax.Array,
    activation: Activation,
    recurrent_activation: Activation,
    recurrent_mask: Optional[jax.Array] = None,
) -> tuple[LSTMState, jax.Array]:
    """The cell given its input projection ``x @ kernel + bias`` (batch, 4 * units).

    ``recurrent_mask`` (4, batch, units): Keras's per-gate recurrent dropout on ``h``.
    The carry and ``x_proj`` have the state dtype; ``h`` enters the matmul in
    the weights' dtype, which accumulates in the state dtype.
    """
    h, c = state
    if recurrent_mask is None:
        hr = jnp.matmul(
            h.astype(recurrent_kernel.dtype), recurrent_kernel, preferred_element_type=x_proj.dtype
        )
    else:
        hr = _dropout.recurrent_projection(
            h.astype(recurrent_kernel.dtype), recurrent_mask, recurrent_kernel, x_proj.dtype
        )
    h, c = _gates(x_proj + hr.astype(x_proj.dtype), c, activation, recurrent_activation)
    return LSTMState(h, c), h


def _gates(
    z: jax.Array, c: jax.Array, activation: Activation, recurrent_activation: Activation, axis: int = -1
) -> tuple[jax.Array, jax.Array]:
    """The step after its matmuls: ``z`` (batch, 4 * units) is ``x W + h R + b``; returns ``(h', c')``.

    ``axis`` is the features' axis: -1, or 0 for ``(4 * units, batch)`` and a ``(units, batch)`` state.
    """
    i, f, g, o = jnp.split(z, 4, axis=axis)
    c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
    h = recurrent_activation(o) * activation(c)
    return h, c
