"""Parameters, carry and Keras's default initialisation."""

from typing import NamedTuple, overload

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


class LSTMPParams(NamedTuple):
    """Weights of one projected LSTM layer (LSTMP, PyTorch's ``proj_size``), accepted wherever ``LSTMParams`` is.

    The cell is the LSTM's, with ``units`` (``H``) cells, and its output is
    projected to ``proj_size`` (``P < H``): ``r = (o * tanh(c)) projection_kernel``.
    ``r`` is both the output and the hidden state that enters the next step,
    so ``recurrent_kernel`` reads ``P`` features.

    Attributes:
        kernel: input weights, shape ``(input_dim, 4 * units)``.
        recurrent_kernel: hidden-to-hidden weights, shape ``(proj_size, 4 * units)``.
        bias: shape ``(4 * units,)``; PyTorch's ``bias_ih + bias_hh``.
        projection_kernel: the output projection, shape ``(units, proj_size)``; PyTorch's ``weight_hr`` transposed.
    """

    kernel: jax.Array  # (input_dim, 4 * units)
    recurrent_kernel: jax.Array  # (proj_size, 4 * units)
    bias: jax.Array  # (4 * units,)
    projection_kernel: jax.Array  # (units, proj_size)

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        return self.projection_kernel.shape[0]

    @property
    def proj_size(self) -> int:
        return self.projection_kernel.shape[1]


AnyParams = LSTMParams | LSTMPParams


def output_dim(params: AnyParams) -> int:
    """The width of the output and of ``h``: ``proj_size`` for projected params, else ``units``."""
    return params.proj_size if isinstance(params, LSTMPParams) else params.units


class LSTMState(NamedTuple):
    """The carry of the recurrence: hidden state first, as in Keras's ``[h, c]``.

    Attributes:
        h: hidden state (the output), shape ``(batch, units)``, or ``(batch, proj_size)`` when projected.
        c: cell state, shape ``(batch, units)``.

    Warning:
        flax's ``LSTMCell`` carry is ``(c, h)``; Keras and PyTorch put ``h`` first,
        and so does jlstm. Use the field names to be safe.
    """

    h: jax.Array  # (batch, units), or (batch, proj_size) for LSTMPParams
    c: jax.Array  # (batch, units)


def state_dtype(dtype) -> np.dtype:
    """The dtype of the carry and of the outputs for parameters of ``dtype``.

    float32 for 16-bit floats (bfloat16, float16), so that rounding does not
    accumulate in ``c`` over long sequences; ``dtype`` itself otherwise.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 else dtype


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
    input_dim, units, unit_forget_bias = check_init(fn, key, input_dim, units, dtype, unit_forget_bias)
    proj_size = check_proj_size(fn, proj_size, units)
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


def check_init(fn: str, key: jax.Array, input_dim: int, units: int, dtype, unit_forget_bias: bool):
    """Checks :func:`init_params`' arguments for ``fn``; returns ``(input_dim, units, unit_forget_bias)``."""
    from . import _validate  # imported here: _validate imports this module

    _validate.key(fn, key)
    input_dim = _validate.positive_int(fn, "input_dim", input_dim)
    units = _validate.positive_int(fn, "units", units)
    _validate.floating_dtype(fn, "dtype", dtype)
    return input_dim, units, _validate.flag(fn, "unit_forget_bias", unit_forget_bias)


def check_proj_size(fn: str, proj_size: object, units: int) -> int | None:
    """``proj_size``: None, or an int ``P`` with ``0 < P < units`` (PyTorch's rule), else a ``ValueError``."""
    if proj_size is None:
        return None
    if isinstance(proj_size, (bool, np.bool_)) or not isinstance(proj_size, (int, np.integer)):
        raise ValueError(  # noqa: TRY004 - PyTorch's rule for proj_size: a ValueError for any wrong value
f"{fn}: proj_size must be None or an int with 0 < proj_size < units, got {proj_size!r:.60}")
    if not 0 < proj_size < units:
        raise ValueError(
            f"{fn}: proj_size must be None or an int with 0 < proj_size < units ({units}), got {proj_size}"
        )
    return int(proj_size)
