"""Run by tests/test_sharding.py in a subprocess with 8 forced CPU devices: data-parallel jlstm.

Computes the forward pass, the loss and the gradients once on one device and
once with the batch sharded over a ``Mesh`` of 8 devices and the parameters
replicated, checks that the shardings are the data-parallel ones, and saves
both results to the ``.npz`` path given as the only argument.
"""

import sys


def main(path: str) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import jlstm

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == 8, jax.devices()

    batch, time, input_dim, units = 16, 12, 3, 5
    keys = jax.random.split(jax.random.key(0), 4)
    params = jlstm.init_params(keys[0], input_dim, units)
    x = jax.random.normal(keys[1], (batch, time, input_dim))
    mask = jax.random.bernoulli(keys[2], 0.8, (batch, time))
    y = jax.random.normal(keys[3], (batch, units))

    def forward(params, x, mask):
        return jlstm.lstm(params, x, mask=mask, return_sequences=True)

    def loss(params, x, mask, y):
        return jnp.mean((forward(params, x, mask)[:, -1] - y) ** 2)

    step = jax.jit(jax.value_and_grad(loss))
    run = jax.jit(forward)

    single = {"seq": run(params, x, mask)}
    single["loss"], single["grads"] = step(params, x, mask, y)

    mesh = jax.make_mesh((8,), ("data",))
    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    params_r = jax.device_put(params, replicated)
    x_s, mask_s, y_s = (jax.device_put(a, rows) for a in (x, mask, y))
    sharded = {"seq": run(params_r, x_s, mask_s)}
    sharded["loss"], sharded["grads"] = step(params_r, x_s, mask_s, y_s)

    seq = sharded["seq"]
    assert seq.sharding.is_equivalent_to(rows, seq.ndim), seq.sharding  # stays split by batch rows
    assert {s.data.shape for s in seq.addressable_shards} == {(batch // 8, time, units)}
    assert all(g.sharding.is_fully_replicated for g in sharded["grads"])  # every device has the full gradient

    flat = {}
    for tag, result in (("single", single), ("sharded", sharded)):
        flat[f"{tag}_seq"] = np.asarray(result["seq"])
        flat[f"{tag}_loss"] = np.asarray(result["loss"])
        for name, g in zip(jlstm.LSTMParams._fields, result["grads"]):
            flat[f"{tag}_grad_{name}"] = np.asarray(g)
    np.savez(path, **flat)


if __name__ == "__main__":
    main(sys.argv[1])
