"""Peak memory of one training step on a long sequence, with and without ``remat_chunk``.

Every configuration runs in its own process. For each it reports XLA's own
account of the compiled step (``memory_analysis()``: temporary buffers, which
hold what the backward pass keeps, plus arguments and outputs) and the growth
of the process's resident memory while the step runs (``VmHWM`` reset after
compilation, minus ``VmRSS`` before the step).

    PYTHONPATH=. python benchmarks/memory.py            # T = 10,000, prints a Markdown table
    PYTHONPATH=. python benchmarks/memory.py --time 2000 --chunks none 50
"""

import argparse
import json
import os
import subprocess
import sys

MIB = 2**20


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def measure(time: int, batch: int, input_dim: int, units: int, chunk: int | None) -> dict:
    """Compiles and runs one ``value_and_grad`` step in this process."""
    import jax
    import jax.numpy as jnp

    import jlstm

    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    y = jax.random.normal(jax.random.key(2), (batch, units))

    def loss(params, x, y):
        return jnp.mean((jlstm.lstm(params, x, remat_chunk=chunk) - y) ** 2)

    step = jax.jit(jax.value_and_grad(loss)).lower(params, x, y).compile()
    analysis = step.memory_analysis()
    jax.block_until_ready((params, x, y))
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current VmRSS
        f.write("5")
    before = _status("VmRSS")
    jax.block_until_ready(step(params, x, y))
    return {
        "chunk": chunk,
        "temp": analysis.temp_size_in_bytes,
        "args_out": analysis.argument_size_in_bytes + analysis.output_size_in_bytes,
        "rss_growth": _status("VmHWM") - before,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input-dim", type=int, default=16)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--chunks", nargs="+", default=["none", "1000", "100", "10"],
                        help="remat_chunk values to compare; 'none' is the default loop, without remat_chunk")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one configuration here, print JSON
    args = parser.parse_args(argv)
    shape = (args.time, args.batch, args.input_dim, args.units)
    if args.one is not None:
        chunk = None if args.one == "none" else int(args.one)
        print(json.dumps(measure(*shape, chunk)))
        return
    rows = []
    for chunk in args.chunks:
        cmd = [sys.executable, __file__, "--one", chunk, "--time", str(args.time), "--batch", str(args.batch),
               "--input-dim", str(args.input_dim), "--units", str(args.units)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"value_and_grad of an MSE loss on lstm(params, x), x of shape (batch={args.batch}, "
          f"time={args.time}, input_dim={args.input_dim}), units={args.units}, float32\n")
    print("| remat_chunk | XLA temp buffers (MiB) | arguments + outputs (MiB) "
          "| RSS growth during the step (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        name = "None (the default loop)" if r["chunk"] is None else str(r["chunk"])
        print(f"| {name} | {r['temp'] / MIB:.1f} | {r['args_out'] / MIB:.1f} | {r['rss_growth'] / MIB:.1f} |")


if __name__ == "__main__":
    main()
