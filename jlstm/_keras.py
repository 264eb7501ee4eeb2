"""Weights in from and out to Keras 3: ``LSTM``, ``Bidirectional(LSTM)``, ``RNN(LSTMCell)`` and models.

Keras is imported inside the functions, so ``import jlstm`` does not need it.
"""

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate
from ._params import LSTMParams, LSTMPParams


class KerasLSTMLayer(NamedTuple):
    """One LSTM layer of a Keras model, as [`from_keras`][jlstm.from_keras] reports it.

    Enough to redo the layer's computation with [`lstm`][jlstm.lstm] (or, when
    ``bidirectional``, with [`jlstm.bidirectional`][]).

    Attributes:
      name: the Keras layer's name.
      params: an [`LSTMParams`][jlstm.LSTMParams]; a ``(forward, backward)`` pair of them when
        ``bidirectional``.
      bidirectional: the LSTM is wrapped in ``keras.layers.Bidirectional``.
      merge_mode: the ``Bidirectional``'s merge mode (``"concat"``, ``"sum"``, ``"mul"``, ``"ave"`` or
        None for separate outputs); None when not ``bidirectional``.
      return_sequences: the layer's flag (for ``bidirectional``, the forward layer's).
      return_state: the layer's flag (for ``bidirectional``, the forward layer's).
      go_backwards: the layer's flag (for ``bidirectional``, the forward layer's; the backward one reads
        the sequence the other way).
      activation: the jax function equal to the layer's Keras ``activation``.
      recurrent_activation: the jax function equal to the layer's Keras ``recurrent_activation``.
      dropout: the training-time ``dropout`` rate (inference ignores it).
      recurrent_dropout: the training-time ``recurrent_dropout`` rate (inference ignores it).
      stateful: Keras carries the final state into the next batch; with jlstm pass it as ``initial_state``.
    """

    name: str
    params: Any  # LSTMParams, or (forward LSTMParams, backward LSTMParams) when bidirectional
    bidirectional: bool
    merge_mode: str | None  # "concat" | "sum" | "mul" | "ave" | None
    return_sequences: bool
    return_state: bool
    go_backwards: bool
    activation: Callable[[jax.Array], jax.Array]
    recurrent_activation: Callable[[jax.Array], jax.Array]
    dropout: float
    recurrent_dropout: float
    stateful: bool


def _leaky_relu(x: jax.Array) -> jax.Array:
    """Keras's ``leaky_relu``: slope 0.2 below zero (jax's default is 0.01)."""
    return jax.nn.leaky_relu(x, negative_slope=0.2)


def _gelu(x: jax.Array) -> jax.Array:
    """Keras's ``gelu``: the exact erf form (jax's default is the tanh approximation)."""
    return jax.nn.gelu(x, approximate=False)


# Keras activation name -> the jax function with the same definition and default arguments. tanh and
# sigmoid are the very objects jlstm.lstm uses as defaults, so converted layers share its compiled code.
_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "linear": jax.nn.identity,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "silu": jax.nn.silu,
    "gelu": _gelu,
    "hard_silu": jax.nn.hard_silu,
    "hard_tanh": jax.nn.hard_tanh,
    "leaky_relu": _leaky_relu,
    "mish": jax.nn.mish,
    "log_sigmoid": jax.nn.log_sigmoid,
    "exponential": jnp.exp,
}


def _activation(fn: str, layer_name: str, which: str, keras_fn: Any) -> Callable[[jax.Array], jax.Array]:
    """The jax function for one of Keras's own activation functions; anything else is an error."""
    from keras import activations

    name = getattr(keras_fn, "__name__", None)
    if name in _ACTIVATIONS and activations.get(name) is keras_fn:
        return _ACTIVATIONS[name]
    raise ValueError(
        f"{fn}: layer_or_model: layer {layer_name!r} has {which}={keras_fn!r}, which has no jax "
        f"equivalent here; expected one of Keras's activations {sorted(_ACTIVATIONS)}"
    )


def _kind(obj: Any) -> str:
    return f"{type(obj).__name__} {obj.name!r}" if hasattr(obj, "name") else type(obj).__name__


def _check_lstm(fn: str, layer: Any) -> Any:
    """The ``LSTMCell`` of a plain ``LSTM`` or ``RNN(LSTMCell)`` layer; errors name what else was found."""
    from keras import layers

    if type(layer) not in (layers.LSTM, layers.RNN):
        raise TypeError(
            f"{fn}: layer_or_model: expected a keras.layers.LSTM, Bidirectional(LSTM) or RNN(LSTMCell) "
            f"layer, or a model whose recurrent layers all are; got {_kind(layer)}"
        )
    if type(layer.cell) is not layers.LSTMCell:
        raise TypeError(
            f"{fn}: layer_or_model: layer {layer.name!r} is an RNN over a {type(layer.cell).__name__}, "
            "expected the default keras.layers.LSTMCell (a stack of cells or a custom cell cannot be "
            "converted)"
        )
    if not layer.built or layer.cell.kernel is None:
        raise ValueError(
            f"{fn}: layer_or_model: layer {layer.name!r} is not built yet; call it on an input (or build it) "
            "first"
        )
    return layer.cell


def _lstm_params(fn: str, layer: Any) -> LSTMParams:
    from keras import ops

    cell = _check_lstm(fn, layer)
    kernel = jnp.asarray(ops.convert_to_numpy(cell.kernel))
    recurrent_kernel = jnp.asarray(ops.convert_to_numpy(cell.recurrent_kernel))
    if cell.use_bias:
        bias = jnp.asarray(ops.convert_to_numpy(cell.bias))
    else:
        bias = jnp.zeros((4 * cell.units,), kernel.dtype)
    return LSTMParams(kernel, recurrent_kernel, bias)


def _halves(fn: str, layer: Any) -> tuple[Any, Any]:
    """A Bidirectional's forward and backward layers, if they read the input as jlstm.bidirectional does."""
    forward, backward = layer.forward_layer, layer.backward_layer
    if forward.go_backwards or not backward.go_backwards:
        raise ValueError(
            f"{fn}: layer_or_model: Bidirectional layer {layer.name!r} has go_backwards="
            f"{forward.go_backwards} in its forward layer and {backward.go_backwards} in its backward layer; "
            "jlstm.bidirectional runs False and True"
        )
    return forward, backward


def _record(fn: str, layer: Any) -> KerasLSTMLayer:
    from keras import layers

    bidirectional = isinstance(layer, layers.Bidirectional)
    params: LSTMParams | tuple[LSTMParams, LSTMParams]
    if bidirectional:
        forward, backward = _halves(fn, layer)
        params = (_lstm_params(fn, forward), _lstm_params(fn, backward))
        for attr in ("activation", "recurrent_activation"):
            if getattr(forward.cell, attr) is not getattr(backward.cell, attr):
                raise ValueError(
                    f"{fn}: layer_or_model: Bidirectional layer {layer.name!r} has a different {attr} in its "
                    "forward and backward layers, which one record cannot report; convert "
                    "layer.forward_layer and layer.backward_layer one at a time"
                )
    else:
        forward, params = layer, _lstm_params(fn, layer)
    cell = forward.cell
    return KerasLSTMLayer(
        name=layer.name,
        params=params,
        bidirectional=bidirectional,
        merge_mode=layer.merge_mode if bidirectional else None,
        return_sequences=bool(forward.return_sequences),
        return_state=bool(forward.return_state),
        go_backwards=bool(forward.go_backwards),
        activation=_activation(fn, layer.name, "activation", cell.activation),
        recurrent_activation=_activation(fn, layer.name, "recurrent_activation", cell.recurrent_activation),
        dropout=float(cell.dropout),
        recurrent_dropout=float(cell.recurrent_dropout),
        stateful=bool(forward.stateful),
    )


def _model_lstms(fn: str, model: Any) -> list:
    """The model's LSTM and Bidirectional(LSTM) layers in order; at least one."""
    found = _recurrent_layers(fn, model)
    if not found:
        raise ValueError(f"{fn}: layer_or_model: model {model.name!r} has no LSTM layer")
    return found


def _recurrent_layers(fn: str, model: Any) -> list:
    """The model's LSTM and Bidirectional(LSTM) layers in order, descending into nested models."""
    from keras import Model, layers

    found = []
    for layer in model.layers:
        if isinstance(layer, Model):
            found.extend(_recurrent_layers(fn, layer))
        elif isinstance(layer, layers.Bidirectional):
            _check_lstm(fn, layer.forward_layer)
            _check_lstm(fn, layer.backward_layer)
            found.append(layer)
        elif isinstance(layer, layers.RNN):
            # A GRU, SimpleRNN or ConvLSTM: skipping it would silently drop part of the computation.
            _check_lstm(fn, layer)
            found.append(layer)
    return found


# A path gives the model's layers. Keras ships no types, so mypy sees every layer and model as Any and cannot tell
# an LSTM (LSTMParams) from a Bidirectional (a pair) or a Model (a list): the result of a Keras object stays Any.
@overload
def from_keras(layer_or_model: str | os.PathLike[str]) -> list[KerasLSTMLayer]: ...
@overload
def from_keras(layer_or_model: Any) -> Any: ...
def from_keras(layer_or_model: Any) -> LSTMParams | tuple[LSTMParams, LSTMParams] | list[KerasLSTMLayer]:
    r"""Reads LSTM weights (and, for a model, the layers' flags) out of Keras 3.

    Keras stores exactly jlstm's layout, so this is a copy:
    ``kernel`` ``(input_dim, 4 * units)``, ``recurrent_kernel`` ``(units, 4 * units)``, ``bias``
    ``(4 * units,)`` with the gates in the order (i, f, c, o). A layer built with ``use_bias=False``
    gives a zero bias. The arrays keep the Keras variables' dtype.

    | argument                                 | returns                                             |
    | ---------------------------------------- | --------------------------------------------------- |
    | ``keras.layers.LSTM``, ``RNN(LSTMCell)`` | an [`LSTMParams`][jlstm.LSTMParams]                 |
    | ``Bidirectional(LSTM(...))``             | ``(forward_params, backward_params)``               |
    | a ``keras.Model``, or a ``.keras`` path  | a list of [`KerasLSTMLayer`][jlstm.KerasLSTMLayer]  |

    For a model, only the LSTM layers are reported, in model order (Dense, Embedding, Masking ... are
    not), each with its flags and with activations mapped to the equal jax functions (``tanh`` to
    ``jnp.tanh``, ``sigmoid`` to ``jax.nn.sigmoid``, ``hard_sigmoid``, ``relu``, ...); nested models are
    walked in order.

    Warning:
      Keras's ``go_backwards`` returns the sequence in processing order (reversed in time); so does
      [`lstm`][jlstm.lstm]. Inside ``Bidirectional`` the backward sequence is flipped back to input order,
      and with ``return_sequences`` masked steps output zeros there.

    Args:
      layer_or_model: a built Keras layer or model, or the path of a saved ``.keras`` model.

    Returns:
      See the table.

    Raises:
      TypeError: a GRU, SimpleRNN, ConvLSTM, a stack of cells or a custom cell (in a model too: a
        recurrent layer that cannot be converted is never silently skipped).
      ValueError: an unbuilt layer, a model without LSTM layers, or an activation other than Keras's
        own standard ones.

    Examples:
      >>> import keras, numpy as np, jlstm
      >>> layer = keras.layers.LSTM(2)
      >>> x = np.ones((1, 3, 4), np.float32)
      >>> y = layer(x)
      >>> params = jlstm.from_keras(layer)
      >>> params.kernel.shape, params.recurrent_kernel.shape, params.bias.shape
      ((4, 8), (2, 8), (8,))
      >>> bool(np.allclose(jlstm.lstm(params, x), y, atol=1e-6))
      True
    """
    import keras

    fn = "from_keras"
    if isinstance(layer_or_model, (str, os.PathLike)):
        layer_or_model = keras.saving.load_model(layer_or_model)
    if isinstance(layer_or_model, keras.Model):
        return [_record(fn, layer) for layer in _model_lstms(fn, layer_or_model)]
    if isinstance(layer_or_model, keras.layers.Bidirectional):
        forward, backward = _halves(fn, layer_or_model)
        return (_lstm_params(fn, forward), _lstm_params(fn, backward))
    return _lstm_params(fn, layer_or_model)


def _assign(fn: str, label: str, layer: Any, params: Any) -> None:
    """Writes one LSTMParams into a plain LSTM layer, checking every shape first."""
    params = _validate.params(fn, params, label)
    if isinstance(params, LSTMPParams):
        raise TypeError(
            f"{fn}: {label} is an LSTMPParams (a projected LSTM, PyTorch's proj_size), which Keras has no "
            f"layer for: keras.layers.LSTM has no projection"
        )
    if not getattr(layer, "built", True):  # not a Keras layer: _check_lstm says what it is
        layer.build((None, None, params.input_dim))
    cell = _check_lstm(fn, layer)
    expected = {
        "kernel": (tuple(cell.kernel.shape), "(input_dim, 4 * units)"),
        "recurrent_kernel": (tuple(cell.recurrent_kernel.shape), "(units, 4 * units)"),
        "bias": ((4 * cell.units,), "(4 * units,)"),
    }
    for name, value in zip(LSTMParams._fields, params):
        shape, formula = expected[name]
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{fn}: {label}.{name} must have shape {formula} = {shape} to fit Keras layer "
                f"{layer.name!r}, got {tuple(value.shape)}"
            )
    if not cell.use_bias and bool(jnp.any(params.bias != 0)):
        raise ValueError(
            f"{fn}: Keras layer {layer.name!r} has use_bias=False, so {label}.bias must be all zeros"
        )
    cell.kernel.assign(np.asarray(params.kernel, dtype=cell.kernel.dtype))
    cell.recurrent_kernel.assign(np.asarray(params.recurrent_kernel, dtype=cell.recurrent_kernel.dtype))
    if cell.use_bias:
        cell.bias.assign(np.asarray(params.bias, dtype=cell.bias.dtype))


def _pair(fn: str, label: str, value: Any) -> tuple[Any, Any]:
    expected = f"{fn}: {label} must be a (forward_params, backward_params) pair for a Bidirectional layer"
    if isinstance(value, (LSTMParams, LSTMPParams)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    if len(value) != 2:
        raise ValueError(f"{expected}, got a {type(value).__name__} of length {len(value)}")
    return value[0], value[1]


def _assign_any(fn: str, label: str, layer: Any, params: Any) -> None:
    from keras import layers

    if isinstance(params, KerasLSTMLayer):
        params = params.params
    if isinstance(layer, layers.Bidirectional):
        forward, backward = _pair(fn, label, params)
        if not layer.built:
            input_dim = _validate.params(fn, forward).input_dim
            layer.build((None, None, input_dim))
        _assign(fn, f"{label}[0]", layer.forward_layer, forward)
        _assign(fn, f"{label}[1]", layer.backward_layer, backward)
    else:
        _assign(fn, label, layer, params)


def to_keras(params: Any, layer_or_model: Any) -> Any:
    """Writes jlstm weights into a Keras 3 layer or model, in place.

    The inverse of [`from_keras`][jlstm.from_keras], for the same kinds of layer:

    | ``layer_or_model``                       | ``params``                                |
    | ---------------------------------------- | ----------------------------------------- |
    | ``keras.layers.LSTM``, ``RNN(LSTMCell)`` | an [`LSTMParams`][jlstm.LSTMParams]       |
    | ``Bidirectional(LSTM(...))``             | ``(forward_params, backward_params)``     |
    | a built ``keras.Model``                  | a sequence with one entry per LSTM layer  |

    A model's entries come in the order of ``from_keras(model)``, whose
    [`KerasLSTMLayer`][jlstm.KerasLSTMLayer] records are accepted too.

    An unbuilt layer is built for ``params``' input_dim first. Values are cast to the Keras variables'
    dtype; with equal dtypes ``from_keras(to_keras(p, layer))`` returns ``p`` bit for bit.

    Warning:
      A ``use_bias=False`` layer has nowhere to put a bias: a non-zero ``bias`` is an error.

    Args:
      params: see the table.
      layer_or_model: the Keras layer or model to write into.

    Returns:
      ``layer_or_model``, with its weights replaced.

    Raises:
      ValueError: a shape that does not fit the layer (the message gives the expected and the received
        shape), a non-zero bias for ``use_bias=False``, a wrong number of entries for a model or a
        ``Bidirectional`` layer.
      TypeError: not an LSTM layer, or ``params`` of the wrong kind (a bare [`LSTMParams`][jlstm.LSTMParams]
        where a pair or a sequence is expected, a non-array, an [`LSTMPParams`][jlstm.LSTMPParams]: Keras
        has no projected LSTM).

    Examples:
      >>> import jax, keras, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=4, units=2)
      >>> layer = jlstm.to_keras(params, keras.layers.LSTM(2))
      >>> all(bool((a == b).all()) for a, b in zip(jlstm.from_keras(layer), params))
      True
    """
    import keras

    fn = "to_keras"
    if isinstance(layer_or_model, keras.Model):
        found = _model_lstms(fn, layer_or_model)
        expected = (
            f"{fn}: model {layer_or_model.name!r} has {len(found)} LSTM layers "
            f"({', '.join(repr(layer.name) for layer in found)}), so params must be a sequence of "
            f"{len(found)} entries"
        )
        if not isinstance(params, Sequence) or isinstance(params, (LSTMParams, str)):
            raise TypeError(f"{expected}, got {type(params).__name__}")
        if len(params) != len(found):
            raise ValueError(f"{expected}, got a {type(params).__name__} of length {len(params)}")
        for i, (layer, entry) in enumerate(zip(found, params)):
            _assign_any(fn, f"params[{i}]", layer, entry)
        return layer_or_model
    _assign_any(fn, "params", layer_or_model, params)
    return layer_or_model
