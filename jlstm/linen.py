"""flax.linen modules over [`jlstm.lstm`][] and [`jlstm.bidirectional`][] (``pip install jlstm[flax]``).

The modules only declare parameters and draw the dropout key; the computation is
the pure function, so a linen module and the pure call with the same parameters
give the same numbers.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from . import _options, _validate
from ._bidirectional import bidirectional
from ._flax_init import check_config, half_safe, in_dtype, input_features, keras_bias, torch_projection
from ._layer import lstm
from ._params import AnyParams, LSTMParams, LSTMPParams
from ._plan import Plan

Initializer = Callable[..., jax.Array]


class _Config(nn.Module):
    """Fields shared by the modules below."""

    units: int
    return_sequences: bool = False
    return_state: bool = False
    time_major: bool = False
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh
    recurrent_activation: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid
    unroll: int | bool = 1
    remat_chunk: int | None = None
    recurrence: str | Plan = "auto"
    precision: str | jax.lax.Precision | None = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    unit_forget_bias: bool = True
    param_dtype: Any = jnp.float32
    dtype: Any = None
    kernel_init: Initializer = jax.nn.initializers.glorot_uniform()
    recurrent_kernel_init: Initializer = jax.nn.initializers.orthogonal()
    proj_size: int | None = None

    def _input_dim(self, inputs: Any) -> int:
        """Checks the module's own options and ``inputs``; the input features."""
        cls = type(self).__name__
        check_config(
            cls,
            units=self.units,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            param_dtype=self.param_dtype,
            proj_size=self.proj_size,
        )
        return input_features(cls, inputs)

    def _call_options(self, deterministic: bool) -> dict[str, Any]:
        """The keyword arguments of the pure function: the options, ``training`` and the dropout ``key``."""
        deterministic = _validate.flag(type(self).__name__, "deterministic", deterministic)
        training = not deterministic and (self.dropout > 0 or self.recurrent_dropout > 0)
        key = self.make_rng("dropout") if training else None
        return dict(_options.attributes(self), training=training, key=key)


def _declare(module: Any, input_dim: int) -> AnyParams:
    """Declares ``kernel``, ``recurrent_kernel``, ``bias`` (and ``projection_kernel``) in ``module``'s scope.

    From the module's init fields; ``projection_kernel`` only with ``proj_size``.
    """
    units, dtype = module.units, module.param_dtype
    proj_size = module.proj_size  # checked by the calling module's _input_dim
    rows = units if proj_size is None else proj_size
    params = LSTMParams(
        module.param("kernel", half_safe(module.kernel_init), (input_dim, 4 * units), dtype),
        module.param("recurrent_kernel", half_safe(module.recurrent_kernel_init), (rows, 4 * units), dtype),
        module.param("bias", keras_bias(units, module.unit_forget_bias), (4 * units,), dtype),
    )
    if proj_size is None:
        return params
    projection = module.param("projection_kernel", half_safe(torch_projection(units)), (units, proj_size), dtype)
    return LSTMPParams(*params, projection_kernel=projection)


class LSTM(_Config):
    """``keras.layers.LSTM`` as a ``flax.linen`` module: [`jlstm.lstm`][] with declared parameters.

    Parameters (created at ``init`` from the last axis of the inputs):
    ``kernel`` ``(input_dim, 4 * units)``, ``recurrent_kernel``
    ``(units, 4 * units)``, ``bias`` ``(4 * units,)``, with Keras's
    initialisers as in [`jlstm.init_params`][] (Glorot uniform, orthogonal,
    zeros with the forget gate at 1). ``LSTMParams(**variables["params"])`` is
    the pure function's argument, and [`variables_from_params`][jlstm.linen.variables_from_params]
    the way back (weights from [`jlstm.from_keras`][] or [`jlstm.from_torch`][] into the module).

    ``__call__(inputs, initial_state=None, mask=None, *, reset=None, deterministic=True)``
    returns what [`jlstm.lstm`][] returns for the module's flags. Dropout is
    applied only with ``deterministic=False``; its key comes from the
    ``"dropout"`` rng stream (``apply(..., rngs={"dropout": key})``).

    Warning:
      flax's own ``nn.RNN(nn.LSTMCell(...))`` keeps the carry as ``(c, h)``, has
      separate per-gate ``Dense`` parameters and no ``go_backwards``; this module
      keeps Keras's fused layout and ``(h, c)`` order.

    The options ``return_sequences``, ``return_state``, ``go_backwards``, ``time_major``,
    ``activation``, ``recurrent_activation``, ``unroll``, ``remat_chunk``, ``recurrence``, ``precision``,
    ``dropout`` and ``recurrent_dropout`` are attributes with the meaning and the default they have in
    [`jlstm.lstm`][].

    Attributes:
      units: hidden units.
      unit_forget_bias: start the forget gate's bias at 1.
      param_dtype: dtype of the parameters; the state and outputs follow [`jlstm.lstm`][]'s dtype policy
        (float32 for 16-bit parameters).
      dtype: the dtype the matmuls read the parameters and the inputs in
        (flax's computation dtype); None (the default): the parameters' own.
        ``dtype=jnp.bfloat16`` with float32 parameters is mixed precision, as
        Keras's ``"mixed_bfloat16"`` policy: float32 parameters and gradients,
        bfloat16 matmul operands, and by [`jlstm.lstm`][]'s dtype policy a
        float32 state, sums and outputs.
      kernel_init: initialiser of ``kernel``, ``(key, shape, dtype) -> array``.
      recurrent_kernel_init: initialiser of ``recurrent_kernel``, ``(key, shape, dtype) -> array``.
      proj_size: a projected LSTM (PyTorch's ``proj_size``): an int ``0 < proj_size < units``
        adds a parameter ``projection_kernel`` ``(units, proj_size)`` (PyTorch's initialiser,
        uniform in ``±1/sqrt(units)``), and the output and ``h`` are ``proj_size`` wide.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm, jlstm.linen
      >>> model = jlstm.linen.LSTM(4, return_sequences=True, dropout=0.2)
      >>> x = jnp.ones((2, 5, 3))
      >>> variables = model.init(jax.random.key(0), x)
      >>> jax.tree.map(jnp.shape, variables["params"])
      {'bias': (16,), 'kernel': (3, 16), 'recurrent_kernel': (4, 16)}
      >>> model.apply(variables, x).shape
      (2, 5, 4)
      >>> y = model.apply(variables, x, deterministic=False, rngs={"dropout": jax.random.key(1)})
      >>> bool(jnp.allclose(model.apply(variables, x), jlstm.lstm(jlstm.LSTMParams(**variables["params"]), x,
      ...                                                         return_sequences=True)))
      True
    """

    go_backwards: bool = False

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array | np.ndarray,
        initial_state: tuple[jax.Array, jax.Array] | None = None,
        mask: jax.Array | None = None,
        *,
        reset: jax.Array | None = None,
        deterministic: bool = True,
    ) -> Any:
        params = in_dtype("LSTM", _declare(self, self._input_dim(inputs)), self.dtype)
        return lstm(
            params, inputs, initial_state=initial_state, mask=mask, reset=reset, **self._call_options(deterministic)
        )


def variables_from_params(params: AnyParams | tuple[AnyParams, AnyParams]) -> dict[str, Any]:
    """The ``variables`` of an [`LSTM`][jlstm.linen.LSTM] or a [`Bidirectional`][jlstm.linen.Bidirectional] holding ``params``.

    The inverse of ``LSTMParams(**variables["params"])``: weights from
    [`jlstm.from_keras`][], [`jlstm.from_torch`][] or any other go into a
    linen module's ``apply``. An [`LSTMParams`][jlstm.LSTMParams] (or
    [`LSTMPParams`][jlstm.LSTMPParams]) gives ``{"params": {"kernel": ...,
    "recurrent_kernel": ..., "bias": ...}}`` for an ``LSTM``; a pair
    ``(forward, backward)`` gives ``{"params": {"forward": {...},
    "backward": {...}}}`` for a ``Bidirectional``. The module's ``units``
    (and ``proj_size``) must be the weights' sizes; flax checks the shapes
    when it applies them.

    Args:
      params: an ``LSTMParams`` / ``LSTMPParams``, or a pair of them.

    Returns:
      A dict for ``module.apply(variables, inputs)``; the arrays as they are.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm, jlstm.linen
      >>> params = jlstm.init_params(jax.random.key(0), input_dim=3, units=4)
      >>> variables = jlstm.linen.variables_from_params(params)
      >>> x = jnp.ones((2, 5, 3))
      >>> bool((jlstm.linen.LSTM(4).apply(variables, x) == jlstm.lstm(params, x)).all())
      True
    """
    fn = "variables_from_params"
    if isinstance(params, (LSTMParams, LSTMPParams)):
        return {"params": _as_dict(_validate.params(fn, params))}
    if isinstance(params, (tuple, list)) and len(params) == 2:
        forward, backward = (_as_dict(_validate.params(fn, p, f"params[{i}]")) for i, p in enumerate(params))
        return {"params": {"forward": forward, "backward": backward}}
    raise TypeError(
        f"{fn}: params must be an LSTMParams (for LSTM) or a pair (forward, backward) of them (for "
        f"Bidirectional), got {type(params).__name__}"
    )


def _as_dict(params: AnyParams) -> dict[str, jax.Array]:
    return {name: jnp.asarray(value) for name, value in zip(params._fields, params)}


class _Weights(nn.Module):
    """Only the parameters of one direction, as a submodule of :class:`Bidirectional`."""

    units: int
    unit_forget_bias: bool
    param_dtype: Any
    kernel_init: Initializer
    recurrent_kernel_init: Initializer
    proj_size: int | None

    @nn.compact
    def __call__(self, input_dim: int) -> AnyParams:
        return _declare(self, input_dim)


class Bidirectional(_Config):
    """Keras's ``Bidirectional(LSTM(units))`` as a ``flax.linen`` module over [`jlstm.bidirectional`][].

    Parameters: ``{"forward": {kernel, recurrent_kernel, bias}, "backward":
    {...}}``, each as in [`LSTM`][jlstm.linen.LSTM]. ``__call__(inputs, initial_state=None,
    mask=None, *, reset=None, deterministic=True)`` returns what [`jlstm.bidirectional`][]
    returns (``initial_state`` is ``(h_fwd, c_fwd, h_bwd, c_bwd)``). Dropout
    draws one key from the ``"dropout"`` stream, split between the directions.

    The attributes other than ``units`` and ``merge_mode`` are those of [`LSTM`][jlstm.linen.LSTM],
    with the same meaning, except ``go_backwards``, which this module does not have.

    Attributes:
      units: hidden units of each direction.
      merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or None.

    Examples:
      >>> import jax, jax.numpy as jnp, jlstm.linen
      >>> model = jlstm.linen.Bidirectional(4, merge_mode="ave", return_sequences=True)
      >>> x = jnp.ones((2, 5, 3))
      >>> variables = model.init(jax.random.key(0), x)
      >>> sorted(variables["params"]), model.apply(variables, x).shape
      (['backward', 'forward'], (2, 5, 4))
    """

    merge_mode: str | None = "concat"

    @nn.compact
    def __call__(
        self,
        inputs: jax.Array | np.ndarray,
        initial_state: tuple[jax.Array, ...] | None = None,
        mask: jax.Array | None = None,
        *,
        reset: jax.Array | None = None,
        deterministic: bool = True,
    ) -> Any:
        input_dim = self._input_dim(inputs)
        init = {
            "units": self.units,
            "unit_forget_bias": self.unit_forget_bias,
            "param_dtype": self.param_dtype,
            "kernel_init": self.kernel_init,
            "recurrent_kernel_init": self.recurrent_kernel_init,
            "proj_size": self.proj_size,
        }
        forward = _Weights(**init, name="forward")(input_dim)
        backward = _Weights(**init, name="backward")(input_dim)
        return bidirectional(
            in_dtype("Bidirectional", forward, self.dtype),
            in_dtype("Bidirectional", backward, self.dtype),
            inputs,
            merge_mode=self.merge_mode,
            initial_state=initial_state,
            mask=mask,
            reset=reset,
            **self._call_options(deterministic),
        )
