"""How jlstm.lstm runs its loop: every jlstm.Plan and every ``recurrence`` gives the scan's numbers, ``"auto"`` runs
the plan tune() recorded or else the default one, and tune() times the documented candidates and keeps its
choice in memory and on disk.

The plans against Keras: test_keras.py; under every JAX transformation: test_transforms.py; the errors for bad
plans and tune arguments: test_bad_inputs.py.
"""

import functools
import json
import os
import pathlib
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jlstm
from conftest import COMPILER_OPTIONS, PLAN_SHAPE, PLANS, assert_close, plan_data, plan_id

B, T, I, H = PLAN_SHAPE


def jaxpr(params, x, recurrence, **kwargs):
    """The program jlstm.lstm traces: equal programs mean the same plan ran."""
    return str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, recurrence=recurrence, **kwargs))(params, x))


# --- every plan gives the same numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("recurrence", ["step", "fused", *(p._replace(unroll=2) for p in PLANS[::3])], ids=plan_id)
def test_time_major_unroll_and_custom_activations_match_scan(recurrence):
    params, x, h0, c0, mask = plan_data()
    kwargs = {"initial_state": (h0, c0), "mask": mask.T, "time_major": True, "return_sequences": True, "return_state": True,
                  "activation": jax.nn.relu, "recurrent_activation": jax.nn.hard_sigmoid}
    if isinstance(recurrence, str):
        kwargs["unroll"] = 2
    xt = np.swapaxes(x, 0, 1)

    def loss(params, recurrence):
        return sum(jnp.sum(o ** 2) for o in jlstm.lstm(params, xt, recurrence=recurrence, **kwargs))

    assert_close(jlstm.lstm(params, xt, recurrence=recurrence, **kwargs)[0],
                 jlstm.lstm(params, xt, recurrence="scan", **kwargs)[0])
    for actual, want in zip(jax.grad(loss)(params, recurrence), jax.grad(loss)(params, "scan")):
        assert_close(actual, want, "float32_grad")


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_two_chains_equal_one_scan(masked):
    """Two concurrent batch chains, at a shape where their matmuls are CPU-sized, give the scan's values and grads."""
    batch, time, input_dim, units = 32, 4, 128, 256
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    mask = jax.random.bernoulli(jax.random.key(2), 0.7, (batch, time)) if masked else None
    state = tuple(jax.random.normal(jax.random.key(3), (2, batch, units)))

    def loss(params, x, state, recurrence):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=mask, return_sequences=True,
                               return_state=True, go_backwards=True, recurrence=recurrence)
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h * c)

    expected_value, expected_grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(params, x, state, "scan")
    for backward in ("fused", "autodiff"):
        plan = jlstm.Plan(chains=2, backward=backward)
        value, grads = jax.value_and_grad(loss, argnums=(0, 1, 2))(params, x, state, plan)
        assert_close(value, expected_value, "float32_grad")
        jax.tree.map(lambda a, e: assert_close(a, e, "float32_grad"), grads, expected_grads)


# The fused loop's tangent runs in chunks of at least 256 rows (steps x batch), at most an eighth of the steps each:
# 11 steps of a batch of 64 are a first chunk of 3 steps, then two of 4 (jlstm/_recurrence.py, _chunk_size).
CHUNKED_SHAPE = (64, 11, 3, 5)


@functools.cache
def chunked_data(proj_size):
    batch, time, input_dim, units = CHUNKED_SHAPE
    params = jlstm.init_params(jax.random.key(0), input_dim, units, proj_size=proj_size)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    state = (jax.random.normal(jax.random.key(2), (batch, proj_size or units)),
             jax.random.normal(jax.random.key(3), (batch, units)))
    mask = jax.random.bernoulli(jax.random.key(4), 0.7, (batch, time))
    return params, x, state, mask


def chunked_results(recurrence, masked, proj_size):
    """Values and gradients (params, inputs, initial state), and a forward-mode derivative in every argument."""
    params, x, state, mask = chunked_data(proj_size)

    def loss(params, x, state):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=mask if masked else None, return_sequences=True,
                               return_state=True, recurrence=recurrence)
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h * h[:, :1]) + jnp.sum(jnp.cos(c))

    primals = (params, x, state)
    tangents = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), primals)
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)), compiler_options=COMPILER_OPTIONS)
    jvp = jax.jit(lambda p, t: jax.jvp(loss, p, t)[1], compiler_options=COMPILER_OPTIONS)
    return value_and_grad(*primals), jvp(primals, tangents)


@functools.cache
def chunked_scan(masked, proj_size):
    return chunked_results("scan", masked, proj_size)


FUSED_PLANS = [p for p in PLANS if p.backward == "fused"]
CHUNKED_CASES = [  # every fused plan; the projected LSTM in both layouts of the tangent's matmuls
    *(pytest.param(plan, None, id=plan_id(plan)) for plan in FUSED_PLANS),
    *(pytest.param(plan, 2, id=f"{plan_id(plan)}-projected")
      for plan in FUSED_PLANS if plan.layout in ("batch", "features") and plan.projection == "hoisted"),
]


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("plan, proj_size", CHUNKED_CASES)
def test_the_fused_backward_in_chunks_gives_the_scans_gradients(plan, proj_size, masked):
    """Several chunks and a shorter first one: gradients and a forward-mode derivative equal the scan's."""
    (value, grads), derivative = chunked_results(plan, masked, proj_size)
    (want, want_grads), want_derivative = chunked_scan(masked, proj_size)
    assert_close(value, want, "float32_grad")
    assert_close(derivative, want_derivative, "float32_grad")
    for actual, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        assert_close(actual, expected, "float32_grad")


@pytest.mark.parametrize("recurrence", ["auto", "step", "fused", *(p for p in PLANS if p.chains == 1)], ids=plan_id)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16bit_params_match_float32_in_every_layout(dtype, recurrence):
    """16-bit weights run the fast loops, float32 state: the float32 results of the same rounded weights."""
    params, x, h0, c0, mask = plan_data()
    p16, x16 = jax.tree.map(lambda a: jnp.asarray(a, dtype), params), jnp.asarray(x, dtype)
    p32, x32 = jax.tree.map(lambda a: a.astype(jnp.float32), p16), x16.astype(jnp.float32)

    def loss(params, x, h0, c0, recurrence):
        seq, h, c = jlstm.lstm(params, x, initial_state=(h0, c0), mask=mask, return_sequences=True,
                               return_state=True, go_backwards=True, recurrence=recurrence)
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h * c)

    if recurrence == "auto":  # the documented rule: "fused" where it applies, 16-bit params included
        assert jaxpr(p16, x16, "auto") == jaxpr(p16, x16, "fused")
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)), static_argnums=4)
    value, grads = value_and_grad(p16, x16, h0, c0, recurrence)
    want_value, want_grads = value_and_grad(p32, x32, h0, c0, "scan")
    assert value.dtype == jnp.float32
    flat, want_flat = [*grads[0], *grads[1:]], [*want_grads[0], *want_grads[1:]]
    assert [g.dtype.name for g in flat] == [dtype] * 4 + ["float32"] * 2  # params, x; h0 and c0 float32
    assert_close(value, want_value, dtype)
    for actual, want in zip(flat, want_flat):
        assert_close(actual, want, dtype)


# A projected LSTM (proj_size P): h and the outputs (B, P), c (B, H); the flags that change the loop: a mask, going
# backwards from an initial state, or time-major without a mask.
PROJECTED_CASES = {
    "masked-backwards-state": {"masked": True, "go_backwards": True, "state": True},
    "time_major": {"time_major": True},
}


def projected_value_and_grads(recurrence, case):
    params, x, h0, c0, mask = plan_data()
    proj_size = 2
    rng = np.random.default_rng(1)
    params = jlstm.LSTMPParams(params.kernel, params.recurrent_kernel[:proj_size], params.bias,
                               rng.standard_normal((H, proj_size), np.float32) / np.sqrt(H))
    flags = PROJECTED_CASES[case]
    time_major = flags.get("time_major", False)
    x, mask = (np.swapaxes(x, 0, 1), mask.T) if time_major else (x, mask)
    state = (h0[:, :proj_size], c0) if flags.get("state") else None

    def loss(params, x, state):
        seq, h, c = jlstm.lstm(params, x, initial_state=state, mask=mask if flags.get("masked") else None,
                               go_backwards=flags.get("go_backwards", False), time_major=time_major,
                               return_sequences=True, return_state=True, recurrence=recurrence)
        assert seq.shape[-1] == h.shape[-1] == proj_size and c.shape[-1] == H
        return jnp.sum(jnp.sin(seq)) + jnp.sum(h**2) + jnp.sum(jnp.cos(c))

    value_and_grad = jax.value_and_grad(loss, argnums=(0, 1, 2))
    return jax.jit(value_and_grad, compiler_options=COMPILER_OPTIONS)(params, x, state)


@functools.cache
def projected_scan(case):
    return projected_value_and_grads("scan", case)


@pytest.mark.parametrize("case", PROJECTED_CASES)
@pytest.mark.parametrize("recurrence", ["auto", "step", "fused", *PLANS], ids=plan_id)
def test_projected_params_give_the_scans_values_and_gradients_in_every_plan(recurrence, case):
    (value, grads), (want, want_grads) = projected_value_and_grads(recurrence, case), projected_scan(case)
    assert isinstance(grads[0], jlstm.LSTMPParams)
    assert_close(value, want, "float32_grad")
    for actual, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        assert_close(actual, expected, "float32_grad")


# --- "auto" ------------------------------------------------------------------------------------------------


@pytest.fixture
def plan_cache(tmp_path, monkeypatch):
    """An empty cache directory of its own, and no plan recorded in this process before or after the test."""
    monkeypatch.setenv("JLSTM_CACHE_DIR", str(tmp_path))
    jlstm.clear_tuned_plans()
    yield tmp_path
    jlstm.clear_tuned_plans()


def tiny_tune(params, x, **kw):
    return jlstm.tune(params, x, mode="forward", max_seconds=20, max_rounds=3, progress=False, **kw)


# (batch, time, input_dim, units): tiny to large weights, and an odd batch beside an even one of the same size.
SIZES = {
    "tiny": (4, 5, 4, 6),
    "medium": (32, 4, 128, 256),
    "medium_odd_batch": (31, 4, 128, 256),
    "large": (8, 3, 512, 1024),
}


@pytest.mark.parametrize("size", SIZES)
def test_auto_runs_the_default_plan_and_gives_the_scans_numbers(plan_cache, size):
    """Whatever the rules choose for a shape, ``"auto"`` runs that plan (TuneResult.default), a valid one."""
    batch, time, input_dim, units = SIZES[size]
    params = jlstm.init_params(jax.random.key(0), input_dim, units)
    x = jax.random.normal(jax.random.key(1), (batch, time, input_dim))
    result = jlstm.tune(params, x, mode="forward", candidates=[], max_rounds=1, record=False, progress=False)
    assert batch % result.default.chains == 0  # the chains split the batch evenly
    assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)

    def value_and_grad(recurrence):
        loss = lambda p: jnp.sum(jnp.sin(jlstm.lstm(p, x, return_sequences=True, recurrence=recurrence)))
        return jax.jit(jax.value_and_grad(loss))(params)

    (value, grads), (want, want_grads) = value_and_grad("auto"), value_and_grad("scan")
    assert_close(value, want, "float32_grad")
    for actual, expected in zip(grads, want_grads):
        assert_close(actual, expected, "float32_grad")


def test_tune_times_the_documented_candidates_and_each_gives_the_scans_numbers(plan_cache):
    """candidates=None: the default, each other layout, the other batch chains and projection, unroll=2."""
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jax.random.normal(jax.random.key(1), (4, 12, 8))
    result = jlstm.tune(params, x, mode="forward", max_seconds=120, max_rounds=2, record=False, progress=False)
    plans = set(result.times)
    assert result.default in plans and result.plan in plans and len(plans) > 3
    assert {p.layout for p in plans} == {"batch", "stacked", "features"}
    assert {p.chains for p in plans} == {1, 2}
    assert {p.projection for p in plans} == {"step", "hoisted"}
    assert any(p.unroll == 2 for p in plans)
    assert result.ratios[result.default] == (1.0, 1.0, 1.0)
    assert set(result.ratios) == set(result.first_call) == plans
    expected = jlstm.lstm(params, x, return_sequences=True, recurrence="scan")
    for plan in plans:
        assert_close(jlstm.lstm(params, x, return_sequences=True, recurrence=plan), expected)


def test_tune_times_given_candidates_and_auto_runs_the_recorded_plan(plan_cache):
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jnp.ones((4, 12, 8))
    other = jlstm.Plan(layout="features")
    result = tiny_tune(params, x, candidates=[other])
    assert set(result.times) == {result.default, other} and result.rounds == 3
    assert result.ratios[result.default] == (1.0, 1.0, 1.0)
    assert result.plan in (result.default, other)
    assert jaxpr(params, x, "auto") == jaxpr(params, x, result.plan)
    # Another shape has no recorded plan: it runs its default.
    assert jaxpr(params, x[:2], "auto") == jaxpr(params, x[:2], result.default)
    jlstm.clear_tuned_plans()
    assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)


def run_python(code, *, env=None, affinity=None):
    """Starts ``python -c code`` in this checkout (a new process); the caller waits on it with ``finish``."""
    root = str(pathlib.Path(jlstm.__file__).parent.parent)
    if affinity is not None:
        code = f"import os; os.sched_setaffinity(0, {set(affinity)!r})\n" + code
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": root, **(env or {})})


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out


def write_plans(path, entries):
    """A plan file as ``tune(persist=True)`` writes it: ``entries`` is ``[(key or None, plan or dict), ...]``."""
    plans = [{"key": None if k is None else list(k), "plan": p._asdict() if isinstance(p, jlstm.Plan) else p}
             for k, p in entries]
    path.write_text(json.dumps({"version": 1, "plans": plans}))


def test_a_persisted_plan_does_not_change_a_plain_call_in_a_new_process(plan_cache):
    """tune(persist=True), then in a fresh process a plain call runs the default plan, to the bit, until
    load_tuned_plans() opts in."""
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jnp.ones((4, 12, 8))
    result = tiny_tune(params, x, candidates=[], persist=True)
    forced = jlstm.Plan(layout="features")  # what another tune could have chosen, written over the entry
    assert forced != result.default
    write_plans(plan_cache / "plans.json", [(result.key, forced)])
    code = (
        "import json, jax, jax.numpy as jnp, numpy as np, jlstm\n"
        "params = jlstm.init_params(jax.random.key(0), 8, 16); x = jnp.ones((4, 12, 8))\n"
        "program = lambda r: str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, recurrence=r))(params, x))\n"
        "bits = lambda **r: np.asarray(jlstm.lstm(params, x, return_sequences=True, **r)).tobytes()\n"
        f"default, forced = jlstm.Plan(**{result.default._asdict()!r}), jlstm.Plan(**{forced._asdict()!r})\n"
        "print(json.dumps({'program': program('auto') == program(default), 'bits': bits() == bits(recurrence=default)}),"
        "      flush=True)\n"
        "loaded = jlstm.load_tuned_plans()\n"
        "print(json.dumps({'loaded': loaded, 'program': program('auto') == program(forced)}))\n"
    )
    process = run_python(code)
    plain = json.loads(process.stdout.readline())
    assert plain == {"program": True, "bits": True}
    assert json.loads(finish(process).strip().splitlines()[-1]) == {"loaded": 1, "program": True}


def test_load_tuned_plans_skips_unreadable_entries_with_one_warning(plan_cache):
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jnp.ones((4, 12, 8))
    result = jlstm.tune(params, x, mode="forward", candidates=[], max_rounds=1, record=False, progress=False)
    forced = jlstm.Plan(layout="features")
    path = plan_cache / "plans.json"
    other_key = (3, *result.key[1:])
    write_plans(path, [(result.key, forced), (other_key, {"layout": "diagonal"}), (None, forced)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain call reads no file, so it cannot warn about one
        assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)
    with pytest.warns(UserWarning, match="skipped 2 unreadable entries") as caught:
        assert jlstm.load_tuned_plans() == 1
    assert len(caught) == 1
    assert jaxpr(params, x, "auto") == jaxpr(params, x, forced)
    jlstm.clear_tuned_plans()
    assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)
    for text, match in (("{not json", "the whole file"), (json.dumps({"version": 0, "plans": []}), "version 0")):
        path.write_text(text)
        with pytest.warns(UserWarning, match=match):
            assert jlstm.load_tuned_plans(path) == 0
    assert jlstm.load_tuned_plans(plan_cache / "missing.json") == 0


def test_clear_keeps_the_file_and_a_later_persist_keeps_its_plans(plan_cache):
    """clear_tuned_plans forgets this process's plans; the file keeps every plan, old and new."""
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    first = tiny_tune(params, jnp.ones((4, 6, 8)), candidates=[], persist=True)
    jlstm.clear_tuned_plans()
    second = tiny_tune(params, jnp.ones((2, 6, 8)), candidates=[], persist=True)
    data = json.loads((plan_cache / "plans.json").read_text())
    assert sorted(tuple(e["key"]) for e in data["plans"]) == sorted([first.key, second.key])
    assert sorted(p.name for p in plan_cache.iterdir()) == ["plans.json", "plans.json.lock"]  # no temporary left


def test_two_processes_that_persist_at_once_keep_each_others_plans(plan_cache):
    """Each process tunes four shapes of its own with persist=True, both starting together: all eight stay."""
    go = plan_cache / "go"
    code = (
        "import os, time, jax, jax.numpy as jnp, jlstm\n"
        "params = jlstm.init_params(jax.random.key(0), 3, 4)\n"
        "jlstm.lstm(params, jnp.ones((1, 2, 3)))\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "for batch in range(4):\n"
        "    jlstm.tune(params, jnp.ones((1 + batch, STEPS, 3)), mode='forward', candidates=[],\n"
        "               max_rounds=1, persist=True, progress=False)\n"
    )
    processes = [run_python(code.replace("STEPS", str(steps))) for steps in (2, 3)]
    go.write_text("")
    for process in processes:
        finish(process)
    keys = [tuple(e["key"]) for e in json.loads((plan_cache / "plans.json").read_text())["plans"]]
    assert sorted((k[0], k[1]) for k in keys) == [(b, t) for b in (1, 2, 3, 4) for t in (2, 3)]


def test_auto_ignores_recorded_plans_in_a_job_of_several_processes(plan_cache, monkeypatch):
    """With jax.process_count() > 1, "auto" runs the default plan, whatever this process recorded or loaded."""
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jnp.ones((4, 12, 8))
    result = jlstm.tune(params, x, mode="forward", candidates=[], max_rounds=1, record=False, progress=False)
    forced = jlstm.Plan(layout="features")
    write_plans(plan_cache / "plans.json", [(result.key, forced)])
    assert jlstm.load_tuned_plans() == 1
    assert jaxpr(params, x, "auto") == jaxpr(params, x, forced)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two cores to run on one or two of them")
def test_the_default_plan_follows_the_cores_of_one_device_in_real_processes():
    """The medium shape's 32 rows on one device with two cores run two chains, with one core one; split over two
    devices, each device has one core (or less) either way: the same program on one core or two. The rule itself,
    and the one core per device of a multi-process job, are tested as pure functions in test_cpu_devices.py."""
    code = (
        "import hashlib, jax, jax.numpy as jnp, jlstm\n"
        "params = jlstm.init_params(jax.random.key(0), 128, 256); x = jnp.ones((32, 4, 128))\n"
        "text = str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, recurrence='auto'))(params, x))\n"
        "print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    runs = {}
    for devices in (1, 2):
        env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
        for cores in ((0,), (0, 1)):
            runs[devices, len(cores)] = run_python(code, env=env, affinity=cores)
    programs = {k: finish(p).strip() for k, p in runs.items()}
    assert programs[2, 1] == programs[2, 2]
    assert programs[1, 1] != programs[1, 2]  # the rule the shape was picked for: the test can see a difference


def test_tune_shows_progress_and_accepts_shapes(plan_cache, capsys):
    params = jlstm.LSTMParams(*(jax.ShapeDtypeStruct(s, "float32") for s in ((8, 64), (16, 64), (64,))))
    result = jlstm.tune(params, jax.ShapeDtypeStruct((4, 12, 8), "float32"), mode="train", candidates=[],
                        max_seconds=20, max_rounds=3, record=False)
    err = capsys.readouterr().err
    assert "jlstm.tune [" in err and "round 3" in err and "done" in err
    assert result.mode == "train" and result.plan == result.default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert jaxpr(jlstm.init_params(jax.random.key(0), 8, 16), jnp.ones((4, 12, 8)), "auto") == jaxpr(
            jlstm.init_params(jax.random.key(0), 8, 16), jnp.ones((4, 12, 8)), result.default)


def test_the_benchmarks_jlstm_column_runs_the_default_plan_whatever_the_cache_holds(plan_cache):
    """benchmarks/run.py gives its workers an empty plan cache, and its header says the column is the default."""
    benchmarks = str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        import run as bench_run
    finally:
        sys.path.remove(benchmarks)
    write_plans(plan_cache / "plans.json", [])
    cache = bench_run.worker_env()["JLSTM_CACHE_DIR"]
    assert pathlib.Path(cache).resolve() != plan_cache.resolve() and os.listdir(cache) == []
    assert "the default plan" in bench_run.IMPLS["jlstm"][0]
