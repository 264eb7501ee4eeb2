"""jlstm: a pure-function JAX LSTM with exactly Keras's semantics.

The core (this namespace) imports only jax and numpy. flax modules live in
``jlstm.linen`` and ``jlstm.nnx``.
"""

from ._bidirectional import bidirectional as bidirectional
from ._cell import lstm_cell as lstm_cell
from ._layer import lstm as lstm
from ._params import LSTMParams as LSTMParams
from ._params import LSTMState as LSTMState
from ._params import init_params as init_params
from ._stack import init_stacked_params as init_stacked_params
from ._stack import stacked_lstm as stacked_lstm

__version__ = "0.1.0"
