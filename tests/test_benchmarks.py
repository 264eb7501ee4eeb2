"""The benchmark suite's machinery: the worker's answers, rounds combined into ratios, one real run."""

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_impl
import run as bench_run


@pytest.fixture
def fake_impls(monkeypatch):
    """Three implementations: one that works (and counts its builds and calls), one missing, one broken."""
    counts = {"builds": 0, "calls": 0}

    def build_ok(shape, mode, dtype):
        counts["builds"] += 1

        def fn():
            counts["calls"] += 1
            return shape

        return fn, lambda out: out

    def build_missing(shape, mode, dtype):
        raise ImportError("No module named 'nothing'")

    def build_broken(shape, mode, dtype):
        raise ValueError("bad shape")

    monkeypatch.setitem(bench_impl.IMPLS, "ok", ("works", build_ok))
    monkeypatch.setitem(bench_impl.IMPLS, "missing", ("not installed", build_missing))
    monkeypatch.setitem(bench_impl.IMPLS, "broken", ("fails", build_broken))
    return counts


def serve(name, requests):
    answers = []
    bench_impl.serve(name, requests, answers.append)
    return answers


def test_worker_builds_once_per_shape_and_times_the_first_call_separately(fake_impls):
    a = {"shape": [1, 2, 3, 4], "mode": "forward", "budget": 0.0, "min_runs": 2}
    b = {**a, "shape": [5, 6, 7, 8]}
    first, again, other = serve("ok", [a, a, b])
    assert fake_impls["builds"] == 2
    assert "first_s" in first and "first_s" not in again and "first_s" in other
    assert len(first["times_s"]) == 2 and len(again["times_s"]) == 2
    # first call + 3 warm-ups + 2 runs, then 1 warm-up + 2 runs, then the same as the first for b
    assert fake_impls["calls"] == 6 + 3 + 6
    assert other["shape"] == [5, 6, 7, 8] and other["impl"] == "ok"


def test_worker_reports_a_missing_and_a_broken_implementation(fake_impls):
    request = {"shape": [1, 2, 3, 4], "mode": "train", "budget": 0.0, "min_runs": 1}
    [missing] = serve("missing", [request])
    [broken] = serve("broken", [request])
    assert missing["skipped"] == "ImportError: No module named 'nothing'" and "times_s" not in missing
    assert broken["error"] == "ValueError: bad shape" and "times_s" not in broken


def answer(impl, times, **extra):
    return {"impl": impl, "shape": [2, 10, 3, 4], "mode": "forward", "times_s": times, **extra}


def test_rounds_combine_into_pooled_times_and_per_round_ratios():
    # The machine slows down 3x in round 2: pooled times mislead, per-round ratios do not.
    jlstm = [answer("jlstm", [1.0, 1.0], first_s=5.0), answer("jlstm", [3.0, 3.0])]
    peer = [answer("peer", [2.0, 2.0], first_s=7.0), answer("peer", [6.0, 6.0])]
    records = [bench_run.combine(jlstm, "tiny"), bench_run.combine(peer, "tiny")]
    bench_run.ratios_to_jlstm(records)
    base, other = records
    assert base["vs_jlstm"] == 1.0 and other["vs_jlstm"] == 2.0
    assert other["round_medians_s"] == [2.0, 6.0] and other["runs"] == 4
    assert other["median_s"] == 4.0 and other["min_s"] == 2.0 and other["max_s"] == 6.0
    assert other["first_s"] == 7.0 and other["shape_name"] == "tiny"
    flops = 2 * 2 * 10 * (3 + 4) * 4 * 4
    assert other["gflops"] == pytest.approx(flops / 4.0 / 1e9)


def test_a_failure_in_a_later_round_is_kept_and_rounds_must_pair_up():
    failed = {"impl": "peer", "shape": [2, 10, 3, 4], "mode": "forward", "error": "boom"}
    records = [bench_run.combine([answer("jlstm", [1.0]), answer("jlstm", [1.0])], "tiny"),
               bench_run.combine([answer("peer", [2.0]), failed], "tiny")]
    bench_run.ratios_to_jlstm(records)
    assert records[1]["error"] == "boom" and records[1]["runs"] == 1
    assert "vs_jlstm" not in records[1]  # one round against jlstm's two: no same-round ratio


def test_the_matmul_limit_is_the_faster_of_the_same_shape_dot_and_the_square_one():
    records = [{"impl": "matmul", "shape_name": "small", "gflops": 50.0},
               {"impl": "matmul", "shape_name": "big", "gflops": 300.0},
               {"impl": "matmul", "shape_name": "square_1024", "gflops": 200.0}]
    assert bench_run.matmul_limits(records, {"small": (), "big": ()}) == {"small": 200.0, "big": 300.0}
    assert bench_run.takes_part("matmul", "square_1024", "forward")
    assert not bench_run.takes_part("jlstm", "square_1024", "forward")
    assert not bench_run.takes_part("matmul", "small", "train") and bench_run.takes_part("jlstm", "small", "train")


def test_a_tiny_run_writes_json_markdown_and_plot(tmp_path):
    out = tmp_path / "tiny"
    bench_run.main(["--shapes", "tiny=2,5,3,4", "--impls", "jlstm", "--modes", "forward,train",
                    "--budget", "0.02", "--rounds", "2", "--out", str(out)])
    result = json.loads((tmp_path / "tiny.json").read_text())
    by_key = {(r["impl"], r["shape_name"], r["mode"]): r for r in result["records"]}
    assert set(by_key) == {("jlstm", "tiny", "forward"), ("jlstm", "tiny", "train"),
                           ("matmul", "tiny", "forward"), ("matmul", "square_1024", "forward")}
    for record in by_key.values():
        assert len(record["round_medians_s"]) == 2 and record["runs"] >= 2 and record["first_s"] > 0
    assert by_key[("jlstm", "tiny", "train")]["vs_jlstm"] == 1.0
    assert result["rounds"] == 2 and result["machine"]["cores"] >= 1
    markdown = (tmp_path / "tiny.md").read_text()
    assert "| tiny (2, 5, 3, 4) | **" in markdown and "(1.00×)" in markdown
    assert (tmp_path / "tiny.png").stat().st_size > 1000


def test_a_data_parallel_run_shards_the_jax_peers_and_keeps_jlstm_1device_on_one_device(tmp_path):
    out = tmp_path / "dp"
    bench_run.main(["--cpu-devices", "2", "--shapes", "even=2,5,3,4", "odd=3,5,3,4", "--impls",
                    "jlstm,jlstm_1device,flax_linen_opt,torch_cores", "--modes", "train", "--budget", "0.02",
                    "--rounds", "1", "--out", str(out)])
    result = json.loads((tmp_path / "dp.json").read_text())
    by_impl = {r["impl"]: r for r in result["records"]}
    assert result["cpu_devices"] == 2 and set(result["shapes"]) == {"even"}  # an odd batch does not split
    assert by_impl["jlstm"]["devices"] == by_impl["flax_linen_opt"]["devices"] == 2
    assert by_impl["jlstm_1device"]["devices"] == 1
    assert all("median_s" in r for r in by_impl.values())
    markdown = (tmp_path / "dp.md").read_text()
    assert "odd (3, 5, 3, 4) (batch 3 does not split over 2 devices)" in markdown
    assert "on 2 XLA CPU devices" in markdown and "torch_cores with 2 threads" in markdown


def test_worker_rebuilds_for_another_dtype_and_refuses_an_unknown_one(fake_impls):
    a = {"shape": [1, 2, 3, 4], "mode": "forward", "budget": 0.0, "min_runs": 1}
    first, same, mixed, unknown = serve("ok", [a, {**a, "dtype": "float32"}, {**a, "dtype": "bfloat16"},
                                               {**a, "dtype": "int8"}])
    assert fake_impls["builds"] == 2 and "first_s" not in same and "first_s" in mixed
    assert [r["dtype"] for r in (first, same, mixed)] == ["float32", "float32", "bfloat16"]
    assert unknown["error"].startswith("ValueError: dtype must be one of")


def test_a_tiny_mixed_precision_run_casts_jlstm_and_the_matmul(tmp_path):
    out = tmp_path / "tiny"
    bench_run.main(["--shapes", "tiny=2,5,3,4", "--impls", "jlstm", "--modes", "train", "--dtype", "bfloat16",
                    "--budget", "0.02", "--rounds", "1", "--out", str(out)])
    result = json.loads((tmp_path / "tiny.json").read_text())
    assert result["dtype"] == "bfloat16"
    assert {r["dtype"] for r in result["records"]} == {"bfloat16"}
    assert all("median_s" in r for r in result["records"])
    assert "bfloat16: mixed precision" in (tmp_path / "tiny.md").read_text()
    # What the jlstm worker runs: float32 master weights, 16-bit operands, float32 outputs and gradients.
    fn, sync = bench_impl.IMPLS["jlstm"][1]((2, 5, 3, 4), "train", "bfloat16")
    loss, grads = sync(fn())
    assert loss.dtype == "float32" and {g.dtype.name for g in grads} == {"float32"}
    fn32, _ = bench_impl.IMPLS["jlstm"][1]((2, 5, 3, 4), "train", "float32")
    assert float(loss) != float(sync(fn32())[0])  # rounded operands: not the float32 result


@pytest.mark.parametrize("modes", ["both", "forward,forward", "train,backward", ""])
def test_unknown_modes_are_refused_before_any_worker_starts(modes):
    with pytest.raises(SystemExit, match="--modes"):
        bench_run.main(["--shapes", "tiny=2,5,3,4", "--impls", "jlstm", "--modes", modes])


def test_a_worker_that_dies_is_reported_with_its_last_words():
    worker = bench_run.Worker("no_such_impl")
    try:
        answer = worker.time((1, 2, 3, 4), "forward", 0.0, 1)
    finally:
        worker.close()
    assert answer["error"].startswith("worker exited with 2: ") and "invalid choice" in answer["error"]


def test_a_projected_shape_is_skipped_for_that_shape_only_by_a_peer_without_a_projection(monkeypatch):
    def build_plain(shape, mode, dtype):
        bench_impl._plain(shape, "plain peer")
        return (lambda: shape), (lambda out: out)

    monkeypatch.setitem(bench_impl.IMPLS, "plain", ("no projection", build_plain))
    request = {"shape": [2, 5, 3, 6, 2], "mode": "forward", "budget": 0.0, "min_runs": 1}
    projected, plain = serve("plain", [request, {**request, "shape": [2, 5, 3, 6]}])
    assert projected["not_applicable"] == "plain peer has no projected LSTM (PyTorch's proj_size)"
    assert "times_s" not in projected and "skipped" not in projected  # not a missing peer: it goes on
    assert len(plain["times_s"]) == 1
    record = bench_run.combine([projected, projected], "proj")
    assert record["not_applicable"] == projected["not_applicable"] and "median_s" not in record


@pytest.mark.parametrize("impl", ["jlstm", "torch_t1"])
def test_jlstm_and_torch_build_a_projected_lstm(impl):
    import torch

    threads = torch.get_num_threads()  # torch_t1 sets 1 thread for its worker process; this is not one
    try:
        fn, sync = bench_impl.IMPLS[impl][1]((2, 5, 3, 6, 2), "forward", "float32")
        out = sync(fn())
    finally:
        torch.set_num_threads(threads)
    assert tuple(out.shape) == (2, 5, 2)  # (B, T, P)


@pytest.mark.parametrize("impl", ["flax_linen_opt", "flax_nnx_opt", "equinox", "keras_jax", "keras_tf", "matmul"])
def test_the_peers_without_a_projection_refuse_a_projected_shape_before_importing_anything(impl):
    with pytest.raises(NotImplementedError, match="has no projected LSTM"):
        bench_impl.IMPLS[impl][1]((2, 5, 3, 6, 2), "forward", "float32")


def test_the_flop_count_of_a_projected_lstm_adds_the_projection_and_reads_p_features():
    forward = 2.0 * 2 * 5 * ((3 + 2) * 4 * 6 + 6 * 2)
    assert bench_run.lstm_flops((2, 5, 3, 6, 2), "forward") == forward
    assert bench_run.lstm_flops((2, 5, 3, 6, 2), "train") == 3 * forward
    assert bench_run.lstm_flops((2, 5, 3, 6), "forward") == 2.0 * 2 * 5 * (3 + 6) * 4 * 6
