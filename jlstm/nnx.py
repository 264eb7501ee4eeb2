"""flax.nnx modules over [`jlstm.lstm`][] and [`jlstm.bidirectional`][] (``pip install jlstm[flax]``).

The modules hold the parameters as ``nnx.Param`` and a dropout rng stream; the
computation is the pure function.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from . import _options, _validate
from ._bidirectional import bidirectional
from ._flax_init import check_config, half_safe, in_dtype, keras_bias, torch_projection
from ._layer import lstm
from ._params import AnyParams, LSTMParams, LSTMPParams
from ._plan import Plan

Initializer = Callable[..., jax.Array]
Rngs = nnx.Rngs | nnx.RngStream | jax.Array


def _dropout_stream(rngs: nnx.Rngs) -> Any:
    """``rngs``'s ``"dropout"`` stream, else its ``"default"`` one, forked; None if it has neither."""
    if "dropout" in rngs or "default" in rngs:
        return rngs["dropout"].fork()
    return nnx.data(None)


def _shaped_like(params: AnyParams) -> dict[str, Any]:
    """The constructor's arguments that give ``params``'s shapes and dtype, drawing nothing costly."""
    return {
        "rngs": nnx.Rngs(params=0),  # the weights are replaced: no dropout stream until from_params gives one
        "param_dtype": params.kernel.dtype,
        "proj_size": params.projection_kernel.shape[1] if isinstance(params, LSTMPParams) else None,
        "kernel_init": jax.nn.initializers.zeros,
        "recurrent_kernel_init": jax.nn.initializers.zeros,
    }


def _from_params_options(cls: str, options: dict[str, Any]) -> None:
    """``from_params`` takes the sizes, the dtype and the weights from the params: refuses them as options."""
    fixed = {"input_dim", "units", "proj_size", "param_dtype", "kernel_init", "recurrent_kernel_init",
             "unit_forget_bias"}
    given = sorted(fixed & set(options))
    if given:
        raise TypeError(f"{cls}.from_params: {', '.join(given)} come from params, not from the options")


class _Weights(nnx.Module):
    """One direction's parameters as ``nnx.Param`` s, drawn with Keras's initialisers."""

    def __init__(
        self,
        input_dim: int,
        units: int,
        *,
        rngs: nnx.Rngs,
        unit_forget_bias: bool,
        param_dtype: Any,
        kernel_init: Initializer,
        recurrent_kernel_init: Initializer,
        proj_size: int | None,
    ):
        rows = units if proj_size is None else proj_size
        self.kernel = nnx.Param(half_safe(kernel_init)(rngs.params(), (input_dim, 4 * units), param_dtype))
        self.recurrent_kernel = nnx.Param(
            half_safe(recurrent_kernel_init)(rngs.params(), (rows, 4 * units), param_dtype)
        )
        self.bias = nnx.Param(keras_bias(units, unit_forget_bias)(None, (4 * units,), param_dtype))
        self.projection_kernel = nnx.data(None)  # a Param below when projected
        if proj_size is not None:  # PyTorch's weight_hr, transposed
            init = half_safe(torch_projection(units))
            self.projection_kernel = nnx.Param(init(rngs.params(), (units, proj_size), param_dtype))

    def _load(self, params: AnyParams) -> None:
        """Replaces the parameters with ``params`` (checked to have this direction's shapes by the caller)."""
        self.kernel = nnx.Param(jnp.asarray(params.kernel))
        self.recurrent_kernel = nnx.Param(jnp.asarray(params.recurrent_kernel))
        self.bias = nnx.Param(jnp.asarray(params.bias))
        if isinstance(params, LSTMPParams):
            self.projection_kernel = nnx.Param(jnp.asarray(params.projection_kernel))

    @property
    def params(self) -> AnyParams:
        """The parameters as the pure function takes them."""
        arrays = (self.kernel[...], self.recurrent_kernel[...], self.bias[...])
        if self.projection_kernel is None:
            return LSTMParams(*arrays)
        return LSTMPParams(*arrays, self.projection_kernel[...])


class _Layer(nnx.Module):
    """What both modules hold besides parameters: the options, flax's ``dtype`` and the dropout stream."""

    def _use_dropout_stream(self, fn: str, rngs: nnx.Rngs | None) -> None:
        """After ``from_params``: the dropout stream from ``rngs`` (if any, and if there is dropout)."""
        if rngs is None:
            return
        if not isinstance(rngs, nnx.Rngs):
            raise TypeError(f"{fn}: rngs must be an nnx.Rngs, such as nnx.Rngs(dropout=0), or None, got "
                            f"{type(rngs).__name__}")
        if self.options["dropout"] > 0 or self.options["recurrent_dropout"] > 0:
            self.rngs = _dropout_stream(rngs)

    def _configure(self, cls: str, arguments: dict[str, Any]) -> None:
        """Checks the constructor's own ``arguments`` (its ``locals()``) and keeps the options.

        The options themselves are checked by the pure function at call time.
        """
        _validate.positive_int(cls, "input_dim", arguments["input_dim"])
        if not isinstance(arguments["rngs"], nnx.Rngs):
            raise TypeError(f"{cls}: rngs must be an nnx.Rngs, such as nnx.Rngs(0), got "
                            f"{type(arguments['rngs']).__name__}")
        dropout, recurrent_dropout = arguments["dropout"], arguments["recurrent_dropout"]
        check_config(
            cls, units=arguments["units"], param_dtype=arguments["param_dtype"],
            dropout=dropout, recurrent_dropout=recurrent_dropout, proj_size=arguments["proj_size"],
        )
        self.deterministic = _validate.flag(cls, "deterministic", arguments["deterministic"])
        self.dtype = arguments["dtype"]
        self.options = _options.pick(arguments)
        with_dropout = dropout > 0 or recurrent_dropout > 0
        self.rngs = _dropout_stream(arguments["rngs"]) if with_dropout else nnx.data(None)

    def _training(self, deterministic: bool | None, rngs: Rngs | None) -> dict[str, Any]:
        """``training`` and ``key`` for the pure function: dropout only when not deterministic."""
        if deterministic is None:
            deterministic = self.deterministic
        deterministic = _validate.flag(type(self).__name__, "deterministic", deterministic)
        training = not deterministic and (self.options["dropout"] > 0 or self.options["recurrent_dropout"] > 0)
        key = None
        if training:
            cls = type(self).__name__
            stream = self.rngs if rngs is None else rngs
            if isinstance(stream, nnx.Rngs):
                stream = stream["dropout"] if "dropout" in stream or "default" in stream else None
            if isinstance(stream, nnx.RngStream):
                key = stream()
            elif stream is not None:
                key = stream
            else:
                rates = f"dropout={self.options['dropout']}, recurrent_dropout={self.options['recurrent_dropout']}"
                raise ValueError(
                    f"{cls}: rngs: {rates} with deterministic=False draws its masks from a 'dropout' (or "
                    f"'default') rng stream, and there is none: pass rngs=nnx.Rngs(dropout=1) (an nnx.Rngs, an "
                    f"RngStream or a key) to the call, or give the constructor rngs=nnx.Rngs(params=0, dropout=1)"
                )
        return {"training": training, "key": key}


class LSTM(_Weights, _Layer):
    """``keras.layers.LSTM`` as a ``flax.nnx`` module: [`jlstm.lstm`][] over ``nnx.Param`` weights.

    Parameters: ``kernel`` ``(input_dim, 4 * units)``, ``recurrent_kernel``
    ``(units, 4 * units)``, ``bias`` ``(4 * units,)``, drawn from
    ``rngs.params()`` with Keras's initialisers (as [`jlstm.init_params`][]).
    ``params`` gives them as an [`jlstm.LSTMParams`][].

    ``__call__(inputs, initial_state=None, mask=None, *, reset=None, deterministic=None,
    rngs=None)`` returns what [`jlstm.lstm`][] returns for the module's flags.
    Dropout is applied only when not deterministic: ``deterministic`` at call
    time wins over the attribute, which is True unless set otherwise, by the
    constructor or by ``model.train()`` (``model.eval()`` sets it back). Its key
    comes from ``rngs`` at call time if given, as with flax's ``nnx.Dropout``,
    else from the ``"dropout"`` stream forked at construction (``rngs`` falls
    back to its ``default`` stream when it has no ``dropout`` one); with
    neither, such a call raises a ``ValueError`` that says what to pass.
    [`from_params`][jlstm.nnx.LSTM.from_params] builds the module around
    given weights (from [`jlstm.from_keras`][] or [`jlstm.from_torch`][]).

    The options ``return_sequences``, ``return_state``, ``go_backwards``, ``time_major``,
    ``activation``, ``recurrent_activation``, ``unroll``, ``remat_chunk``, ``recurrence``, ``precision``,
    ``dropout`` and ``recurrent_dropout`` are keyword arguments with the meaning and the default they have in
    [`jlstm.lstm`][].

    Args:
      input_dim: input features.
      units: hidden units.
      rngs: an ``nnx.Rngs``.
      deterministic: the default for ``__call__``; True disables dropout.
      unit_forget_bias: start the forget gate's bias at 1.
      param_dtype: dtype of the parameters; the state and outputs follow [`jlstm.lstm`][]'s dtype policy
        (float32 for 16-bit parameters).
      dtype: flax's computation dtype, as in [`jlstm.linen.LSTM`][]: the
        parameters are cast to it inside the call (None, the default: not
        cast), so float32 parameters with ``dtype=jnp.bfloat16`` is mixed
        precision with float32 gradients.
      kernel_init: initialiser of ``kernel``, ``(key, shape, dtype) -> array``.
      recurrent_kernel_init: initialiser of ``recurrent_kernel``, ``(key, shape, dtype) -> array``.
      proj_size: a projected LSTM (PyTorch's ``proj_size``), as in [`jlstm.linen.LSTM`][]: adds
        ``projection_kernel`` ``(units, proj_size)``; the output and ``h`` are ``proj_size`` wide.

    Examples:
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
        remat_chunk: int | None = None,
        recurrence: str | Plan = "auto",
        precision: str | jax.lax.Precision | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        deterministic: bool = True,
        unit_forget_bias: bool = True,
        param_dtype: Any = jnp.float32,
        dtype: Any = None,
        kernel_init: Initializer = jax.nn.initializers.glorot_uniform(),  # noqa: B008 - a pure function
        recurrent_kernel_init: Initializer = jax.nn.initializers.orthogonal(),  # noqa: B008 - a pure function
        proj_size: int | None = None,
    ):
        self._configure("LSTM", locals())
        _Weights.__init__(
            self, input_dim, units, rngs=rngs, unit_forget_bias=unit_forget_bias, param_dtype=param_dtype,
            kernel_init=kernel_init, recurrent_kernel_init=recurrent_kernel_init, proj_size=proj_size,
        )

    @classmethod
    def from_params(cls, params: AnyParams, *, rngs: nnx.Rngs | None = None, **options: Any) -> "LSTM":
        """An ``LSTM`` that holds ``params``: weights from [`jlstm.from_keras`][], [`jlstm.from_torch`][] or any other.

        ``input_dim``, ``units``, ``proj_size`` and ``param_dtype`` are read
        from ``params`` (an [`LSTMParams`][jlstm.LSTMParams] or
        [`LSTMPParams`][jlstm.LSTMPParams]), whose arrays become the
        ``nnx.Param`` values as they are. ``model.params`` gives them back.

        Args:
          params: the weights.
          rngs: only for dropout: its ``"dropout"`` (or ``"default"``)
            stream, as in the constructor. None: the key comes at call time.
          **options: the constructor's other keyword arguments
            (``return_sequences``, ``dropout``, ``dtype``, ...).

        Examples:
          >>> import jax, jax.numpy as jnp, jlstm, jlstm.nnx
          >>> params = jlstm.init_params(jax.random.key(0), input_dim=3, units=4)
          >>> model = jlstm.nnx.LSTM.from_params(params, return_sequences=True)
          >>> x = jnp.ones((2, 5, 3))
          >>> bool((model(x) == jlstm.lstm(params, x, return_sequences=True)).all())
          True
        """
        _from_params_options("LSTM", options)
        params = _validate.params("LSTM.from_params", params)
        model = cls(params.input_dim, params.units, **_shaped_like(params), **options)
        model._load(params)
        model._use_dropout_stream("LSTM.from_params", rngs)
        return model

    def __call__(
        self,
        inputs: jax.Array | np.ndarray,
        initial_state: tuple[jax.Array, jax.Array] | None = None,
        mask: jax.Array | None = None,
        *,
        reset: jax.Array | None = None,
        deterministic: bool | None = None,
        rngs: Rngs | None = None,
    ) -> Any:
        return lstm(
            in_dtype("LSTM", self.params, self.dtype),
            inputs,
            initial_state=initial_state,
            mask=mask,
            reset=reset,
            **self.options,
            **self._training(deterministic, rngs),
        )


class Bidirectional(_Layer):
    """Keras's ``Bidirectional(LSTM(units))`` as a ``flax.nnx`` module over [`jlstm.bidirectional`][].

    Holds the parameters of the two directions, ``forward`` and ``backward``,
    each with ``kernel``, ``recurrent_kernel``, ``bias`` and ``params`` as in
    [`LSTM`][jlstm.nnx.LSTM]. ``__call__(inputs, initial_state=None, mask=None, *,
    reset=None, deterministic=None, rngs=None)`` returns what [`jlstm.bidirectional`][]
    returns (``initial_state`` is ``(h_fwd, c_fwd, h_bwd, c_bwd)``); dropout as
    in [`LSTM`][jlstm.nnx.LSTM], one key split between the directions.

    The arguments other than those below are those of [`LSTM`][jlstm.nnx.LSTM], with the same
    meaning, except ``go_backwards``, which this module does not have.

    Args:
      input_dim: input features, as in [`LSTM`][jlstm.nnx.LSTM].
      units: hidden units of each direction, as in [`LSTM`][jlstm.nnx.LSTM].
      rngs: an ``nnx.Rngs``, as in [`LSTM`][jlstm.nnx.LSTM].
      merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or None.

    Examples:
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
        merge_mode: str | None = "concat",
        return_sequences: bool = False,
        return_state: bool = False,
        time_major: bool = False,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
        recurrent_activation: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid,
        unroll: int | bool = 1,
        remat_chunk: int | None = None,
        recurrence: str | Plan = "auto",
        precision: str | jax.lax.Precision | None = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        deterministic: bool = True,
        unit_forget_bias: bool = True,
        param_dtype: Any = jnp.float32,
        dtype: Any = None,
        kernel_init: Initializer = jax.nn.initializers.glorot_uniform(),  # noqa: B008 - a pure function
        recurrent_kernel_init: Initializer = jax.nn.initializers.orthogonal(),  # noqa: B008 - a pure function
        proj_size: int | None = None,
    ):
        init = {
            "rngs": rngs,
            "unit_forget_bias": unit_forget_bias,
            "param_dtype": param_dtype,
            "kernel_init": kernel_init,
            "recurrent_kernel_init": recurrent_kernel_init,
            "proj_size": proj_size,
        }
        self._configure("Bidirectional", locals())
        self.merge_mode = merge_mode
        self.forward = _Weights(input_dim, units, **init)
        self.backward = _Weights(input_dim, units, **init)

    @classmethod
    def from_params(
        cls, params: tuple[AnyParams, AnyParams], *, rngs: nnx.Rngs | None = None, **options: Any
    ) -> "Bidirectional":
        """A ``Bidirectional`` that holds ``params``, a pair ``(forward, backward)`` of the same sizes.

        As [`LSTM.from_params`][jlstm.nnx.LSTM.from_params]: the pair that
        [`jlstm.from_keras`][] returns for a ``Bidirectional`` layer, or
        [`jlstm.from_torch`][]'s list for a one-layer bidirectional
        ``torch.nn.LSTM``; ``model.forward.params`` and
        ``model.backward.params`` give them back.

        Examples:
          >>> import jax, jax.numpy as jnp, jlstm, jlstm.nnx
          >>> pair = [jlstm.init_params(jax.random.key(k), input_dim=3, units=4) for k in (0, 1)]
          >>> model = jlstm.nnx.Bidirectional.from_params(pair, merge_mode="sum")
          >>> x = jnp.ones((2, 5, 3))
          >>> bool((model(x) == jlstm.bidirectional(*pair, x, merge_mode="sum")).all())
          True
        """
        fn = "Bidirectional.from_params"
        _from_params_options("Bidirectional", options)
        if isinstance(params, (LSTMParams, LSTMPParams)) or not (
            isinstance(params, (tuple, list)) and len(params) == 2
        ):
            raise TypeError(
                f"{fn}: params must be a pair (forward, backward) of LSTMParams, as from_keras returns for a "
                f"Bidirectional layer, got {type(params).__name__}"
            )
        forward, backward = (_validate.params(fn, p, f"params[{i}]") for i, p in enumerate(params))
        shapes = [[(a.shape, a.dtype) for a in p] for p in (forward, backward)]
        if type(forward) is not type(backward) or shapes[0] != shapes[1]:
            raise ValueError(
                f"{fn}: params: the two directions must have the same shapes and dtype, got forward "
                f"{[(tuple(s), str(d)) for s, d in shapes[0]]} and backward {[(tuple(s), str(d)) for s, d in shapes[1]]}"
            )
        model = cls(forward.input_dim, forward.units, **_shaped_like(forward), **options)
        model.forward._load(forward)
        model.backward._load(backward)
        model._use_dropout_stream(fn, rngs)
        return model

    def __call__(
        self,
        inputs: jax.Array | np.ndarray,
        initial_state: tuple[jax.Array, ...] | None = None,
        mask: jax.Array | None = None,
        *,
        reset: jax.Array | None = None,
        deterministic: bool | None = None,
        rngs: Rngs | None = None,
    ) -> Any:
        return bidirectional(
            in_dtype("Bidirectional", self.forward.params, self.dtype),
            in_dtype("Bidirectional", self.backward.params, self.dtype),
            inputs,
            merge_mode=self.merge_mode,
            initial_state=initial_state,
            mask=mask,
            reset=reset,
            **self.options,
            **self._training(deterministic, rngs),
        )
