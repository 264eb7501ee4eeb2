"""Benchmarks jlstm against its peers: one command, one process per implementation.

    python benchmarks/run.py                      # the default grid, every implementation
    python benchmarks/run.py --quick              # a small grid, about two minutes
    python benchmarks/run.py --shapes 16,200,64,128 --impls jlstm,torch_t1 --modes train
    python benchmarks/run.py --dtype bfloat16     # mixed precision, each library's own way
    python benchmarks/run.py --cpu-devices 2      # one XLA CPU device per core, the batch sharded over them

Every implementation runs in its own worker process (``bench_impl.py``), all
started at once and kept alive. For each shape and mode the implementations
are timed in turn, and the whole turn is repeated ``--rounds`` times in
alternating order (A B C, C B A, ...), each time for ``budget / rounds``
seconds. A shared machine's speed drifts by tens of percent within minutes;
timed this way every implementation sees the same drift, and the time relative
to jlstm is the median of the per-round ratios.

Writes ``PREFIX.json`` (every run, machine, versions, date), ``PREFIX.md``
(tables) and ``PREFIX.png`` (each implementation's time relative to jlstm).
"""

import argparse
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _timing import lstm_flops, summary
from bench_impl import DTYPES, IMPLS

GRID = {  # name: (batch, time, input_dim, units), or (..., proj_size) for a projected LSTM
    "small": (1, 100, 32, 64),
    "medium": (32, 100, 128, 256),
    "large_batch": (256, 50, 256, 512),
    "long": (8, 1000, 64, 128),
    "wide": (64, 100, 512, 1024),
    "projected": (32, 100, 128, 512, 128),  # PyTorch's proj_size: only jlstm and torch have it
}
QUICK_GRID = {"small": (1, 100, 32, 64), "quick_medium": (16, 50, 64, 128)}
QUICK_BUDGET = 0.25
MODES = ("forward", "train")
SQUARE = (1024, 1, 768, 256)  # as an LSTM shape, the matmul worker's (1024, 1024) @ (1024, 1024)
PAUSE_S = 0.1  # between two implementations' turns, for the last one's spinning threads to settle
# Every implementation but the limit, the baseline and the variant with resets (on request); the GPU-only peers
# skip themselves on a CPU.
PEERS = [name for name in IMPLS if name not in ("matmul", "jlstm_baseline", "jlstm_reset", "jlstm_1device",
                                                "torch_cores")]
ACCELERATOR_PEERS = ["jlstm", "jlstm_tuned", "torch_cuda", "jax_cudnn", "flax_linen_opt", "equinox"]
ACCELERATOR_BUDGET = 0.6
# --cpu-devices N: the JAX and Keras-on-JAX peers on N XLA CPU devices with the batch sharded (the same plain data
# parallelism for each, bench_impl._data_parallel), jlstm on one device beside them, torch with N threads.
DATA_PARALLEL_PEERS = ["jlstm", "jlstm_1device", "flax_linen_opt", "flax_linen", "flax_nnx_opt", "equinox",
                       "keras_jax", "torch_cores"]
CPU_DEVICES = None  # --cpu-devices: passed to every worker as JLSTM_BENCH_CPU_DEVICES
PACKAGES = ["jax", "jaxlib", "flax", "equinox", "keras", "tensorflow-cpu", "tensorflow", "torch", "numpy"]


def device():
    """JAX's backend and devices, asked in a short-lived process (so this one holds no accelerator memory)."""
    code = ("import jax, json, os; n = int(os.environ.get('JLSTM_BENCH_CPU_DEVICES') or 1); "
            "n > 1 and jax.config.update('jax_num_cpu_devices', n); d = jax.devices(); "
            "print(json.dumps({'backend': jax.default_backend(), 'kind': d[0].device_kind, 'count': len(d)}))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=worker_env(), check=False)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as error:  # noqa: BLE001 - the record says why
        return {"error": f"{type(error).__name__}: {error}"}


def worker_env():
    """The environment of every worker: this one, this checkout first on the path, no accelerator preallocation,
    and an empty plan cache of this run's own, so that no column runs a plan tuned earlier on this machine (a
    baseline checkout from before ``jlstm.load_tuned_plans`` existed read the cache by itself)."""
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", JLSTM_CACHE_DIR=empty_plan_cache(),
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(HERE), os.environ.get("PYTHONPATH")])))
    if CPU_DEVICES:
        env["JLSTM_BENCH_CPU_DEVICES"] = str(CPU_DEVICES)
    return env


@functools.cache
def empty_plan_cache():
    return tempfile.mkdtemp(prefix="jlstm-bench-plans-")


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("XLA_", "OMP_", "OPENBLAS_", "MKL_", "TF_", "GLIBC_", "MALLOC_"))}
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "device": device(),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "env": env,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


class Worker:
    """One implementation's ``bench_impl.py`` process, answering one timing request at a time."""

    def __init__(self, name):
        self.name = name
        self.unusable = None  # why this implementation is not timed any more
        env = worker_env()
        self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - close() closes it
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "bench_impl.py"), "--impl", name],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env=env)

    def time(self, shape, mode, budget, min_runs, dtype="float32"):
        request = {"shape": list(shape), "mode": mode, "budget": budget, "min_runs": min_runs, "dtype": dtype}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            for line in self.process.stdout:
                if line.startswith("{"):
                    answer = json.loads(line)
                    self.unusable = answer.get("skipped")
                    return answer
        except BrokenPipeError:
            pass
        self.process.wait()
        self.stderr.seek(0)
        reason = (self.stderr.read().strip().splitlines() or ["no output"])[-1]
        self.unusable = f"worker exited with {self.process.returncode}: {reason}"
        return {"impl": self.name, "shape": list(shape), "mode": mode, "error": self.unusable}

    def close(self):
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except BrokenPipeError:  # the worker died with a request unread
                pass
        self.process.wait()
        self.stderr.close()


def combine(answers, shape_name):
    """One record from the rounds' answers of one implementation, shape and mode."""
    problems = ("skipped", "not_applicable", "error")
    record = {k: v for k, v in answers[0].items() if k not in ("times_s", *problems)}
    record["shape_name"] = shape_name
    for answer in answers:  # the first problem reported, if any
        for problem in problems:
            if problem in answer:
                record.setdefault(problem, answer[problem])
    timed = [a for a in answers if "times_s" in a]
    if timed:
        times = [t for a in timed for t in a["times_s"]]
        record.update(summary(times))
        record["round_medians_s"] = [statistics.median(a["times_s"]) for a in timed]
        record["gflops"] = lstm_flops(record["shape"], record["mode"]) / record["median_s"] / 1e9
    return record


def ratios_to_jlstm(records):
    """Sets ``vs_jlstm``: the median over rounds of the time relative to jlstm's in the same round."""
    rounds = {(r["impl"], r["shape_name"], r["mode"]): r.get("round_medians_s") for r in records}
    for r in records:
        base = rounds.get(("jlstm", r["shape_name"], r["mode"]))
        if r.get("round_medians_s") and base and len(base) == len(r["round_medians_s"]):
            r["vs_jlstm"] = statistics.median(t / b for t, b in zip(r["round_medians_s"], base))


def takes_part(impl, shape_name, mode):
    """The matmul worker times the forward FLOPs of each shape, and the square dot; the others, the LSTMs."""
    if shape_name == "square_1024":
        return impl == "matmul"
    return impl != "matmul" or mode == "forward"


def plan(shapes, modes, with_limit):
    """``(shape name, shape, mode)`` in the order they are measured; the square dot last."""
    steps = [(name, shape, mode) for name, shape in shapes.items() for mode in modes]
    return steps + ([("square_1024", SQUARE, "forward")] if with_limit else [])


def measure_all(workers, shapes, modes, budget, rounds, progress, dtype="float32"):
    """Times every worker on every shape and mode, in alternating rounds; returns the combined records."""
    records = []
    for shape_name, shape, mode in plan(shapes, modes, "matmul" in workers):
        turn = [w for w in workers.values() if takes_part(w.name, shape_name, mode)]
        answers = {w.name: [] for w in turn}
        for k in range(rounds):
            for worker in turn if k % 2 == 0 else turn[::-1]:
                progress.set_postfix_str(f"{shape_name} {mode} round {k + 1}/{rounds}: {worker.name}")
                if worker.unusable is None and not any("error" in a for a in answers[worker.name]):
                    answer = worker.time(shape, mode, budget / rounds, min_runs=1, dtype=dtype)
                    answers[worker.name].append(answer)
                    if worker.unusable:
                        progress.write(f"{worker.name}: {worker.unusable}")
                    elif "error" in answer:
                        progress.write(f"{worker.name} {shape_name} {mode}: {answer['error']}")
                    time.sleep(PAUSE_S)
                progress.update(1)
        records += [combine(a, shape_name) for a in answers.values() if a]
    ratios_to_jlstm(records)
    return records


def matmul_limits(records, shapes):
    """Per shape, the machine's matmul limit (GFLOP/s): the faster of the same-FLOP dot and the square one."""
    dots = {r["shape_name"]: r["gflops"] for r in records if r["impl"] == "matmul" and "gflops" in r}
    square = dots.get("square_1024", 0.0)
    return {s: max(dots[s], square) for s in shapes if s in dots}


def table(records, shapes, impls, modes, dtype="float32"):
    """Markdown: per mode, median ms and time relative to jlstm; first-call time; GFLOP/s and share."""
    by_key = {(r["impl"], r.get("shape_name"), r.get("mode")): r for r in records if "median_s" in r}
    lines = []
    limit = matmul_limits(records, shapes)
    for mode in modes:
        lines += [f"### {mode}: median ms (time relative to jlstm, median of same-round ratios); **bold**: fastest",
                  "",
                  "| shape (B, T, I, H[, P]) | " + " | ".join(impls) + " |",
                  "| --- |" + " ---: |" * len(impls)]
        for s, shape in shapes.items():
            got = {i: by_key[(i, s, mode)] for i in impls if (i, s, mode) in by_key}
            if not got:
                continue
            # Fastest: by the same-round ratio where every implementation has one, else by the median.
            by_ratio = all("vs_jlstm" in r for r in got.values())
            best = min(got, key=lambda i: got[i]["vs_jlstm"] if by_ratio else got[i]["median_s"])
            cells = []
            for i in impls:
                if i not in got:
                    cells.append("–")
                    continue
                t = got[i]["median_s"]
                cell = f"{t * 1e3:.3g}" + (f" ({got[i]['vs_jlstm']:.2f}×)" if "vs_jlstm" in got[i] else "")
                cells.append(f"**{cell}**" if i == best else cell)
            lines.append(f"| {s} {shape} | " + " | ".join(cells) + " |")
        lines += ["", f"### {mode}: first call (trace + compile + one run), s", "",
                  "| shape | " + " | ".join(impls) + " |", "| --- |" + " ---: |" * len(impls)]
        for s in shapes:
            cells = [f"{by_key[(i, s, mode)]['first_s']:.2f}" if (i, s, mode) in by_key else "–" for i in impls]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        if limit:
            lines += ["", (f"### {mode}: GFLOP/s (share of the matmul limit: the faster of one {dtype} dot "
                           "with the shape's forward FLOPs and a square 1024³ dot)"), "",
                      "| shape | matmul limit | " + " | ".join(impls) + " |",
                      "| --- | ---: |" + " ---: |" * len(impls)]
            for s in shapes:
                if s not in limit:
                    continue
                cells = [f"{by_key[(i, s, mode)]['gflops']:.1f} ({by_key[(i, s, mode)]['gflops'] / limit[s]:.0%})"
                         if (i, s, mode) in by_key else "–" for i in impls]
                lines.append(f"| {s} | {limit[s]:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(records, shapes, impls, modes, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    by_key = {(r["impl"], r["shape_name"], r["mode"]): r["vs_jlstm"] for r in records if "vs_jlstm" in r}
    fig, axes = plt.subplots(len(modes), 1, figsize=(max(8, 1.6 * len(shapes) * len(impls) / 4), 4 * len(modes)),
                             squeeze=False)
    width = 0.8 / len(impls)
    for ax, mode in zip(axes[:, 0], modes):
        for k, impl in enumerate(impls):
            xs, ys = [], []
            for j, s in enumerate(shapes):
                if (impl, s, mode) in by_key:
                    xs.append(j - 0.4 + (k + 0.5) * width)
                    ys.append(by_key[(impl, s, mode)])
            ax.bar(xs, ys, width, label=impl)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(shapes)), [f"{s}\n{shapes[s]}" for s in shapes], fontsize=8)
        ax.set_ylabel("time / jlstm time")
        ax.set_title(f"{mode} (lower is faster; below 1 beats jlstm)")
    axes[0, 0].legend(fontsize=7, ncol=min(5, len(impls)), loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_shapes(texts):
    shapes = {}
    for text in texts:
        name, _, dims = text.rpartition("=")
        dims = tuple(int(n) for n in dims.split(","))
        if len(dims) not in (4, 5):
            raise SystemExit(f"--shapes: expected B,T,I,H[,P] (or name=B,T,I,H[,P]), got {text!r}")
        shapes[name or "x".join(map(str, dims))] = dims
    return shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description="jlstm against its peers, each in its own process.")
    parser.add_argument("--quick", action="store_true", help=f"small grid {QUICK_GRID}, {QUICK_BUDGET} s per cell")
    parser.add_argument("--accelerator", action="store_true",
                        help=f"the accelerator check: the default grid, {ACCELERATOR_PEERS}, {ACCELERATOR_BUDGET} s "
                        "per cell, 4 rounds, no matmul limit (writes results/accelerator.*)")
    parser.add_argument("--cpu-devices", type=int, metavar="N",
                        help=f"one XLA CPU device per core: the JAX and Keras-on-JAX peers on N devices with the batch "
                        f"sharded, jlstm_1device on one, torch_cores with N threads (default peers "
                        f"{DATA_PARALLEL_PEERS}, no matmul limit, shapes whose batch N divides; writes "
                        f"results/cpu_devices_N.*)")
    parser.add_argument("--shapes", nargs="+", help="B,T,I,H or name=B,T,I,H (default: the grid)")
    parser.add_argument("--impls", default=",".join(PEERS), help=f"comma-separated, from {PEERS}")
    parser.add_argument("--modes", default="forward,train", help="forward, train or forward,train (the default)")
    parser.add_argument("--budget", type=float, help="seconds of timed runs per measurement, over all rounds "
                        "(default 2)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per shape and mode (default 6)")
    parser.add_argument("--no-limit", action="store_true", help="skip the matmul-limit measurement")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="float32 (the default), or bfloat16: mixed precision, each library's own way")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/full or .../quick, with "
                        "_bfloat16 appended for --dtype bfloat16)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    if args.accelerator:
        args.impls = args.impls if args.impls != ",".join(PEERS) else ",".join(ACCELERATOR_PEERS)
        args.budget = ACCELERATOR_BUDGET if args.budget is None else args.budget
        args.rounds, args.no_limit = min(args.rounds, 4), True
        args.out = args.out or os.path.join(HERE, "results", "accelerator")
        os.environ.setdefault("JLSTM_TUNE_SECONDS", "10")  # jlstm_tuned's tuning budget per shape and mode
    shapes = parse_shapes(args.shapes) if args.shapes else (QUICK_GRID if args.quick else GRID)
    unsplit = []
    if args.cpu_devices is not None:
        global CPU_DEVICES
        if args.cpu_devices < 2:
            raise SystemExit(f"--cpu-devices: at least 2, got {args.cpu_devices}")
        CPU_DEVICES = args.cpu_devices
        args.impls = args.impls if args.impls != ",".join(PEERS) else ",".join(DATA_PARALLEL_PEERS)
        args.no_limit = True
        args.out = args.out or os.path.join(HERE, "results", f"cpu_devices_{CPU_DEVICES}")
        unsplit = [f"{name} {shape} (batch {shape[0]} does not split over {CPU_DEVICES} devices)"
                   for name, shape in shapes.items() if shape[0] % CPU_DEVICES]
        shapes = {name: shape for name, shape in shapes.items() if shape[0] % CPU_DEVICES == 0}
    budget = args.budget if args.budget is not None else (QUICK_BUDGET if args.quick else 2.0)
    modes = args.modes.split(",")
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) < len(modes):
        raise SystemExit(f"--modes: {args.modes!r}; give one or both of {MODES}, comma-separated")
    impls = args.impls.split(",")
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        raise SystemExit(f"--impls: unknown {unknown}; choose from {sorted(IMPLS)}")
    suffix = "" if args.dtype == "float32" else f"_{args.dtype}"
    out = args.out or os.path.join(HERE, "results", ("quick" if args.quick else "full") + suffix)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    info = machine()
    names = impls + ([] if args.no_limit else ["matmul"])
    steps = plan(shapes, modes, not args.no_limit)
    total = args.rounds * sum(takes_part(n, s, m) for n in names for s, _, m in steps)
    workers = {name: Worker(name) for name in names}
    try:
        with tqdm(total=total, unit="turn", dynamic_ncols=True) as progress:
            records = measure_all(workers, shapes, modes, budget, args.rounds, progress, args.dtype)
    finally:
        for worker in workers.values():
            worker.close()
    info["load_average_after"] = list(os.getloadavg())
    result = {"machine": info, "command": sys.argv, "budget_s": budget, "rounds": args.rounds,
              "cpu_devices": CPU_DEVICES,
              "dtype": args.dtype, "shapes": shapes, "records": records}
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    shown = [i for i in impls if any(r["impl"] == i and "median_s" in r for r in records)]
    skipped = sorted({f"{r['impl']} ({r.get('skipped') or r.get('error')})"
                      for r in records if "median_s" not in r and "not_applicable" not in r})
    skipped += sorted({f"{r['impl']} on {r['shape_name']} ({r['not_applicable']})"
                       for r in records if "not_applicable" in r})
    skipped += unsplit
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    dev = info["device"]
    on = f"{dev.get('count')} x {dev.get('kind')} ({dev.get('backend')})" if "kind" in dev else str(dev)
    title = f"{args.dtype} · {info['date']} · {on} · {info['cpu']} · {info['cores']} cores\n{versions}"
    header = [f"# jlstm benchmark, {info['date']}", "",
              f"- device (JAX): {on}",
              (f"- machine: {info['cpu']}, {info['cores']} cores, {info['platform']}, load average "
               f"before/after {info['load_average'][0]:.2f}/{info['load_average_after'][0]:.2f}"),
              f"- versions: python {info['python']}, {versions}",
              *([(f"- data parallel: the JAX and Keras-on-JAX peers on {CPU_DEVICES} XLA CPU devices "
                  "(jax_num_cpu_devices) with the batch sharded over them and the parameters replicated, the same "
                  f"code for each; jlstm_1device on one device; torch_cores with {CPU_DEVICES} threads")]
                if CPU_DEVICES else []),
              f"- env: {info['env'] or 'none of XLA_/OMP_/OPENBLAS_/MKL_/TF_/GLIBC_/MALLOC_ set'}",
              (f"- command: `{' '.join(sys.argv)}`; {budget} s of timed runs per cell in {args.rounds} "
               f"alternating rounds, {args.dtype}: {DTYPES[args.dtype]}"),
              "- implementations: " + "; ".join(f"`{i}`: {IMPLS[i][0]}" for i in names),
              *([f"- not measured: {'; '.join(skipped)}"] if skipped else []), "",
              f"![time relative to jlstm]({os.path.basename(out)}.png)", ""]
    with open(out + ".md", "w") as f:
        f.write("\n".join(header) + table(records, shapes, shown, modes, args.dtype))
    if shown:
        plot(records, shapes, shown, modes, out + ".png", title)
    print(f"wrote {out}.json, {out}.md, {out}.png")


if __name__ == "__main__":
    main()
