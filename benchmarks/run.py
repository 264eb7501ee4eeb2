"""Benchmarks jlstm against its peers: one command, one process per implementation.

    python benchmarks/run.py                      # the default grid, every implementation
    python benchmarks/run.py --quick              # a small grid, about two minutes
    python benchmarks/run.py --shapes 16,200,64,128 --impls jlstm,torch_t1 --modes train

Writes ``PREFIX.json`` (every measurement, machine, versions, date), ``PREFIX.md``
(tables) and ``PREFIX.png`` (each implementation's time relative to jlstm).
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_impl import IMPLS  # noqa: E402

GRID = {  # name: (batch, time, input_dim, units)
    "small": (1, 100, 32, 64),
    "medium": (32, 100, 128, 256),
    "large_batch": (256, 50, 256, 512),
    "long": (8, 1000, 64, 128),
    "wide": (64, 100, 512, 1024),
}
QUICK_GRID = {"small": (1, 100, 32, 64), "quick_medium": (16, 50, 64, 128)}
QUICK_BUDGET = 0.25
PEERS = [name for name in IMPLS if name != "matmul"]
PACKAGES = ["jax", "jaxlib", "flax", "equinox", "keras", "tensorflow-cpu", "tensorflow", "torch", "numpy"]


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
    env = {k: v for k, v in os.environ.items() if k.startswith(("XLA_", "OMP_", "OPENBLAS_", "MKL_", "TF_"))}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "env": env,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def run_worker(name, shapes, modes, budget, progress):
    """Runs one implementation in its own process; yields its records as they arrive."""
    command = [sys.executable, os.path.join(HERE, "bench_impl.py"), "--impl", name,
               "--shapes", *[",".join(map(str, s)) for s in shapes.values()], "--modes", ",".join(modes),
               "--budget", str(budget)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(HERE),
                                                                     os.environ.get("PYTHONPATH")])))
    names = {tuple(s): n for n, s in shapes.items()}
    expected = len(shapes) * (1 if name == "matmul" else len(modes))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    got = 0
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        record["shape_name"] = names[tuple(record["shape"])]
        got += 1
        progress.update(1)
        progress.set_postfix_str(f"{name} {record['shape_name']} {record['mode']}")
        yield record
    stderr = process.stderr.read()
    process.wait()
    if got < expected:  # the worker died: report what is missing
        progress.update(expected - got)
        reason = (stderr.strip().splitlines() or ["no output"])[-1]
        yield {"impl": name, "error": f"worker exited with {process.returncode}: {reason}"}


def table(records, shapes, impls, modes):
    """Markdown: per mode, median ms and time relative to jlstm; first-call time; GFLOP/s and share."""
    by_key = {(r["impl"], r.get("shape_name"), r.get("mode")): r for r in records if "median_s" in r}
    lines = []
    limit = {s: by_key[("matmul", s, "forward")]["gflops"] for s in shapes if ("matmul", s, "forward") in by_key}
    for mode in modes:
        lines += [f"### {mode}: median ms (time relative to jlstm); **bold**: fastest", "",
                  "| shape (B, T, I, H) | " + " | ".join(impls) + " |",
                  "| --- |" + " ---: |" * len(impls)]
        for s, shape in shapes.items():
            got = {i: by_key[(i, s, mode)] for i in impls if (i, s, mode) in by_key}
            if not got:
                continue
            best = min(r["median_s"] for r in got.values())
            base = got.get("jlstm", {}).get("median_s")
            cells = []
            for i in impls:
                if i not in got:
                    cells.append("–")
                    continue
                t = got[i]["median_s"]
                cell = f"{t * 1e3:.3g}" + (f" ({t / base:.2f}×)" if base else "")
                cells.append(f"**{cell}**" if t == best else cell)
            lines.append(f"| {s} {shape} | " + " | ".join(cells) + " |")
        lines += ["", f"### {mode}: first call (trace + compile + one run), s", "",
                  "| shape | " + " | ".join(impls) + " |", "| --- |" + " ---: |" * len(impls)]
        for s in shapes:
            cells = [f"{by_key[(i, s, mode)]['first_s']:.2f}" if (i, s, mode) in by_key else "–" for i in impls]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        if limit:
            lines += ["", f"### {mode}: GFLOP/s (share of the matmul limit)", "",
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

    by_key = {(r["impl"], r.get("shape_name"), r.get("mode")): r["median_s"] for r in records if "median_s" in r}
    fig, axes = plt.subplots(len(modes), 1, figsize=(max(8, 1.6 * len(shapes) * len(impls) / 4), 4 * len(modes)),
                             squeeze=False)
    width = 0.8 / len(impls)
    for ax, mode in zip(axes[:, 0], modes):
        for k, impl in enumerate(impls):
            xs, ys = [], []
            for j, s in enumerate(shapes):
                if (impl, s, mode) in by_key and ("jlstm", s, mode) in by_key:
                    xs.append(j - 0.4 + (k + 0.5) * width)
                    ys.append(by_key[(impl, s, mode)] / by_key[("jlstm", s, mode)])
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
        if len(dims) != 4:
            raise SystemExit(f"--shapes: expected B,T,I,H (or name=B,T,I,H), got {text!r}")
        shapes[name or "x".join(map(str, dims))] = dims
    return shapes


def main(argv=None):
    parser = argparse.ArgumentParser(description="jlstm against its peers, each in its own process.")
    parser.add_argument("--quick", action="store_true", help=f"small grid {QUICK_GRID}, {QUICK_BUDGET} s per timing")
    parser.add_argument("--shapes", nargs="+", help="B,T,I,H or name=B,T,I,H (default: the grid)")
    parser.add_argument("--impls", default=",".join(PEERS), help=f"comma-separated, from {PEERS}")
    parser.add_argument("--modes", default="forward,train", help="forward, train or both")
    parser.add_argument("--budget", type=float, help="seconds of timed runs per measurement (default 2)")
    parser.add_argument("--no-limit", action="store_true", help="skip the matmul-limit measurement")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/full or .../quick)")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    shapes = parse_shapes(args.shapes) if args.shapes else (QUICK_GRID if args.quick else GRID)
    budget = args.budget if args.budget is not None else (QUICK_BUDGET if args.quick else 2.0)
    modes = args.modes.split(",")
    impls = args.impls.split(",")
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        raise SystemExit(f"--impls: unknown {unknown}; choose from {PEERS}")
    out = args.out or os.path.join(HERE, "results", "quick" if args.quick else "full")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    info = machine()
    workers = impls + ([] if args.no_limit else ["matmul"])
    total = sum(len(shapes) * (1 if w == "matmul" else len(modes)) for w in workers)
    records = []
    with tqdm(total=total, unit="timing", dynamic_ncols=True) as progress:
        for name in workers:
            for record in run_worker(name, shapes, modes, budget, progress):
                records.append(record)
                for problem in ("skipped", "error"):
                    if problem in record:
                        progress.write(f"{name}: {problem}: {record[problem]}")
    info["load_average_after"] = list(os.getloadavg())
    result = {"machine": info, "command": sys.argv, "budget_s": budget, "shapes": shapes, "records": records}
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    shown = [i for i in impls if any(r["impl"] == i and "median_s" in r for r in records)]
    skipped = sorted({f"{r['impl']} ({r.get('skipped') or r.get('error')})"
                      for r in records if "median_s" not in r})
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    title = f"{info['date']} · {info['cpu']} · {info['cores']} cores\n{versions}"
    header = [f"# jlstm benchmark, {info['date']}", "",
              f"- machine: {info['cpu']}, {info['cores']} cores, {info['platform']}, "
              f"load average before/after {info['load_average'][0]:.2f}/{info['load_average_after'][0]:.2f}",
              f"- versions: python {info['python']}, {versions}",
              f"- env: {info['env'] or 'none of XLA_/OMP_/OPENBLAS_/MKL_/TF_ set'}",
              f"- command: `{' '.join(sys.argv)}`; {budget} s of timed runs per cell, float32",
              "- implementations: " + "; ".join(f"`{i}`: {IMPLS[i][0]}" for i in workers),
              *([f"- not measured: {'; '.join(skipped)}"] if skipped else []), "",
              f"![time relative to jlstm]({os.path.basename(out)}.png)", ""]
    with open(out + ".md", "w") as f:
        f.write("\n".join(header) + table(records, shapes, shown, modes))
    if shown:
        plot(records, shapes, shown, modes, out + ".png", title)
    print(f"wrote {out}.json, {out}.md, {out}.png")


if __name__ == "__main__":
    main()
