"""Execution plans: the defaults' rules, plan checks, the autotuner and its cache."""

import json
import warnings

import jax
import jax.numpy as jnp
import pytest

import jlstm
from jlstm import _plan


def problem(batch=32, time=100, input_dim=128, units=256, **kw):
    base = dict(dtype="float32", backend="cpu", devices=1, cores=2, batch_sharded=False)
    return _plan.Problem(batch, time, input_dim, units, **{**base, **kw})


SHAPES = [(1, 100, 32, 64), (32, 100, 128, 256), (256, 50, 256, 512), (8, 1000, 64, 128), (64, 100, 512, 1024)]


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
@pytest.mark.parametrize("shape", SHAPES)
def test_accelerators_hoist_the_projection_and_never_get_cpu_choices(backend, shape):
    plan = _plan.default(problem(*shape, backend=backend))
    assert plan == jlstm.Plan(layout="batch", chains=1, projection="hoisted", backward="fused")


@pytest.mark.parametrize("shape", SHAPES)
def test_cpu_defaults_follow_the_core_count(shape):
    one_core = _plan.default(problem(*shape, cores=1))
    assert one_core.chains == 1 and one_core.projection == "step" and one_core.backward == "fused"
    assert _plan.default(problem(*shape, cores=2))._replace(chains=1) == one_core


def test_two_chains_only_where_they_can_split_the_batch():
    assert _plan.default(problem(32, 100, 128, 256)).chains == 2
    for kw in (dict(batch=31), dict(devices=8), dict(batch_sharded=True), dict(cores=1)):
        assert _plan.default(problem(**{"batch": 32, **kw})).chains == 1, kw


def test_candidates_start_with_the_default_and_are_valid_and_distinct():
    for shape in SHAPES:
        p = problem(*shape)
        plans = _plan.candidates(p)
        assert plans[0] == _plan.default(p) and len(set(plans)) == len(plans) > 3
        assert all(_plan.check("t", plan) == plan for plan in plans)
        assert any(plan.projection == "hoisted" for plan in plans)  # the accelerator variant is tuned too


@pytest.mark.parametrize("bad, error, field", [
    (jlstm.Plan(layout="rows"), ValueError, "layout"),
    (jlstm.Plan(layout=1), TypeError, "layout"),
    (jlstm.Plan(chains=3), ValueError, "chains"),
    (jlstm.Plan(chains=1.0), TypeError, "chains"),
    (jlstm.Plan(projection="cudnn"), ValueError, "projection"),
    (jlstm.Plan(backward="vjp"), ValueError, "backward"),
    (jlstm.Plan(unroll=0), ValueError, "unroll"),
    (jlstm.Plan(layout="features", chains=2), ValueError, "chains"),
    (jlstm.Plan(layout="stacked", projection="hoisted"), ValueError, "hoisted"),
])
def test_bad_plans_are_refused_by_name(bad, error, field):
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    with pytest.raises(error, match=f"lstm: recurrence.*{field}"):
        jlstm.lstm(params, jnp.ones((2, 5, 3)), recurrence=bad)


def test_a_plan_must_fit_the_batch_and_carry_the_unroll():
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    with pytest.raises(ValueError, match=r"lstm: recurrence=Plan\(chains=2\).*batch 3"):
        jlstm.lstm(params, jnp.ones((3, 5, 3)), recurrence=jlstm.Plan(chains=2))
    with pytest.raises(ValueError, match="give unroll in the plan"):
        jlstm.lstm(params, jnp.ones((2, 5, 3)), recurrence=jlstm.Plan(), unroll=2)


def jaxpr(params, x, recurrence):
    return str(jax.make_jaxpr(lambda p, x: jlstm.lstm(p, x, recurrence=recurrence))(params, x))


@pytest.fixture
def plan_cache(tmp_path, monkeypatch):
    """An empty cache directory, and no recorded plan before or after the test."""
    monkeypatch.setenv("JLSTM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_plan, "_loaded_from", None)  # read the (new) file at the next look-up
    jlstm.clear_tuned_plans()
    monkeypatch.setattr(_plan, "_loaded_from", None)
    yield tmp_path
    jlstm.clear_tuned_plans()


def tiny_tune(params, x, **kw):
    return jlstm.tune(params, x, mode="forward", max_seconds=20, max_rounds=3, progress=False, **kw)


def test_tune_measures_every_candidate_and_auto_runs_the_recorded_plan(plan_cache):
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


def test_a_persisted_plan_is_read_by_a_fresh_cache_and_a_corrupt_file_only_warns(plan_cache):
    params = jlstm.init_params(jax.random.key(0), 8, 16)
    x = jnp.ones((4, 12, 8))
    result = tiny_tune(params, x, candidates=[], persist=True)
    path = plan_cache / "plans.json"
    data = json.loads(path.read_text())
    # Edit the file as another process could have written it: a different plan for this key.
    forced = jlstm.Plan(layout="features")
    assert forced != result.default
    data["plans"] = [{"key": list(result.key), "plan": forced._asdict()}]
    path.write_text(json.dumps(data))
    jlstm.clear_tuned_plans()
    _plan._loaded_from = None  # a new process
    assert jaxpr(params, x, "auto") == jaxpr(params, x, forced)

    path.write_text("{not json")
    jlstm.clear_tuned_plans()
    _plan._loaded_from = None
    with pytest.warns(UserWarning, match="ignoring the plan cache"):
        assert jaxpr(params, x, "auto") == jaxpr(params, x, result.default)
    path.write_text(json.dumps({"version": 0, "plans": []}))  # stale format
    jlstm.clear_tuned_plans()
    _plan._loaded_from = None
    with pytest.warns(UserWarning, match="version 0"):
        jaxpr(params, x, "auto")


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


@pytest.mark.parametrize("kw, error, name", [
    (dict(mode="fit"), ValueError, "mode"),
    (dict(mode=1), TypeError, "mode"),
    (dict(max_seconds=0), ValueError, "max_seconds"),
    (dict(max_rounds=0), ValueError, "max_rounds"),
])
def test_tune_checks_its_arguments(kw, error, name):
    params = jlstm.init_params(jax.random.key(0), 3, 4)
    with pytest.raises(error, match=f"tune: {name}"):
        jlstm.tune(params, jnp.ones((2, 5, 3)), progress=False, record=False, **kw)
