"""One XLA CPU device per core (``jax_num_cpu_devices``) with the batch split by ``jlstm.shard_batch``: the plan is
chosen for the rows and cores of one device, and a batch-sharded call gives the one-device numbers.

The plan choice is a pure function of :class:`jlstm._plan.Problem`, tested here without devices; the sharded
calls run in a subprocess of their own, since the device count is fixed at jax's first computation.
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import pytest

import jlstm
from jlstm import _plan
from processes import run_once
from test_plan import finish, run_python

MEDIUM = jax.ShapeDtypeStruct((32, 100, 128, 256)[:3], jnp.float32)  # (batch, time, input_dim) of the medium shape


def problem(shape=(32, 100, 128), units=256, **machine):
    machine = {"device_count": 1, "local_device_count": 1, "core_count": 2, "process_count": 1, **machine}
    return _plan.problem(jax.ShapeDtypeStruct(shape, jnp.float32), units, jnp.float32, time_major=False,
                         backend="cpu", **machine)


# --- the plan is chosen for one device's rows and cores (pure functions) -----------------------------------


def test_the_problem_of_a_batch_split_over_devices_is_one_devices_rows_and_cores():
    one = problem()
    assert (one.batch, one.cores, one.devices) == (32, 2, 1)
    two = problem(device_count=2, local_device_count=2, core_count=2)
    assert (two.batch, two.cores, two.devices) == (16, 1, 2)
    sixteen = problem(device_count=2, local_device_count=2, core_count=16)
    assert (sixteen.batch, sixteen.cores) == (16, 8)
    # A batch that does not split evenly cannot be placed split: it runs whole, and two chains see all of it.
    assert problem((5, 100, 128), device_count=2, local_device_count=2).batch == 5
    odd = problem((63, 100, 128), device_count=2, local_device_count=2, core_count=8)
    assert odd.batch == 63 and _plan.default(odd).chains == 1
    assert problem((1, 100, 128), device_count=4, local_device_count=4).batch == 1
    assert problem(core_count=1).cores == 1 and problem(device_count=4, local_device_count=4).cores == 1


def test_every_process_of_a_job_takes_one_core_per_device_whatever_its_own_cores():
    """SPMD needs the same program in every process: no process may choose from its own core count."""
    problems = {problem(device_count=8, local_device_count=4, core_count=cores, process_count=2)
                for cores in (1, 2, 4, 16, 64)}
    assert len(problems) == 1 and problems.pop().cores == 1


@pytest.mark.parametrize(("machine", "expected"), [
    # the medium shape (32, 100, 128, 256), 393K weights: two chains on one device with two cores,
    ({"core_count": 2}, jlstm.Plan(chains=2)),
    # one chain of 32 rows on one core,
    ({"core_count": 1}, jlstm.Plan(layout="features")),
    # and 16 rows on each of two devices with one core each: features first ("Every core of a CPU")
    ({"device_count": 2, "local_device_count": 2, "core_count": 2}, jlstm.Plan(layout="features")),
    # two devices with 8 cores each: 16 rows are too few for two chains, and the weights too few for features
    ({"device_count": 2, "local_device_count": 2, "core_count": 16}, jlstm.Plan()),
    # 64 rows on each of two devices with two cores each: two chains on each
    ({"device_count": 2, "local_device_count": 2, "core_count": 4, "shape": (128, 100, 128)},
     jlstm.Plan(chains=2)),
])
def test_the_default_plan_follows_one_devices_rows_and_cores(machine, expected):
    assert _plan.default(problem(**machine)) == expected


@pytest.mark.parametrize(("shape", "units", "devices", "expected"), [
    ((8, 1000, 64), 128, 2, jlstm.Plan()),  # long: 98K weights, 4 rows per device: batch first
    ((64, 100, 512), 1024, 2, jlstm.Plan(layout="features")),  # wide: 6.3M weights, 32 rows per device
    ((256, 50, 256), 512, 2, jlstm.Plan(layout="features")),  # large_batch: 1.6M weights, 128 rows on one core
    ((256, 50, 256), 512, 1, jlstm.Plan()),  # and 256 rows on one device with two cores
    ((512, 50, 256), 512, 2, jlstm.Plan()),  # 256 rows per one-core device: batch first
])
def test_the_grid_shapes_on_one_and_two_devices(shape, units, devices, expected):
    p = problem(shape, units, device_count=devices, local_device_count=devices, core_count=2)
    assert _plan.default(p) == expected


def test_plan_default_for_takes_the_device_count_and_cores_it_is_given():
    params = jlstm.init_params(jax.random.key(0), 128, 256)
    assert jlstm.Plan.default_for(params, MEDIUM, backend="cpu", cores=2) == jlstm.Plan(chains=2)
    assert jlstm.Plan.default_for(params, MEDIUM, backend="cpu", devices=2, cores=2) == jlstm.Plan(layout="features")


# --- a batch-sharded call on 2 CPU devices (a subprocess) --------------------------------------------------

WORKER = r"""
import json, sys
import jax
jax.config.update("jax_num_cpu_devices", 2)
import jax.numpy as jnp
import numpy as np
import jlstm
from jlstm import _plan

out = {"devices": jax.device_count()}
params = jlstm.init_params(jax.random.key(0), 128, 256)
x = jax.random.normal(jax.random.key(1), (32, 12, 128))
mask = jnp.arange(12)[None, :] < jnp.array([12, 7] * 16)[:, None]
reset = jax.random.bernoulli(jax.random.key(2), 0.2, (32, 12))


def value_and_grad(params, x, mask, reset, recurrence):
    def loss(params, x):
        y = jlstm.lstm(params, x, mask=mask, reset=reset, return_sequences=True, recurrence=recurrence)
        return jnp.sum(jnp.tanh(y) * jnp.cos(jnp.arange(256.0)))
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, x)


def error(a, b):
    return max(float(jnp.max(jnp.abs(u - v)) / (1e-6 + jnp.max(jnp.abs(v)))) for u, v in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# one device: the batch whole, the one-device default plan
one_plan = jlstm.Plan.default_for(params, x, devices=1)
expected = value_and_grad(params, x, mask, reset, one_plan)
forward_one = jax.jit(lambda p, x: jlstm.lstm(p, x, return_sequences=True, recurrence=one_plan))(params, x)
# two devices: the recipe, "auto"
mesh, (xs, ms, rs) = jlstm.shard_batch((x, mask, reset))
got = value_and_grad(params, xs, ms, rs, "auto")
forward = jax.jit(lambda p, x: jlstm.lstm(p, x, return_sequences=True))(params, xs)
out["train_error"] = error(got, expected)
out["forward_error"] = error(forward, forward_one)
out["input_grad_sharding"] = list(got[1][1].sharding.spec)
out["forward_sharding"] = list(forward.sharding.spec)
out["one_device_plan"] = one_plan._asdict()


# the plan "auto" traced under the mesh: chosen for one device's rows
def traced_problem(x):
    out["auto_problem"] = _plan.problem(x, 256, jnp.float32, time_major=False)._asdict()
    return x
jax.jit(traced_problem)(xs)
explicit = jax.make_mesh((2,), ("data",))  # AxisType.Explicit: the split is in the traced type
with jax.set_mesh(explicit):
    xe = jax.device_put(x, jax.NamedSharding(explicit, jax.P("data")))
    def explicit_problem(x):
        out["explicit_problem"] = _plan.problem(x, 256, jnp.float32, time_major=False)._asdict()
        return x
    jax.jit(explicit_problem)(xe)
tuned = jlstm.tune(params, xs, mode="forward", candidates=[], max_rounds=1, record=False, progress=False)
out["tuned_key_batch"] = tuned.key[0]
try:
    jlstm.shard_batch(jnp.ones((3, 4, 5)))
except ValueError as e:
    out["uneven"] = str(e)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    def run(directory):
        text = finish(run_python(WORKER, env={"JAX_PLATFORMS": "cpu"}))
        (directory / "result.json").write_text(text.split("RESULT ", 1)[1])

    return json.loads((run_once(tmp_path_factory, "cpu_devices", run) / "result.json").read_text())


def test_a_batch_sharded_call_on_two_cpu_devices_equals_one_device(two_devices):
    assert two_devices["devices"] == 2
    assert two_devices["forward_error"] < 1e-5 and two_devices["train_error"] < 1e-5
    assert two_devices["forward_sharding"][0] == two_devices["input_grad_sharding"][0] == "data"  # split by rows


def test_auto_and_tune_see_one_devices_rows_under_both_kinds_of_mesh(two_devices):
    auto, explicit = two_devices["auto_problem"], two_devices["explicit_problem"]
    assert (auto["batch"], auto["devices"], auto["batch_sharded"]) == (16, 2, False)
    assert (explicit["batch"], explicit["devices"], explicit["batch_sharded"]) == (16, 2, True)
    assert auto["cores"] == explicit["cores"] == max(1, _plan.cores() // 2)
    assert two_devices["tuned_key_batch"] == 16  # a tuned plan is recorded for one device's rows


def test_shard_batch_refuses_a_batch_that_does_not_split_and_names_the_shapes(two_devices):
    message = two_devices["uneven"]
    assert "shard_batch: batch has 3 rows on axis 0 (shape (3, 4, 5))" in message
    assert "over 2 devices" in message and "pad the batch to a multiple of 2" in message


def test_shard_batch_places_every_array_of_a_pytree_by_rows_on_one_device():
    x, mask = jnp.ones((4, 5, 3)), jnp.ones((5, 4), bool)
    mesh, (xs, ms) = jlstm.shard_batch((x, mask), devices=jax.devices()[:1], axis_name="rows")
    assert mesh.axis_names == ("rows",) and mesh.axis_types == (jax.sharding.AxisType.Auto,)
    assert xs.sharding.spec == jax.P("rows", None, None) and (xs == x).all()
    mesh, ms = jlstm.shard_batch(mask, batch_axis=1)
    assert ms.sharding.spec == jax.P(None, "data")
    with pytest.raises(ValueError, match=r"shard_batch: batch has shape \(4,\), which has no axis 1"):
        jlstm.shard_batch(jnp.ones(4), batch_axis=1)
    with pytest.raises(TypeError, match="batch_axis must be an int"):
        jlstm.shard_batch(x, batch_axis=None)


def test_the_performance_pages_recipe_runs_as_written():
    """The script under "Every core of a CPU" in docs/performance.md, run as it stands, on this machine's cores."""
    page = (pathlib.Path(jlstm.__file__).parent.parent / "docs" / "performance.md").read_text()
    section = page.split("## Every core of a CPU", 1)[1]
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    finish(run_python(script, env={"JAX_PLATFORMS": "cpu"}))
