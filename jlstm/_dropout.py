"""Keras's LSTM dropout: masks drawn once per sequence and reused at every step."""

import math
import numbers
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate
from ._params import LSTMParams


def rate(fn: str, name: str, value: Any) -> float:
    """A dropout rate: a real number in ``[0, 1)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{fn}: {name} must be a float in [0, 1), got {value!r}")
    return float(value)


def check(fn: str, dropout: Any, recurrent_dropout: Any, training: Any, key: Any) -> bool:
    """Validates the dropout arguments; True when dropout is to be applied."""
    dropout, recurrent_dropout = rate(fn, "dropout", dropout), rate(fn, "recurrent_dropout", recurrent_dropout)
    training = _validate.flag(fn, "training", training)
    active = training and (dropout > 0 or recurrent_dropout > 0)
    if active and key is None:
        raise ValueError(
            f"{fn}: training with dropout={dropout!r}, recurrent_dropout={recurrent_dropout!r} "
            "needs a PRNG key, got key=None (pass key=jax.random.key(...))"
        )
    if active:
        _validate.key(fn, key)
    return active


def inverted_mask(key: jax.Array, rate: float, shape: tuple[int, ...], dtype) -> jax.Array:
    """0 with probability ``rate``, else ``1 / (1 - rate)``: the expected value is 1."""
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return jnp.where(keep, jnp.asarray(1.0 / (1.0 - rate), dtype), jnp.zeros((), dtype))


def masks(
    key: jax.Array, batch: int, input_dim: int, units: int, dropout: float, recurrent_dropout: float, dtype
) -> tuple[Optional[jax.Array], Optional[jax.Array]]:
    """Keras 3's masks for one LSTM layer and one call, ``(input_mask, recurrent_mask)``.

    With ``recurrent_dropout == 0`` (Keras's implementation 2) one input mask
    ``(batch, input_dim)`` is shared by the four gates. With
    ``recurrent_dropout > 0`` Keras switches to implementation 1: four
    independent masks per gate (i, f, c, o), ``(4, batch, input_dim)`` for the
    input and ``(4, batch, units)`` for ``h``. A mask is None when its rate is 0.
    Both come from one uniform draw (one random-bits program to compile).
    """
    gates = () if recurrent_dropout == 0 else (4,)
    wanted = [((*gates, batch, input_dim), dropout), ((4, batch, units), recurrent_dropout)]
    sizes = [math.prod(shape) if rate > 0 else 0 for shape, rate in wanted]
    uniform = jax.random.uniform(key, (sum(sizes),))
    out, start = [], 0
    for (shape, rate), size in zip(wanted, sizes):
        if size == 0:
            out.append(None)
            continue
        keep = uniform[start : start + size].reshape(shape) < 1.0 - rate
        out.append(jnp.where(keep, jnp.asarray(1.0 / (1.0 - rate), dtype), jnp.zeros((), dtype)))
        start += size
    return out[0], out[1]


def input_projection(xs: jax.Array, input_mask: jax.Array, params: LSTMParams, dtype) -> jax.Array:
    """``(xs * mask_g) @ kernel_g + bias`` for each gate g and all steps, (T, B, I) -> (T, B, 4H).

    ``input_mask`` is ``(4, B, I)``, one per gate (a mask shared by the gates
    is applied to the inputs before any loop). The matmul accumulates in
    ``dtype`` (the state dtype), as the plain projection does.
    """
    bias = params.bias.astype(dtype)[None, None, :]
    time, batch, input_dim = xs.shape
    kernel = params.kernel.reshape(input_dim, 4, params.units)
    z = jnp.einsum("tgbi,igh->tbgh", xs[:, None] * input_mask[None], kernel, preferred_element_type=dtype)
    return z.reshape(time, batch, 4 * params.units) + bias


def recurrent_projection(h: jax.Array, recurrent_mask: jax.Array, recurrent_kernel: jax.Array, dtype) -> jax.Array:
    """``(h * mask_g) @ recurrent_kernel_g`` for each gate g, (B, H) -> (B, 4H), accumulated in ``dtype``."""
    units = h.shape[-1]
    kernel = recurrent_kernel.reshape(units, 4, units)
    z = jnp.einsum("gbh,hgk->bgk", h[None] * recurrent_mask, kernel, preferred_element_type=dtype)
    return z.reshape(h.shape[0], 4 * units)
