"""The result types of the public functions' overloads: what mypy infers, and what a call really returns.

``tests/test_typing.py`` runs mypy over this file, where each ``assert_type`` fails unless mypy infers exactly
the type it names, and then calls :func:`check`, where each ``_returns`` fails unless the call's real result
has that type's form (an array, or a tuple of so many arrays). Together they pin every overload combination:
``return_state`` literal True or False, or a plain ``bool``; ``bidirectional``'s ``merge_mode`` a merging
literal or None (a pair of outputs), or a plain ``str``; ``init_stacked_params``'s ``proj_size`` None or an
int; ``from_keras`` on a path. ``return_sequences`` changes shapes, never the type, so it is checked once.
"""

import os
from typing import assert_type

import jax
import jax.numpy as jnp

import jlstm
from jlstm import KerasLSTMLayer, LSTMParams, LSTMPParams

Array = jax.Array
Pair = tuple[Array, Array]
Triple = tuple[Array, Array, Array]
Five = tuple[Array, Array, Array, Array, Array]
Six = tuple[Array, Array, Array, Array, Array, Array]


def _returns(value: object, arrays: int | None) -> None:
    """``value`` is one array (``arrays`` None) or a tuple of ``arrays`` arrays."""
    if arrays is None:
        assert isinstance(value, jax.Array), type(value)
    else:
        assert isinstance(value, tuple) and len(value) == arrays, value
        assert all(isinstance(item, jax.Array) for item in value), [type(item) for item in value]


def check(flag: bool, mode: str | None, size: int | None) -> None:
    """Every combination; ``flag``, ``mode`` and ``size`` stand for values that are not literals."""
    key = jax.random.key(0)
    x = jnp.ones((2, 5, 3))
    params = assert_type(jlstm.init_params(key, 3, 4), LSTMParams)
    projected = assert_type(jlstm.init_params(key, 3, 4, proj_size=2), LSTMPParams)

    _returns(assert_type(jlstm.lstm(params, x), Array), None)
    _returns(assert_type(jlstm.lstm(params, x, return_state=False), Array), None)
    _returns(assert_type(jlstm.lstm(params, x, return_sequences=True), Array), None)
    _returns(assert_type(jlstm.lstm(params, x, return_state=True), Triple), 3)
    _returns(assert_type(jlstm.lstm(projected, x, return_sequences=True, return_state=True), Triple), 3)
    _returns(assert_type(jlstm.lstm(params, x, return_state=flag), Array | Triple), 3 if flag else None)

    bidirectional = jlstm.bidirectional
    _returns(assert_type(bidirectional(params, params, x), Array), None)
    _returns(assert_type(bidirectional(params, params, x, merge_mode="sum", return_sequences=True), Array), None)
    _returns(assert_type(bidirectional(params, params, x, return_state=True), Five), 5)
    _returns(assert_type(bidirectional(params, params, x, merge_mode="ave", return_state=True), Five), 5)
    _returns(assert_type(bidirectional(params, params, x, merge_mode=None), Pair), 2)
    _returns(assert_type(bidirectional(params, params, x, merge_mode=None, return_state=False), Pair), 2)
    _returns(assert_type(bidirectional(params, params, x, merge_mode=None, return_state=True), Six), 6)
    either = Array | Pair | Five | Six
    merged = mode is not None
    _returns(assert_type(bidirectional(params, params, x, return_state=flag), either), 5 if flag else None)
    _returns(
        assert_type(bidirectional(params, params, x, merge_mode=mode), either), None if merged else 2
    )
    _returns(
        assert_type(bidirectional(params, params, x, merge_mode=mode, return_state=flag), either),
        (5 if merged else 6) if flag else (None if merged else 2),
    )

    layers = assert_type(jlstm.init_stacked_params(key, 3, 4, num_layers=2), list[LSTMParams])
    projected_layers = assert_type(
        jlstm.init_stacked_params(key, 3, 4, num_layers=2, proj_size=2), list[LSTMPParams]
    )
    assert all(isinstance(p, LSTMParams) for p in layers)
    assert all(isinstance(p, LSTMPParams) for p in projected_layers)
    some_layers = assert_type(
        jlstm.init_stacked_params(key, 3, 4, num_layers=2, proj_size=size), list[LSTMParams] | list[LSTMPParams]
    )
    _returns(assert_type(jlstm.stacked_lstm(layers, x), Array), None)
    _returns(assert_type(jlstm.stacked_lstm(projected_layers, x, return_state=True), Triple), 3)
    _returns(assert_type(jlstm.stacked_lstm(some_layers, x, return_sequences=True), Array), None)
    _returns(assert_type(jlstm.stacked_lstm((projected,), x, return_state=False), Array), None)
    _returns(assert_type(jlstm.stacked_lstm(layers, x, return_state=flag), Array | Triple), 3 if flag else None)


def keras_results(path: str | os.PathLike[str]) -> list[KerasLSTMLayer]:
    """``from_keras`` on a saved model's path (its run-time result is tested in ``tests/test_keras.py``).

    A Keras layer or model is ``Any`` to mypy (Keras ships no types), so its result is ``Any`` too.
    """
    return assert_type(jlstm.from_keras(path), list[KerasLSTMLayer])
