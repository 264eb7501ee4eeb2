"""What ``jlstm.linen`` and ``jlstm.nnx`` share (only jax here): Keras's initialisers, the compute dtype."""

from typing import Any, Callable

import jax
import jax.numpy as jnp

from ._params import LSTMParams

Initializer = Callable[..., jax.Array]


def keras_bias(units: int, unit_forget_bias: bool) -> Initializer:
    """``(key, shape, dtype) -> (4 * units,)`` zeros, the forget gate's slice 1 if ``unit_forget_bias``."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        del key
        bias = jnp.zeros(shape, dtype)
        return bias.at[units : 2 * units].set(1) if unit_forget_bias else bias

    return init


def half_safe(init: Initializer) -> Initializer:
    """``init`` drawn in float32 and cast when asked for half precision (QR has no half-precision kernels)."""

    def wrapped(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        wide = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
        return init(key, shape, wide).astype(dtype)

    return wrapped


def in_dtype(cls: str, params: LSTMParams, dtype: Any) -> LSTMParams:
    """The parameters as the computation reads them: cast to ``dtype`` (flax's computation dtype) unless None.

    Cast inside the module's call, so that the stored parameters and their
    gradients keep the parameters' dtype: float32 parameters with
    ``dtype=jnp.bfloat16`` is mixed precision.
    """
    if dtype is None:
        return params
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{cls}: dtype must be a floating dtype or None, got {dtype!r}")
    return LSTMParams(*(p.astype(dtype) for p in params))
