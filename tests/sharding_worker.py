"""Run by tests/test_sharding.py in a subprocess with 8 forced CPU devices: every model, data-parallel.

``python sharding_worker.py MODE OUT_DIR``, ``MODE`` the mesh's axis type,
``explicit`` or ``auto``. Each *unit* is one case of :data:`CASES` (a model,
with or without a mask, one ``recurrence``) and one phase: ``forward`` (the
jitted model), ``jvp`` (its forward-mode tangent along the params and inputs) or ``train`` (a jitted ``value_and_grad`` of a loss and an
``optax.sgd`` update with momentum). Every unit runs once on one device and once with the
batch sharded over the ``data`` axis of a mesh of the 8 devices and the
parameters replicated.

To compile a few programs rather than hundreds, the units of one model run as
one jitted program per placement. A unit that raises while tracing is left
out of its program and its exception recorded; a program that fails later
(lowering, compiling, running) is split in two and each half run again, down
to the single unit that fails. For each model it writes ``OUT_DIR/MODEL.npz``
(``CASE/PHASE/single/i`` and ``CASE/PHASE/sharded/i``, the result leaves) and
``OUT_DIR/MODEL.json`` (per unit, the error or the sharded leaves' shardings).
"""

import contextlib
import json
import os
import pathlib
import sys
import time

RECURRENCES = ("auto", "scan", "step", "fused")
# Every recurrence runs through lstm and bidirectional (go_backwards). The models built on them pass
# ``recurrence`` on unchanged (test_bidirectional.py, test_stacked.py, test_flax.py) and run the default only,
# which keeps the file fast: what is theirs is the plumbing around the calls (a layer's sequence as the next
# layer's input, stacked states with the batch second, flax's parameter dict and nnx.State).
# JLSTM_SHARDING_FULL_GRID=1 runs every recurrence for them too (four times the work).
FULL = os.environ.get("JLSTM_SHARDING_FULL_GRID") == "1"
COMPOSED = RECURRENCES if FULL else ("auto",)
MODELS = {
    "lstm": RECURRENCES,
    "lstm_reset": RECURRENCES,  # episodes inside the rows: reset where the first input feature is above 1
    "bidirectional": RECURRENCES,
    "stacked": COMPOSED,
    "stacked_bidirectional": COMPOSED,
    "linen_lstm": COMPOSED,
    "linen_bidirectional": COMPOSED,
    "nnx_lstm": COMPOSED,
    "nnx_bidirectional": COMPOSED,
}
MASKS = ("unmasked", "masked")
CASES = tuple(f"{model}-{mask}-{rec}" for model, recs in MODELS.items() for mask in MASKS for rec in recs)
PHASES = ("forward", "jvp", "train")
DEVICES, BATCH, TIME, INPUT_DIM, UNITS, LAYERS = 8, 16, 6, 3, 4, 2
# BATCH is the only size 16 of any output's axes (the widest feature axis is 2 * UNITS = 8), which lets the
# test find the batch axis of an output by its size: axis 0 of sequences and states, 1 of stacked states.


def main(mode: str, out_dir: str) -> None:
    import jax
    import numpy as np
    from jax.sharding import AxisType

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == DEVICES, jax.devices()

    axis_type = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[mode]
    mesh = jax.make_mesh((DEVICES,), ("data",), axis_types=(axis_type,))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        start = time.perf_counter()
        units = [(case, phase) for case in CASES if case.startswith(f"{name}-") for phase in PHASES]
        single, single_errors = run_units(name, units, None)
        sharded, sharded_errors = run_units(name, units, mesh)
        arrays, meta = {}, {"seconds": time.perf_counter() - start}
        for unit in units:
            key = "/".join(unit)
            error = single_errors.get(unit) or sharded_errors.get(unit)
            if error:
                meta[key] = {"error": error, "placement": "single" if unit in single_errors else "sharded"}
                continue
            meta[key] = {"shardings": [describe(a) for a in sharded[unit]]}
            for tag, leaves in (("single", single[unit]), ("sharded", sharded[unit])):
                for i, a in enumerate(leaves):
                    arrays[f"{key}/{tag}/{i}"] = np.asarray(a)
        np.savez(out / f"{name}.npz", **arrays)
        (out / f"{name}.json").write_text(json.dumps(meta, indent=1))


def describe(a) -> dict:
    """What the test checks of a sharded result: its shape, each device's shard's shape, replication."""
    return {
        "shape": list(a.shape),
        "shard_shapes": sorted({tuple(s.data.shape) for s in a.addressable_shards}),
        "replicated": bool(a.sharding.is_fully_replicated),
        "devices": len(a.sharding.device_set),
        "sharding": str(a.sharding),
    }


def model(name: str, recurrence: str):
    """``(params, apply)``: a pytree of parameters and ``apply(params, x, mask) -> outputs``.

    Every model returns its whole sequence and its final state, so that both output paths are exercised;
    the parameters do not depend on ``recurrence``.
    """
    import jax
    import jax.numpy as jnp

    import jlstm

    flags = {"return_sequences": True, "return_state": True, "recurrence": recurrence}
    key = jax.random.key(1)
    if name == "lstm":
        return jlstm.init_params(key, INPUT_DIM, UNITS), lambda p, x, m: jlstm.lstm(p, x, mask=m, **flags)
    if name == "lstm_reset":  # the resets come from the sharded inputs, so they are split like the batch
        return jlstm.init_params(key, INPUT_DIM, UNITS), lambda p, x, m: jlstm.lstm(
            p, x, mask=m, reset=x[..., 0] > 1.0, **flags
        )
    if name == "bidirectional":
        params = tuple(jlstm.init_params(k, INPUT_DIM, UNITS) for k in jax.random.split(key))
        return params, lambda p, x, m: jlstm.bidirectional(*p, x, mask=m, **flags)
    if name in ("stacked", "stacked_bidirectional"):
        both = name == "stacked_bidirectional"
        params = jlstm.init_stacked_params(key, INPUT_DIM, UNITS, LAYERS, bidirectional=both)
        return params, lambda p, x, m: jlstm.stacked_lstm(p, x, bidirectional=both, mask=m, **flags)
    if name.startswith("linen_"):
        import jlstm.linen

        module = {"linen_lstm": jlstm.linen.LSTM, "linen_bidirectional": jlstm.linen.Bidirectional}[name]
        module = module(UNITS, **flags)
        params = module.init(key, jnp.zeros((BATCH, TIME, INPUT_DIM)))["params"]
        return params, lambda p, x, m: module.apply({"params": p}, x, mask=m)
    if name.startswith("nnx_"):
        from flax import nnx

        import jlstm.nnx

        module = {"nnx_lstm": jlstm.nnx.LSTM, "nnx_bidirectional": jlstm.nnx.Bidirectional}[name]
        graphdef, params = nnx.split(module(INPUT_DIM, UNITS, rngs=nnx.Rngs(1), **flags))
        return params, lambda p, x, m: nnx.merge(graphdef, p)(x, mask=m)
    raise ValueError(name)


def run_units(name: str, units, mesh):
    """Runs ``units`` of model ``name`` on one device (``mesh`` None) or data-parallel over ``mesh``.

    Returns ``(results, errors)``: the result leaves of each unit that ran, and ``"Type: message"`` of each
    that raised.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    params, _ = model(name, "auto")
    applies = {r: model(name, r)[1] for r in MODELS[name]}
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (BATCH, TIME, INPUT_DIM))
    mask = jax.random.bernoulli(keys[1], 0.7, (BATCH, TIME))
    y = jax.random.normal(keys[2], (BATCH, TIME, 2 * UNITS))  # each model's target: its first features
    # Not adam: its first step is lr * sign(g), which turns a float32 rounding difference in a gradient
    # entry near 0 into a full step of difference in the parameter.
    optimizer = optax.sgd(0.1, momentum=0.9)

    def unit_fn(case, phase):
        _, mask_kind, recurrence = case.split("-")
        apply = applies[recurrence]

        def forward(params, x, mask):
            return jax.tree.leaves(apply(params, x, mask if mask_kind == "masked" else None))

        def loss(params, x, mask, y):
            sequence, *states = forward(params, x, mask)
            total = jnp.mean((sequence - y[..., : sequence.shape[-1]]) ** 2)
            for state in states:
                total = total + jnp.mean(state**2)
            return total

        def train_step(params, x, mask, y):
            value, grads = jax.value_and_grad(loss)(params, x, mask, y)
            updates, _ = optimizer.update(grads, optimizer.init(params), params)
            return [value, *jax.tree.leaves(grads), *jax.tree.leaves(optax.apply_updates(params, updates))]

        def tangent(params, x, mask, y):  # forward mode along the params and inputs themselves
            return jax.jvp(lambda p, x: forward(p, x, mask), (params, x), (params, x))[1]

        return {"forward": lambda p, x, m, y: forward(p, x, m), "jvp": tangent, "train": train_step}[phase]

    if mesh is not None:
        rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        params = jax.device_put(params, replicated)
        x, mask, y = (jax.device_put(a, rows) for a in (x, mask, y))

    def context():  # Explicit axes need the mesh in context; Auto ones run as they did before set_mesh
        explicit = mesh is not None and mesh.axis_types[0] == AxisType.Explicit
        return jax.set_mesh(mesh) if explicit else contextlib.nullcontext()

    results, errors = {}, {}

    def run(units):
        def program(params, x, mask, y):
            outputs = {}
            for unit in units:
                try:
                    outputs[unit] = unit_fn(*unit)(params, x, mask, y)
                except Exception as e:  # noqa: BLE001 -- recorded for the test, the other units go on
                    errors[unit] = f"{type(e).__name__}: {e}"
            return outputs

        try:
            with context():
                outputs = jax.block_until_ready(jax.jit(program)(params, x, mask, y))
        except Exception as e:  # noqa: BLE001
            left = [u for u in units if u not in errors]
            if len(left) <= 1:
                errors.update({u: f"{type(e).__name__}: {e}" for u in left})
            else:
                run(left[: len(left) // 2])
                run(left[len(left) // 2 :])
            return
        results.update(outputs)

    run(units)
    return results, errors


if __name__ == "__main__":
    main(*sys.argv[1:])
