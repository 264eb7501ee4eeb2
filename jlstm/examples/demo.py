"""The Keras tutorial this project grew from: ``LSTM(1)`` on ``[0.1, 0.2, 0.3]``.

Runs the four flag combinations (default, ``return_sequences``,
``return_state``, both), prints each result with its shape and what it is,
and checks that the returned ``h`` is the last output. With ``--keras`` it
builds the same four ``keras.layers.LSTM`` layers (TensorFlow backend) with
the same weights and prints the largest difference.
"""

import argparse
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jlstm

CONFIGS: tuple[tuple[str, dict[str, Any], str], ...] = (  # (name, keyword arguments of lstm, what it returns)
    ("LSTM(1)", {}, "the hidden state after the last step"),
    ("LSTM(1, return_sequences=True)", {"return_sequences": True}, "the hidden state of every step"),
    ("LSTM(1, return_state=True)", {"return_state": True}, "output, then the final state h and c"),
    (
        "LSTM(1, return_sequences=True, return_state=True)",
        {"return_sequences": True, "return_state": True},
        "the sequence, then the final state h and c",
    ),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed of the weights (default 0)")
    parser.add_argument(
        "--keras", action="store_true", help="compare with keras.layers.LSTM (needs TensorFlow installed)"
    )


def _fmt(a) -> str:
    return np.array2string(np.asarray(a), precision=6, separator=", ").replace("\n", "")


def run(args: argparse.Namespace) -> int:
    inputs = jnp.array([0.1, 0.2, 0.3], jnp.float32).reshape(1, 3, 1)
    params = jlstm.init_params(jax.random.key(args.seed), input_dim=1, units=1)
    print(f"inputs {_fmt(inputs)}, shape {inputs.shape} (batch, time, features)")
    print(f"weights: init_params(key({args.seed}), input_dim=1, units=1), Keras's initialisers")
    for name, field in zip(jlstm.LSTMParams._fields, params):
        print(f"  {name:17s}{tuple(field.shape)} {_fmt(field)}")
    results = []
    for number, (name, flags, meaning) in enumerate(CONFIGS, 1):
        result = jlstm.lstm(params, inputs, **flags)
        results.append(result)
        print(f"\n{number}. {name}: {meaning}")
        if not flags.get("return_state"):
            print(f"   output {_fmt(result)}  shape {result.shape}")
            continue
        output, h, c = result
        label = "sequence" if flags.get("return_sequences") else "output"
        print(f"   {label:8s} {_fmt(output)}  shape {output.shape}")
        print(f"   h        {_fmt(h)}  shape {h.shape}: the last hidden state")
        print(f"   c        {_fmt(c)}  shape {c.shape}: the last cell state (internal, not an output)")
        last = output[:, -1] if flags.get("return_sequences") else output
        check = "sequence[:, -1] == h" if flags.get("return_sequences") else "output == h"
        print(f"   {check}: {bool(jnp.array_equal(last, h))}")
    print(
        "\nThe default output equals the last step of the sequence: "
        f"{bool(jnp.array_equal(results[0], results[1][:, -1]))}"
    )
    if args.keras:
        return _compare_with_keras(params, inputs, results)
    return 0


def _compare_with_keras(params, inputs, results) -> int:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras
    except ImportError:
        print('\n--keras needs Keras on TensorFlow: pip install "jlstm[keras]" tensorflow')
        return 2
    print(f"\nKeras {keras.__version__} on the {keras.backend.backend()} backend, same weights:")
    worst = 0.0
    for (name, flags, _), ours in zip(CONFIGS, results):
        layer = keras.layers.LSTM(1, **flags)
        layer.build(inputs.shape)
        layer.set_weights([np.asarray(w) for w in params])
        theirs = layer(np.asarray(inputs))
        pairs = zip(ours, theirs) if flags.get("return_state") else [(ours, theirs)]
        diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)
        worst = max(worst, diff)
        print(f"  {name:52s} largest difference {diff:.2e}")
    print(f"largest difference over the four configurations: {worst:.2e}")
    return 0 if worst < 1e-6 else 1
