"""Data parallelism in one call: a one-axis mesh over the devices, and the batch split over it."""

import jax
import numpy as np


def shard_batch(batch, *, devices=None, batch_axis: int = 0, axis_name: str = "data"):
    """Splits ``batch`` by rows over ``devices``: returns the mesh and the placed arrays, nothing else changed.

    The recipe of data parallelism, written out: a one-axis mesh of
    ``AxisType.Auto`` over the devices, and every array of ``batch`` put with
    its ``batch_axis`` split over that axis (``NamedSharding(mesh,
    P(..., axis_name, ...))``). Under ``jax.jit`` each device then runs the
    loop on its own rows, and [`lstm`][jlstm.lstm]'s ``"auto"`` plan is
    chosen for the rows and the cores each device has. It sets nothing
    global: jax's configuration, and any mesh in context, stay as they were.

    On a CPU, one XLA device per core comes from
    ``jax.config.update("jax_num_cpu_devices", n)`` before the first
    computation (see "Every core of a CPU" in the performance page); jlstm
    never sets it.

    Args:
      batch: an array, or a pytree of arrays (inputs, mask, resets, targets),
        each with the batch on ``batch_axis``.
      devices: the devices to split over; None: ``jax.devices()``.
      batch_axis: the axis that holds the batch (1 for time-major inputs).
      axis_name: the mesh axis's name.

    Returns:
      ``(mesh, placed)``: the ``jax.sharding.Mesh`` and ``batch`` with every
      array placed split by rows. Parameters need no placing: an array on
      the default device, not yet committed to one, is copied to every
      device by ``jit``; ``jax.device_put(params, NamedSharding(mesh, P()))``
      replicates them explicitly.

    Raises:
      ValueError: an array's batch does not split evenly over the devices
        (JAX refuses uneven shards): pad the batch to a multiple of the
        device count and give the padded rows zero weight in the loss.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm
      >>> mesh, x = jlstm.shard_batch(jnp.ones((4 * jax.device_count(), 10, 3)))
      >>> mesh.axis_names, x.sharding.spec
      (('data',), P('data', None, None))
    """
    fn = "shard_batch"
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"{fn}: devices is empty")
    if isinstance(batch_axis, (bool, np.bool_)) or not isinstance(batch_axis, (int, np.integer)):
        raise TypeError(f"{fn}: batch_axis must be an int, got {batch_axis!r}")
    mesh = jax.sharding.Mesh(np.asarray(devices), (axis_name,), axis_types=(jax.sharding.AxisType.Auto,))

    def place(path, array):
        where = f"batch{jax.tree_util.keystr(path)}"
        shape = np.shape(array)
        if not -len(shape) <= batch_axis < len(shape):
            raise ValueError(f"{fn}: {where} has shape {shape}, which has no axis {batch_axis} (batch_axis)")
        rows = shape[batch_axis]
        if rows % len(devices):
            raise ValueError(
                f"{fn}: {where} has {rows} rows on axis {batch_axis} (shape {shape}), which do not split evenly "
                f"over {len(devices)} devices; pad the batch to a multiple of {len(devices)} and give the padded "
                "rows zero weight in the loss"
            )
        spec = [None] * len(shape)
        spec[batch_axis] = axis_name
        return jax.device_put(array, jax.NamedSharding(mesh, jax.P(*spec)))

    return mesh, jax.tree_util.tree_map_with_path(place, batch)
