"""How a loop runs: the :class:`Plan`, and the one place that chooses it from the machine and the shapes.

The loops in ``_recurrence`` receive a plan and hold only math. A plan never
changes a result beyond float round-off: it says where the work happens,
not what is computed. :func:`default` is a pure function of the shapes,
dtype, backend, device count and cores, for what one device runs; :func:`resolve` consults the
plans recorded in this process first (by :func:`jlstm.tune`, or read from
the plan file by :func:`jlstm.load_tuned_plans`, never without that call).
"""

import contextlib
import json
import os
import pathlib
import tempfile
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import jax
import numpy as np

LAYOUTS = ("batch", "stacked", "features")
PROJECTIONS = ("step", "hoisted")
BACKWARDS = ("fused", "autodiff")
MODES = ("forward", "train")


class Plan(NamedTuple):
    """How [`jlstm.lstm`][] runs its loop; pass one as ``recurrence=`` (or let ``"auto"`` choose).

    Every plan gives the same numbers to float round-off. A plan is
    immutable and hashable (it is a static argument under ``jax.jit``).

    Attributes:
      layout: ``"batch"``: the state is ``(B, H)`` and a step computes
        ``x_t W + h R + b``; ``"stacked"``: the same as one matmul,
        ``[x_t, h] [W; R] + b``; ``"features"``: the state is ``(H, B)``
        and a step computes ``W^T x_t + R^T h + b``.
      chains: how many independent slices of the batch the forward loop
        advances side by side (1 or 2); they run concurrently on a CPU's
        cores. The batch must split evenly.
      projection: ``"step"``: ``x_t W`` inside each step; ``"hoisted"``:
        ``X W + b`` for all steps as one matmul before the loop, which then
        does only ``h R`` (cuDNN's structure). Not with ``"stacked"``.
      backward: ``"fused"``: a custom JVP whose transpose is the fused
        backward pass (the weight gradients as a few large matmuls over
        chunks of steps); ``"autodiff"``: JAX differentiates the loop step by step.
      unroll: loop steps per iteration (``lax.scan``'s ``unroll``), at least 1.
    """

    layout: str = "batch"
    chains: int = 1
    projection: str = "step"
    backward: str = "fused"
    unroll: int = 1

    @classmethod
    def default_for(
        cls,
        params,
        inputs,
        *,
        backend: str | None = None,
        time_major: bool = False,
        devices: int | None = None,
        cores: int | None = None,
    ) -> "Plan":
        """The plan ``recurrence="auto"`` runs for ``params`` and ``inputs`` on ``backend``, when none is tuned.

        ``"auto"`` resolves its plan when it is traced, from the backend it
        is traced on, so a program exported with ``jax.export`` on a CPU
        carries the CPU plan, whatever platforms it is lowered for. To
        export the program a GPU or TPU would run, trace it with this plan:
        ``recurrence=Plan.default_for(params, x, backend="cuda")``. Every
        plan gives the same numbers to float round-off.

        Args:
          params: an [`LSTMParams`][jlstm.LSTMParams] or [`LSTMPParams`][jlstm.LSTMPParams]
            (arrays, or ``jax.ShapeDtypeStruct``s).
          inputs: the inputs ``lstm`` will receive, or their ``jax.ShapeDtypeStruct``.
          backend: ``"cpu"``, ``"gpu"`` (or ``"cuda"``, ``"rocm"``), ``"tpu"``;
            None: the default backend of this process.
          time_major: as in [`lstm`][jlstm.lstm].
          devices: the device count the program will see, all in one
            process, with the batch split over them; None: this process's
            for its own backend, else 1.
          cores: the CPU cores it will run on, shared by its devices; None:
            this process's.

        Returns:
          The [`Plan`][jlstm.Plan].

        Examples:
          >>> import jax, jax.numpy as jnp, jlstm
          >>> params = jlstm.init_params(jax.random.key(0), input_dim=8, units=16)
          >>> x = jax.ShapeDtypeStruct((4, 20, 8), jnp.float32)
          >>> jlstm.Plan.default_for(params, x, backend="cuda")
          Plan(layout='batch', chains=1, projection='hoisted', backward='fused', unroll=1)
        """
        if len(tuple(inputs.shape)) != 3:
            raise ValueError(f"Plan.default_for: inputs must have 3 axes, got shape {tuple(inputs.shape)}")
        on = problem(inputs, params.units, params.kernel.dtype, time_major=time_major, backend=backend,
                     device_count=devices, core_count=cores, local_device_count=devices,
                     process_count=None if devices is None else 1)
        return default(on)


def check(fn: str, plan: Plan) -> Plan:
    """Checks each field of a plan: a wrong type is a ``TypeError``, a wrong value a ``ValueError``."""
    for field, options in (("layout", LAYOUTS), ("projection", PROJECTIONS), ("backward", BACKWARDS)):
        value = getattr(plan, field)
        if not isinstance(value, str):
            raise TypeError(f"{fn}: recurrence.{field} must be one of {options}, got {value!r}")
        if value not in options:
            raise ValueError(f"{fn}: recurrence.{field} must be one of {options}, got {value!r}")
    for field, allowed in (("chains", (1, 2)), ("unroll", None)):
        value = getattr(plan, field)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{fn}: recurrence.{field} must be an int, got {value!r}")
        if value < 1 or (allowed is not None and value not in allowed):
            expected = "1 or 2" if allowed else "at least 1"
            raise ValueError(f"{fn}: recurrence.{field} must be {expected}, got {value!r}")
    if plan.layout == "features" and plan.chains != 1:
        raise ValueError(f"{fn}: recurrence=Plan(layout='features') runs one chain, got chains={plan.chains}")
    if plan.layout == "stacked" and plan.projection == "hoisted":
        raise ValueError(
            f"{fn}: recurrence=Plan(layout='stacked', projection='hoisted') joins x_t and h in each step's "
            "matmul, which a hoisted projection takes out of the step; use layout='batch'"
        )
    return plan._replace(chains=int(plan.chains), unroll=int(plan.unroll))


class Problem(NamedTuple):
    """What a plan is chosen for: the shapes each device runs, and what runs them (every field a plain value)."""

    batch: int  # the rows each device runs: the batch, or its share when the batch is split over devices
    time: int
    input_dim: int
    units: int
    dtype: str  # the params' dtype name
    backend: str  # jax.default_backend()
    devices: int  # jax.device_count()
    cores: int  # the cores each device has: this process's, shared by its local devices
    batch_sharded: bool  # the batch axis is explicitly sharded (sharding in types)


def cores() -> int:
    """The cores this process may run on (``taskset`` and container limits included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def problem(
    inputs,
    units: int,
    dtype,
    *,
    time_major: bool,
    backend: str | None = None,
    device_count: int | None = None,
    core_count: int | None = None,
    local_device_count: int | None = None,
    process_count: int | None = None,
) -> Problem:
    """The :class:`Problem` of ``inputs`` (an array, tracer or ``ShapeDtypeStruct``) for a layer of ``units``.

    A plan is chosen for what one device runs. With several devices the
    batch is taken as split over them: the batch axis's mesh axes where it
    is sharded in its type (an Explicit mesh), else every device, as in
    data parallelism over an Auto mesh, whose traced types do not say how
    the batch is split (:func:`batch_may_be_sharded` assumes the same). A
    batch that does not split evenly cannot be placed split (JAX refuses
    uneven shards), so it is taken as whole on one device. Each device has
    the process's cores over its local devices (at least one); in a job of
    several processes the rule takes one core per device, so that every
    process traces the same program whatever its own cores.

    The machine is this process's: its backend, device counts and cores.
    Given a ``backend`` (another machine's, for :meth:`Plan.default_for`),
    the device count is 1 unless that backend is this one, and the batch is
    not sharded.
    """
    batch_axis = 1 if time_major else 0
    shape = inputs.shape
    here = PLATFORMS.get(jax.default_backend(), jax.default_backend())
    if backend is not None and backend not in PLATFORMS:
        raise ValueError(f"Plan.default_for: backend must be one of {tuple(PLATFORMS)}, got {backend!r}")
    platform = here if backend is None else PLATFORMS[backend]
    if device_count is None:
        device_count = jax.device_count() if platform == here else 1
    if local_device_count is None:
        local_device_count = jax.local_device_count() if platform == here else 1
    if process_count is None:
        process_count = jax.process_count() if platform == here else 1
    sharded = backend is None and explicitly_sharded(inputs, batch_axis)
    batch = int(shape[batch_axis])
    shards = batch_shards(inputs, batch_axis) if sharded else int(device_count)
    core_count = cores() if core_count is None else int(core_count)
    per_device = 1 if process_count > 1 else max(1, core_count // max(1, int(local_device_count)))
    return Problem(
        batch=batch // shards if shards > 0 and batch % shards == 0 else batch, time=int(shape[1 - batch_axis]), input_dim=int(shape[2]),
        units=int(units), dtype=np.dtype(dtype).name, backend=platform, devices=int(device_count),
        cores=per_device, batch_sharded=sharded,
    )


def default(p: Problem) -> Plan:
    """The plan ``"auto"`` runs when :func:`jlstm.tune` recorded none: a rule per choice, for what one device runs.

    On GPU and TPU: the input projection hoisted out of the loop as one large
    matmul and the fused backward, so the loop does only ``h R`` (cuDNN's
    structure). On CPU (``benchmarks/RESULTS.md``, "How the loop runs on
    CPU"), from the rows and cores of one device: the projection inside the
    step, which XLA's CPU backend runs faster; features first for large
    weights (from 4M) with up to 64 rows, and, on a device with one core,
    from 256K weights with up to 128 rows; one stacked matmul for tiny
    weights (under 32K); and two batch chains where one step's matmuls (10
    to 60 MFLOP) are too small for XLA to spread over the cores, when the
    device has at least two cores and an unsharded, even batch of at least
    32 rows.
    """
    if p.backend != "cpu":
        return Plan(layout="batch", chains=1, projection="hoisted", backward="fused")
    weights = (p.input_dim + p.units) * 4 * p.units
    if (weights >= 4 * 2**20 and p.batch <= 64) or (p.cores == 1 and weights >= 2**18 and p.batch <= 128):
        return Plan(layout="features")
    layout = "stacked" if weights < 2**15 else "batch"
    flops = 2 * p.batch * weights
    split = (
        p.cores >= 2 and not p.batch_sharded
        and p.batch >= 32 and p.batch % 2 == 0 and 1e7 <= flops <= 6e7
    )
    return Plan(layout=layout, chains=2 if split else 1)


def explicitly_sharded(a, axis: int) -> bool:
    """Whether ``axis`` of ``a`` (an array or tracer) is sharded in its type (an Explicit mesh axis)."""
    spec = jax.typeof(a).sharding.spec
    return len(spec) > axis and spec[axis] is not None


def batch_shards(a, axis: int) -> int:
    """How many pieces ``axis`` of ``a`` is split into by its type's sharding (1 where it is not sharded)."""
    sharding = jax.typeof(a).sharding
    spec = sharding.spec
    names = spec[axis] if len(spec) > axis else None
    if names is None:
        return 1
    sizes = dict(zip(sharding.mesh.axis_names, sharding.mesh.axis_sizes))
    return int(np.prod([sizes[n] for n in ((names,) if isinstance(names, str) else names)]))


def batch_may_be_sharded(a, axis: int) -> bool:
    """Whether the loops must keep ``axis`` of ``a`` (the batch) whole: sharded in its type, or several devices.

    Under an Auto mesh nothing in the traced types says whether the batch is
    sharded, so with more than one device the loops assume it may be. Then
    the fused backward forms its weight gradients over time and batch as two
    axes rather than one merged axis, and batch chains take every other row
    rather than halves: a reshape that merges time with a sharded batch, or
    a slice that cuts across its shards, makes XLA's partitioner move the
    batch between devices (``benchmarks/RESULTS.md``, "Data parallelism
    moves only gradients"). On one device the merged axis and contiguous
    halves are the faster forms on XLA's CPU backend ("How the loop runs on
    CPU"). Every process of a job sees the same device count, so every
    process traces the same program (and :func:`problem` takes one core
    per device there).
    """
    return explicitly_sharded(a, axis) or jax.device_count() > 1


def candidates(p: Problem) -> list[Plan]:
    """The plans :func:`jlstm.tune` times: the default first, then one change at a time, and cuDNN's form."""
    base = default(p)
    plans = [base]
    for layout in LAYOUTS:
        plans.append(base._replace(layout=layout, projection="step" if layout == "stacked" else base.projection))
    if p.batch % 2 == 0 and p.batch >= 2 and not p.batch_sharded:
        plans.append(base._replace(chains=3 - base.chains, layout="batch" if base.layout == "features"
                                   else base.layout))
    plans.append(Plan(layout="batch", projection="hoisted" if base.projection == "step" else "step"))
    plans.append(base._replace(unroll=2))
    unique = []
    for plan in plans:
        if plan.layout == "features":
            plan = plan._replace(chains=1)
        if plan not in unique:
            unique.append(plan)
    return unique


# --- plans recorded by jlstm.tune ----------------------------------------------------------------------
#
# In memory: what tune(record=True) chose in this process, and what load_tuned_plans() read. On disk: one JSON
# file that tune(persist=True) merges into and that only load_tuned_plans() reads; "auto" never opens it.

FILE_VERSION = 1
_recorded: dict[tuple, Plan] = {}


def cache_path() -> pathlib.Path:
    """``$JLSTM_CACHE_DIR/plans.json``, else ``$XDG_CACHE_HOME/jlstm/plans.json``, else ``~/.cache/jlstm/plans.json``."""
    base = os.environ.get("JLSTM_CACHE_DIR")
    if base:
        return pathlib.Path(base) / "plans.json"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(xdg) / "jlstm" / "plans.json"


def key(p: Problem, mode: str) -> tuple:
    """What a recorded plan matches: one device's shape and cores, dtype, mode, device kind, jax version, devices."""
    return (p.batch, p.time, p.input_dim, p.units, p.dtype, mode, device_kind(), p.cores, jax.__version__,
            p.devices, p.batch_sharded)


def device_kind() -> str:
    return str(jax.devices()[0].device_kind)


def record(k: tuple, plan: Plan, *, persist: bool) -> None:
    _recorded[k] = plan
    if persist:
        _merge_into(cache_path(), {k: plan})


def recorded(p: Problem) -> Plan | None:
    """The plan recorded in this process for ``p``: for training if there is one, else for the forward pass.

    None in a job of several processes: each process times its own candidates, and SPMD needs every process
    to trace the same program, so there ``"auto"`` runs :func:`default`, whose inputs every process shares.
    """
    if not _recorded or jax.process_count() > 1:
        return None
    for mode in ("train", "forward"):
        plan = _recorded.get(key(p, mode))
        if plan is not None:
            return plan
    return None


def clear() -> None:
    """Forgets the plans recorded in this process (by [`tune`][jlstm.tune] or [`load_tuned_plans`][jlstm.load_tuned_plans]).

    ``recurrence="auto"`` then runs the default plans. The plan file, if
    any, stays as it is: a later ``tune(..., persist=True)`` adds its plan
    to the file's others, and [`load_tuned_plans`][jlstm.load_tuned_plans]
    reads them all again.
    """
    _recorded.clear()


def load(path: "str | os.PathLike[str] | None" = None) -> int:
    """Reads the plans that ``tune(..., persist=True)`` wrote; ``recurrence="auto"`` runs them from then on.

    ``"auto"`` never reads the file by itself: without this call a program
    depends only on the call and the machine (shapes, dtypes, backend,
    devices, cores), not on a file left by an earlier run. A plan matches
    the shape, dtype, mode, device kind, core count, jax version, device
    count and batch sharding it was tuned for; a plan recorded in this
    process by [`tune`][jlstm.tune] wins over the file's for the same key.
    In a job of several processes (``jax.process_count() > 1``) ``"auto"``
    runs the default plans whatever is loaded; pass a plan as
    ``recurrence=`` (the same in every process) to run another.

    An entry this version cannot read is skipped, and a file that cannot be
    read at all is ignored, with one ``UserWarning`` per call that says how
    many were skipped and why.

    Args:
      path: the JSON file; None (the default): ``plans.json`` under
        ``$JLSTM_CACHE_DIR``, else ``$XDG_CACHE_HOME/jlstm``, else ``~/.cache/jlstm``.

    Returns:
      How many plans were read (0 when there is no file).

    Examples:
      >>> import jlstm
      >>> jlstm.load_tuned_plans("no/such/plans.json")
      0
    """
    path = cache_path() if path is None else pathlib.Path(os.fspath(path))
    entries, skipped = _read(path)
    if skipped:
        warnings.warn(f"jlstm.load_tuned_plans: {path}: skipped {skipped}", stacklevel=2)
    plans = {k: plan for k, (plan, _) in entries.items() if plan is not None}
    for k, plan in plans.items():
        _recorded.setdefault(k, plan)
    return len(plans)


def _read(path: pathlib.Path) -> tuple[dict[tuple, tuple[Plan | None, dict]], str]:
    """The file's entries, ``{key: (plan or None if unreadable, raw entry)}``, and what was skipped (or "")."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError) as error:  # unreadable, or not text
        return {}, f"the whole file ({type(error).__name__}: {error})"
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise ValueError(f"version {data.get('version') if isinstance(data, dict) else None!r}, "
                             f"expected {FILE_VERSION}")
        raw = data["plans"]
        if not isinstance(raw, list):
            raise TypeError("'plans' is not a list")
    except (ValueError, KeyError, TypeError) as error:
        return {}, f"the whole file ({type(error).__name__}: {error})"
    entries: dict[tuple, tuple[Plan | None, dict]] = {}
    bad: list[str] = []
    for i, entry in enumerate(raw):
        try:
            k = tuple(entry["key"])
            hash(k)
        except (KeyError, TypeError) as error:
            bad.append(f"entry {i} ({type(error).__name__}: {error})")
            continue
        try:
            plan: Plan | None = check("load_tuned_plans", Plan(**entry["plan"]))
        except (KeyError, TypeError, ValueError) as error:
            bad.append(f"entry {i} ({type(error).__name__}: {error})")
            plan = None  # kept as it is in the file, which a newer version may read
        entries[k] = (plan, entry)
    return entries, f"{len(bad)} unreadable entr{'y' if len(bad) == 1 else 'ies'}: {'; '.join(bad)}" if bad else ""


def _merge_into(path: pathlib.Path, plans: dict[tuple, Plan]) -> None:
    """Adds ``plans`` to the file, keeping its other entries: read, merge and replace under a lock.

    The lock (``fcntl.flock`` on ``plans.json.lock``, on POSIX) makes the
    read-merge-write of two processes happen one after the other; the new
    file is written under a unique temporary name in the same directory and
    renamed over the old one, so a reader sees the old file or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(path.name + ".lock")):
        entries, _ = _read(path)
        merged = {k: raw for k, (_, raw) in entries.items()}
        merged.update({k: {"key": list(k), "plan": plan._asdict()} for k, plan in plans.items()})
        text = json.dumps({"version": FILE_VERSION, "plans": list(merged.values())}, indent=1)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=path.name + ".", suffix=".tmp",
                                         delete=False) as tmp:
            tmp.write(text)
        try:
            os.replace(tmp.name, path)
        except BaseException:
            os.unlink(tmp.name)
            raise


@contextlib.contextmanager
def _locked(lock_path: pathlib.Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (``fcntl.flock``); no lock where there is no ``fcntl`` (Windows)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve(fn: str, recurrence, p: Problem, *, plain: bool):
    """``"scan"`` or the :class:`Plan` to run for ``recurrence`` (a string or a Plan).

    ``plain``: no recurrent dropout to apply in the loop and no
    ``remat_chunk``, which only the ``"scan"`` loop runs. ``"auto"`` is the
    plan recorded in this process for ``p`` (:func:`recorded`: by
    :func:`jlstm.tune`, or read by :func:`load`), else :func:`default`;
    ``"fused"`` and ``"step"`` are :func:`default`'s layout and chains
    with the fused backward, or plain autodiff.
    """
    if recurrence == "scan":
        return "scan"
    if recurrence == "auto":
        if not plain:
            return "scan"
        return recorded(p) or default(p)
    if not plain:
        raise ValueError(
            f"{fn}: recurrence={recurrence!r} runs neither recurrent_dropout in training nor remat_chunk; "
            "use recurrence='scan' or 'auto'"
        )
    if isinstance(recurrence, Plan):
        if recurrence.chains > 1 and (p.batch % recurrence.chains or p.batch_sharded):
            raise ValueError(
                f"{fn}: recurrence=Plan(chains={recurrence.chains}) splits the batch evenly and unsharded, "
                f"got batch {p.batch}" + (" sharded explicitly" if p.batch_sharded else "")
            )
        return recurrence
    return default(p)._replace(backward="fused" if recurrence == "fused" else "autodiff")
