"""flax.nnx modules over :func:`jlstm.lstm` and :func:`jlstm.bidirectional` (``pip install jlstm[flax]``).

The modules hold the parameters as ``nnx.Param`` and a dropout rng stream; the
computation is the pure function.
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from flax import nnx

from ._bidirectional import bidirectional
from . import _validate
from ._flax_init import check_config, half_safe, in_dtype, keras_bias
from ._layer import lstm
from ._params import LSTMParams

Initializer = Callable[..., jax.Array]
Rngs = nnx.Rngs | nnx.RngStream | jax.Array


class LSTM(nnx.Module):
    """``keras.layers.LSTM`` as a ``flax.nnx`` module: :func:`jlstm.lstm` over its ``nnx.Param`` s.

    Parameters: ``kernel`` ``(input_dim, 4 * units)``, ``recurrent_kernel``
    ``(units, 4 * units)``, ``bias`` ``(4 * units,)``, drawn from
    ``rngs.params()`` with Keras's initialisers (as :func:`jlstm.init_params`).
    :attr:`params` gives them as an :class:`jlstm.LSTMParams`.

    ``__call__(inputs, initial_state=None, mask=None, *, deterministic=None,
    rngs=None)`` returns what :func:`jlstm.lstm` returns for the module's flags.
    Dropout is applied only when not deterministic: ``deterministic`` at call
    time wins over the attribute, which is True unless set otherwise, by the
    constructor or by ``model.train()`` (``model.eval()`` sets it back). Its key
    comes from ``rngs`` at call time if given, else from the ``"dropout"``
    stream forked at construction (``rngs`` falls back to its ``default``
    stream when it has no ``dropout`` one).

    Args:
      input_dim: input features.
      units: hidden units.
      rngs: an ``nnx.Rngs``.
      return_sequences, return_state, go_backwards, time_major, activation,
        recurrent_activation, unroll, remat_chunk, recurrence, dropout, recurrent_dropout: as in
        :func:`jlstm.lstm`.
      deterministic: the default for ``__call__``; True disables dropout.
      unit_forget_bias: start the forget gate's bias at 1.
      param_dtype: dtype of the parameters; the state and outputs follow :func:`jlstm.lstm`'s dtype policy
        (float32 for 16-bit parameters).
      dtype: flax's computation dtype, as in :class:`jlstm.linen.LSTM`: the
        parameters are cast to it inside the call (None, the default: not
        cast), so float32 parameters with ``dtype=jnp.bfloat16`` is mixed
        precision with float32 gradients.
      kernel_init, recurrent_kernel_init: initialisers ``(key, shape, dtype) -> array``.

    Example:
      >>> import jax.numpy as jnp, jlstm, jlstm.nnx
      >>> from flax import nnx
      >>> model = jlstm.nnx.LSTM(3, 4, rngs=nnx.Rngs(0), return_sequences=True, dropout=0.2)
      >>> x = jnp.ones((2, 5, 3))
      >>> model(x).shape, model.kernel.shape
      ((2, 5, 4), (3, 16))
      >>> model.train()  # dropout on
      >>> bool(jnp.allclose(model(x), jlstm.lstm(model.params, x, return_sequences=True)))
      False
      >>> model.eval()
      >>> bool(jnp.allclose(model(x), jlstm.lstm(model.params, x, return_sequences=True)))
      True
    """

    def __init__(
        self,
        input_dim: int,
        units: int,
        *,
        rngs: nnx.Rngs,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        time_major: bool = False,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        recurrent_activation: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid,
        unroll: int | bool = 1,
        remat_chunk: Optional[int] = None,
        recurrence: str = "auto",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        deterministic: bool = True,
        unit_forget_bias: bool = True,
        param_dtype: Any = jnp.float32,
        dtype: Any = None,
        kernel_init: Initializer = jax.nn.initializers.glorot_uniform(),
        recurrent_kernel_init: Initializer = jax.nn.initializers.orthogonal(),
    ):
        _check("LSTM", input_dim, units, dropout, recurrent_dropout, deterministic, param_dtype)
        self.kernel = nnx.Param(half_safe(kernel_init)(rngs.params(), (input_dim, 4 * units), param_dtype))
        self.recurrent_kernel = nnx.Param(
            half_safe(recurrent_kernel_init)(rngs.params(), (units, 4 * units), param_dtype)
        )
        self.bias = nnx.Param(keras_bias(units, unit_forget_bias)(None, (4 * units,), param_dtype))
        self.dtype = dtype
        self.flags = dict(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            time_major=time_major,
            activation=activation,
            recurrent_activation=recurrent_activation,
            unroll=unroll,
            remat_chunk=remat_chunk,
            recurrence=recurrence,
        )
        _init_dropout(self, rngs, dropout, recurrent_dropout, deterministic)

    @property
    def params(self) -> LSTMParams:
        """The parameters as the pure function takes them."""
        return LSTMParams(self.kernel[...], self.recurrent_kernel[...], self.bias[...])

    def __call__(
        self,
        inputs: jax.Array,
        initial_state: Optional[tuple[jax.Array, jax.Array]] = None,
        mask: Optional[jax.Array] = None,
        *,
        deterministic: Optional[bool] = None,
        rngs: Optional[Rngs] = None,
    ) -> Any:
        return lstm(
            in_dtype("LSTM", self.params, self.dtype),
            inputs,
            initial_state=initial_state,
            mask=mask,
            **self.flags,
            **_dropout_kwargs(self, deterministic, rngs),
        )


class Bidirectional(nnx.Module):
    """Keras's ``Bidirectional(LSTM(units))`` as a ``flax.nnx`` module over :func:`jlstm.bidirectional`.

    Holds two :class:`LSTM` s, ``forward`` and ``backward``, used only for
    their parameters. ``__call__(inputs, initial_state=None, mask=None, *,
    deterministic=None, rngs=None)`` returns what :func:`jlstm.bidirectional`
    returns (``initial_state`` is ``(h_fwd, c_fwd, h_bwd, c_bwd)``); dropout as
    in :class:`LSTM`, one key split between the directions.

    Args:
      input_dim, units, rngs: as in :class:`LSTM`.
      merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or None.
      The others: as in :class:`LSTM` (no ``go_backwards``).

    Example:
      >>> import jax.numpy as jnp, jlstm.nnx
      >>> from flax import nnx
      >>> model = jlstm.nnx.Bidirectional(3, 4, rngs=nnx.Rngs(0), return_state=True)
      >>> y, h_fwd, c_fwd, h_bwd, c_bwd = model(jnp.ones((2, 5, 3)))
      >>> y.shape, h_bwd.shape
      ((2, 8), (2, 4))
    """

    def __init__(
        self,
        input_dim: int,
        units: int,
        *,
        rngs: nnx.Rngs,
        merge_mode: Optional[str] = "concat",
        return_sequences: bool = False,
        return_state: bool = False,
        time_major: bool = False,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        recurrent_activation: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid,
        unroll: int | bool = 1,
        remat_chunk: Optional[int] = None,
        recurrence: str = "auto",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        deterministic: bool = True,
        unit_forget_bias: bool = True,
        param_dtype: Any = jnp.float32,
        dtype: Any = None,
        kernel_init: Initializer = jax.nn.initializers.glorot_uniform(),
        recurrent_kernel_init: Initializer = jax.nn.initializers.orthogonal(),
    ):
        _check("Bidirectional", input_dim, units, dropout, recurrent_dropout, deterministic, param_dtype)
        init = dict(
            unit_forget_bias=unit_forget_bias,
            param_dtype=param_dtype,
            kernel_init=kernel_init,
            recurrent_kernel_init=recurrent_kernel_init,
        )
        self.dtype = dtype
        self.forward = LSTM(input_dim, units, rngs=rngs, **init)
        self.backward = LSTM(input_dim, units, rngs=rngs, go_backwards=True, **init)
        self.flags = dict(
            merge_mode=merge_mode,
            return_sequences=return_sequences,
            return_state=return_state,
            time_major=time_major,
            activation=activation,
            recurrent_activation=recurrent_activation,
            unroll=unroll,
            remat_chunk=remat_chunk,
            recurrence=recurrence,
        )
        _init_dropout(self, rngs, dropout, recurrent_dropout, deterministic)

    def __call__(
        self,
        inputs: jax.Array,
        initial_state: Optional[tuple[jax.Array, ...]] = None,
        mask: Optional[jax.Array] = None,
        *,
        deterministic: Optional[bool] = None,
        rngs: Optional[Rngs] = None,
    ) -> Any:
        return bidirectional(
            in_dtype("Bidirectional", self.forward.params, self.dtype),
            in_dtype("Bidirectional", self.backward.params, self.dtype),
            inputs,
            initial_state=initial_state,
            mask=mask,
            **self.flags,
            **_dropout_kwargs(self, deterministic, rngs),
        )


def _check(
    cls: str,
    input_dim: int,
    units: int,
    dropout: float,
    recurrent_dropout: float,
    deterministic: bool,
    param_dtype: Any,
) -> None:
    """The constructor's own arguments (the others are checked by the pure function at call time)."""
    _validate.positive_int(cls, "input_dim", input_dim)
    rates = dict(dropout=dropout, recurrent_dropout=recurrent_dropout)
    check_config(cls, units=units, param_dtype=param_dtype, **rates)
    _validate.flag(cls, "deterministic", deterministic)


def _init_dropout(
    module: nnx.Module, rngs: nnx.Rngs, dropout: float, recurrent_dropout: float, deterministic: bool
) -> None:
    module.dropout = dropout
    module.recurrent_dropout = recurrent_dropout
    module.deterministic = deterministic
    module.rngs = rngs["dropout"].fork() if dropout > 0 or recurrent_dropout > 0 else nnx.data(None)


def _dropout_kwargs(module: nnx.Module, deterministic: Optional[bool], rngs: Optional[Rngs]) -> dict:
    if deterministic is None:
        deterministic = module.deterministic
    deterministic = _validate.flag(type(module).__name__, "deterministic", deterministic)
    training = not deterministic and (module.dropout > 0 or module.recurrent_dropout > 0)
    key = None
    if training:
        rngs = module.rngs if rngs is None else rngs
        if isinstance(rngs, nnx.Rngs):
            key = rngs["dropout"]()
        elif isinstance(rngs, nnx.RngStream):
            key = rngs()
        else:
            key = rngs
    return dict(
        dropout=module.dropout, recurrent_dropout=module.recurrent_dropout, training=training, key=key
    )
