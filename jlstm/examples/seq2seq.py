"""An encoder-decoder trained end to end: it learns to reverse sequences of digits.

The Keras tutorial says an LSTM's final state matters "for sophisticated models where subsequent layers may
need to have their cell state initialized with the final cell state of another layer, such as in an
encoder-decoder model". This is that model, written as functions:

* the encoder reads the digits and keeps only its final state: ``jlstm.lstm(..., return_state=True)``;
* that ``(h, c)`` is the decoder's ``initial_state``; in training the decoder reads the target shifted right
  (teacher forcing: ``GO, y_1, ..., y_{T-1}``) and predicts ``y_1, ..., y_T`` (``return_sequences=True``);
* at inference there is no target to read, so :func:`greedy_decode` runs ``jlstm.lstm_cell`` one step at a
  time and feeds each predicted digit back in.

``--api pure`` keeps the weights in :class:`Seq2SeqParams`; ``--api linen`` and ``--api nnx`` build the same
model from ``jlstm.linen.LSTM`` / ``jlstm.nnx.LSTM``. Every variant is trained by the same optax loop on a
parameter pytree and decodes through the same pure cell. Run ``python -m jlstm seq2seq --help``.

It needs optax, orbax, matplotlib and tqdm (the ``examples`` extra), imported inside the functions that use
them, so that ``python -m jlstm demo`` and ``import jlstm`` work without them.
"""

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jlstm

VOCAB = 10  # the digits 0..9: encoder inputs and decoder outputs
GO = VOCAB  # the decoder's start token, an eleventh input symbol


# -------------------------------------------------------------------------------------------------- the data


def make_batch(key: jax.Array, batch: int, length: int) -> tuple[jax.Array, jax.Array]:
    """Draws random digit sequences and their reversals.

    Args:
        key: a ``jax.random`` key.
        batch: number of sequences.
        length: digits per sequence.

    Returns:
        ``(source, target)``, each int32 ``(batch, length)``, with ``target = source[:, ::-1]``.

    Example:
        >>> import jax
        >>> src, tgt = make_batch(jax.random.key(0), batch=2, length=5)
        >>> src.shape, bool((tgt == src[:, ::-1]).all())
        ((2, 5), True)
    """
    source = jax.random.randint(key, (batch, length), 0, VOCAB, dtype=jnp.int32)
    return source, source[:, ::-1]


def shift_right(target: jax.Array) -> jax.Array:
    """The decoder's teacher-forcing input: ``GO`` then the target without its last token.

    Args:
        target: int ``(batch, length)``.

    Returns:
        int ``(batch, length)``.

    Example:
        >>> import jax.numpy as jnp
        >>> shift_right(jnp.array([[3, 1, 4]])).tolist()
        [[10, 3, 1]]
    """
    go = jnp.full((target.shape[0], 1), GO, target.dtype)
    return jnp.concatenate([go, target[:, :-1]], axis=1)


def one_hot(tokens: jax.Array, depth: int) -> jax.Array:
    """float32 ``(..., depth)`` one-hot codes of int ``tokens`` ``(...)``."""
    return jax.nn.one_hot(tokens, depth, dtype=jnp.float32)


# --------------------------------------------------------------------------------------- the model, pure API


class Seq2SeqParams(NamedTuple):
    """All weights of the encoder-decoder (``H`` = units).

    Attributes:
        encoder: reads one-hot digits: ``kernel`` ``(10, 4H)``.
        decoder: reads one-hot ``GO``/digits: ``kernel`` ``(11, 4H)``.
        readout: ``(H, 10)``, decoder output to digit logits.
        readout_bias: ``(10,)``.
    """

    encoder: jlstm.LSTMParams  # kernel (10, 4H), recurrent_kernel (H, 4H), bias (4H,)
    decoder: jlstm.LSTMParams  # kernel (11, 4H), recurrent_kernel (H, 4H), bias (4H,)
    readout: jax.Array  # (H, 10)
    readout_bias: jax.Array  # (10,)


def init_seq2seq(key: jax.Array, units: int) -> Seq2SeqParams:
    """Keras's default initialisation for both LSTMs, Glorot uniform for the readout.

    Example:
        >>> import jax
        >>> p = init_seq2seq(jax.random.key(0), units=4)
        >>> p.encoder.kernel.shape, p.decoder.kernel.shape, p.readout.shape
        ((10, 16), (11, 16), (4, 10))
    """
    k_enc, k_dec, k_out = jax.random.split(key, 3)
    return Seq2SeqParams(
        encoder=jlstm.init_params(k_enc, VOCAB, units),
        decoder=jlstm.init_params(k_dec, VOCAB + 1, units),
        readout=jax.nn.initializers.glorot_uniform()(k_out, (units, VOCAB), jnp.float32),
        readout_bias=jnp.zeros((VOCAB,), jnp.float32),
    )


def encode(params: Seq2SeqParams, source: jax.Array) -> jlstm.LSTMState:
    """The encoder's final state: int ``source`` ``(B, T)`` -> ``LSTMState(h, c)``, each ``(B, H)``."""
    _, h, c = jlstm.lstm(params.encoder, one_hot(source, VOCAB), return_state=True)
    return jlstm.LSTMState(h, c)


def teacher_forced_logits(params: Seq2SeqParams, source: jax.Array, target: jax.Array) -> jax.Array:
    """Training-time logits: the decoder starts from the encoder's ``(h, c)`` and reads the shifted target.

    Args:
        params: a :class:`Seq2SeqParams`.
        source: int ``(B, T)`` digits.
        target: int ``(B, T)`` digits to predict.

    Returns:
        float32 ``(B, T, 10)``: at step ``t`` the logits of ``target[:, t]`` given ``target[:, :t]``.

    Example:
        >>> import jax
        >>> p = init_seq2seq(jax.random.key(0), units=4)
        >>> src, tgt = make_batch(jax.random.key(1), batch=2, length=5)
        >>> teacher_forced_logits(p, src, tgt).shape
        (2, 5, 10)
    """
    state = encode(params, source)
    decoder_in = one_hot(shift_right(target), VOCAB + 1)
    hs = jlstm.lstm(params.decoder, decoder_in, initial_state=state, return_sequences=True)  # (B, T, H)
    return hs @ params.readout + params.readout_bias[None, None, :]


def greedy_decode(params: Seq2SeqParams, source: jax.Array, length: int | None = None) -> jax.Array:
    """Inference: encodes, then runs the decoder cell one step at a time on its own previous prediction.

    The decoder here is ``jlstm.lstm_cell``, a pure function ``(params, state, x) -> (state, h)``, scanned
    with ``jax.lax.scan``; its weights are the very ``params.decoder`` that ``jlstm.lstm`` used in training.

    Args:
        params: a :class:`Seq2SeqParams` (for linen or nnx models, see ``to_pure`` in this module).
        source: int ``(B, T)`` digits.
        length: number of digits to emit; ``T`` by default.

    Returns:
        int32 ``(B, length)``: the predicted digits.

    Example:
        >>> import jax
        >>> p = init_seq2seq(jax.random.key(0), units=4)
        >>> src, _ = make_batch(jax.random.key(1), batch=2, length=5)
        >>> greedy_decode(p, src).shape
        (2, 5)
    """
    state = encode(params, source)
    go = jnp.full((source.shape[0],), GO, jnp.int32)

    def step(carry, _):
        state, token = carry
        state, h = jlstm.lstm_cell(params.decoder, state, one_hot(token, VOCAB + 1))
        token = jnp.argmax(h @ params.readout + params.readout_bias[None, :], axis=-1).astype(jnp.int32)
        return (state, token), token

    _, tokens = jax.lax.scan(step, (state, go), length=source.shape[1] if length is None else length)
    return tokens.T  # (T, B) -> (B, T)


def loss_and_accuracy(logits: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean cross-entropy and token accuracy of ``logits`` ``(B, T, 10)`` against int ``target``
    ``(B, T)``."""
    import optax

    loss = optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()
    accuracy = (jnp.argmax(logits, axis=-1) == target).mean()
    return loss, accuracy


# ----------------------------------------------------------------------- three ways to hold the same weights


class Model(NamedTuple):
    """What the training loop needs from an API: a parameter pytree and three functions of it."""

    params: Any  # a pytree of arrays
    logits: Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, source, target) -> (B, T, 10)
    to_pure: Callable[[Any], Seq2SeqParams]  # the same weights as a Seq2SeqParams, for greedy_decode


def pure_model(key: jax.Array, units: int) -> Model:
    """The model as plain functions of a :class:`Seq2SeqParams`."""
    return Model(init_seq2seq(key, units), teacher_forced_logits, lambda params: params)


def linen_model(key: jax.Array, units: int) -> Model:
    """The model as a flax linen module built from ``jlstm.linen.LSTM``."""
    import flax.linen as nn

    import jlstm.linen

    class Seq2Seq(nn.Module):
        units: int

        @nn.compact
        def __call__(self, source, target):
            _, h, c = jlstm.linen.LSTM(self.units, return_state=True, name="encoder")(one_hot(source, VOCAB))
            decoder_in = one_hot(shift_right(target), VOCAB + 1)
            hs = jlstm.linen.LSTM(self.units, return_sequences=True, name="decoder")(
                decoder_in, initial_state=(h, c)
            )
            return nn.Dense(VOCAB, name="readout")(hs)

    module = Seq2Seq(units)
    dummy = jnp.zeros((1, 1), jnp.int32)
    params = module.init(key, dummy, dummy)["params"]

    def logits(params, source, target):
        return module.apply({"params": params}, source, target)

    return Model(params, logits, _from_flax)


def nnx_model(key: jax.Array, units: int) -> Model:
    """The model as a flax nnx module built from ``jlstm.nnx.LSTM``, trained through ``nnx.split`` and
    ``nnx.merge`` on a pure dict of its parameters."""
    from flax import nnx

    import jlstm.nnx

    class Seq2Seq(nnx.Module):
        def __init__(self, units: int, *, rngs: nnx.Rngs):
            self.encoder = jlstm.nnx.LSTM(VOCAB, units, return_state=True, rngs=rngs)
            self.decoder = jlstm.nnx.LSTM(VOCAB + 1, units, return_sequences=True, rngs=rngs)
            self.readout = nnx.Linear(units, VOCAB, rngs=rngs)

        def __call__(self, source, target):
            _, h, c = self.encoder(one_hot(source, VOCAB))
            hs = self.decoder(one_hot(shift_right(target), VOCAB + 1), initial_state=(h, c))
            return self.readout(hs)

    graphdef, state = nnx.split(Seq2Seq(units, rngs=nnx.Rngs(key)))
    params = nnx.to_pure_dict(state)

    def logits(params, source, target):
        model_state = nnx.State(state)  # a template, filled with this call's arrays
        nnx.replace_by_pure_dict(model_state, params)
        return nnx.merge(graphdef, model_state)(source, target)

    return Model(params, logits, _from_flax)


def _from_flax(params) -> "Seq2SeqParams":
    """The pure parameters from a linen or nnx parameter tree (the two name them alike)."""
    return Seq2SeqParams(
        encoder=_lstm_params(params["encoder"]),
        decoder=_lstm_params(params["decoder"]),
        readout=params["readout"]["kernel"],
        readout_bias=params["readout"]["bias"],
    )


def _lstm_params(tree) -> jlstm.LSTMParams:
    return jlstm.LSTMParams(tree["kernel"], tree["recurrent_kernel"], tree["bias"])


MODELS = {"pure": pure_model, "linen": linen_model, "nnx": nnx_model}


# ---------------------------------------------------------------------------------------------- the training


class TrainState(NamedTuple):
    """What a checkpoint holds."""

    params: Any  # the model's parameter pytree
    opt_state: Any  # optax's state for it
    step: jax.Array  # () int32, steps done


def make_train_step(model: Model, optimizer, batch: int, length: int, data_key: jax.Array):
    """A jitted ``TrainState -> (TrainState, loss)`` for an ``optax.GradientTransformation`` ``optimizer``.

    Step ``n`` trains on the batch drawn from ``fold_in(data_key, n)``, so a resumed run sees the same data as
    an uninterrupted one.
    """
    import optax

    def loss_fn(params, source, target):
        return loss_and_accuracy(model.logits(params, source, target), target)[0]

    @jax.jit
    def train_step(state: TrainState) -> tuple[TrainState, jax.Array]:
        source, target = make_batch(jax.random.fold_in(data_key, state.step), batch, length)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, source, target)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 step count with floats
            updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), loss

    return train_step


def held_out_accuracy(params: Seq2SeqParams, source: jax.Array) -> tuple[float, float]:
    """Greedy decoding's ``(token accuracy, whole-sequence accuracy)`` on ``source`` ``(B, T)``."""
    predicted = _greedy_decode_jit(params, source)
    correct = predicted == source[:, ::-1]
    return float(correct.mean()), float(correct.all(axis=1).mean())


_greedy_decode_jit = jax.jit(lambda params, source: greedy_decode(params, source))


def _checkpoint_manager(directory: str):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(os.path.join(directory, "checkpoints")), options=options)


def save_checkpoint(manager, state: TrainState, losses: list[float]) -> None:
    """Writes the parameters, optimiser state and step, and the loss history, under ``checkpoints/<step>``."""
    import orbax.checkpoint as ocp

    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state), history=ocp.args.JsonSave({"losses": losses})
    )
    manager.save(int(state.step), args=args, force=True)
    manager.wait_until_finished()


def restore_checkpoint(manager, template: TrainState) -> tuple[TrainState, list[float]] | None:
    """The latest checkpoint, shaped like ``template``, or None if there is none."""
    import orbax.checkpoint as ocp

    step = manager.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore())
    restored = manager.restore(step, args=args)
    return TrainState(*restored.state), list(restored.history["losses"])


def save_loss_curve(losses: list[float], path: str, title: str) -> None:
    """A PNG of the training loss per step (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(np.arange(1, len(losses) + 1), losses, lw=1)
    ax.set(xlabel="step", ylabel="cross-entropy (nats)", yscale="log", title=title)
    ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ the command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", choices=sorted(MODELS), default="pure", help="how the weights are held")
    parser.add_argument("--steps", type=int, default=1500, help="total training steps (default %(default)s)")
    parser.add_argument("--batch", type=int, default=128, help="sequences per step (default %(default)s)")
    parser.add_argument("--length", type=int, default=8, help="digits per sequence (default %(default)s)")
    parser.add_argument("--units", type=int, default=128, help="LSTM units (default %(default)s)")
    parser.add_argument(
        "--lr", type=float, default=3e-3, help="initial Adam learning rate (default %(default)s)"
    )
    parser.add_argument(
        "--halve-every",
        type=int,
        default=500,
        help="steps between halvings of the learning rate (default %(default)s)",
    )
    parser.add_argument("--eval-every", type=int, default=250, help="steps between held-out evaluations")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    parser.add_argument(
        "--eval-size", type=int, default=1000, help="held-out sequences (default %(default)s)"
    )
    parser.add_argument(
        "--target",
        type=float,
        default=1.0,
        help="stop at an evaluation where held-out token accuracy reaches this (default %(default)s)",
    )
    parser.add_argument("--out", default="seq2seq_out", help="directory for checkpoints and the loss curve")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    train(args)
    return 0


def train(args: argparse.Namespace) -> dict:
    """Trains, evaluates on held-out sequences, checkpoints and plots; returns a summary dict, also saved as
    ``summary.json``."""
    import optax
    from tqdm import tqdm

    os.makedirs(args.out, exist_ok=True)
    init_key, data_key, eval_key = jax.random.split(jax.random.key(args.seed), 3)
    model = MODELS[args.api](init_key, args.units)
    # The learning rate halves every --halve-every steps: a function of the step alone, so --resume with a
    # larger --steps continues the same schedule.
    schedule = optax.exponential_decay(args.lr, transition_steps=args.halve_every, decay_rate=0.5)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    state = TrainState(model.params, optimizer.init(model.params), jnp.zeros((), jnp.int32))
    losses: list[float] = []

    manager = _checkpoint_manager(args.out)
    if args.resume:
        restored = restore_checkpoint(manager, state)
        if restored is None:
            print(f"no checkpoint under {args.out}; starting afresh")
        else:
            state, losses = restored
            print(f"resumed from step {int(state.step)}")

    train_step = make_train_step(model, optimizer, args.batch, args.length, data_key)
    held_out, _ = make_batch(
        eval_key, args.eval_size, args.length
    )  # data_key never draws from eval_key's stream
    token_acc, seq_acc = held_out_accuracy(model.to_pure(state.params), held_out)

    start, first = time.perf_counter(), int(state.step)
    with tqdm(
        total=args.steps, initial=first, disable=args.quiet, desc=f"seq2seq ({args.api})", dynamic_ncols=True
    ) as bar:
        while int(state.step) < args.steps:
            state, loss = train_step(state)
            losses.append(float(loss))
            step = int(state.step)
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", acc=f"{token_acc:.3f}", refresh=False)
            done = step == args.steps
            if step % args.checkpoint_every == 0 or done:
                save_checkpoint(manager, state, losses)
            if step % args.eval_every == 0 or done:
                token_acc, seq_acc = held_out_accuracy(model.to_pure(state.params), held_out)
                bar.write(f"step {step}: loss {losses[-1]:.4f}, held-out token accuracy {token_acc:.4f}")
                if token_acc >= args.target:
                    break
    seconds = time.perf_counter() - start
    if int(state.step) > first and manager.latest_step() != int(state.step):
        save_checkpoint(manager, state, losses)
    manager.close()

    curve = os.path.join(args.out, "loss.png")
    save_loss_curve(losses, curve, f"seq2seq, --api {args.api}: reversing {args.length} digits")
    example = held_out[:1]
    summary = {
        "api": args.api,
        "steps": int(state.step),
        "seconds": round(seconds, 1),
        "final_loss": losses[-1] if losses else None,
        "token_accuracy": token_acc,
        "sequence_accuracy": seq_acc,
        "example": {
            "source": example[0].tolist(),
            "decoded": _greedy_decode_jit(model.to_pure(state.params), example)[0].tolist(),
        },
        "loss_curve": curve,
        "checkpoint": os.path.join(args.out, "checkpoints", str(int(state.step))),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"held-out ({args.eval_size} sequences): token accuracy {token_acc:.4f}, "
        f"sequence accuracy {seq_acc:.4f}"
        f" after {summary['steps']} steps ({seconds:.0f} s this run)"
    )
    print(f"  {example[0].tolist()} -> {summary['example']['decoded']}")
    print(f"loss curve: {curve}; checkpoint: {summary['checkpoint']}")
    return summary
