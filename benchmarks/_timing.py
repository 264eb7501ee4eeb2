"""The timing helpers every implementation is measured with."""

import statistics
import time
from collections.abc import Callable


def first_call(fn: Callable[[], object], sync: Callable[[object], object]) -> float:
    """Seconds for the first synced call: tracing and compilation plus one run."""
    start = time.perf_counter()
    sync(fn())
    return time.perf_counter() - start


def runs(fn: Callable[[], object], sync: Callable[[object], object], *, budget: float, warmup: int = 3,
         min_runs: int = 5, max_runs: int = 100_000) -> list[float]:
    """Wall times (s) of synced calls ``sync(fn())``, after ``warmup`` untimed ones.

    Runs until ``budget`` seconds are filled and at least ``min_runs`` are
    done. Every run is synced: a run is the time from the call to the result
    being ready.
    """
    for _ in range(warmup):
        sync(fn())
    times = []
    deadline = time.perf_counter() + budget
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() < deadline):
        start = time.perf_counter()
        sync(fn())
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": len(times)}


def jax_sync(out):
    """Waits for every array in a pytree of JAX arrays."""
    import jax

    return jax.block_until_ready(out)


def no_sync(out):
    """For eager libraries whose calls return finished results (PyTorch on CPU, TF eager tensors)."""
    return out


def lstm_flops(shape: tuple[int, ...], mode: str) -> float:
    """Matmul FLOPs of an LSTM: ``2·B·T·(I+H)·4H`` forward, three times that for a training step.

    ``shape`` is ``(B, T, I, H)``, or ``(B, T, I, H, P)`` for a projected LSTM: ``2·B·T·((I+P)·4H + H·P)``.
    """
    batch, time_steps, input_dim, units, *projection = shape
    hidden = projection[0] if projection else units
    per_step = (input_dim + hidden) * 4 * units + (units * hidden if projection else 0)
    forward = 2.0 * batch * time_steps * per_step
    return forward if mode == "forward" else 3.0 * forward
