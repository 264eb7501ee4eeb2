"""One LSTM step as a pure function."""

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from . import _validate
from ._params import AnyParams, LSTMPParams, LSTMState

Activation = Callable[[jax.Array], jax.Array]
State = TypeVar("State", LSTMState, tuple[jax.Array, jax.Array], list[jax.Array])  # the carry comes back as it came


def lstm_cell(
    params: AnyParams,
    state: State,
    x: jax.Array,
    *,
    activation: Activation = jnp.tanh,
    recurrent_activation: Activation = jax.nn.sigmoid,
    precision: str | jax.lax.Precision | None = None,
    reset: jax.Array | None = None,
) -> tuple[State, jax.Array]:
    r"""Advances an LSTM by one time step.

    With `σ` the ``recurrent_activation`` and `tanh` the ``activation``, the
    four gate blocks of the fused weights in Keras's order (i, f, c, o), and
    `*` the elementwise product:

    ```text
    z  = x W + h R + b
    i  = σ(z_i),   f = σ(z_f),   o = σ(z_o)
    c' = f * c + i * tanh(z_c)
    h' = o * tanh(c')
    ```

    The signature ``(carry, x) -> (carry, y)`` makes it a ``jax.lax.scan`` body
    once ``params`` is bound.

    Args:
      params: an [`LSTMParams`][jlstm.LSTMParams] with ``kernel`` ``(input_dim, 4 * units)``.
      state: an [`LSTMState`][jlstm.LSTMState], or a ``(h, c)`` tuple or list, each ``(batch, units)``.
      x: the input at this step, ``(batch, input_dim)``, floating.
      activation: applied to the candidate and to the new cell state.
      recurrent_activation: applied to the input, forget and output gates.
      precision: the matmuls' precision, as in [`lstm`][jlstm.lstm].
      reset: ``(batch,)`` bool: the rows that start a new segment at this
        step, from zeros (an episode's first step). Stepping ``lstm_cell``
        along time with ``reset[:, t]`` gives what [`lstm`][jlstm.lstm]``(...,
        reset=reset)`` gives for the whole sequence.

    Dtypes: the step computes in the dtype policy of [`lstm`][jlstm.lstm]
    (operands in the params' dtype, products and gates in the state dtype,
    float32 for 16-bit params), then returns ``h'`` and ``c'`` in the dtypes
    ``state`` came in, so that a ``lax.scan`` carry keeps its type: a
    bfloat16 state stays bfloat16, a float64 one (``jax_enable_x64``) stays
    float64. [`zero_state`][jlstm.zero_state] builds a first state.

    Returns:
      ``(state', h')``: the new state, in the container and dtypes ``state``
        came in (an [`LSTMState`][jlstm.LSTMState], a tuple or a list, so that the
        carry of a ``lax.scan`` keeps its type), and the output, which is ``h'``.

    Raises:
      ValueError: a wrong shape or count: ``x`` or ``state`` not of the
        shapes above, ``params`` that is not three arrays or ``state`` that is
        not two.
      TypeError: a wrong type: a non-array, a non-floating dtype, ``params``
        or ``state`` that is not a tuple, an activation that is not callable.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=3, units=2)
      >>> state = jlstm.zero_state(params, batch=1)
      >>> state, y = jlstm.lstm_cell(params, state, jnp.ones((1, 3)))
      >>> bool((y == state.h).all()), y.shape
      (True, (1, 2))
    """
    params = _validate.params("lstm_cell", params)
    x = _validate.array("lstm_cell", "x", x, (None, params.input_dim))
    h, c = _validate.state("lstm_cell", "state", state, x.shape[0], params)
    carried = tuple(jnp.result_type(v) for v in state)  # the carry goes back in the dtypes it came in
    activation = _validate.function("lstm_cell", "activation", activation)
    recurrent_activation = _validate.function("lstm_cell", "recurrent_activation", recurrent_activation)
    precision = _validate.precision("lstm_cell", precision)
    if reset is not None:
        reset = _validate.reset("lstm_cell", reset, (x.shape[0],), ("batch",))
        h, c = restart(reset, (h, c))
    # x W + b, then h R: the order of the loops in lstm, which project all inputs first.
    x_proj = projection("batch", params.kernel, None, params.bias, h.dtype, precision)(x, None)
    z = x_proj + projection("batch", None, params.recurrent_kernel, None, h.dtype, precision)(None, h)
    h, c, _ = elementwise(activation, recurrent_activation, "batch", z, h, c, None, None, projection_kernel_of(params),
                          precision=precision)
    h, c = h.astype(carried[0]), c.astype(carried[1])
    if isinstance(state, LSTMState):
        return LSTMState(h, c), h
    return ([h, c] if isinstance(state, list) else (h, c)), h


def projection(
    layout: str,
    kernel: jax.Array | None,
    recurrent_kernel: jax.Array | None,
    bias: jax.Array | None,
    dtype,
    precision: jax.lax.Precision | None = None,
) -> Callable[[Any, Any], jax.Array]:
    """The step's matmuls, ``project(x, h) = x W + h R + b``, in ``layout``; a None weight drops its term.

    ``"batch"``: ``x`` ``(..., B, I)`` and ``h`` ``(..., B, H)`` give ``(..., B, 4H)``;
    ``"stacked"``: the same as one matmul, ``[x, h] [W; R] + b`` (see :class:`~jlstm.Plan`);
    ``"features"``: ``x`` ``(..., I, B)`` and ``h`` ``(..., H, B)`` give
    ``W^T x + R^T h + b``, ``(..., 4H, B)``. Leading axes (time) may be present.
    The operands are read in the weights' dtype and the products are summed in ``dtype``, at ``precision``.
    """
    dot = functools.partial(jnp.matmul, preferred_element_type=dtype, precision=precision)
    weights = next(w for w in (kernel, recurrent_kernel) if w is not None).dtype
    features = layout == "features"
    stacked = None
    if layout == "stacked" and kernel is not None and recurrent_kernel is not None:
        stacked = jnp.concatenate([kernel, recurrent_kernel])
    if features:
        kernel = None if kernel is None else kernel.T
        recurrent_kernel = None if recurrent_kernel is None else recurrent_kernel.T

    def project(x, h):
        if stacked is not None:
            terms = [dot(jnp.concatenate([x, h.astype(weights)], axis=-1), stacked)]
        elif features:
            terms = [dot(w, v.astype(weights)) for w, v in ((kernel, x), (recurrent_kernel, h)) if w is not None]
        else:
            terms = [dot(v.astype(weights), w) for v, w in ((x, kernel), (h, recurrent_kernel)) if w is not None]
        if bias is not None:
            shape = (1,) * (terms[0].ndim - 2) + ((-1, 1) if features else (1, -1))
            terms.append(bias.astype(dtype).reshape(shape))
        return functools.reduce(jnp.add, terms)

    return project


def gates(
    z: jax.Array, c: jax.Array, activation: Activation, recurrent_activation: Activation, axis: int = -1
) -> tuple[jax.Array, jax.Array]:
    """The step after its matmuls: ``z`` (batch, 4 * units) is ``x W + h R + b``; returns ``(h', c')``.

    ``axis`` is the features' axis: -1, or 0 for ``(4 * units, batch)`` and a ``(units, batch)`` state.
    """
    i, f, g, o = jnp.split(z, 4, axis=axis)
    c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
    h = recurrent_activation(o) * activation(c)
    return h, c


def masked(m: jax.Array, new: Sequence[jax.Array], old: Sequence[jax.Array], axis: int = -1) -> tuple:
    """Keras's mask rule for one step: each row whose mask ``m`` ``(B,)`` is False keeps its ``old`` values.

    ``new`` and ``old`` are matching arrays with the batch on the axis other
    than ``axis`` (the features' axis, as in :func:`gates`).
    """
    keep = m[:, None] if axis == -1 else m[None, :]
    return tuple(jnp.where(keep, n, o) for n, o in zip(new, old))


def restart(r: jax.Array, arrays: Sequence[jax.Array | None], axis: int = -1) -> tuple:
    """The start of a new segment: each row whose reset ``r`` ``(B,)`` is True has its ``arrays`` set to zeros.

    ``arrays`` are the state ``(h, c)`` and, with a mask, the previous output:
    what a sequence with no ``initial_state`` starts from. The batch is on the
    axis other than ``axis`` (the features' axis, as in :func:`gates`); a None
    entry stays None.
    """
    fresh = r[:, None] if axis == -1 else r[None, :]
    return tuple(None if a is None else jnp.where(fresh, jnp.zeros_like(a), a) for a in arrays)


def elementwise(activation, recurrent_activation, layout, z, h, c, y, m, projection_kernel=None, u=None, *,
                precision=None):
    """Everything in a step after the step's matmuls: gates, new state, projection, Keras's mask rule.

    ``z`` ``(B, 4H)`` is ``x W + h R + b``; ``y`` is the previous output and
    ``m`` the step's mask ``(B,)`` (both None without a mask). With layout
    ``"features"`` every array has its features first: ``z`` ``(4H, B)``,
    the state ``(H, B)``. With a ``projection_kernel`` ``(H, P)`` the new
    ``h`` is ``(o * tanh(c)) projection_kernel`` (plus ``u``, which the
    tangent uses to add the projection's own tangent), a matmul at ``precision``. Returns
    ``(h', c', y')``, ``y'`` None without a mask.
    """
    axis = 0 if layout == "features" else -1
    h_new, c_new = gates(z, c, activation, recurrent_activation, axis)
    if projection_kernel is not None:
        h_new = projection(layout, projection_kernel, None, None, c_new.dtype, precision)(h_new, None)
        h_new = h_new if u is None else h_new + u
    if m is None:
        return h_new, c_new, None
    return masked(m, (h_new, c_new, h_new), (h, c, y), axis)


def projection_kernel_of(params: AnyParams) -> jax.Array | None:
    """The projected LSTM's ``(H, P)`` output projection, or None for a plain LSTM."""
    return params.projection_kernel if isinstance(params, LSTMPParams) else None
