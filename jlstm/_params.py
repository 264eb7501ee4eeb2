"""Parameters, carry and Keras's default initialisation."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class LSTMParams(NamedTuple):
    """Weights of one LSTM layer in Keras's fused layout, gates ordered (i, f, c, o).

    Attributes:
        kernel: input weights, shape ``(input_dim, 4 * units)``.
        recurrent_kernel: hidden-to-hidden weights, shape ``(units, 4 * units)``.
        bias: shape ``(4 * units,)``; PyTorch's ``bias_ih + bias_hh``.
    """

    kernel: jax.Array  # (input_dim, 4 * units)
    recurrent_kernel: jax.Array  # (units, 4 * units)
    bias: jax.Array  # (4 * units,)

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]


class LSTMState(NamedTuple):
    """The carry of the recurrence: hidden state first, as in Keras's ``[h, c]``.

    Attributes:
        h: hidden state (the output), shape ``(batch, units)``.
        c: cell state, shape ``(batch, units)``.

    Warning:
        flax's ``LSTMCell`` carry is ``(c, h)``; Keras and PyTorch put ``h`` first,
        and so does jlstm. Use the field names to be safe.
    """

    h: jax.Array  # (batch, units)
    c: jax.Array  # (batch, units)


def state_dtype(dtype) -> np.dtype:
    """The dtype of the carry and of the outputs for parameters of ``dtype``.

    float32 for 16-bit floats (bfloat16, float16), so that rounding does not
    accumulate in ``c`` over long sequences; ``dtype`` itself otherwise.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 else dtype


def init_params(
        key: jax.Array,
        input_dim: int,
        units: int,
        *,
        dtype=jnp.float32,
        unit_forget_bias: bool = True,
) -> LSTMParams:
    """Draws parameters with Keras's default ``LSTM`` initialisers.

    * ``kernel``: Glorot uniform over its ``(input_dim, 4 * units)`` shape;
    * ``recurrent_kernel``: orthogonal, rows orthonormal over the whole
        ``(units, 4 * units)`` matrix;
    * ``bias``: zeros, with the forget-gate slice ``[units:2 * units]`` set to 1
        when ``unit_forget_bias``.

    Args:
        key: a ``jax.random`` key.
        input_dim: number of input features, a positive int.
        units: number of hidden units, a positive int.
        dtype: a floating dtype for all three arrays.
        unit_forget_bias: start the forget gate open, as Keras does by default.

    Returns:
        An [`LSTMParams`][jlstm.LSTMParams].

    Raises:
        TypeError: ``key`` is not a ``jax.random`` key, ``input_dim`` or ``units``
            is not an int, ``dtype`` is not a floating dtype, ``unit_forget_bias``
            is not a bool.
        ValueError: ``input_dim`` or ``units`` below 1, or a batch of keys.

    Examples:
        >>> import jax, jlstm
        >>> p = jlstm.init_params(jax.random.key(0), input_dim=3, units=2)
        >>> p.kernel.shape, p.recurrent_kernel.shape, p.bias.tolist()
        ((3, 8), (2, 8), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    fn = "init_params"
    input_dim, units, unit_forget_bias = check_init(fn, key, input_dim, units, dtype, unit_forget_bias)
    k_kernel, k_recurrent = jax.random.split(key)
    # QR has no half-precision kernels: draw in float32 (or wider), then cast.
    draw = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
    kernel = jax.nn.initializers.glorot_uniform()(k_kernel, (input_dim, 4 * units), draw)
    recurrent_kernel = jax.nn.initializers.orthogonal()(k_recurrent, (units, 4 * units), draw)
    bias = jnp.zeros((4 * units,), draw)
    if unit_forget_bias:
        bias = bias.at[units : 2 * units].set(1)
    return LSTMParams(kernel.astype(dtype), recurrent_kernel.astype(dtype), bias.astype(dtype))


def check_init(fn: str, key: jax.Array, input_dim: int, units: int, dtype, unit_forget_bias: bool):
    """Checks :func:`init_params`' arguments for ``fn``; returns ``(input_dim, units, unit_forget_bias)``."""
    from . import _validate  # imported here: _validate imports this module

    _validate.key(fn, key)
    input_dim = _validate.positive_int(fn, "input_dim", input_dim)
    units = _validate.positive_int(fn, "units", units)
    _validate.floating_dtype(fn, "dtype", dtype)
    return input_dim, units, _validate.flag(fn, "unit_forget_bias", unit_forget_bias)
