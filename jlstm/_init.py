"""A layer's first values: Keras's default initialisation of its parameters, and the zero state."""

from typing import overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate
from ._params import AnyParams, LSTMParams, LSTMPParams, LSTMState, output_dim, state_dtype


@overload
def init_params(
        key: jax.Array, input_dim: int, units: int, *, proj_size: None = None, dtype=..., unit_forget_bias: bool = ...
) -> LSTMParams: ...
@overload
def init_params(
        key: jax.Array, input_dim: int, units: int, *, proj_size: int, dtype=..., unit_forget_bias: bool = ...
) -> LSTMPParams: ...
def init_params(
        key: jax.Array,
        input_dim: int,
        units: int,
        *,
        proj_size: int | None = None,
        dtype=jnp.float32,
        unit_forget_bias: bool = True,
) -> AnyParams:
    """Draws parameters with Keras's default ``LSTM`` initialisers (and PyTorch's for a projection).

    * ``kernel``: Glorot uniform over its ``(input_dim, 4 * units)`` shape;
    * ``recurrent_kernel``: orthogonal, rows orthonormal over the whole
        ``(units, 4 * units)`` matrix;
    * ``bias``: zeros, with the forget-gate slice ``[units:2 * units]`` set to 1
        when ``unit_forget_bias``;
    * with ``proj_size``, ``projection_kernel`` ``(units, proj_size)``: uniform in
        ``±1/sqrt(units)``, as PyTorch draws ``weight_hr``; ``recurrent_kernel``
        is then ``(proj_size, 4 * units)``, orthogonal.

    Args:
        key: a ``jax.random`` key.
        input_dim: number of input features, a positive int.
        units: number of hidden units, a positive int.
        proj_size: the projected LSTM's output size ``P``, an int with
            ``0 < P < units`` (PyTorch's rule); None (the default): no projection.
        dtype: a floating dtype for all the arrays.
        unit_forget_bias: start the forget gate open, as Keras does by default.

    Returns:
        An [`LSTMParams`][jlstm.LSTMParams], or an [`LSTMPParams`][jlstm.LSTMPParams] with ``proj_size``.

    Raises:
        TypeError: ``key`` is not a ``jax.random`` key, ``input_dim`` or ``units``
            is not an int, ``dtype`` is not a floating dtype, ``unit_forget_bias``
            is not a bool.
        ValueError: ``input_dim`` or ``units`` below 1, ``proj_size`` not an int
            with ``0 < proj_size < units``, or a batch of keys.

    Examples:
        >>> import jax, jlstm
        >>> p = jlstm.init_params(jax.random.key(0), input_dim=3, units=2)
        >>> p.kernel.shape, p.recurrent_kernel.shape, p.bias.tolist()
        ((3, 8), (2, 8), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    fn = "init_params"
    input_dim, units, unit_forget_bias = _validate.init_arguments(fn, key, input_dim, units, dtype, unit_forget_bias)
    proj_size = _validate.projection_size(fn, proj_size, units)
    k_kernel, k_recurrent = jax.random.split(key)
    # QR has no half-precision kernels: draw in float32 (or wider), then cast.
    draw = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
    kernel = jax.nn.initializers.glorot_uniform()(k_kernel, (input_dim, 4 * units), draw)
    rows = units if proj_size is None else proj_size
    recurrent_kernel = jax.nn.initializers.orthogonal()(k_recurrent, (rows, 4 * units), draw)
    bias = jnp.zeros((4 * units,), draw)
    if unit_forget_bias:
        bias = bias.at[units : 2 * units].set(1)
    arrays = [kernel, recurrent_kernel, bias]
    if proj_size is None:
        return LSTMParams(*(a.astype(dtype) for a in arrays))
    # A third key, so that the other arrays are those of the same key without a projection.
    bound = 1 / np.sqrt(units)
    projection = jax.random.uniform(jax.random.fold_in(key, 2), (units, proj_size), draw, -bound, bound)
    return LSTMPParams(*(a.astype(dtype) for a in [*arrays, projection]))


def zero_state(params: AnyParams, batch: int, *, dtype=None) -> LSTMState:
    """The state a sequence starts from when ``initial_state`` is None: ``h`` and ``c`` all zeros.

    ``h`` is ``(batch, units)``, or ``(batch, proj_size)`` for projected
    params; ``c`` is ``(batch, units)``. Their dtype is the state dtype of
    ``params`` (float32 for 16-bit params, else the params' dtype; see
    [`lstm`][jlstm.lstm]) unless ``dtype`` says otherwise. It is the first carry of a
    ``lax.scan`` over [`lstm_cell`][jlstm.lstm_cell], which returns the carry in
    the dtypes it receives.

    Args:
      params: an [`LSTMParams`][jlstm.LSTMParams] or [`LSTMPParams`][jlstm.LSTMPParams].
      batch: the number of rows, a positive int.
      dtype: a floating dtype for both arrays; None: the state dtype.

    Returns:
      An [`LSTMState`][jlstm.LSTMState].

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=3, units=4, proj_size=2)
      >>> state = jlstm.zero_state(params, batch=5, dtype=jnp.bfloat16)
      >>> state.h.shape, state.c.shape, state.h.dtype
      ((5, 2), (5, 4), dtype(bfloat16))
    """
    fn = "zero_state"
    params = _validate.params(fn, params)
    batch = _validate.positive_int(fn, "batch", batch)
    if dtype is None:
        dtype = state_dtype(params.kernel.dtype)
    else:
        _validate.floating_dtype(fn, "dtype", dtype)
    return LSTMState(jnp.zeros((batch, output_dim(params)), dtype), jnp.zeros((batch, params.units), dtype))
