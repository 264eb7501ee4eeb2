"""Rematerialisation in time: one ``lax.scan`` run as a scan over checkpointed chunks."""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def scan(
    body: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any,
    *,
    prepare: Callable[[Any], Any],
    unroll: int | bool,
    remat_chunk: int | None,
) -> tuple[Any, Any]:
    """``lax.scan(body, carry, prepare(xs))``, optionally checkpointed in chunks of time.

    ``xs`` is a pytree of arrays with time first; ``prepare`` maps a time slice
    of it to the scanned values (the input projection). With ``remat_chunk=k``
    the ``T`` steps run as ``T // k`` chunks of ``k`` steps, then one of
    ``T % k`` steps; ``prepare`` and the steps of each chunk sit under
    ``jax.checkpoint``, so the backward pass keeps the carry at chunk
    boundaries and the raw ``xs`` only, and recomputes one chunk at a time:
    memory of order ``T / k + k`` steps instead of ``T``, for one extra forward.
    """
    if remat_chunk is None:
        return jax.lax.scan(body, carry, prepare(xs), unroll=unroll)

    @functools.partial(jax.checkpoint, prevent_cse=False)
    def run_chunk(carry, xs_chunk):
        return jax.lax.scan(body, carry, prepare(xs_chunk), unroll=unroll)

    time = jax.tree.leaves(xs)[0].shape[0]
    n, rest = divmod(time, remat_chunk)
    split = n * remat_chunk
    parts = []
    if n:
        head = jax.tree.map(lambda a: a[:split].reshape(n, remat_chunk, *a.shape[1:]), xs)
        carry, ys = jax.lax.scan(run_chunk, carry, head)
        parts.append(jax.tree.map(lambda a: a.reshape(split, *a.shape[2:]), ys))
    if rest:
        carry, ys = run_chunk(carry, jax.tree.map(lambda a: a[split:], xs))
        parts.append(ys)
    return carry, jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
