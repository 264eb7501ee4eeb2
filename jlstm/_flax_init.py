"""Keras's LSTM initialisers as flax wants them, shared by ``jlstm.linen`` and ``jlstm.nnx`` (imports only jax)."""

from typing import Callable

import jax
import jax.numpy as jnp

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
