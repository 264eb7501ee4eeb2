"""Parameters and the carry: the NamedTuples every function takes."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import export


class LSTMParams(NamedTuple):
    """Weights of one LSTM layer in Keras's fused layout, gates ordered (i, f, c, o).

    Attributes:
        kernel: input weights, shape ``(input_dim, 4 * units)``.
        recurrent_kernel: hidden-to-hidden weights, shape ``(units, 4 * units)``.
        bias: shape ``(4 * units,)``; PyTorch's ``bias_ih + bias_hh``.
    """

    kernel: jax.Array  # (input_dim, 4 * units)
    recurrent_kernel: jax.Array  # (units, 4 * units)
    bias: jax.Array  # (4 * units,)

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]


class LSTMPParams(NamedTuple):
    """Weights of one projected LSTM layer (LSTMP, PyTorch's ``proj_size``), accepted wherever ``LSTMParams`` is.

    The cell is the LSTM's, with ``units`` (``H``) cells, and its output is
    projected to ``proj_size`` (``P < H``): ``r = (o * tanh(c)) projection_kernel``.
    ``r`` is both the output and the hidden state that enters the next step,
    so ``recurrent_kernel`` reads ``P`` features.

    Attributes:
        kernel: input weights, shape ``(input_dim, 4 * units)``.
        recurrent_kernel: hidden-to-hidden weights, shape ``(proj_size, 4 * units)``.
        bias: shape ``(4 * units,)``; PyTorch's ``bias_ih + bias_hh``.
        projection_kernel: the output projection, shape ``(units, proj_size)``; PyTorch's ``weight_hr`` transposed.
    """

    kernel: jax.Array  # (input_dim, 4 * units)
    recurrent_kernel: jax.Array  # (proj_size, 4 * units)
    bias: jax.Array  # (4 * units,)
    projection_kernel: jax.Array  # (units, proj_size)

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        return self.projection_kernel.shape[0]

    @property
    def proj_size(self) -> int:
        return self.projection_kernel.shape[1]


AnyParams = LSTMParams | LSTMPParams


def output_dim(params: AnyParams) -> int:
    """The width of the output and of ``h``: ``proj_size`` for projected params, else ``units``."""
    return params.proj_size if isinstance(params, LSTMPParams) else params.units


class LSTMState(NamedTuple):
    """The carry of the recurrence: hidden state first, as in Keras's ``[h, c]``.

    Attributes:
        h: hidden state (the output), shape ``(batch, units)``, or ``(batch, proj_size)`` when projected.
        c: cell state, shape ``(batch, units)``.

    Warning:
        flax's ``LSTMCell`` carry is ``(c, h)``; Keras and PyTorch put ``h`` first,
        and so does jlstm. Use the field names to be safe.
    """

    h: jax.Array  # (batch, units), or (batch, proj_size) for LSTMPParams
    c: jax.Array  # (batch, units)


def state_dtype(dtype) -> np.dtype:
    """The dtype of the carry and of the outputs for parameters of ``dtype``.

    float32 for 16-bit floats (bfloat16, float16), so that rounding does not
    accumulate in ``c`` over long sequences; ``dtype`` itself otherwise.
    """
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 else dtype


# jax.export serialises the pytree structure of an exported function's arguments and results: the NamedTuples
# are registered under stable names, so that a program taking or returning them serialises (and deserialises
# where jlstm is imported; a server without jlstm passes plain arrays, docs/export.md).
for _named_tuple in (LSTMParams, LSTMPParams, LSTMState):
    export.register_namedtuple_serialization(_named_tuple, serialized_name=f"jlstm.{_named_tuple.__name__}")
