"""Keras's LSTM dropout, all of it: the rates, the masks (drawn once per sequence, reused at every
step), the inputs dropped before the loop, and the per-gate projections of the hoisted loop."""

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate
from ._cell import projection
from ._params import AnyParams


def rate(fn: str, name: str, value: Any) -> float:
    """A dropout rate: a real number in ``[0, 1)``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
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
) -> tuple[jax.Array | None, jax.Array | None]:
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
    out: list[jax.Array | None] = []
    start = 0
    for (shape, rate), size in zip(wanted, sizes):
        if size == 0:
            out.append(None)
            continue
        keep = uniform[start : start + size].reshape(shape) < 1.0 - rate
        out.append(jnp.where(keep, jnp.asarray(1.0 / (1.0 - rate), dtype), jnp.zeros((), dtype)))
        start += size
    return out[0], out[1]


def drop_inputs(key: jax.Array, xs: jax.Array, rate: float, dtype) -> jax.Array:
    """Input dropout alone, Keras's implementation 2: one mask ``(B, I)`` for the four gates and every step.

    It is a product with the time-major inputs ``(T, B, I)`` before any loop,
    so every recurrence runs it.
    """
    input_mask, _ = masks(key, xs.shape[1], xs.shape[2], 1, rate, 0.0, dtype)
    return xs if input_mask is None else xs * input_mask[None]


def projections(
    key: jax.Array | None, params: AnyParams, batch: int, dropout: float, recurrent_dropout: float, dtype,
    precision: jax.lax.Precision | None = None,
) -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
    """The hoisted loop's two matmuls, ``xs -> X W + b`` ``(T, B, 4H)`` and ``h -> h R`` ``(B, 4H)``.

    With a ``key`` they apply Keras's implementation 1: each gate g gets its
    own input mask and its own mask on ``h`` (:func:`masks`), so that
    ``z_g = (x * m_g) W_g + b_g + (h * n_g) R_g``. The matmuls accumulate in
    ``dtype`` (the state dtype) at ``precision``, as :func:`jlstm._cell.projection` does.
    """
    inputs = projection("batch", params.kernel, None, params.bias, dtype, precision)
    state = projection("batch", None, params.recurrent_kernel, None, dtype, precision)
    if key is None:
        return (lambda xs: inputs(xs, None)), (lambda h: state(None, h))
    input_dim, units, rows = params.input_dim, params.units, params.recurrent_kernel.shape[0]  # rows: h's width
    input_mask, recurrent_mask = masks(key, batch, input_dim, rows, dropout, recurrent_dropout, params.kernel.dtype)
    kernel = params.kernel.reshape(input_dim, 4, units)
    recurrent_kernel = params.recurrent_kernel.reshape(rows, 4, units)
    bias = params.bias.astype(dtype)

    def project_inputs(xs):  # (T, B, I) -> (T, B, 4H)
        if input_mask is None:
            return inputs(xs, None)
        z = jnp.einsum("tgbi,igh->tbgh", xs[:, None] * input_mask[None], kernel, preferred_element_type=dtype,
                       precision=precision)
        return z.reshape(*xs.shape[:2], 4 * units) + bias[None, None]

    def project_state(h):  # (B, H) -> (B, 4H)
        if recurrent_mask is None:
            return state(None, h)
        masked = h.astype(recurrent_kernel.dtype)[None] * recurrent_mask
        z = jnp.einsum("gbh,hgk->bgk", masked, recurrent_kernel, preferred_element_type=dtype,
                       precision=precision)
        return z.reshape(h.shape[0], 4 * units)

    return project_inputs, project_state
