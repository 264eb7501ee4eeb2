"""The autotuner: time the candidate plans on this machine and keep the default unless one is faster."""

import statistics
import sys
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _plan, _validate
from ._layer import lstm
from ._params import AnyParams
from ._plan import Plan


class TuneResult(NamedTuple):
    """What [`tune`][jlstm.tune] measured, and the plan it chose.

    Attributes:
      plan: the plan to run: ``default`` unless a candidate was faster in at
        least three rounds out of four, the upper quartile of its per-round
        time ratios to the default below 1.
      default: the plan ``recurrence="auto"`` runs without a recorded plan.
      times: ``{plan: median seconds per call}`` for every plan timed.
      ratios: ``{plan: (lower quartile, median, upper quartile)}`` of the
        per-round ratio of its time to the default's (below 1: faster).
      first_call: ``{plan: seconds}`` for the first call (trace, compile, one run).
      rounds: how many interleaved rounds were timed.
      mode: ``"forward"`` or ``"train"``.
      key: what a recorded plan matches (shape, dtype, mode, device kind,
        core count, jax version, device count, explicit batch sharding).
    """

    plan: Plan
    default: Plan
    times: dict
    ratios: dict
    first_call: dict
    rounds: int
    mode: str
    key: tuple


def tune(
    params: AnyParams,
    inputs,
    *,
    mode: str = "train",
    time_major: bool = False,
    candidates: Sequence[Plan] | None = None,
    max_seconds: float = 30.0,
    max_rounds: int = 15,
    record: bool = True,
    persist: bool = False,
    progress: bool = True,
) -> TuneResult:
    """Times the candidate plans of [`lstm`][jlstm.lstm] for one shape on this device and returns the fastest.

    It measures as ``benchmarks/run.py`` does: every candidate is compiled
    and called once first, then timed in interleaved rounds (the order
    alternating from round to round), a median per round. A candidate
    replaces the default only if it was timed in at least three rounds and
    was faster than the default in three rounds out of four; the noise of
    the machine therefore keeps the default. The budget bounds the whole:
    candidates are compiled in the first half of it (the default always),
    and rounds start only while it lasts. With ``record`` the chosen plan is kept in memory, where
    ``recurrence="auto"`` finds it for the same shape, dtype, device kind,
    core count and jax version (the training plan first, then the forward
    one), in this process only, and not in a job of several processes
    (there ``"auto"`` runs the default: pass ``recurrence=result.plan``, the
    same in every process). With ``persist`` the plan is also added to a
    JSON file, ``plans.json`` under ``$JLSTM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/jlstm``, else ``~/.cache/jlstm``, keeping the file's
    other plans (written under a lock, so processes that persist at once
    keep each other's). A later process runs them only after
    [`load_tuned_plans`][jlstm.load_tuned_plans]: ``"auto"`` never reads the
    file by itself.

    Args:
      params: an [`LSTMParams`][jlstm.LSTMParams] (or [`LSTMPParams`][jlstm.LSTMPParams]) of arrays, or of ``jax.ShapeDtypeStruct`` (random weights
        are drawn).
      inputs: ``(batch, time, input_dim)`` (``(time, batch, input_dim)`` if
        ``time_major``), an array or a ``jax.ShapeDtypeStruct`` (placed
        with its ``sharding``, if it has one). With several devices the
        candidates are timed as they run there, each device on its share of
        the batch (pass inputs split by rows, as from
        [`shard_batch`][jlstm.shard_batch]), and the plan is recorded for
        one device's rows and cores.
      mode: ``"forward"`` (``lstm(..., return_sequences=True)``) or
        ``"train"`` (its value and gradients with respect to ``params``,
        for the loss ``sum(outputs)``).
      time_major: as in [`lstm`][jlstm.lstm].
      candidates: the plans to time; the default first is added if missing.
        ``None``: the default, each other layout, the other batch chains,
        the other input projection, and ``unroll=2``.
      max_seconds: the time budget, compilation included (a round under
        way when it runs out is finished).
      max_rounds: at most this many timed rounds.
      record: keep the plan for ``recurrence="auto"`` in this process.
      persist: also add it to the JSON file above.
      progress: show a progress bar on standard error.

    Returns:
      A [`TuneResult`][jlstm.TuneResult]; its ``plan`` goes to ``lstm(..., recurrence=plan)``.

    Examples:
      >>> import jax, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), 8, 16)
      >>> x = jax.ShapeDtypeStruct((4, 20, 8), "float32")
      >>> result = jlstm.tune(params, x, mode="forward", max_seconds=5, record=False, progress=False)
      >>> isinstance(result.plan, jlstm.Plan), result.default in result.times
      (True, True)
    """
    fn = "tune"
    _validate.choice(fn, "mode", mode, _plan.MODES)
    time_major = _validate.flag(fn, "time_major", time_major)
    params = jax.tree.map(_concrete, params, is_leaf=lambda a: isinstance(a, jax.ShapeDtypeStruct))
    params = _validate.params(fn, params)
    inputs = _concrete(inputs, dtype=params.kernel.dtype)
    names = ("time", "batch", "input_dim") if time_major else ("batch", "time", "input_dim")
    inputs = _validate.array(fn, "inputs", inputs, (None, None, params.input_dim), names)
    if not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"{fn}: max_seconds must be a positive number, got {max_seconds!r}")
    max_rounds = _validate.positive_int(fn, "max_rounds", max_rounds)
    problem = _plan.problem(inputs, params.units, params.kernel.dtype, time_major=time_major)
    default = _plan.default(problem)
    plans = [default] + [
        _plan.check(fn, p) for p in (_plan.candidates(problem) if candidates is None else candidates)
        if p != default
    ]
    plans = [p for p in plans if p.chains == 1 or (problem.batch % p.chains == 0 and not problem.batch_sharded)]

    start = time.perf_counter()
    deadline = start + max_seconds
    bar = _Bar(len(plans) + max_rounds, enabled=progress)
    calls, first_call = {}, {}
    for plan in plans:
        bar.step(f"compile {_describe(plan)}")
        if plan != default and time.perf_counter() > start + max_seconds / 2:
            continue  # half the budget is for timing
        call = _program(plan, params, inputs, mode, time_major)
        compiled = time.perf_counter()
        jax.block_until_ready(call())
        first_call[plan] = time.perf_counter() - compiled
        calls[plan] = call
    plans = list(calls)
    per_round: dict[Plan, list[float]] = {plan: [] for plan in plans}
    rounds = 0
    while rounds < max_rounds and time.perf_counter() < deadline:
        order = plans if rounds % 2 == 0 else plans[::-1]
        for plan in order:
            per_round[plan].append(_median_call(calls[plan]))
        rounds += 1
        bar.step(f"round {rounds}")
        if rounds == 2:  # drop the candidates that lost both rounds clearly
            plans = [p for p in plans if p == default
                     or any(t < 1.15 * d for t, d in zip(per_round[p], per_round[default]))]
    bar.close()

    base = per_round[default]
    times, ratios = {}, {}
    for plan, values in per_round.items():
        times[plan] = statistics.median(values)
        r = sorted(t / d for t, d in zip(values, base))
        ratios[plan] = (float(np.quantile(r, 0.25)), float(np.median(r)), float(np.quantile(r, 0.75)))
    winners = [p for p in times if p != default and len(per_round[p]) >= 3 and ratios[p][2] < 1.0]
    best = min(winners, key=lambda p: ratios[p][1], default=default)
    key = _plan.key(problem, mode)
    if record:
        _plan.record(key, best, persist=persist)
    return TuneResult(best, default, times, ratios, first_call, rounds, mode, key)


def _concrete(value, dtype=None):
    """A ``ShapeDtypeStruct`` becomes random normal data (scaled for weights); arrays pass through."""
    if isinstance(value, jax.ShapeDtypeStruct):
        scale = 1.0 if value.ndim != 2 else 1.0 / np.sqrt(max(value.shape[0], 1))
        array = (scale * jax.random.normal(jax.random.key(0), value.shape, jnp.float32)).astype(value.dtype)
        return array if value.sharding is None else jax.device_put(array, value.sharding)
    return value


def _program(plan: Plan, params: AnyParams, inputs, mode: str, time_major: bool):
    def forward(params, inputs):
        return lstm(params, inputs, return_sequences=True, time_major=time_major, recurrence=plan)

    if mode == "forward":
        compiled = jax.jit(forward)
    else:
        compiled = jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(forward(p, x))))
    return lambda: compiled(params, inputs)


def _median_call(call, budget: float = 0.05, most: int = 9) -> float:
    """The median of a few timed calls (as many as fit in ``budget`` seconds, at least 1, at most ``most``)."""
    times: list[float] = []
    while len(times) < most and (not times or sum(times) < budget):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _describe(plan: Plan) -> str:
    unroll = f", unroll {plan.unroll}" if plan.unroll != 1 else ""
    return f"{plan.layout}, {plan.chains} chain(s), {plan.projection} projection, {plan.backward}{unroll}"


class _Bar:
    """A one-line progress bar on standard error."""

    def __init__(self, total: int, *, enabled: bool, width: int = 24):
        self.total, self.done, self.enabled, self.width = total, 0, enabled, width

    def step(self, what: str) -> None:
        self.done = min(self.done + 1, self.total)
        if self.enabled:
            filled = round(self.width * self.done / self.total)
            line = f"\rjlstm.tune [{'#' * filled}{'.' * (self.width - filled)}] {what}"
            sys.stderr.write(line[:110].ljust(110))
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self.done = self.total - 1
            self.step("done")
            sys.stderr.write("\n")
            sys.stderr.flush()
