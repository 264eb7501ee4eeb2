"""The first call of a training step, split into trace, lowering, compile and the one run: jlstm against flax.

Each measurement runs in a fresh process (nothing traced or compiled before it but a warm-up of JAX itself),
implementations alternating shape by shape and round by round, so that both see the same load::

    python benchmarks/first_call.py                      # the default grid, jlstm and flax_linen_opt, 3 rounds
    python benchmarks/first_call.py --rounds 5 --impls jlstm,flax_linen_opt,jlstm_baseline

The step is the suite's (``bench_impl.py``): ``jax.jit(jax.value_and_grad(loss))`` of the implementation's
``apply``, timed as ``jit(step).trace(...).lower()``, ``.compile()`` and the first synced call of the compiled
step, in wall-clock seconds and in the process's CPU seconds (which other load changes less). Prints a markdown
table of medians over the rounds, and writes ``results/first_call.json``.
"""

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PHASES = ("trace_and_lower_s", "compile_s", "run_s", "first_call_s", "compile_cpu_s", "first_call_cpu_s")


def measure(name: str, shape: tuple, mode: str) -> dict:
    """In this process: the phases of the first call of ``name``'s step for ``shape`` (a fresh process each)."""
    import time

    import jax
    import jax.numpy as jnp

    import bench_impl

    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.ones(2)))  # JAX's own start-up, not the step's
    captured = {}

    def capture(apply, params, x, mode):
        captured.update(apply=apply, params=params, x=x)
        return (lambda: None), (lambda out: out)

    bench_impl._jax_pair = capture
    bench_impl.IMPLS[name][1](shape, mode, "float32")
    apply, params, x = captured["apply"], captured["params"], captured["x"]
    if mode == "forward":
        step = apply
    else:
        step = jax.value_and_grad(lambda p, x: jnp.sum(apply(p, x)))
    # Wall-clock seconds, and this process's CPU seconds (all its threads), which other load on the machine
    # changes less: XLA compiles on several threads.
    times, cpu = [time.perf_counter()], [time.process_time()]
    traced = jax.jit(step).trace(params, x)
    lowered = traced.lower()
    times.append(time.perf_counter())
    cpu.append(time.process_time())
    compiled = lowered.compile()
    times.append(time.perf_counter())
    cpu.append(time.process_time())
    jax.block_until_ready(compiled(params, x))
    times.append(time.perf_counter())
    cpu.append(time.process_time())
    trace_and_lower, compile_s, run_s = (b - a for a, b in itertools.pairwise(times))
    return dict(zip(PHASES, [trace_and_lower, compile_s, run_s, times[-1] - times[0], cpu[2] - cpu[1],
                             cpu[-1] - cpu[0]], strict=True))


def main(argv=None):
    from run import GRID

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", default="jlstm,flax_linen_opt")
    parser.add_argument("--shapes", default=",".join(n for n, s in GRID.items() if len(s) == 4),
                        help="names from run.py's GRID (the projected shape has no flax peer)")
    parser.add_argument("--mode", default="train", choices=["train", "forward"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "first_call.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # name;shape;mode
        name, shape, mode = args.child.split(";")
        print(json.dumps(measure(name, tuple(json.loads(shape)), mode)))
        return
    from tqdm import tqdm

    impls, shapes = args.impls.split(","), args.shapes.split(",")
    env = dict(os.environ, JLSTM_CACHE_DIR=os.path.join(HERE, "results", ".empty_plan_cache"))
    results = {(s, i): [] for s in shapes for i in impls}
    with tqdm(total=args.rounds * len(shapes) * len(impls), unit="process") as progress:
        for r in range(args.rounds):
            for shape in shapes:
                for impl in impls if r % 2 == 0 else impls[::-1]:
                    child = f"{impl};{json.dumps(GRID[shape])};{args.mode}"
                    out = subprocess.run([sys.executable, __file__, "--child", child], env=env, cwd=HERE,
                                         capture_output=True, text=True, check=True).stdout
                    results[shape, impl].append(json.loads(out.strip().splitlines()[-1]))
                    progress.update()
    medians = {f"{s}/{i}": {p: statistics.median(m[p] for m in ms) for p in PHASES} for (s, i), ms in results.items()}
    with open(args.out, "w") as f:
        json.dump({"command": sys.argv, "rounds": args.rounds, "mode": args.mode, "medians": medians,
                   "runs": {f"{s}/{i}": ms for (s, i), ms in results.items()}}, f, indent=1)
    print(f"| shape | impl | trace + lowering (s) | compile (s) | run (s) | first call (s) | vs {impls[-1]} "
          f"| compile, CPU s | first call, CPU s | vs {impls[-1]}, CPU |")
    print("| --- | --- |" + " ---: |" * 8)
    for shape in shapes:
        base = medians[f"{shape}/{impls[-1]}"]
        for impl in impls:
            m = medians[f"{shape}/{impl}"]
            print(f"| {shape} {GRID[shape]} | {impl} | {m['trace_and_lower_s']:.3f} | {m['compile_s']:.3f} | {m['run_s']:.3f} "
                  f"| {m['first_call_s']:.3f} | {m['first_call_s'] / base['first_call_s']:.2f}x "
                  f"| {m['compile_cpu_s']:.3f} | {m['first_call_cpu_s']:.3f} "
                  f"| {m['first_call_cpu_s'] / base['first_call_cpu_s']:.2f}x |")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
