"""The options of one LSTM layer, defined once: a hashable NamedTuple that ``jax.jit`` takes as one static argument."""

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _dropout, _recurrence, _validate
from ._cell import Activation
from ._plan import Plan


class Options(NamedTuple):
    """The static options of :func:`jlstm.lstm`; every public function and module takes them by these names.

    Each is a Python value that selects code at trace time, never a traced
    value, so the same options and shapes never compile twice.
    """

    return_sequences: bool = False  # the output of every step, (B, T, H), not only the last (B, H)
    return_state: bool = False  # also the final (h, c)
    go_backwards: bool = False  # read the sequence last step first; outputs in processing order
    time_major: bool = False  # inputs, mask and sequence (T, B, ...) rather than (B, T, ...)
    activation: Activation = jnp.tanh  # the candidate's and the cell state's
    recurrent_activation: Activation = jax.nn.sigmoid  # the input, forget and output gates'
    unroll: int | bool = 1  # loop steps per iteration; True: all
    remat_chunk: int | None = None  # steps per checkpointed chunk in the backward pass
    recurrence: str | Plan = "auto"  # how the loop runs: a name in _recurrence.KINDS, or a Plan
    dropout: float = 0.0  # Keras's input dropout rate; 0 unless training
    recurrent_dropout: float = 0.0  # Keras's recurrent dropout rate; 0 unless training
    precision: jax.lax.Precision | None = None  # every matmul's, forward and backward; None: JAX's default


def check(fn: str, arguments: Mapping[str, Any]) -> Options:
    """The :class:`Options` among a public function's ``arguments`` (its ``locals()``), checked under ``fn``.

    A field that ``arguments`` lacks keeps its default (``bidirectional`` has
    no ``go_backwards``). ``arguments`` must hold ``training`` and ``key``:
    the dropout rates are kept only when training with a rate above 0, and
    are 0 otherwise, so that inference compiles one program whatever the rates.
    """
    given = Options(**{name: arguments[name] for name in Options._fields if name in arguments})
    flags = {
        name: _validate.flag(fn, name, getattr(given, name))
        for name in ("return_sequences", "return_state", "go_backwards", "time_major")
    }
    training = _dropout.check(fn, given.dropout, given.recurrent_dropout, arguments["training"], arguments["key"])
    return Options(
        **flags,
        activation=_validate.function(fn, "activation", given.activation),
        recurrent_activation=_validate.function(fn, "recurrent_activation", given.recurrent_activation),
        unroll=_validate.unroll(fn, given.unroll),
        remat_chunk=_validate.optional_positive_int(fn, "remat_chunk", given.remat_chunk),
        recurrence=_recurrence.check(fn, given.recurrence),
        dropout=float(given.dropout) if training else 0.0,
        recurrent_dropout=float(given.recurrent_dropout) if training else 0.0,
        precision=_validate.precision(fn, given.precision),
    )


def pick(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``arguments`` (a constructor's ``locals()``) that are :class:`Options` fields."""
    return {name: arguments[name] for name in Options._fields if name in arguments}


def attributes(obj: Any) -> dict[str, Any]:
    """The :class:`Options` fields that ``obj`` has as attributes: a flax module's options."""
    return {name: getattr(obj, name) for name in Options._fields if hasattr(obj, name)}
