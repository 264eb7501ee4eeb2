"""The picture of "Inside the loop" (docs/getting_started.md): a real ``LSTM(1)`` run on ``[0.1, 0.2, 0.3]``.

``jlstm figure`` (``python -m jlstm figure``) steps ``jlstm.lstm_cell`` over the tutorial's input to
get every ``h_t`` and ``c_t``, checks them against what ``jlstm.lstm`` returns, and draws them: the hidden
sequence (``return_sequences=True``), the final ``h`` and ``c`` (``return_state=True``), and the reversed run
(``go_backwards=True``), whose sequence comes back in processing order. It writes ``how_it_works.png`` in the
current directory, or ``--out``; the docs' picture is ``--out docs/how_it_works.png`` from the repository root.
Needs matplotlib (the ``examples`` extra).
"""

import argparse
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jlstm

TUTORIAL_INPUT = (0.1, 0.2, 0.3)


class Trace(NamedTuple):
    """Every state of a run, step by step in processing order (``T`` steps, ``H`` units, batch 1)."""

    x: np.ndarray  # (T,) the input value read at each step
    h: np.ndarray  # (T, H) hidden state after each step
    c: np.ndarray  # (T, H) cell state after each step


def trace(params: jlstm.LSTMParams, inputs: jax.Array, *, go_backwards: bool = False) -> Trace:
    """Steps :func:`jlstm.lstm_cell` over a one-row, one-feature sequence and records ``h_t`` and ``c_t``.

    ``jlstm.lstm`` returns only the last ``c``; this loop shows the ``c`` of every step too, and checks that
    its ``h`` sequence and final state are what ``jlstm.lstm(..., return_sequences=True, return_state=True)``
    returns with the same ``go_backwards``.

    Args:
        params: an :class:`jlstm.LSTMParams` with ``input_dim == 1``.
        inputs: float ``(1, T, 1)``.
        go_backwards: read the sequence from its last step to its first.

    Returns:
        A :class:`Trace` in processing order (reversed in time when ``go_backwards``, like Keras's output).

    Example:
        >>> import jax, jax.numpy as jnp, jlstm
        >>> params = jlstm.init_params(jax.random.key(0), input_dim=1, units=1)
        >>> t = trace(params, jnp.array([0.1, 0.2, 0.3]).reshape(1, 3, 1), go_backwards=True)
        >>> t.x.tolist(), t.h.shape, t.c.shape
        ([0.3, 0.2, 0.1], (3, 1), (3, 1))
    """
    xs = inputs[:, ::-1] if go_backwards else inputs
    zeros = jnp.zeros((1, params.units), params.kernel.dtype)
    state = jlstm.LSTMState(zeros, zeros)
    hs, cs = [], []
    for t in range(xs.shape[1]):
        (h_t, c_t), _ = jlstm.lstm_cell(params, state, xs[:, t])
        state = jlstm.LSTMState(h_t, c_t)
        hs.append(h_t[0])
        cs.append(c_t[0])
    sequence, h, c = jlstm.lstm(
        params, inputs, return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    np.testing.assert_allclose(np.stack(hs), sequence[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.stack([h[0], c[0]]), np.stack([hs[-1], cs[-1]]), rtol=1e-6, atol=1e-7)
    return Trace(
        np.round(np.asarray(xs[0, :, 0], np.float64), 6), np.asarray(np.stack(hs)), np.asarray(np.stack(cs))
    )


def draw(params: jlstm.LSTMParams, path: str, seed: int = 0) -> None:
    """Writes the two-panel PNG (forward run, ``go_backwards`` run) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs = jnp.array(TUTORIAL_INPUT, jnp.float32).reshape(1, 3, 1)
    forward, backward = trace(params, inputs), trace(params, inputs, go_backwards=True)
    low = min(forward.c.min(), backward.c.min(), forward.h.min(), backward.h.min(), 0.0)
    high = max(forward.c.max(), backward.c.max(), forward.h.max(), backward.h.max(), 0.0)
    pad = 0.35 * (high - low)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True, layout="constrained")
    panels = (
        (axes[0], forward, "jlstm.lstm(params, x, return_sequences=True, return_state=True)"),
        (axes[1], backward, "... and go_backwards=True: reads x[2], x[1], x[0]"),
    )
    for ax, run, title in panels:
        steps = np.arange(1, len(run.x) + 1)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.plot(
            steps,
            run.c[:, 0],
            "s--",
            color="tab:orange",
            ms=7,
            label="$c_t$ (cell state; only the last is returned)",
        )
        ax.plot(steps, run.h[:, 0], "o-", color="tab:blue", ms=8, lw=2, label="$h_t$: the returned sequence")
        for s, h in zip(steps[:-1], run.h[:-1, 0]):
            ax.annotate(
                f"{h:+.4f}",
                (s, h),
                textcoords="offset points",
                xytext=(0, 9),
                ha="center",
                color="tab:blue",
                fontsize=9,
            )
        last = steps[-1]
        ax.plot([last], [run.h[-1, 0]], "o", ms=17, mfc="none", mec="tab:blue", mew=1.5)
        ax.plot([last], [run.c[-1, 0]], "s", ms=17, mfc="none", mec="tab:orange", mew=1.5)
        labels_at_end = (
            (run.h[-1, 0], "tab:blue", f"h = {run.h[-1, 0]:+.4f}: the default output,\nsequence[:, -1] and return_state's h"),
            (run.c[-1, 0], "tab:orange", f"c = {run.c[-1, 0]:+.4f}: return_state's c"),
        )
        for value, color, text in labels_at_end:
            ax.annotate(text, (last, value), textcoords="offset points", xytext=(14, 0), ha="left", va="center",
                        color=color, fontsize=9)
        labels = [f"step {s}\nreads x = {x:g}" for s, x in zip(steps, run.x)]
        ax.set_xticks(steps, labels)
        ax.set_xlim(0.6, len(steps) + 2.2)
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylim(low - pad, high + pad)
    axes[0].set_ylabel("state value (units = 1)")
    axes[0].legend(loc="lower left", fontsize=9, frameon=False)
    axes[1].text(
        0.5,
        0.04,
        "the returned sequence is in processing order:\nsequence[:, 0] belongs to x[2]",
        transform=axes[1].transAxes,
        ha="center",
        fontsize=9,
        color="0.3",
    )
    fig.suptitle(
        f"LSTM(1) on x = [0.1, 0.2, 0.3], shape (1, 3, 1); weights init_params(key({seed}), 1, 1)",
        fontsize=11,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="how_it_works.png",
                        help="PNG to write (default: %(default)s in the current directory)")
    parser.add_argument(
        "--seed", type=int, default=0, help="PRNG seed of the weights, as in the demo (default 0)"
    )


def run(args: argparse.Namespace) -> int:
    directory = os.path.dirname(args.out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    params = jlstm.init_params(jax.random.key(args.seed), input_dim=1, units=1)
    draw(params, args.out, args.seed)
    print(f"wrote {args.out}")
    return 0
