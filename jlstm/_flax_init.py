"""What ``jlstm.linen`` and ``jlstm.nnx`` share (only jax here): Keras's initialisers, dtypes, checks."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _dropout, _validate
from ._params import AnyParams
from ._validate import projection_size

Initializer = Callable[..., jax.Array]


def keras_bias(units: int, unit_forget_bias: bool) -> Initializer:
    """``(key, shape, dtype) -> (4 * units,)`` zeros, the forget gate's slice 1 if ``unit_forget_bias``."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        del key
        bias = jnp.zeros(shape, dtype)
        return bias.at[units : 2 * units].set(1) if unit_forget_bias else bias

    return init


def torch_projection(units: int) -> Initializer:
    """``(key, shape, dtype)`` uniform in ``±1/sqrt(units)``: PyTorch's initialiser of ``weight_hr``."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        bound = 1 / units**0.5
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def half_safe(init: Initializer) -> Initializer:
    """``init`` drawn in float32 and cast when asked for half precision (QR has no half-precision kernels)."""

    def wrapped(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        wide = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
        return init(key, shape, wide).astype(dtype)

    return wrapped


def in_dtype(cls: str, params: AnyParams, dtype: Any) -> AnyParams:
    """The parameters as the computation reads them: cast to ``dtype`` (flax's computation dtype) unless None.

    Cast inside the module's call, so that the stored parameters and their
    gradients keep the parameters' dtype: float32 parameters with
    ``dtype=jnp.bfloat16`` is mixed precision.
    """
    if _validate.floating_dtype(cls, "dtype", dtype, or_none=True) is None:
        return params
    return type(params)(*(p.astype(dtype) for p in params))


def check_config(
    cls: str, *, units: int, dropout: float, recurrent_dropout: float, param_dtype: Any, proj_size: Any
) -> None:
    """The module options that only the module reads (the others are checked by the pure function)."""
    _validate.positive_int(cls, "units", units)
    projection_size(cls, proj_size, units)
    _dropout.rate(cls, "dropout", dropout)
    _dropout.rate(cls, "recurrent_dropout", recurrent_dropout)
    _validate.floating_dtype(cls, "param_dtype", param_dtype)


def input_features(cls: str, inputs: Any) -> int:
    """The last axis of ``inputs`` (batch, time, input_dim) or (time, batch, input_dim)."""
    if not (hasattr(inputs, "shape") and hasattr(inputs, "dtype")):
        raise TypeError(
            f"{cls}: inputs must be an array of shape (batch, time, input_dim), got {type(inputs).__name__}"
        )
    if len(inputs.shape) != 3:
        raise ValueError(f"{cls}: inputs must have shape (batch, time, input_dim), got {tuple(inputs.shape)}")
    return inputs.shape[-1]
