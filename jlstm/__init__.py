"""jlstm: a pure-function JAX LSTM with exactly Keras's semantics.

The core (this namespace) imports only jax and numpy. flax modules live in
``jlstm.linen`` and ``jlstm.nnx``; the Keras and PyTorch converters import
those frameworks only when called.
"""

from ._bidirectional import bidirectional as bidirectional
from ._cell import lstm_cell as lstm_cell
from ._devices import shard_batch as shard_batch
from ._init import init_params as init_params
from ._init import zero_state as zero_state
from ._keras import KerasLSTMLayer as KerasLSTMLayer
from ._keras import from_keras as from_keras
from ._keras import to_keras as to_keras
from ._layer import lstm as lstm
from ._params import LSTMParams as LSTMParams
from ._params import LSTMPParams as LSTMPParams
from ._params import LSTMState as LSTMState
from ._plan import Plan as Plan
from ._plan import clear as clear_tuned_plans
from ._plan import load as load_tuned_plans
from ._stack import init_stacked_params as init_stacked_params
from ._stack import stacked_lstm as stacked_lstm
from ._torch import from_torch as from_torch
from ._torch import to_torch as to_torch
from ._tune import TuneResult as TuneResult
from ._tune import tune as tune

__version__ = "0.1.0"

__all__ = [
    "KerasLSTMLayer",
    "LSTMPParams",
    "LSTMParams",
    "LSTMState",
    "Plan",
    "TuneResult",
    "bidirectional",
    "clear_tuned_plans",
    "from_keras",
    "from_torch",
    "init_params",
    "init_stacked_params",
    "load_tuned_plans",
    "lstm",
    "lstm_cell",
    "shard_batch",
    "stacked_lstm",
    "to_keras",
    "to_torch",
    "tune",
    "zero_state",
]
