"""A recurrent agent that needs memory: actor-critic (PPO) on bsuite's MemoryChain, with a jlstm policy.

MemoryChain (gymnax's ``MemoryChain-bsuite``) shows a cue, +1 or -1, at the start of an episode, then
``memory_length`` steps of nothing but a clock; at the last step the agent picks one of two actions and is
rewarded +1 if it matches the cue, -1 if not. Without memory the best policy is a coin toss (50% success); an
LSTM can carry the cue across the gap.

Everything an update does is one jitted function:

* ``num_envs`` environments step side by side (``jax.vmap``) and reset themselves when an episode ends, so a
  rollout of ``rollout_length`` steps crosses episode boundaries;
* the policy acts with ``jlstm.lstm_cell(params, state, obs, reset=...)``, one step at a time, where a row's
  reset is the done flag of its previous step (the step that begins a new episode starts from zeros);
* the LSTM state after the last step is the next rollout's ``initial_state``: an episode cut by the rollout's
  end goes on remembering its cue in the next one;
* training reruns the whole stored rollout with ``jlstm.lstm(params, obs, initial_state=..., reset=...)``,
  which gives exactly the outputs the agent acted on, and takes PPO's clipped gradient steps (optax).

A feed-forward agent of about the same parameter count, trained on the same budget, shows what memory is worth.
``python -m jlstm memory`` trains both and writes ``learning_curve.png`` (success rate against environment steps)
and ``summary.json`` under ``--out``. The defaults (memory length 30, so 31-step episodes; 64 environments;
rollouts of 64 steps, so about one episode in two is finished on a carried state; an ``LSTM(32)``; one million
environment steps per agent) are a run that the LSTM agent solves and the feed-forward agent cannot; the
"Episodes and resets" page of the docs shows its learning curve. ``--figure PATH`` instead draws the picture of the resets page: a row cut
into segments, processed forward and with ``go_backwards``.

It needs gymnax, optax, matplotlib and tqdm (the ``examples`` extra), imported inside the functions that use
them, so that ``import jlstm`` and the other commands work without them.
"""

import argparse
import functools
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jlstm

ENV_ID = "MemoryChain-bsuite"

# --------------------------------------------------------------------------------------------- the agents


class Heads(NamedTuple):
    """The actor's and the critic's linear readouts of the torso's output (``W`` wide)."""

    actor: jax.Array  # (W, A): logits of the A actions
    actor_bias: jax.Array  # (A,)
    critic: jax.Array  # (W, 1): the state's value
    critic_bias: jax.Array  # (1,)


class LSTMAgentParams(NamedTuple):
    """An LSTM torso (``H`` units, reading ``F`` observation features) and its heads."""

    lstm: jlstm.LSTMParams  # kernel (F, 4H), recurrent_kernel (H, 4H), bias (4H,)
    heads: Heads  # actor (H, A), critic (H, 1)


class MLPAgentParams(NamedTuple):
    """A feed-forward torso of two tanh layers (``W`` wide) and its heads."""

    hidden1: jax.Array  # (F, W)
    hidden1_bias: jax.Array  # (W,)
    hidden2: jax.Array  # (W, W)
    hidden2_bias: jax.Array  # (W,)
    heads: Heads  # actor (W, A), critic (W, 1)


class Agent(NamedTuple):
    """What the training loop needs from an agent: its parameters, its state, and two ways to run it.

    ``step`` acts one step at a time (the rollout); ``unroll`` reruns a whole stored rollout (training). For the
    same inputs the two give the same outputs: that is what makes the gradient the one of the acting policy.
    """

    name: str
    init: Callable[[jax.Array, int, int, int], Any]  # (key, obs features, units, actions) -> params
    initial_state: Callable[[Any, int], Any]  # (params, batch) -> the state of fresh episodes
    step: Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, jax.Array]]
    # (params, state, obs (B, F), reset (B,)) -> (state, torso output (B, W))
    unroll: Callable[[Any, Any, jax.Array, jax.Array], jax.Array]
    # (params, initial state, obs (B, T, F), reset (B, T)) -> torso outputs (B, T, W)


def _init_heads(key: jax.Array, width: int, actions: int) -> Heads:
    """Orthogonal readouts: a small actor (a near-uniform first policy) and a unit-scale critic."""
    k_actor, k_critic = jax.random.split(key)
    orthogonal = jax.nn.initializers.orthogonal
    return Heads(
        actor=orthogonal(0.01)(k_actor, (width, actions), jnp.float32),
        actor_bias=jnp.zeros((actions,), jnp.float32),
        critic=orthogonal(1.0)(k_critic, (width, 1), jnp.float32),
        critic_bias=jnp.zeros((1,), jnp.float32),
    )


def _lstm_init(key: jax.Array, features: int, units: int, actions: int) -> LSTMAgentParams:
    k_lstm, k_heads = jax.random.split(key)
    return LSTMAgentParams(jlstm.init_params(k_lstm, features, units), _init_heads(k_heads, units, actions))


def _lstm_step(params: LSTMAgentParams, state: jlstm.LSTMState, obs: jax.Array, reset: jax.Array):
    return jlstm.lstm_cell(params.lstm, state, obs, reset=reset)


def _lstm_unroll(params: LSTMAgentParams, state: jlstm.LSTMState, obs: jax.Array, reset: jax.Array):
    return jlstm.lstm(params.lstm, obs, initial_state=state, reset=reset, return_sequences=True)


LSTM_AGENT = Agent(
    name="LSTM",
    init=_lstm_init,
    initial_state=lambda params, batch: jlstm.zero_state(params.lstm, batch),
    step=_lstm_step,
    unroll=_lstm_unroll,
)


def mlp_width(features: int, units: int) -> int:
    """The width of the feed-forward torso whose parameter count is closest to an LSTM of ``units``.

    Example:
        >>> mlp_width(3, 32)  # an LSTM(32) on 3 features has 4,608 weights; two layers of 65 have 4,550
        65
    """
    lstm = 4 * units * (features + units + 1)
    return min(range(1, 4 * units), key=lambda w: abs(w * (features + 1) + w * (w + 1) - lstm))


def _mlp_init(key: jax.Array, features: int, units: int, actions: int) -> MLPAgentParams:
    width = mlp_width(features, units)
    k1, k2, k_heads = jax.random.split(key, 3)
    orthogonal = jax.nn.initializers.orthogonal(np.sqrt(2.0))
    return MLPAgentParams(
        hidden1=orthogonal(k1, (features, width), jnp.float32),
        hidden1_bias=jnp.zeros((width,), jnp.float32),
        hidden2=orthogonal(k2, (width, width), jnp.float32),
        hidden2_bias=jnp.zeros((width,), jnp.float32),
        heads=_init_heads(k_heads, width, actions),
    )


def _dense(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """``x @ kernel + bias`` for ``x`` of any rank (the bias broadcast explicitly)."""
    return x @ kernel + bias.reshape((1,) * (x.ndim - 1) + bias.shape)


def _mlp_torso(params: MLPAgentParams, obs: jax.Array) -> jax.Array:
    hidden = jnp.tanh(_dense(obs, params.hidden1, params.hidden1_bias))
    return jnp.tanh(_dense(hidden, params.hidden2, params.hidden2_bias))


MLP_AGENT = Agent(
    name="feed-forward",
    init=_mlp_init,
    initial_state=lambda params, batch: (),  # nothing to remember, so nothing to reset
    step=lambda params, state, obs, reset: (state, _mlp_torso(params, obs)),
    unroll=lambda params, state, obs, reset: _mlp_torso(params, obs),
)

AGENTS = {"lstm": LSTM_AGENT, "mlp": MLP_AGENT}


def heads(params: Heads, torso: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(logits (..., A), value (...))`` from the torso's output ``(..., W)``."""
    logits = _dense(torso, params.actor, params.actor_bias)
    value = _dense(torso, params.critic, params.critic_bias)[..., 0]
    return logits, value


def parameter_count(params: Any) -> int:
    """The number of weights in a parameter pytree."""
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(params))


# ------------------------------------------------------------------------------------------ the environment


def make_env(memory_length: int):
    """gymnax's MemoryChain and its parameters with ``memory_length`` steps between the cue and the question.

    An episode is ``memory_length + 1`` steps; only its last is rewarded (+1 right, -1 wrong).
    """
    import gymnax

    env, env_params = gymnax.make(ENV_ID)
    return env, env_params.replace(memory_length=memory_length)


def _env_reset(env, env_params, key: jax.Array, num_envs: int):
    with jax.numpy_dtype_promotion("standard"):  # gymnax mixes dtypes, our tests promote strictly
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), env_params)


def _env_step(env, env_params, key: jax.Array, env_state, action: jax.Array):
    """Steps every environment; those whose episode ends reset themselves (gymnax's auto-reset)."""
    with jax.numpy_dtype_promotion("standard"):
        keys = jax.random.split(key, action.shape[0])
        obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            keys, env_state, action, env_params
        )
    return obs, env_state, reward.astype(jnp.float32), jnp.logical_or(terminated, truncated)


# --------------------------------------------------------------------------------------------- the rollout


class Config(NamedTuple):
    """PPO's settings (static: they shape the compiled update)."""

    num_envs: int = 64  # N environments side by side
    rollout_length: int = 64  # T steps per rollout
    epochs: int = 4  # passes over each rollout
    minibatches: int = 4  # each pass splits the N environments into this many groups
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    lr: float = 1e-3  # Adam's first learning rate; it falls linearly to zero
    max_grad_norm: float = 0.5


class Rollout(NamedTuple):
    """One rollout, batch-major: ``N`` environments, ``T`` steps, ``F`` observation features, ``A`` actions."""

    obs: jax.Array  # (N, T, F) what the agent saw before acting
    reset: jax.Array  # (N, T) bool: this step begins a new episode (the previous step's done)
    action: jax.Array  # (N, T) int32
    log_prob: jax.Array  # (N, T) of the action, under the acting policy
    value: jax.Array  # (N, T) the critic's estimate when acting
    logits: jax.Array  # (N, T, A) what the acting policy computed, step by step
    reward: jax.Array  # (N, T)
    done: jax.Array  # (N, T) bool: the episode ended with this step


class Runner(NamedTuple):
    """What one update hands the next."""

    params: Any  # the agent's parameter pytree
    opt_state: Any  # optax's state for it
    env_state: Any  # gymnax's state of the N environments
    obs: jax.Array  # (N, F) the observation the next step acts on
    done: jax.Array  # (N,) bool: the last step ended an episode, so the next one resets
    state: Any  # the agent's state after the last step: the next rollout's initial_state
    key: jax.Array


def collect(agent: Agent, env, env_params, params: Any, runner: Runner, length: int):
    """Acts ``length`` steps in every environment with ``agent.step``.

    Returns:
        ``(runner, rollout, last_value)``: the runner advanced (its ``state`` the agent's state after the last
        step), the :class:`Rollout`, and the critic's value of the observation after the last step, ``(N,)``.
    """

    def act(carry, _):
        env_state, obs, done, state, key = carry
        key, k_action, k_env = jax.random.split(key, 3)
        state, torso = agent.step(params, state, obs, done)  # a done step is followed by a reset
        logits, value = heads(params.heads, torso)
        action = jax.random.categorical(k_action, logits).astype(jnp.int32)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
        next_obs, env_state, reward, next_done = _env_step(env, env_params, k_env, env_state, action)
        record = Rollout(obs, done, action, log_prob, value, logits, reward, next_done)
        return (env_state, next_obs, next_done, state, key), record

    carry = (runner.env_state, runner.obs, runner.done, runner.state, runner.key)
    (env_state, obs, done, state, key), steps = jax.lax.scan(act, carry, length=length)
    _, torso = agent.step(params, state, obs, done)
    last_value = heads(params.heads, torso)[1]
    rollout = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), steps)  # (T, N, ...) -> (N, T, ...)
    return runner._replace(env_state=env_state, obs=obs, done=done, state=state, key=key), rollout, last_value


def training_outputs(agent: Agent, params: Any, initial_state: Any, rollout: Rollout):
    """``(logits (N, T, A), value (N, T))`` of the whole stored rollout in one call of ``agent.unroll``.

    For the LSTM agent this is ``jlstm.lstm(..., initial_state=..., reset=rollout.reset)``: the same numbers
    that :func:`collect` acted on step by step.
    """
    return heads(params.heads, agent.unroll(params, initial_state, rollout.obs, rollout.reset))


def advantages(rollout: Rollout, last_value: jax.Array, gamma: float, lam: float):
    """Generalised advantage estimates and returns, ``(N, T)`` each; no bootstrapping across a done."""

    def back(next_, step):
        next_advantage, next_value = next_
        reward, done, value = step
        keep = 1.0 - done.astype(jnp.float32)
        delta = reward + gamma * next_value * keep - value
        advantage = delta + gamma * lam * keep * next_advantage
        return (advantage, value), advantage

    steps = (rollout.reward.T, rollout.done.T, rollout.value.T)  # time-major for the scan
    _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value), steps, reverse=True)
    return adv.T, adv.T + rollout.value


def success_counts(rollout: Rollout) -> tuple[jax.Array, jax.Array]:
    """``(episodes won, episodes ended)`` in a rollout: an episode is won when its last reward is positive."""
    return jnp.sum(rollout.done & (rollout.reward > 0)), jnp.sum(rollout.done)


def ppo_loss(agent: Agent, config: Config, params, initial_state, rollout: Rollout, adv, returns):
    """PPO's clipped objective on a group of whole environment rows, rerun from their initial state."""
    logits, value = training_outputs(agent, params, initial_state, rollout)
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, rollout.action[..., None], axis=-1)[..., 0]
    ratio = jnp.exp(log_prob - rollout.log_prob)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv).mean()
    clipped = rollout.value + jnp.clip(value - rollout.value, -config.clip, config.clip)
    value_loss = 0.5 * jnp.maximum((value - returns) ** 2, (clipped - returns) ** 2).mean()
    entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
    return policy + config.value_coef * value_loss - config.entropy_coef * entropy


def make_optimizer(config: Config, updates: int):
    """Adam with clipped gradients, its learning rate falling linearly to zero over ``updates`` updates."""
    import optax

    schedule = optax.linear_schedule(config.lr, 0.0, updates * config.epochs * config.minibatches)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule, eps=1e-5))


def init_runner(agent: Agent, env, env_params, config: Config, units: int, updates: int, key: jax.Array) -> Runner:
    """Fresh parameters (an LSTM of ``units``, or the feed-forward torso of its size), optimiser state and
    environments."""
    k_params, k_env, key = jax.random.split(key, 3)
    obs, env_state = _env_reset(env, env_params, k_env, config.num_envs)
    params = agent.init(k_params, obs.shape[-1], units, env.num_actions)
    return Runner(
        params=params,
        opt_state=make_optimizer(config, updates).init(params),
        env_state=env_state,
        obs=obs,
        done=jnp.zeros((config.num_envs,), bool),
        state=agent.initial_state(params, config.num_envs),
        key=key,
    )


def make_update(agent: Agent, env, env_params, config: Config, updates: int):
    """The jitted ``Runner -> (Runner, (won, ended))``: one rollout, then PPO's epochs over it (one of
    ``updates``, over which the learning rate falls)."""
    import optax

    optimizer = make_optimizer(config, updates)
    loss_grad = jax.value_and_grad(functools.partial(ppo_loss, agent, config))
    rows = config.num_envs // config.minibatches

    def update(runner: Runner):
        initial_state = runner.state
        runner, rollout, last_value = collect(agent, env, env_params, runner.params, runner, config.rollout_length)
        adv, returns = advantages(rollout, last_value, config.gamma, config.gae_lambda)

        def epoch(carry, key):
            params, opt_state = carry
            order = jax.random.permutation(key, config.num_envs)

            def minibatch(carry, index):
                params, opt_state = carry
                take = functools.partial(jnp.take, indices=index, axis=0)
                batch = jax.tree.map(take, (initial_state, rollout, adv, returns))
                _, grads = loss_grad(params, *batch)
                with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 step count with floats
                    updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            return jax.lax.scan(minibatch, (params, opt_state), order.reshape(config.minibatches, rows))[0], None

        key, k_epochs = jax.random.split(runner.key)
        (params, opt_state), _ = jax.lax.scan(
            epoch, (runner.params, runner.opt_state), jax.random.split(k_epochs, config.epochs)
        )
        return runner._replace(params=params, opt_state=opt_state, key=key), success_counts(rollout)

    return jax.jit(update)


# ---------------------------------------------------------------------------------------------- the training


class Curve(NamedTuple):
    """A learning curve: after each update, the environment steps so far and the rollout's success rate."""

    steps: np.ndarray  # (U,) int64
    success: np.ndarray  # (U,) float64, NaN where no episode ended in that rollout


def train_agent(agent: Agent, env, env_params, config: Config, units: int, updates: int, key: jax.Array,
                progress: bool = True) -> tuple[Runner, Curve]:
    """Runs ``updates`` jitted updates with a progress bar; returns the last runner and the learning curve."""
    from tqdm import tqdm

    update = make_update(agent, env, env_params, config, updates)
    runner = init_runner(agent, env, env_params, config, units, updates, key)
    won, ended = np.zeros(updates), np.zeros(updates)
    with tqdm(total=updates, disable=not progress, desc=f"{agent.name} agent", unit="update",
              dynamic_ncols=True) as bar:
        for u in range(updates):
            runner, (w, e) = update(runner)
            won[u], ended[u] = int(w), int(e)
            bar.update(1)
            recent = slice(max(0, u - 9), u + 1)
            bar.set_postfix(success=f"{won[recent].sum() / max(ended[recent].sum(), 1):.2f}", refresh=False)
    steps = np.arange(1, updates + 1, dtype=np.int64) * config.num_envs * config.rollout_length
    with np.errstate(invalid="ignore", divide="ignore"):
        return runner, Curve(steps, won / ended)


def evaluate(agent: Agent, env, env_params, params: Any, key: jax.Array, num_envs: int = 256,
             episodes_each: int = 4) -> float:
    """The success rate of the greedy policy (the most likely action) over ``num_envs * episodes_each``
    episodes."""
    memory_length = int(env_params.memory_length)
    k_reset, key = jax.random.split(key)
    obs, env_state = _env_reset(env, env_params, k_reset, num_envs)

    def act(carry, key):
        env_state, obs, done, state = carry
        state, torso = agent.step(params, state, obs, done)
        action = jnp.argmax(heads(params.heads, torso)[0], axis=-1).astype(jnp.int32)
        obs, env_state, reward, done = _env_step(env, env_params, key, env_state, action)
        return (env_state, obs, done, state), (reward, done)

    carry = (env_state, obs, jnp.zeros((num_envs,), bool), agent.initial_state(params, num_envs))
    length = episodes_each * (memory_length + 1)
    _, (reward, done) = jax.jit(lambda c, k: jax.lax.scan(act, c, k))(carry, jax.random.split(key, length))
    return float(jnp.sum(done & (reward > 0)) / jnp.sum(done))


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """A trailing mean over ``window`` points that skips NaNs."""
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        chunk = chunk[~np.isnan(chunk)]
        if len(chunk):
            out[i] = chunk.mean()
    return out


def save_learning_curve(curves: dict[str, Curve], path: str, title: str) -> None:
    """A PNG of each agent's success rate against environment steps (each rollout faint, a trailing mean
    bold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for (name, curve), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
        ax.plot(curve.steps, curve.success, color=color, alpha=0.25, lw=0.8)
        ax.plot(curve.steps, smooth(curve.success, 10), color=color, lw=2, label=f"{name} agent")
    ax.axhline(0.5, color="0.5", ls="--", lw=1, label="chance (no memory)")
    ax.axhline(0.95, color="0.5", ls=":", lw=1)
    ax.set(xlabel="environment steps", ylabel="success rate (episodes won)", ylim=(0, 1.02), title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def train(args: argparse.Namespace) -> dict:
    """Trains the LSTM agent and the feed-forward one on the same budget, evaluates them greedily, draws the
    learning curves; returns a summary dict, also saved as ``summary.json`` under ``--out``."""
    config = Config(num_envs=args.envs, rollout_length=args.rollout_length, lr=args.lr)
    if config.num_envs % config.minibatches:
        raise ValueError(f"memory: --envs must be a multiple of {config.minibatches} (PPO's minibatches), "
                         f"got {config.num_envs}")
    if config.rollout_length <= args.memory_length + 1:
        print(f"note: no {args.memory_length + 1}-step episode fits in a {config.rollout_length}-step rollout, "
              "so no gradient links a cue to its reward; use a --rollout-length above the episode length")
    os.makedirs(args.out, exist_ok=True)
    env, env_params = make_env(args.memory_length)
    per_update = config.num_envs * config.rollout_length
    updates = max(1, -(-args.steps // per_update))
    curves: dict[str, Curve] = {}
    summary: dict[str, Any] = {
        "env": ENV_ID,
        "memory_length": args.memory_length,
        "environment_steps": updates * per_update,
        "config": config._asdict(),
        "agents": {},
    }
    train_key, eval_key = jax.random.split(jax.random.key(args.seed))
    for name in args.agents:
        agent = AGENTS[name]
        start = time.perf_counter()
        runner, curve = train_agent(agent, env, env_params, config, args.units, updates, train_key,
                                    progress=not args.quiet)
        seconds = time.perf_counter() - start
        curves[agent.name] = curve
        last = curve.success[-10:]
        summary["agents"][name] = {
            "parameters": parameter_count(runner.params),
            "seconds": round(seconds, 1),
            "final_success": float(np.nanmean(last)) if not np.all(np.isnan(last)) else None,
            "greedy_success": evaluate(agent, env, env_params, runner.params, eval_key),
        }
        line = summary["agents"][name]
        print(f"{agent.name} agent ({line['parameters']} weights): success {line['final_success']:.3f} over the "
              f"last 10 rollouts, {line['greedy_success']:.3f} greedy; {seconds:.0f} s")
    curve_path = os.path.join(args.out, "learning_curve.png")
    title = f"MemoryChain, memory length {args.memory_length}: PPO, {config.num_envs} envs"
    save_learning_curve(curves, curve_path, title)
    summary["learning_curve"] = curve_path
    summary["curves"] = {name: {"steps": c.steps.tolist(), "success": [None if np.isnan(v) else v
                                                                       for v in c.success.tolist()]}
                         for name, c in curves.items()}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"learning curve: {curve_path}")
    return summary


# ------------------------------------------------------------------------------------ the resets page's picture

FIGURE_RESETS = (4, 7)  # the picture's row: 10 steps, new segments at steps 4 and 7


def segment_outputs(params: jlstm.LSTMParams, inputs: jax.Array, initial_state: jlstm.LSTMState,
                    reset: jax.Array, *, go_backwards: bool = False) -> jax.Array:
    """``lstm(..., reset=reset, return_sequences=True)``, checked against the rule that defines it.

    The rule: each segment run on its own (the first processed from ``initial_state``, the others from zeros)
    and the pieces joined, in processing order.

    Args:
        params: an ``LSTMParams``.
        inputs: float ``(1, T, F)``, one row.
        initial_state: an ``LSTMState`` of ``(1, H)`` arrays.
        reset: bool ``(1, T)``.
        go_backwards: read each segment, and the segments, from last to first.

    Returns:
        float ``(1, T, H)``: the outputs in processing order, as ``jlstm.lstm`` returns them.
    """
    sequence = jlstm.lstm(params, inputs, initial_state=initial_state, reset=reset, return_sequences=True,
                          go_backwards=go_backwards)
    starts = [0] + [t for t in range(1, inputs.shape[1]) if bool(reset[0, t])] + [inputs.shape[1]]
    segments = list(itertools.pairwise(starts))
    if go_backwards:
        segments = segments[::-1]
    pieces, state = [], initial_state
    for a, b in segments:
        pieces.append(jlstm.lstm(params, inputs[:, a:b], initial_state=state, return_sequences=True,
                                 go_backwards=go_backwards))
        state = jlstm.zero_state(params, 1)
    np.testing.assert_allclose(sequence, jnp.concatenate(pieces, axis=1), rtol=1e-5, atol=1e-6)
    return sequence


def draw_segments(path: str, seed: int = 0) -> None:
    """Writes the resets page's PNG: a row of 10 steps cut into three segments, processed forward and with
    ``go_backwards``, each step labelled with the output a real ``LSTM(1)`` gives it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    steps = 10
    params = jlstm.init_params(jax.random.key(seed), input_dim=1, units=1)
    inputs = jnp.linspace(0.1, 1.0, steps, dtype=jnp.float32).reshape(1, steps, 1)
    initial = jlstm.LSTMState(jnp.full((1, 1), 0.5, jnp.float32), jnp.full((1, 1), 0.5, jnp.float32))
    reset = jnp.zeros((1, steps), bool).at[0, list(FIGURE_RESETS)].set(True)
    starts = [0, *FIGURE_RESETS, steps]
    segment_of = np.searchsorted(np.array(starts[1:]), np.arange(steps), side="right")
    colors = ("#c6dbef", "#fdd0a2", "#c7e9c0")

    fig, axes = plt.subplots(2, 1, figsize=(11, 5.6), layout="constrained")
    panels = (
        (axes[0], False, ("lstm(params, x, initial_state=s0, reset=reset, return_sequences=True): each segment "
                         "left to right, the first from s0")),
        (axes[1], True, ("... and go_backwards=True: each segment right to left, the last first, from s0 "
                        "(the sequence lists the outputs from x[9] to x[0])")),
    )
    for ax, backwards, title in panels:
        sequence = np.asarray(segment_outputs(params, inputs, initial, reset, go_backwards=backwards))[0, :, 0]
        output_at = sequence[::-1] if backwards else sequence  # the output of each input step, in input order
        order = list(range(steps))[::-1] if backwards else list(range(steps))
        for t in range(steps):
            ax.add_patch(FancyBboxPatch((t - 0.38, -0.3), 0.76, 0.6, boxstyle="round,pad=0.02",
                                        fc=colors[segment_of[t]], ec="0.3"))
            ax.text(t, 0.05, f"x[{t}]", ha="center", va="center", fontsize=10)
            ax.text(t, -0.16, f"{output_at[t]:+.3f}", ha="center", va="center", fontsize=8, color="0.25")
            ax.text(t, -0.52, "T" if bool(reset[0, t]) else "F", ha="center", va="center", fontsize=9,
                    color="tab:red" if bool(reset[0, t]) else "0.5")
        for a, b in itertools.pairwise(order):
            if segment_of[a] == segment_of[b]:
                ax.annotate("", (b - 0.4 * np.sign(b - a), 0), (a + 0.4 * np.sign(b - a), 0),
                            arrowprops={"arrowstyle": "->", "color": "0.2", "lw": 1.2})
        for s in range(len(starts) - 1):
            first, last = starts[s], starts[s + 1] - 1
            begin = last if backwards else first
            from_initial = s == (len(starts) - 2 if backwards else 0)
            label, color = ("from s0", "tab:blue") if from_initial else ("from zeros", "tab:red")
            ax.annotate(label, (begin, 0.32), (begin, 0.78), ha="center", fontsize=9, color=color,
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2})
        for t in FIGURE_RESETS:
            ax.axvline(t - 0.5, color="tab:red", ls="--", lw=1)
        ax.text(-0.9, -0.52, "reset", ha="right", va="center", fontsize=9, color="0.3")
        ax.text(-0.9, -0.16, "output", ha="right", va="center", fontsize=8, color="0.3")
        ax.set_xlim(-1.8, steps - 0.4)
        ax.set_ylim(-0.7, 1.0)
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"One row, three segments: outputs of LSTM(1), init_params(key({seed}), 1, 1), s0 = (0.5, 0.5); "
                 "each equals the segment run on its own", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=1_000_000,
                        help="environment steps per agent (default %(default)s)")
    parser.add_argument("--memory-length", type=int, default=30,
                        help="steps between the cue and the question (default %(default)s)")
    parser.add_argument("--units", type=int, default=32,
                        help="LSTM units; the feed-forward agent gets as many weights (default %(default)s)")
    parser.add_argument("--envs", type=int, default=64, help="environments side by side (default %(default)s)")
    parser.add_argument("--rollout-length", type=int, default=64, help="steps per rollout (default %(default)s)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's first learning rate (default %(default)s)")
    parser.add_argument("--agents", nargs="+", choices=sorted(AGENTS), default=["lstm", "mlp"],
                        help="which agents to train (default: both)")
    parser.add_argument("--out", default="memory_out",
                        help="directory for learning_curve.png and summary.json (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, the environments and the actions (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--figure", metavar="PATH",
                        help="instead of training, draw the resets page's picture of segments to PATH")


def run(args: argparse.Namespace) -> int:
    if args.figure:
        directory = os.path.dirname(args.figure)
        if directory:
            os.makedirs(directory, exist_ok=True)
        draw_segments(args.figure, args.seed)
        print(f"wrote {args.figure}")
        return 0
    train(args)
    return 0
