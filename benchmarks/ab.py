"""Interleaved A/B timing of jlstm variants in one process.

On a busy machine absolute times are noise, but variants timed in alternation
(A, B, A, B, ...) see the same load, so their ratio is still meaningful::

    python benchmarks/ab.py --shape 16,50,64,128 --mode train "recurrence='scan'" "recurrence='fused'"

Each variant is a comma-separated list of ``jlstm.lstm`` keyword options
(Python literals); the first is the baseline. Prints, per variant, the median
time, its ratio to the baseline, and the spread of the per-round ratios.
"""

import argparse
import ast
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def interleave(fns: dict, sync, *, rounds: int = 30, calls: int = 3) -> dict:
    """Times every ``fn`` in ``fns`` ``calls`` times per round, alternating, after one warm-up call each.

    Returns ``{name: [median per round, ...]}``; the round order alternates to cancel drift.
    """
    from _timing import runs

    for fn in fns.values():  # compile and warm up
        sync(fn())
        sync(fn())
    names = list(fns)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(min(runs(fns[name], sync, budget=0, warmup=0, min_runs=calls)))
    return times


def summary(times: dict) -> str:
    names = list(times)
    base = times[names[0]]
    lines = []
    for name in names:
        ratios = sorted(t / b for t, b in zip(times[name], base))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        lines.append(f"{statistics.median(times[name]) * 1e3:10.3f} ms  x{statistics.median(ratios):.3f} "
                     f"(per-round ratio quartiles {q1:.3f}-{q3:.3f})  {name}")
    return "\n".join(lines)


def options(text: str) -> dict:
    call = ast.parse(f"f({text})", mode="eval").body
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", required=True, help="B,T,I,H")
    parser.add_argument("--mode", default="forward", choices=["forward", "train"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="bfloat16: float32 params cast to bfloat16 inside the jitted function")
    parser.add_argument("--calls", type=int, default=3, help="calls per round; the round keeps the fastest")
    parser.add_argument("variants", nargs="+", help="jlstm.lstm keyword options, e.g. \"unroll=2\"")
    args = parser.parse_args(argv)
    from bench_impl import IMPLS

    shape = tuple(int(n) for n in args.shape.split(","))
    build = IMPLS["jlstm"][1]
    fns, sync = {}, None
    for text in args.variants:
        fns[text or "(default)"], sync = build(shape, args.mode, args.dtype, **options(text))
    print(f"shape {shape} {args.mode}, {args.rounds} rounds x {args.calls} calls, load {os.getloadavg()[0]:.2f}")
    print(summary(interleave(fns, sync, rounds=args.rounds, calls=args.calls)))


if __name__ == "__main__":
    main()
