"""Weights in from and out to PyTorch: ``torch.nn.LSTM`` (any layers, directions), ``LSTMCell``, state dicts.

torch is imported inside the functions, so ``import jlstm`` does not need it.
"""

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import jax.numpy as jnp
import numpy as np

from . import _validate
from ._params import AnyParams, LSTMParams, LSTMPParams, output_dim

if TYPE_CHECKING:
    import torch

_KEY = re.compile(r"^(?P<prefix>.*)weight_ih_l(?P<layer>\d+)(?P<suffix>(_reverse)?)$")


def _to_jax(fn: str, key: str, tensor: Any) -> jnp.ndarray:
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{fn}: state dict entry {key!r} must be a torch.Tensor, got {type(tensor).__name__}")
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16; float32 holds every bfloat16 exactly
        return jnp.asarray(tensor.float().numpy()).astype(jnp.bfloat16)
    return jnp.asarray(tensor.numpy())


def _to_torch(array: Any) -> Any:
    import torch

    if array.dtype == jnp.bfloat16:
        return torch.from_numpy(np.array(array, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(array))  # a writable copy


def _layer_params(fn: str, state: Mapping, prefix: str, tag: str, input_dim: int | None) -> AnyParams:
    """One layer and direction: ``tag`` is e.g. ``"_l1_reverse"`` (or ``""`` for an LSTMCell)."""
    parts = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    names = {part: f"{prefix}{part}{tag}" for part in parts}
    if names["weight_hh"] not in state:
        raise ValueError(f"{fn}: state dict has {names['weight_ih']!r} but no {names['weight_hh']!r}")
    w_ih = _to_jax(fn, names["weight_ih"], state[names["weight_ih"]])
    w_hh = _to_jax(fn, names["weight_hh"], state[names["weight_hh"]])
    w_hr = None
    if names["weight_hr"] in state:  # proj_size > 0
        w_hr = _to_jax(fn, names["weight_hr"], state[names["weight_hr"]])
        if w_hr.ndim != 2 or not 0 < w_hr.shape[0] < w_hr.shape[1]:
            raise ValueError(
                f"{fn}: {names['weight_hr']} must have shape (proj_size, hidden_size) with proj_size < "
                f"hidden_size, got {tuple(w_hr.shape)}"
            )
        proj, hidden = w_hr.shape
        if tuple(w_hh.shape) != (4 * hidden, proj):
            raise ValueError(
                f"{fn}: {names['weight_hh']} must have shape (4 * hidden_size, proj_size) = "
                f"({4 * hidden}, {proj}), got {tuple(w_hh.shape)}"
            )
    elif w_hh.ndim != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        gates = ""
        if w_hh.ndim == 2 and w_hh.shape[1]:
            gates = f" ({w_hh.shape[0] // w_hh.shape[1]} gates: not an LSTM?)"
        raise ValueError(
            f"{fn}: {names['weight_hh']} must have shape (4 * hidden_size, hidden_size), "
            f"got {tuple(w_hh.shape)}{gates}"
        )
    else:
        hidden = w_hh.shape[1]
    if input_dim is None:
        fits = w_ih.ndim == 2 and w_ih.shape[0] == 4 * hidden
        expected = f"(4 * hidden_size, input_size) = ({4 * hidden}, input_size)"
    else:
        fits = tuple(w_ih.shape) == (4 * hidden, input_dim)
        expected = f"(4 * hidden_size, the previous layer's output size) = ({4 * hidden}, {input_dim})"
    if not fits:
        raise ValueError(f"{fn}: {names['weight_ih']} must have shape {expected}, got {tuple(w_ih.shape)}")
    has_ih, has_hh = names["bias_ih"] in state, names["bias_hh"] in state
    if has_ih != has_hh:
        raise ValueError(f"{fn}: state dict has only one of {names['bias_ih']!r} and {names['bias_hh']!r}")
    if has_ih:
        b_ih = _to_jax(fn, names["bias_ih"], state[names["bias_ih"]])
        b_hh = _to_jax(fn, names["bias_hh"], state[names["bias_hh"]])
        for name, b in ((names["bias_ih"], b_ih), (names["bias_hh"], b_hh)):
            if tuple(b.shape) != (4 * hidden,):
                raise ValueError(
                    f"{fn}: {name} must have shape (4 * hidden_size,) = ({4 * hidden},), got {tuple(b.shape)}"
                )
        # b_ih + 0.0 equals b_ih except that -0.0 becomes +0.0; keeping b_ih where b_hh is zero makes the
        # round trip through to_torch (which writes bias_hh = 0) exact to the bit.
        bias = jnp.where(b_hh == 0, b_ih, b_ih + b_hh)
    else:
        bias = jnp.zeros((4 * hidden,), w_ih.dtype)
    if w_hr is not None:
        return LSTMPParams(w_ih.T, w_hh.T, bias, w_hr.T)
    return LSTMParams(w_ih.T, w_hh.T, bias)


def _from_state_dict(fn: str, state: Mapping, prefix: str | None) -> list[AnyParams]:
    matches = [m for m in map(_KEY.match, map(str, state)) if m]
    prefixes = sorted({m["prefix"] for m in matches if m["layer"] == "0" and not m["suffix"]})
    if prefix is None:
        if len(prefixes) != 1:
            found = f"got {list(state)[:8]}"
            if prefixes:
                found = f"found several: prefixes {prefixes}; pass prefix=..."
            raise ValueError(
                f"{fn}: module_or_state_dict: expected the state dict of one torch.nn.LSTM "
                f"(keys weight_ih_l0, weight_hh_l0, ...), {found}"
            )
        prefix = prefixes[0]
    elif prefix not in prefixes:
        raise ValueError(
            f"{fn}: prefix {prefix!r} names no key {prefix + 'weight_ih_l0'!r} in the state dict "
            f"(prefixes found: {prefixes})"
        )
    ours = [m for m in matches if m["prefix"] == prefix]
    projected = any(str(key).startswith(prefix + "weight_hr_l") for key in state)
    num_layers = 1 + max(int(m["layer"]) for m in ours)
    bidirectional = any(m["suffix"] for m in ours)
    directions = ("", "_reverse") if bidirectional else ("",)
    out: list[AnyParams] = []
    for layer in range(num_layers):
        for suffix in directions:
            tag = f"_l{layer}{suffix}"
            if prefix + "weight_ih" + tag not in state:
                raise ValueError(
                    f"{fn}: state dict has no {prefix + 'weight_ih' + tag!r} (layers 0..{num_layers - 1})"
                )
            if projected and prefix + "weight_hr" + tag not in state:
                raise ValueError(
                    f"{fn}: state dict has {prefix}weight_hr_l* keys (proj_size > 0) but no "
                    f"{prefix + 'weight_hr' + tag!r}"
                )
            input_dim = None if layer == 0 else output_dim(out[-1]) * len(directions)
            out.append(_layer_params(fn, state, prefix, tag, input_dim))
    return out


@overload
def from_torch(
    module_or_state_dict: Any, *, prefix: str | None = None, as_list: Literal[True] = True
) -> list[AnyParams]: ...


@overload
def from_torch(module_or_state_dict: Any, *, prefix: str | None = None, as_list: Literal[False]) -> AnyParams: ...


def from_torch(
    module_or_state_dict: Any, *, prefix: str | None = None, as_list: bool = True
) -> list[AnyParams] | AnyParams:
    r"""Converts a PyTorch LSTM's weights to one [`LSTMParams`][jlstm.LSTMParams] per layer and direction.

    For each layer ``l`` and direction (``_reverse`` is the backward one):

    ```text
    kernel            = W_ih^T
    recurrent_kernel  = W_hh^T
    bias              = b_ih + b_hh
    projection_kernel = W_hr^T     (proj_size > 0: an LSTMPParams)
    ```

    PyTorch's gate order (i, f, g, o) is Keras's and jlstm's (i, f, c, o), so no reordering is needed.
    ``bias=False`` gives a zero bias. The arrays keep torch's dtype.

    Warning:
      PyTorch adds two biases where Keras and jlstm have one; their sum is the same model, but
      [`to_torch`][jlstm.to_torch] cannot recover the split (it writes the whole bias into ``bias_ih``).
      ``batch_first`` does not change the weights: with ``batch_first=False`` call [`lstm`][jlstm.lstm]
      with ``time_major=True``. PyTorch's backward direction returns its outputs in input time order
      (as ``keras.layers.Bidirectional`` does), unlike ``lstm(..., go_backwards=True)``.

    Args:
      module_or_state_dict: a ``torch.nn.LSTM`` (any ``num_layers``, ``bidirectional``,
        ``batch_first``), a ``torch.nn.LSTMCell``, or a state dict of either (keys may carry a
        prefix such as ``"encoder.lstm."``).
      prefix: which LSTM to read when a state dict holds several (e.g. ``"encoder.lstm."``).
      as_list: True (the default): always a list. False: the bare params of a module with one layer
        and one direction (an ``LSTMCell``, or an ``LSTM`` with ``num_layers=1`` and
        ``bidirectional=False``), which [`lstm`][jlstm.lstm] and [`lstm_cell`][jlstm.lstm_cell] take
        as they are, as [`from_keras`][jlstm.from_keras] gives them for one layer; a ``ValueError``
        for more.

    Returns:
      A list ``[l0_forward, l0_backward, l1_forward, ...]`` (no backward entries unless
        bidirectional), which [`stacked_lstm`][jlstm.stacked_lstm] takes; a single entry for an
        ``LSTMCell``. With ``as_list=False``, that single entry itself.

    Raises:
      ValueError: inconsistent shapes (a GRU's state dict has 3 gates), missing keys, or ``as_list=False``
        for several layers or directions.
      TypeError: a GRU, RNN or any other module, a state dict entry that is not a tensor, a ``prefix``
        that is not a string.

    Examples:
      >>> import jax, torch, jlstm
      >>> module = torch.nn.LSTM(input_size=3, hidden_size=2, num_layers=2, bidirectional=True)
      >>> params = jlstm.from_torch(module)
      >>> [p.kernel.shape for p in params]
      [(3, 8), (3, 8), (4, 8), (4, 8)]
      >>> cell = jlstm.from_torch(torch.nn.LSTMCell(3, 2), as_list=False)  # an LSTMParams, not a list
      >>> jlstm.lstm(cell, jax.numpy.ones((1, 5, 3))).shape
      (1, 2)
    """
    fn = "from_torch"
    as_list = _validate.flag(fn, "as_list", as_list)
    params = _from_torch(fn, module_or_state_dict, prefix)
    if as_list:
        return params
    if len(params) != 1:
        raise ValueError(
            f"{fn}: as_list=False gives the params of one layer and one direction (an LSTMCell, or an LSTM with "
            f"num_layers=1 and bidirectional=False), got {len(params)} (layers x directions); take the list "
            "(as_list=True) for stacked_lstm, or one entry of it"
        )
    return params[0]


def _from_torch(fn: str, module_or_state_dict: Any, prefix: str | None) -> list[AnyParams]:
    import torch

    if prefix is not None and not isinstance(prefix, str):
        raise TypeError(
            f"{fn}: prefix must be a string such as 'encoder.lstm.' or None, got {type(prefix).__name__}"
        )
    if isinstance(module_or_state_dict, torch.nn.Module):
        module = module_or_state_dict
        if type(module) is torch.nn.LSTMCell:
            return [_layer_params(fn, module.state_dict(), "", "", None)]
        _check_module(fn, "module_or_state_dict", module)
        return _from_state_dict(fn, module.state_dict(), "")
    if isinstance(module_or_state_dict, Mapping):
        state = module_or_state_dict
        cell = prefix or ""
        if cell + "weight_ih" in state and cell + "weight_ih_l0" not in state:  # an LSTMCell's
            return [_layer_params(fn, state, cell, "", None)]
        return _from_state_dict(fn, state, prefix)
    raise TypeError(
        f"{fn}: module_or_state_dict: expected a torch.nn.LSTM, a torch.nn.LSTMCell or a state dict, "
        f"got {type(module_or_state_dict).__name__}"
    )


def _check_module(fn: str, name: str, module: Any) -> "torch.nn.LSTM":
    """``module``, if it is a ``torch.nn.LSTM``; raises otherwise."""
    import torch

    if type(module) is not torch.nn.LSTM:
        raise TypeError(
            f"{fn}: {name}: expected a torch.nn.LSTM or torch.nn.LSTMCell, got {type(module).__name__}"
        )
    return module


def to_torch(params_list: AnyParams | Sequence[AnyParams], module: Any) -> Any:
    r"""Loads jlstm weights into a ``torch.nn.LSTM`` or ``LSTMCell``, in place.

    The inverse of [`from_torch`][jlstm.from_torch]: ``weight_ih = kernel.T``,
    ``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``, ``bias_hh = 0`` (and ``weight_hr =
    projection_kernel.T`` with ``proj_size``), for each layer and
    direction in [`from_torch`][jlstm.from_torch]'s order ``[l0_forward, l0_backward, l1_forward, ...]``.
    Values are cast to the module's dtype.

    Warning:
      PyTorch's two biases are not recovered: the whole bias goes into ``bias_ih`` and ``bias_hh``
      is zeroed. The module computes the same function, and with equal dtypes
      ``from_torch(to_torch(p, module)) == p`` bit for bit; but ``module.state_dict()`` differs from
      the one the weights may originally have come from.

    Args:
      params_list: one [`LSTMParams`][jlstm.LSTMParams] per layer and direction (a bare
        [`LSTMParams`][jlstm.LSTMParams] is taken as a one-element list).
      module: a ``torch.nn.LSTM`` (with ``proj_size > 0``, the entries are
        [`LSTMPParams`][jlstm.LSTMPParams]), or a ``torch.nn.LSTMCell``.

    Returns:
      ``module``, with its parameters overwritten.

    Raises:
      ValueError: the wrong number of entries, a shape that does not fit the module (the message gives
        the expected and the received shape), a non-zero bias for ``bias=False``, or entries with a
        projection for a module without one (or the other way round).
      TypeError: not an LSTM module, or entries that are not [`LSTMParams`][jlstm.LSTMParams].

    Examples:
      >>> import jax, torch, jlstm
      >>> params = [jlstm.init_params(jax.random.key(0), input_dim=3, units=2)]
      >>> module = jlstm.to_torch(params, torch.nn.LSTM(3, 2))
      >>> all(bool((a == b).all()) for a, b in zip(jlstm.from_torch(module)[0], params[0]))
      True
    """
    import torch

    fn = "to_torch"
    if isinstance(params_list, (LSTMParams, LSTMPParams)):
        params_list = [params_list]
    if not isinstance(params_list, Sequence) or isinstance(params_list, str):
        raise TypeError(f"{fn}: params_list must be a list of LSTMParams, got {type(params_list).__name__}")
    if type(module) is torch.nn.LSTMCell:
        slots = [("", module.input_size)]
        hidden, has_bias, proj = module.hidden_size, module.bias, 0
    else:
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"{fn}: module must be a torch.nn.LSTM or torch.nn.LSTMCell, got {type(module).__name__}"
            )
        lstm = _check_module(fn, "module", module)
        hidden, has_bias, proj = lstm.hidden_size, lstm.bias, lstm.proj_size
        directions = ("", "_reverse") if lstm.bidirectional else ("",)
        slots = [
            (f"_l{layer}{suffix}", lstm.input_size if layer == 0 else (proj or hidden) * len(directions))
            for layer in range(lstm.num_layers)
            for suffix in directions
        ]
    if len(params_list) != len(slots):
        raise ValueError(
            f"{fn}: params_list: {module} needs {len(slots)} LSTMParams (one per layer and direction: "
            f"{', '.join(tag.lstrip('_') or 'cell' for tag, _ in slots)}), got {len(params_list)}"
        )
    checked = []
    for i, ((tag, input_dim), params) in enumerate(zip(slots, params_list)):
        params = _validate.params(fn, params, f"params_list[{i}]")
        if isinstance(params, LSTMPParams) != (proj > 0):
            raise TypeError(
                f"{fn}: params_list[{i}] must be an "
                + (f"LSTMPParams (the module has proj_size={proj})" if proj else "LSTMParams (the module has no proj_size)")
                + f", got {type(params).__name__}"
            )
        expected = {
            "kernel": ((input_dim, 4 * hidden), "(input_dim, 4 * hidden_size)"),
            "recurrent_kernel": ((proj or hidden, 4 * hidden), "(proj_size or hidden_size, 4 * hidden_size)"),
            "bias": ((4 * hidden,), "(4 * hidden_size,)"),
            "projection_kernel": ((hidden, proj), "(hidden_size, proj_size)"),
        }
        for name, value in zip(type(params)._fields, params):
            shape, formula = expected[name]
            if tuple(value.shape) != shape:
                where = f"weights{tag}" if tag else "the cell"
                raise ValueError(
                    f"{fn}: params_list[{i}].{name} must have shape {formula} = {shape} for {where} of "
                    f"{module}, got {tuple(value.shape)}"
                )
        if not has_bias and bool(jnp.any(params.bias != 0)):
            raise ValueError(f"{fn}: {module} has bias=False, so params_list[{i}].bias must be all zeros")
        checked.append((tag, params))
    with torch.no_grad():
        for tag, params in checked:
            getattr(module, f"weight_ih{tag}").copy_(_to_torch(params.kernel.T))
            getattr(module, f"weight_hh{tag}").copy_(_to_torch(params.recurrent_kernel.T))
            if isinstance(params, LSTMPParams):
                getattr(module, f"weight_hr{tag}").copy_(_to_torch(params.projection_kernel.T))
            if has_bias:
                getattr(module, f"bias_ih{tag}").copy_(_to_torch(params.bias))
                getattr(module, f"bias_hh{tag}").zero_()
    return module
