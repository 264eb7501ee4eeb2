"""Stacked LSTMs, PyTorch's ``num_layers``: each layer's sequence is the next layer's input."""

from collections.abc import Sequence
from typing import Any, Literal, cast, overload

import jax
import jax.numpy as jnp
import numpy as np

from . import _bidirectional, _dropout, _layer, _options, _validate
from ._cell import Activation
from ._init import init_params
from ._params import AnyParams, LSTMParams, LSTMPParams, output_dim
from ._plan import Plan


# The overloads give mypy the result's type from the literal return_state; each lists every parameter.
@overload
def stacked_lstm(
    params_list: Sequence[AnyParams],
    inputs: jax.Array | np.ndarray,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[False] = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    inter_layer_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array: ...
@overload
def stacked_lstm(
    params_list: Sequence[AnyParams],
    inputs: jax.Array | np.ndarray,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: Literal[True],
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    inter_layer_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]: ...
@overload
def stacked_lstm(
    params_list: Sequence[AnyParams],
    inputs: jax.Array | np.ndarray,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    inter_layer_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array, jax.Array]: ...
def stacked_lstm(
    params_list: Sequence[AnyParams],
    inputs: jax.Array | np.ndarray,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    initial_state: Sequence[jax.Array] | None = None,
    mask: jax.Array | None = None,
    reset: jax.Array | None = None,
    return_sequences: bool = False,
    return_state: bool = False,
    time_major: bool = False,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    unroll: int | bool = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    inter_layer_dropout: float = 0.0,
    training: bool = False,
    key: jax.Array | None = None,
    remat_chunk: int | None = None,
    recurrence: str | Plan = "auto",
    precision: str | jax.lax.Precision | None = None,
) -> jax.Array | tuple[jax.Array, jax.Array, jax.Array]:
    r"""Runs ``num_layers`` LSTMs (or bidirectional LSTMs) one on top of the other.

    Layer ``l + 1`` reads the full output sequence of layer ``l``, as Keras
    layers stacked with ``return_sequences=True`` and PyTorch's
    ``nn.LSTM(num_layers=L)`` do; the flags (``return_sequences``,
    ``return_state``) apply to the last layer. The mask is passed to every
    layer, as Keras propagates it. Each layer is one call to [`lstm`][jlstm.lstm]
    (or [`bidirectional`][jlstm.bidirectional]), with the same ``activation``, dropout, ... .

    ``params_list`` is flat, one [`LSTMParams`][jlstm.LSTMParams] per layer and direction,
    in PyTorch's order: ``[l0, l1, ...]``, or ``[l0_fwd, l0_bwd, l1_fwd,
    l1_bwd, ...]`` when ``bidirectional``. All layers have the same ``units``.
    [`init_stacked_params`][jlstm.init_stacked_params] draws such a list.

    States follow PyTorch's ``h_n`` / ``c_n``: ``initial_state`` is ``(h0, c0)``
    and ``return_state`` returns ``(output, h, c)``, each state
    ``(num_layers * num_directions, batch, units)``, row ``l * num_directions + d``
    for layer ``l`` and direction ``d`` (0 forward, 1 backward), the order of
    ``params_list``.

    Warning:
      Keras has no single stacked layer: a Keras model returns one state list
      per layer (``[h, c]``, or ``[h_fwd, c_fwd, h_bwd, c_bwd]`` for
      ``Bidirectional``); here they are stacked, PyTorch's way. ``dropout`` and
      ``recurrent_dropout`` are Keras's, inside every layer; PyTorch's
      ``nn.LSTM(dropout=p)`` is ``inter_layer_dropout``: ordinary (inverted)
      dropout on each element of every layer's output sequence except the
      last layer's, drawn anew at every step.

    Args:
      params_list: a list of [`LSTMParams`][jlstm.LSTMParams] as above. Layer 0 has
        ``input_dim`` features; later layers have ``units`` or, when
        bidirectional with ``merge_mode="concat"``, ``2 * units``.
      inputs: ``(batch, time, input_dim)`` (``(time, batch, input_dim)`` if
        ``time_major``), floating.
      bidirectional: every layer is a [`bidirectional`][jlstm.bidirectional] LSTM.
      merge_mode: how each bidirectional layer merges its two directions:
        ``"concat"``, ``"sum"``, ``"mul"`` or ``"ave"``.
      initial_state: ``(h0, c0)``, each ``(num_layers * num_directions, batch, units)``;
        zeros if None.
      mask: ``(batch, time)`` (``(time, batch)`` if ``time_major``), True for the
        steps to process; used by every layer.
      reset: ``(batch, time)`` (``(time, batch)`` if ``time_major``), bool: the
        steps that start a new segment, as in [`lstm`][jlstm.lstm]; every layer
        gets the same resets.
      return_sequences: the last layer returns every step.
      return_state: also return the final states of all layers.
      time_major: inputs, mask and output sequence have time first, as in [`lstm`][jlstm.lstm].
      activation: cell activation, as in [`lstm`][jlstm.lstm].
      recurrent_activation: gate activation, as in [`lstm`][jlstm.lstm].
      unroll: how many steps ``lax.scan`` unrolls per iteration, as in [`lstm`][jlstm.lstm].
      dropout: Keras's dropout of the inputs inside each layer, as in [`lstm`][jlstm.lstm].
      recurrent_dropout: Keras's dropout of ``h`` inside each layer, as in [`lstm`][jlstm.lstm].
      inter_layer_dropout: PyTorch's ``dropout``, in ``[0, 1)``, see the warning.
      training: apply the dropouts; when False the rates are ignored.
      key: a ``jax.random`` key, split per layer; needed only when training with
        a rate above 0.
      remat_chunk: recompute chunks of this many steps in the backward pass, as in [`lstm`][jlstm.lstm],
        for every layer.
      recurrence: how the loop is run, as in [`lstm`][jlstm.lstm], for every layer.
      precision: every matmul's precision, as in [`lstm`][jlstm.lstm].

    Returns:
      ``output`` (the last layer's), or ``(output, h, c)`` with ``return_state``.

    Raises:
      TypeError: an argument of the wrong type: ``params_list`` is not a list
        of [`LSTMParams`][jlstm.LSTMParams], ``initial_state`` is not a tuple or list, a
        non-array, a ``merge_mode`` (when ``bidirectional``) or ``recurrence`` that is not a string, a
        flag that is not a Python bool, an activation that is not callable.
      ValueError: an argument of the right type with a wrong value: a shape
        disagrees, ``params_list`` has the wrong length or widths,
        ``initial_state`` does not hold two arrays, ``merge_mode`` or
        ``recurrence`` is unknown (``merge_mode=None`` is not allowed here), a
        dropout rate outside ``[0, 1)``, training with dropout and no ``key``.

    Examples:
      PyTorch's ``nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)``:

      >>> import jax, jax.numpy as jnp, jlstm
      >>> params = jlstm.init_stacked_params(jax.random.key(0), 3, 4, num_layers=2, bidirectional=True)
      >>> len(params), params[2].kernel.shape
      (4, (8, 16))
      >>> y, h, c = jlstm.stacked_lstm(params, jnp.ones((2, 5, 3)), bidirectional=True,
      ...                              return_sequences=True, return_state=True)
      >>> y.shape, h.shape, c.shape
      ((2, 5, 8), (4, 2, 4), (4, 2, 4))
    """
    fn = "stacked_lstm"
    options = _options.check(fn, locals())
    bidirectional = _validate.flag(fn, "bidirectional", bidirectional)
    params_list, merge = _check_layers(fn, params_list, bidirectional, merge_mode)
    directions = 2 if bidirectional else 1
    num_layers = len(params_list) // directions
    units = params_list[0].units
    names = ("time", "batch", "input_dim") if options.time_major else ("batch", "time", "input_dim")
    inputs = _validate.array(fn, "inputs", inputs, (None, None, params_list[0].input_dim), names)
    states = None
    if initial_state is not None:
        rows, batch = num_layers * directions, inputs.shape[1 if options.time_major else 0]
        specs = [
            _validate.hidden_spec(batch, params_list[0], rows),
            ((rows, batch, units), ("num_layers * num_directions", "batch", "units")),
        ]
        states = _validate.arrays(fn, "initial_state", initial_state, "hc", specs, "a pair (h0, c0)")
    inter_layer_dropout = _dropout.rate(fn, "inter_layer_dropout", inter_layer_dropout)
    between = bool(training) and inter_layer_dropout > 0 and num_layers > 1
    if between and key is None:
        raise ValueError(
            f"{fn}: training with inter_layer_dropout={inter_layer_dropout!r} needs a PRNG key, got key=None"
        )
    if between or options.dropout > 0 or options.recurrent_dropout > 0:
        keys = list(jax.random.split(_validate.key(fn, key), num_layers))
    else:
        keys = [None] * num_layers

    x, hs, cs = inputs, [], []
    for layer in range(num_layers):
        last = layer == num_layers - 1
        layer_key = between_key = keys[layer]
        if layer_key is not None:
            layer_key, between_key = jax.random.split(layer_key)
        layer_rows = range(layer * directions, (layer + 1) * directions)  # PyTorch's order: h_n[l * D + d]
        state = None if states is None else [s[row] for row in layer_rows for s in states]  # [h, c] each
        layer_options = options._replace(return_sequences=options.return_sequences or not last, return_state=True)
        if bidirectional:
            forward, backward = (params_list[row] for row in layer_rows)
            x, *layer_state = _bidirectional.run(
                fn, forward, backward, x, merge, state, mask, layer_key, layer_options, reset=reset
            )
        else:
            x, *layer_state = _layer.run(fn, params_list[layer], x, state, mask, layer_key, layer_options, reset=reset)
        hs += layer_state[0::2]
        cs += layer_state[1::2]
        if between and not last:
            x = x * _dropout.inverted_mask(between_key, inter_layer_dropout, x.shape, x.dtype)
    if options.return_state:
        return x, jnp.stack(hs), jnp.stack(cs)
    return x


def _check_layers(
    fn: str, params_list: Any, bidirectional: bool, merge_mode: Any
) -> tuple[list[AnyParams], str | None]:
    """What the layers' own calls cannot check: the count, and that each layer fits the one below it."""
    if isinstance(params_list, LSTMParams) or not isinstance(params_list, (list, tuple)):
        got = type(params_list).__name__
        if isinstance(params_list, LSTMParams):
            got = "a single LSTMParams (wrap it in a list)"
        raise TypeError(f"{fn}: params_list must be a list of LSTMParams, got {got}")
    directions = 2 if bidirectional else 1
    if len(params_list) == 0 or len(params_list) % directions:
        raise ValueError(
            f"{fn}: params_list must hold one LSTMParams per layer"
            + (" and direction ([l0_fwd, l0_bwd, l1_fwd, ...]), an even number > 0"
               if bidirectional else ", at least one")
            + f", got {len(params_list)}"
        )
    merge_mode = _merge_mode(fn, merge_mode) if bidirectional else None
    params_list = [_validate.params(fn, p, f"params_list[{i}]") for i, p in enumerate(params_list)]
    units, width = params_list[0].units, output_dim(params_list[0])
    layer_output = width * (2 if merge_mode == "concat" else 1)
    for i, p in enumerate(params_list):
        if (p.units, output_dim(p)) != (units, width):
            raise ValueError(
                f"{fn}: params_list[{i}].recurrent_kernel must have shape ({width}, {4 * units}) "
                f"(all layers have the units and the proj_size of params_list[0]), "
                f"got {tuple(p.recurrent_kernel.shape)}"
            )
        expected = params_list[0].input_dim if i < directions else layer_output
        if p.input_dim != expected:
            source = "as params_list[0]" if i < directions else "the previous layer's output width"
            raise ValueError(
                f"{fn}: params_list[{i}].kernel must have shape ({expected}, {4 * units}) ({source}), "
                f"got {tuple(p.kernel.shape)}"
            )
    return params_list, merge_mode


# proj_size None draws LSTMParams, an int LSTMPParams: the overloads tell mypy which (each lists every parameter).
@overload
def init_stacked_params(
    key: jax.Array,
    input_dim: int,
    units: int,
    num_layers: int,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    proj_size: None = None,
    dtype=jnp.float32,
    unit_forget_bias: bool = True,
) -> list[LSTMParams]: ...
@overload
def init_stacked_params(
    key: jax.Array,
    input_dim: int,
    units: int,
    num_layers: int,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    proj_size: int,
    dtype=jnp.float32,
    unit_forget_bias: bool = True,
) -> list[LSTMPParams]: ...
@overload
def init_stacked_params(
    key: jax.Array,
    input_dim: int,
    units: int,
    num_layers: int,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    proj_size: int | None = None,
    dtype=jnp.float32,
    unit_forget_bias: bool = True,
) -> list[LSTMParams] | list[LSTMPParams]: ...
def init_stacked_params(
    key: jax.Array,
    input_dim: int,
    units: int,
    num_layers: int,
    *,
    bidirectional: bool = False,
    merge_mode: str = "concat",
    proj_size: int | None = None,
    dtype=jnp.float32,
    unit_forget_bias: bool = True,
) -> list[LSTMParams] | list[LSTMPParams]:
    """Draws the ``params_list`` of [`stacked_lstm`][jlstm.stacked_lstm] with Keras's initialisers.

    Each layer and direction is drawn by [`init_params`][jlstm.init_params].

    Args:
      key: a ``jax.random`` key, split once per layer and direction.
      input_dim: features of the input to layer 0.
      units: hidden units of every layer.
      num_layers: number of layers, a positive int.
      bidirectional: two directions per layer, in PyTorch's order
        ``[l0_fwd, l0_bwd, l1_fwd, ...]``.
      merge_mode: how bidirectional layers are merged, which sets the input
        width of layers after the first (``2 * units`` for ``"concat"``).
      proj_size: every layer projected to this size, as in [`init_params`][jlstm.init_params]
        (later layers then read ``proj_size`` or ``2 * proj_size`` features).
      dtype: a floating dtype for all arrays, as in [`init_params`][jlstm.init_params].
      unit_forget_bias: start the forget gates open, as in [`init_params`][jlstm.init_params].

    Returns:
      A list of ``num_layers * (2 if bidirectional else 1)`` [`LSTMParams`][jlstm.LSTMParams]
        ([`LSTMPParams`][jlstm.LSTMPParams] with ``proj_size``).

    Raises:
      TypeError: as in [`init_params`][jlstm.init_params]; ``num_layers`` is not an int,
        ``bidirectional`` not a bool, ``merge_mode`` not a string when ``bidirectional``.
      ValueError: as in [`init_params`][jlstm.init_params]; ``num_layers`` below 1, an
        unknown ``merge_mode`` (or None) for a bidirectional stack.

    Examples:
      >>> import jax, jlstm
      >>> [p.kernel.shape for p in jlstm.init_stacked_params(jax.random.key(0), 3, 4, num_layers=3)]
      [(3, 16), (4, 16), (4, 16)]
    """
    fn = "init_stacked_params"
    input_dim, units, unit_forget_bias = _validate.init_arguments(fn, key, input_dim, units, dtype, unit_forget_bias)
    num_layers = _validate.positive_int(fn, "num_layers", num_layers)
    bidirectional = _validate.flag(fn, "bidirectional", bidirectional)
    if bidirectional:
        merge_mode = _merge_mode(fn, merge_mode)
    directions = 2 if bidirectional else 1
    proj_size = _validate.projection_size(fn, proj_size, units)
    width = (proj_size or units) * (2 if bidirectional and merge_mode == "concat" else 1)
    keys = jax.random.split(key, num_layers * directions)
    layers = [
        init_params(
            k, input_dim if i < directions else width, units,
            proj_size=proj_size, dtype=dtype, unit_forget_bias=unit_forget_bias,
        )
        for i, k in enumerate(keys)
    ]
    # One proj_size for every layer: all LSTMParams or all LSTMPParams, which mypy cannot see in the loop.
    return cast("list[LSTMParams] | list[LSTMPParams]", layers)


def _merge_mode(fn: str, merge_mode: object) -> str:
    """A stacked bidirectional layer's merge mode: each layer's output is one array, so None is refused."""
    if merge_mode is None:
        raise ValueError(
            f"{fn}: merge_mode must be one of 'concat', 'sum', 'mul' or 'ave', got None "
            "(separate outputs cannot feed the next layer)"
        )
    return _validate.choice(fn, "merge_mode", merge_mode, ("concat", "sum", "mul", "ave"))
