"""The examples and the command line: the seq2seq example learns on a small budget, its greedy decoder agrees
with teacher forcing, a resumed run ends where an uninterrupted one does; the README's figure is drawn from real
states; ``python -m jlstm`` needs no example extras until a command runs."""

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_close

pytest.importorskip("optax")
pytest.importorskip("orbax.checkpoint")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from jlstm.examples import seq2seq

APIS = ["pure", "linen", "nnx"]
SMALL = ["--length", "5", "--units", "64", "--batch", "64", "--lr", "1e-2", "--quiet", "--eval-size", "500"]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    seq2seq.add_arguments(parser)
    return parser.parse_args([*SMALL, *argv])


def _needs(api: str) -> None:
    if api != "pure":
        pytest.importorskip(f"jlstm.{api}")


@pytest.mark.parametrize("api", APIS)
def test_learns_to_reverse(api, tmp_path):
    _needs(api)
    summary = seq2seq.train(
        _args("--api", api, "--steps", "160", "--eval-every", "160", "--out", str(tmp_path))
    )
    assert summary["steps"] == 160
    assert summary["token_accuracy"] > 0.6  # chance is 0.1
    assert (tmp_path / "loss.png").stat().st_size > 0
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["token_accuracy"] == summary["token_accuracy"]


def test_resume_continues_the_same_run(tmp_path):
    """20 steps, then --resume to 40, ends where 40 steps in one go end."""
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = ["--units", "16", "--eval-every", "1000", "--checkpoint-every", "1000", "--eval-size", "50"]
    expected = seq2seq.train(_args(*common, "--steps", "40", "--out", str(whole)))
    first = seq2seq.train(_args(*common, "--steps", "20", "--out", str(split)))
    assert first["steps"] == 20 and os.path.isdir(first["checkpoint"])
    resumed = seq2seq.train(_args(*common, "--steps", "40", "--out", str(split), "--resume"))
    assert resumed["steps"] == 40
    assert_close(resumed["final_loss"], expected["final_loss"], "float32_grad")
    assert resumed["example"] == expected["example"]


@pytest.mark.parametrize("api", APIS)
def test_checkpoint_round_trip(api, tmp_path):
    """Each API's parameter pytree, with its optax state, comes back from orbax unchanged."""
    _needs(api)
    import optax
    import orbax.checkpoint as ocp

    model = seq2seq.MODELS[api](jax.random.key(0), 4)
    optimizer = optax.adam(1e-3)
    params = jax.tree.map(lambda p: p + 1, model.params)  # not the template's values
    state = seq2seq.TrainState(params, optimizer.init(params), jnp.array(7, jnp.int32))
    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    manager = ocp.CheckpointManager(tmp_path / "checkpoints", options=options)
    seq2seq.save_checkpoint(manager, state, [3.0, 2.0])
    template = seq2seq.TrainState(model.params, optimizer.init(model.params), jnp.zeros((), jnp.int32))
    restored, losses = seq2seq.restore_checkpoint(manager, template)
    manager.close()
    assert losses == [3.0, 2.0]
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_greedy_decode_equals_teacher_forcing_on_its_own_output():
    """Fed its own predictions, the scanned ``lstm_cell`` decoder and ``lstm(return_sequences=True)``
    agree."""
    params = seq2seq.init_seq2seq(jax.random.key(0), units=8)
    source, _ = seq2seq.make_batch(jax.random.key(1), batch=3, length=6)
    decoded = jax.jit(seq2seq.greedy_decode)(params, source)
    logits = jax.jit(seq2seq.teacher_forced_logits)(params, source, decoded)
    np.testing.assert_array_equal(np.asarray(jnp.argmax(logits, axis=-1)), np.asarray(decoded))


@pytest.mark.parametrize("api", APIS[1:])
def test_to_pure_matches_the_flax_models(api):
    """``to_pure`` exposes the same weights: pure logits equal the module's logits."""
    _needs(api)
    source, target = seq2seq.make_batch(jax.random.key(1), batch=2, length=4)
    model = seq2seq.MODELS[api](jax.random.key(0), 5)
    expected = model.logits(model.params, source, target)
    assert_close(seq2seq.teacher_forced_logits(model.to_pure(model.params), source, target), expected)


def test_figure_trace_and_png(tmp_path):
    """The picture's c_t is the c that lstm(return_state=True) returns after t steps; the PNG is written."""
    pytest.importorskip("matplotlib")
    import jlstm
    from jlstm.examples import figure

    params = jlstm.init_params(jax.random.key(3), input_dim=1, units=2)
    inputs = jnp.array(figure.TUTORIAL_INPUT, jnp.float32).reshape(1, 3, 1)
    for go_backwards in (False, True):
        run = figure.trace(params, inputs, go_backwards=go_backwards)
        for t in range(1, 4):
            prefix = inputs[:, 3 - t :] if go_backwards else inputs[:, :t]
            _, h, c = jlstm.lstm(params, prefix, return_state=True, go_backwards=go_backwards)
            assert_close(run.h[t - 1], h[0])
            assert_close(run.c[t - 1], c[0])
    out = tmp_path / "figure.png"
    assert figure.run(argparse.Namespace(out=str(out), seed=0)) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_line_needs_no_example_extras_until_run():
    """Building ``python -m jlstm``'s parser (as ``demo`` does) imports none of the examples' extras."""
    code = (
        "import sys, jlstm.__main__ as m\n"
        "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "extras = {'optax', 'orbax', 'flax', 'matplotlib', 'tqdm', 'gymnax'}\n"
        "print(sorted(extras & {k.split('.')[0] for k in sys.modules}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _jlstm_command(*argv, hide=None):
    """``python -m jlstm ARGV`` in a new process; with ``hide``, that module cannot be imported there."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-m", "jlstm", *argv]
    if hide:
        code = f"import sys; sys.modules[{hide!r}] = None; import jlstm.__main__ as m; sys.exit(m.main({list(argv)!r}))"
        command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": root},
                          timeout=300, check=False)


def test_command_line_help_is_plain_text_under_its_own_name():
    """``jlstm --help`` says ``usage: jlstm``, ``python -m jlstm --help`` its own name; no reStructuredText."""
    helps = [_jlstm_command("--help")] + [_jlstm_command(name, "--help") for name in ("demo", "seq2seq", "figure", "memory")]
    assert all(h.returncode == 0 for h in helps), [h.stderr for h in helps]
    assert helps[0].stdout.startswith("usage: python -m jlstm ")
    assert helps[2].stdout.startswith("usage: python -m jlstm seq2seq ")
    assert not [h.stdout for h in helps if "``" in h.stdout or ":func:" in h.stdout]
    script = os.path.join(os.path.dirname(sys.executable), "jlstm")  # the console script of this environment
    if os.path.exists(script):
        usage = subprocess.run([script, "figure", "--help"], capture_output=True, text=True, timeout=120, check=False)
        assert usage.stdout.startswith("usage: jlstm figure "), usage.stderr


def test_figure_writes_to_the_current_directory_or_out(tmp_path, monkeypatch):
    import jlstm.__main__

    monkeypatch.chdir(tmp_path)
    assert jlstm.__main__.main(["figure"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["how_it_works.png"]
    assert jlstm.__main__.main(["figure", "--out", "pictures/loop.png"]) == 0
    assert (tmp_path / "pictures" / "loop.png").read_bytes()[:4] == b"\x89PNG"


def test_a_command_without_its_extra_says_what_to_install(tmp_path):
    """Without optax (hidden from the process), ``seq2seq`` names the extra that installs it."""
    result = _jlstm_command("seq2seq", "--steps", "1", "--out", str(tmp_path), hide="optax")
    assert result.returncode == 1, result.stderr
    assert "needs optax" in result.stderr and 'pip install "jlstm[examples]"' in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ python -m jlstm memory


def _memory():
    pytest.importorskip("gymnax")
    from jlstm.examples import memory

    return memory


def _memory_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _memory().add_arguments(parser)
    return parser.parse_args(["--quiet", *argv])


def test_memory_agent_learns_what_the_feed_forward_cannot(tmp_path):
    """A shortened ``python -m jlstm memory``: the LSTM agent wins well above chance, the feed-forward one
    does not; the learning curve and the summary are written."""
    summary = _memory().train(_memory_args("--memory-length", "10", "--rollout-length", "32", "--envs", "32",
                                           "--lr", "3e-3", "--steps", "81920", "--out", str(tmp_path)))
    lstm, mlp = summary["agents"]["lstm"], summary["agents"]["mlp"]
    assert lstm["final_success"] > 0.85 and lstm["greedy_success"] > 0.85, lstm  # chance is 0.5
    assert mlp["greedy_success"] < 0.65, mlp
    assert abs(mlp["parameters"] - lstm["parameters"]) < 0.1 * lstm["parameters"]
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "summary.json").read_text())["agents"]["lstm"] == lstm


def test_memory_acting_step_by_step_equals_the_training_unroll():
    """The logits and values the agent acted on (``lstm_cell(..., reset=done)`` step by step) are those that
    ``lstm(..., initial_state=..., reset=...)`` computes over the stored rollout; without the resets they are
    not."""
    memory = _memory()
    agent, config = memory.LSTM_AGENT, memory.Config(num_envs=8, rollout_length=24)
    env, env_params = memory.make_env(memory_length=4)  # 5-step episodes: several inside each rollout
    runner = memory.init_runner(agent, env, env_params, config, 16, 1, jax.random.key(0))
    params = runner.params._replace(lstm=jax.tree.map(lambda w: 3 * w, runner.params.lstm))  # a state that matters
    collect = jax.jit(lambda runner: memory.collect(agent, env, env_params, params, runner, config.rollout_length))
    runner, _, _ = collect(runner)  # the second rollout starts from a carried, non-zero state
    initial_state = runner.state
    runner, rollout, _ = collect(runner)
    assert float(jnp.abs(initial_state.c).min()) > 0
    # step 24 is inside an episode: each row's first segment goes on from initial_state; later ones reset
    assert not bool(rollout.reset[:, 0].any()) and bool(rollout.reset[:, 1:].any(axis=1).all())
    logits, value = jax.jit(memory.training_outputs, static_argnums=0)(agent, params, initial_state, rollout)
    assert_close(logits, rollout.logits)
    assert_close(value, rollout.value)
    no_resets = rollout._replace(reset=jnp.zeros_like(rollout.reset))
    wrong, _ = memory.training_outputs(agent, params, initial_state, no_resets)
    assert float(jnp.abs(wrong - rollout.logits).max()) > 1e-3


def test_memory_segments_figure(tmp_path):
    """``--figure`` draws the resets page's picture; its outputs obey the segment rule (checked as it draws)."""
    out = tmp_path / "pictures" / "resets.png"
    assert _memory().run(_memory_args("--figure", str(out))) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_without_gymnax_says_what_to_install(tmp_path):
    pytest.importorskip("gymnax")
    result = _jlstm_command("memory", "--steps", "1", "--out", str(tmp_path), hide="gymnax")
    assert result.returncode == 1, result.stderr
    assert "needs gymnax" in result.stderr and 'pip install "jlstm[examples]"' in result.stderr
    assert "Traceback" not in result.stderr
