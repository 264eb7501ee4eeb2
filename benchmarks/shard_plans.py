"""Which plan suits one device's share of the batch: plans timed sharded on N XLA CPU devices, in one process.

    python benchmarks/shard_plans.py                       # the grid shapes with batch >= 2, forward and train
    python benchmarks/shard_plans.py medium,wide forward   # some shapes, one mode
    python benchmarks/shard_plans.py wide train features,features_hoisted   # some plans
    JLSTM_SHARD_DEVICES=4 python benchmarks/shard_plans.py

The process makes N CPU devices (``jax_num_cpu_devices``, default 2). For each shape and mode it times, in
alternating rounds, the one-device default plan on the whole batch on one device (``one_device``, the reference)
and several plans with the batch split over the N devices (``jlstm.shard_batch``): ``auto`` (the plan the
default chooses here), and fixed plans. It prints each one's median time and its median same-round ratio to the
reference. This is the measurement behind "Every core of a CPU" in ``RESULTS.md``; ``run.py --cpu-devices`` is
the suite's comparison with the peers.
"""

import os
import statistics
import sys
import time

import jax

jax.config.update("jax_num_cpu_devices", int(os.environ.get("JLSTM_SHARD_DEVICES", "2")))

import jax.numpy as jnp  # after the device count is set

import jlstm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import GRID

P = jlstm.Plan
PLANS = {"batch": P(), "batch_unroll2": P(unroll=2), "batch_unroll4": P(unroll=4), "features": P(layout="features"),
         "features_unroll2": P(layout="features", unroll=2), "hoisted_unroll2": P(projection="hoisted", unroll=2),
         "features_hoisted": P(layout="features", projection="hoisted")}
ROUNDS, PER_ROUND_S = 6, 0.3


def program(plan, mode):
    def forward(params, x):
        return jlstm.lstm(params, x, return_sequences=True, recurrence=plan)

    if mode == "forward":
        return jax.jit(forward)
    return jax.jit(jax.value_and_grad(lambda p, x: jnp.sum(forward(p, x))))


def median_call(fn, args):
    times = []
    end = time.perf_counter() + PER_ROUND_S
    while time.perf_counter() < end or len(times) < 3:
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    shapes = sys.argv[1].split(",") if len(sys.argv) > 1 else [n for n, s in GRID.items() if s[0] >= 2]
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["forward", "train"]
    plans = {k: PLANS[k] for k in sys.argv[3].split(",")} if len(sys.argv) > 3 else PLANS
    print(f"{jax.device_count()} CPU devices; ratios: median same-round time relative to one_device", flush=True)
    for name in shapes:
        batch, steps, input_dim, units, *projection = GRID[name]
        params = jlstm.init_params(jax.random.key(0), input_dim, units,
                                   proj_size=projection[0] if projection else None)
        x = jax.random.normal(jax.random.key(1), (batch, steps, input_dim))
        _, xs = jlstm.shard_batch(x)
        one = jlstm.Plan.default_for(params, x, devices=1)
        for mode in modes:
            runs = {"one_device": (program(one, mode), (params, x)), "auto": (program("auto", mode), (params, xs))}
            runs.update({label: (program(plan, mode), (params, xs)) for label, plan in plans.items()})
            for fn, args in runs.values():
                jax.block_until_ready(fn(*args))
            per_round = {label: [] for label in runs}
            for k in range(ROUNDS):
                for label in (list(runs) if k % 2 == 0 else list(runs)[::-1]):
                    per_round[label].append(median_call(*runs[label]))
            base = per_round["one_device"]
            cells = [f"{label} {1e3 * statistics.median(t):.1f} ms {statistics.median(a / b for a, b in zip(t, base)):.2f}x"
                     for label, t in per_round.items()]
            print(f"{name} {GRID[name]} {mode} (one device: {one.layout}, {one.chains} chain(s)): " + "; ".join(cells),
                  flush=True)


if __name__ == "__main__":
    main()
