"""Run by tests/test_distributed.py: one process of a data-parallel training run, or the one-process run.

``python distributed_worker.py OUT_DIR PROCESS_ID NUM_PROCESSES PORT``. With
``NUM_PROCESSES`` above 1 the process joins the others through
``jax.distributed.initialize`` (coordinator ``127.0.0.1:PORT``, gloo for the
CPU collectives), builds a mesh over every process's devices, feeds its own
rows of the global batch with ``jax.make_array_from_process_local_data`` and
runs :data:`STEPS` training steps of a masked :func:`jlstm.lstm` (jitted
``value_and_grad`` and an ``optax.sgd`` update) for each of :data:`VARIANTS`,
a mesh axis type and a ``recurrence``; it writes ``OUT_DIR/processI.npz``
(``VARIANT/losses``, ``VARIANT/params/J``) and ``OUT_DIR/processI.json`` (per
variant, the error or the shardings seen). With ``NUM_PROCESSES`` 1 it runs
the same steps on one device, with no mesh, for each recurrence, and writes
``OUT_DIR/reference.npz`` (``RECURRENCE/losses``, ``RECURRENCE/params/J``).
"""

import json
import pathlib
import sys

MESHES = ("explicit", "auto")
RECURRENCES = ("auto", "scan")
VARIANTS = tuple(f"{mesh}-{recurrence}" for mesh in MESHES for recurrence in RECURRENCES)
STEPS, BATCH, TIME, INPUT_DIM, UNITS = 3, 16, 6, 3, 4


def main(out_dir: str, process_id: str, num_processes: str, port: str) -> None:
    import jax

    distributed = int(num_processes) > 1
    if distributed:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=int(num_processes),
            process_id=int(process_id),
            initialization_timeout=60,
        )
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import numpy as np

    out = pathlib.Path(out_dir)
    arrays, meta = {}, {}
    for name in VARIANTS if distributed else RECURRENCES:
        try:
            losses, params, shardings = train(*name.split("-")) if distributed else train(None, name)
        except Exception as e:  # noqa: BLE001 -- recorded for the test; every process raises the same
            meta[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        meta[name] = {"shardings": shardings}
        arrays[f"{name}/losses"] = np.asarray(losses)
        for j, leaf in enumerate(jax.tree.leaves(params)):
            arrays[f"{name}/params/{j}"] = np.asarray(leaf.addressable_data(0))  # replicated: any copy
    stem = f"process{process_id}" if distributed else "reference"
    np.savez(out / f"{stem}.npz", **arrays)
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=1))
    if distributed:
        jax.distributed.shutdown()


def train(mesh_kind, recurrence):
    """``STEPS`` training steps over the global batch; ``mesh_kind`` None: one device, no mesh.

    Returns the losses, the final parameters and what was seen of the shardings.
    """
    import contextlib

    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import jlstm

    rng = np.random.default_rng(0)  # the global batch, the same in every process
    x = rng.standard_normal((BATCH, TIME, INPUT_DIM), dtype=np.float32)
    mask = rng.random((BATCH, TIME)) < 0.7
    y = rng.standard_normal((BATCH, UNITS), dtype=np.float32)
    params = jlstm.init_params(jax.random.key(0), INPUT_DIM, UNITS)
    optimizer = optax.sgd(0.1, momentum=0.9)  # not adam: see tests/sharding_worker.py

    def loss(params, x, mask, y):
        return jnp.mean((jlstm.lstm(params, x, mask=mask, recurrence=recurrence) - y) ** 2)

    @jax.jit
    def step(params, opt_state, x, mask, y):
        value, grads = jax.value_and_grad(loss)(params, x, mask, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return value, optax.apply_updates(params, updates), opt_state

    explicit, shardings = mesh_kind == "explicit", {}
    if mesh_kind is not None:
        axis_type = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}[mesh_kind]
        mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(axis_type,))  # every process's
        rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        # This process's rows: those of the global batch that its devices hold.
        held = [index[0] for index in rows.addressable_devices_indices_map(x.shape).values()]
        mine = slice(min(s.start for s in held), max(s.stop for s in held))
        x, mask, y = (jax.make_array_from_process_local_data(rows, a[mine], a.shape) for a in (x, mask, y))
        params = jax.device_put(params, replicated)
        shardings["rows_per_device"] = sorted({s.data.shape[0] for s in x.addressable_shards})
        shardings["local_devices"] = len(x.addressable_shards)

    losses = []
    with jax.set_mesh(mesh) if explicit else contextlib.nullcontext():  # explicit axes need it in context
        opt_state = optimizer.init(params)
        for _ in range(STEPS):
            value, params, opt_state = step(params, opt_state, x, mask, y)
            losses.append(np.asarray(value.addressable_data(0)))
    if mesh_kind is not None:
        results = (value, *jax.tree.leaves(params))
        shardings["replicated"] = all(a.sharding.is_fully_replicated for a in results)
    return losses, params, shardings


if __name__ == "__main__":
    main(*sys.argv[1:])
