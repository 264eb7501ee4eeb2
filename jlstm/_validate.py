"""Argument checks that run in Python at call (or trace) time.

One rule everywhere: ``TypeError`` for a value of the wrong type or dtype (a
list where an array is expected, a float where an int is, an integer array
where a floating one is); ``ValueError`` for a value of the right type with the
wrong shape, length or value (a tuple of three arrays where a pair is
expected, ``0`` where a positive int is, an unknown option). Each message names
the function, the argument as spelled in its signature, what was expected and
what was received, so that nothing fails later inside XLA.
"""

from collections.abc import Sequence
from typing import Any, overload

import jax
import jax.numpy as jnp
import numpy as np

from ._params import AnyParams, LSTMParams, LSTMPParams, LSTMState, state_dtype

Dims = Sequence[int | None]  # None where any size is accepted


def _fmt(dims: Dims, names: Sequence[str]) -> str:
    parts = [name if d is None else str(d) for d, name in zip(dims, names)]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def as_array(fn: str, name: str, value: Any) -> jnp.ndarray:
    """``value`` as a jax array; arrays and tracers only, not lists or scalars."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{fn}: {name} must be an array, got {type(value).__name__}")
    return jnp.asarray(value)


def array(
    fn: str,
    name: str,
    value: Any,
    dims: Dims,
    names: Sequence[str] = ("batch", "input_dim"),
    *,
    floating: bool = True,
) -> jnp.ndarray:
    """Checks the rank, the known dims and (optionally) a floating dtype."""
    value = as_array(fn, name, value)
    shape = tuple(value.shape)
    if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
        raise ValueError(
            f"{fn}: {name} must have shape {_fmt(dims, names)}, got {shape}"
            + ("" if len(shape) == len(dims) else f" (rank {len(shape)}, expected rank {len(dims)})")
        )
    if floating and not jnp.issubdtype(value.dtype, jnp.floating):
        raise TypeError(f"{fn}: {name} must have a floating dtype, got {value.dtype}")
    return value


def params(fn: str, value: Any, name: str = "params") -> AnyParams:
    """Checks that the arrays of an LSTMParams (or LSTMPParams) agree on their sizes and share one dtype.

    ``name`` is the argument's name; fields are then reported as ``name.kernel``
    (plain ``kernel`` for the default ``params``).
    """
    expected = (
        f"{fn}: {name} must be an LSTMParams(kernel, recurrent_kernel, bias) "
        "or an LSTMPParams(kernel, recurrent_kernel, bias, projection_kernel)"
    )
    if isinstance(value, list) and value and all(isinstance(v, (LSTMParams, LSTMPParams)) for v in value):
        raise TypeError(
            f"{expected}, got a list of {len(value)} (from_torch returns one per layer and direction): "
            "pass one of them, from_torch(module, as_list=False) for a one-layer module, or the list to stacked_lstm"
        )
    if not isinstance(value, tuple):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    if len(value) not in (3, 4):
        raise ValueError(f"{expected}, got a {type(value).__name__} of length {len(value)}")
    projected = len(value) == 4
    prefix = "" if name == "params" else f"{name}."
    fields = [prefix + n for n in (LSTMPParams if projected else LSTMParams)._fields]
    values = [as_array(fn, n, v) for n, v in zip(fields, value)]
    kernel, recurrent_kernel, bias = values[:3]
    if projected:
        projection_kernel = values[3]
        if projection_kernel.ndim != 2 or not 0 < projection_kernel.shape[1] < projection_kernel.shape[0]:
            raise ValueError(
                f"{fn}: {fields[3]} must have shape (units, proj_size) with 0 < proj_size < units, "
                f"got {tuple(projection_kernel.shape)}"
            )
        units, rows = projection_kernel.shape
        array(fn, fields[1], recurrent_kernel, (rows, 4 * units), ("proj_size", "4 * units"))
    else:
        if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[1] != 4 * recurrent_kernel.shape[0]:
            raise ValueError(
                f"{fn}: {fields[1]} must have shape (units, 4 * units), "
                f"got {tuple(recurrent_kernel.shape)}"
            )
        units = recurrent_kernel.shape[0]
    array(fn, fields[0], kernel, (None, 4 * units), ("input_dim", "4 * units"))
    array(fn, fields[2], bias, (4 * units,), ("4 * units",))
    dtypes = {n: v.dtype for n, v in zip(fields, values)}
    if len(set(dtypes.values())) != 1 or not jnp.issubdtype(kernel.dtype, jnp.floating):
        listed = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(
            f"{fn}: {', '.join(fields[:-1])} and {fields[-1]} must share one floating dtype, got {listed}"
        )
    return LSTMPParams(*values) if projected else LSTMParams(*values)


def arrays(
    fn: str, name: str, value: Any, labels: Sequence[str], specs: Sequence[tuple[Dims, Sequence[str]]], expected: str
) -> list[jnp.ndarray]:
    """A tuple or list of ``len(labels)`` floating arrays, item ``i`` with shape ``specs[i]`` ``(dims, names)``.

    ``expected`` completes "``name`` must be ...", for the messages. Item
    ``i`` is reported as ``name[i] (labels[i])``; when the items' shapes
    differ (a projected LSTM's ``h`` and ``c``), a wrong shape's message
    gives every expected shape.
    """
    whole = f"{fn}: {name} must be {expected}"
    if not isinstance(value, (tuple, list)):
        got = f"one array of shape {tuple(value.shape)}" if hasattr(value, "shape") else type(value).__name__
        raise TypeError(f"{whole}, got {got}")
    if len(value) != len(labels):
        raise ValueError(f"{whole}, got a {type(value).__name__} of length {len(value)}")
    checked = []
    for i, (label, v, (dims, names)) in enumerate(zip(labels, value, specs)):
        try:
            checked.append(array(fn, f"{name}[{i}] ({label})", v, dims, names))
        except ValueError as error:
            if len({tuple(d) for d, _ in specs}) == 1:
                raise
            shapes = ", ".join(f"{label} {_fmt(d, n)}" for label, (d, n) in zip(labels, specs))
            raise ValueError(f"{error}; {name} must be {expected}: {shapes}") from None
    return checked


def hidden_spec(batch: int, p: AnyParams, *lead: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The shape of ``h`` and its names: ``(*lead, batch, units)``, or ``(*lead, batch, proj_size)`` when projected."""
    names = ("num_layers * num_directions",)[: len(lead)] + ("batch",)
    if isinstance(p, LSTMPParams):
        return (*lead, batch, p.proj_size), (*names, "proj_size")
    return (*lead, batch, p.units), (*names, "units")


def state(fn: str, name: str, value: Any, batch: int, p: AnyParams) -> LSTMState:
    """Checks an ``(h, c)`` pair of ``(batch, units)`` arrays (``h`` ``(batch, proj_size)`` when projected).

    Casts them to the state dtype.
    """
    cell = ((batch, p.units), ("batch", "units"))
    if isinstance(p, LSTMPParams):
        expected = "a pair (h, c) of (batch, proj_size) and (batch, units) arrays"
    else:
        expected = "a pair (h, c) of (batch, units) arrays"
    h, c = arrays(fn, name, value, ("h", "c"), [hidden_spec(batch, p), cell], expected)
    dtype = state_dtype(p.kernel.dtype)
    return LSTMState(h.astype(dtype), c.astype(dtype))


def key(fn: str, value: Any, name: str = "key") -> jnp.ndarray:
    """One ``jax.random`` key: a typed key of shape ``()`` or a legacy ``uint32`` key of shape ``(2,)``."""
    expected = f"{fn}: {name} must be a jax.random key, one such as jax.random.key(0)"
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    typed = jnp.issubdtype(value.dtype, jax.dtypes.prng_key)
    if not typed and value.dtype != np.uint32:
        raise TypeError(f"{expected}, got an array of dtype {value.dtype}")
    if value.ndim != (0 if typed else 1):
        raise ValueError(f"{expected}, got an array of shape {tuple(value.shape)} (several keys)")
    return value


def floating_dtype(fn: str, name: str, value: Any, *, or_none: bool = False) -> np.dtype | None:
    """A floating dtype, given as a dtype, a scalar type or its name (``jnp.float32``, ``"bfloat16"``)."""
    if or_none and value is None:
        return None
    expected = f"{fn}: {name} must be a floating dtype" + (" or None" if or_none else "")
    try:
        dtype = jnp.dtype(value)
    except TypeError:
        raise TypeError(f"{expected}, got {value!r:.60}") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{expected}, got {repr(value) if isinstance(value, str) else dtype}")
    return dtype


def mask(fn: str, value: Any, shape: tuple[int, ...], time_major: bool) -> jnp.ndarray:
    """A boolean mask of the inputs' (batch, time) or (time, batch) layout."""
    value = as_array(fn, "mask", value)
    names = ("time", "batch") if time_major else ("batch", "time")
    if tuple(value.shape) != shape:
        raise ValueError(f"{fn}: mask must have shape {_fmt(shape, names)} {_fmt((None, None), names)}, got {tuple(value.shape)}")
    if value.dtype == jnp.bool_:
        return value
    if not (jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating)):
        raise TypeError(f"{fn}: mask must be boolean or 0/1 numbers, got dtype {value.dtype}")
    return value != 0


def reset(fn: str, value: Any, shape: tuple[int, ...], names: tuple[str, ...]) -> jnp.ndarray:
    """A boolean ``reset``: ``(batch, time)`` or ``(time, batch)`` for a sequence, ``(batch,)`` for one step."""
    value = as_array(fn, "reset", value)
    if value.dtype != jnp.bool_:
        raise TypeError(f"{fn}: reset must be a boolean array of shape {_fmt(shape, names)} "
                        f"{_fmt((None,) * len(shape), names)}, got dtype {value.dtype}")
    if tuple(value.shape) != shape:
        raise ValueError(f"{fn}: reset must have shape {_fmt(shape, names)} {_fmt((None,) * len(shape), names)}, "
                         f"got {tuple(value.shape)}")
    return value


def unroll(fn: str, value: Any) -> int | bool:
    """``lax.scan``'s ``unroll``: a bool, or a positive Python or NumPy integer."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: unroll must be a positive int or a bool, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{fn}: unroll must be a positive int or a bool, got {value!r}")
    return int(value)


def positive_int(fn: str, name: str, value: Any, *, or_none: bool = False) -> int:
    """A positive Python or NumPy integer, never a bool."""
    expected = "a positive int or None" if or_none else "a positive int"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be {expected}, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{fn}: {name} must be {expected}, got {value!r}")
    return int(value)


def optional_positive_int(fn: str, name: str, value: Any) -> int | None:
    return None if value is None else positive_int(fn, name, value, or_none=True)


def flag(fn: str, name: str, value: Any) -> bool:
    """A static Python flag: a bool (or 0/1), never an array, which could be traced."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"{fn}: {name} must be a Python bool (a static flag) or 0/1, got {value!r}")
    raise TypeError(f"{fn}: {name} must be a Python bool (a static flag), got {value!r:.60}")


@overload
def choice(fn: str, name: str, value: Any, options: Sequence[str]) -> str: ...
@overload
def choice(fn: str, name: str, value: Any, options: Sequence[str | None]) -> str | None: ...
def choice(fn: str, name: str, value: Any, options: Sequence[str | None]) -> str | None:
    """One of ``options`` (strings, and None where None is one of them)."""
    names = [repr(o) for o in options]
    expected = f"{fn}: {name} must be one of {', '.join(names[:-1])} or {names[-1]}"
    if not (isinstance(value, str) or (value is None and None in options)):
        raise TypeError(f"{expected}, got {value!r:.60} ({type(value).__name__})")
    if value not in options:
        raise ValueError(f"{expected}, got {value!r:.60}")
    return value


PRECISIONS = ("default", "high", "highest", "bfloat16", "tensorfloat32", "float32")


def precision(fn: str, value: Any) -> jax.lax.Precision | None:
    """A matmul precision: None (JAX's default), a ``jax.lax.Precision``, or one of :data:`PRECISIONS`."""
    if value is None or isinstance(value, jax.lax.Precision):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{fn}: precision must be None, a jax.lax.Precision or one of {PRECISIONS}, "
                        f"got {type(value).__name__}")
    if value not in PRECISIONS:
        raise ValueError(f"{fn}: precision must be None, a jax.lax.Precision or one of {PRECISIONS}, got {value!r}")
    return jax.lax.Precision(value)


def function(fn: str, name: str, value: Any) -> Any:
    """An activation: any callable on arrays, such as ``jnp.tanh`` (Keras's string names are not accepted)."""
    if not callable(value):
        raise TypeError(f"{fn}: {name} must be a callable such as jnp.tanh, got {value!r:.60}")
    return value


def init_arguments(fn: str, random_key: jax.Array, input_dim: int, units: int, dtype, unit_forget_bias: bool):
    """Checks :func:`init_params`' arguments for ``fn``; returns ``(input_dim, units, unit_forget_bias)``."""
    key(fn, random_key)
    input_dim = positive_int(fn, "input_dim", input_dim)
    units = positive_int(fn, "units", units)
    floating_dtype(fn, "dtype", dtype)
    return input_dim, units, flag(fn, "unit_forget_bias", unit_forget_bias)


def projection_size(fn: str, proj_size: object, units: int) -> int | None:
    """``proj_size``: None, or an int ``P`` with ``0 < P < units`` (PyTorch's rule), else a ``ValueError``."""
    if proj_size is None:
        return None
    if isinstance(proj_size, (bool, np.bool_)) or not isinstance(proj_size, (int, np.integer)):
        raise ValueError(  # noqa: TRY004 - PyTorch's rule for proj_size: a ValueError for any wrong value
f"{fn}: proj_size must be None or an int with 0 < proj_size < units, got {proj_size!r:.60}")
    if not 0 < proj_size < units:
        raise ValueError(
            f"{fn}: proj_size must be None or an int with 0 < proj_size < units ({units}), got {proj_size}"
        )
    return int(proj_size)
