"""rnnkit: recurrent neural networks for PyTorch.

Dimension key used in every shape suffix (``x_BTI``, ``lengths_B``, ``out_BTH``):

    B batch   T time       S source time   I input features   H hidden size
    G gates (k * H)        O output features                  L layers
    D directions           V vocabulary    K beam             E embedding

Here: cells, layers, drop-ins. Beside them, imported on their own:
``rnnkit.train`` (the fit loop, TBPTT streams, checkpoints), ``rnnkit.models`` (task
models and their registry), ``rnnkit.keras`` (a Keras-style ``Sequential``),
``rnnkit.config`` (TOML configs with ``--set``) and ``rnnkit.diagnostics`` (dLoss/dh_t).
"""

from importlib.metadata import PackageNotFoundError, version

from rnnkit.cells import (
    CELLS,
    Cell,
    CellWrapper,
    ElmanCell,
    GRUCell,
    HiddenState,
    IndRNNCell,
    LayerNormGRUCell,
    LayerNormLSTMCell,
    LSTMCell,
    LSTMState,
    MinGRUCell,
    MinLSTMCell,
)
from rnnkit.cells.wrappers import RecurrentDropout, WeightDrop, Zoneout
from rnnkit.dropins import GRU, LSTM, RNN, MinGRU, MinLSTM, quantize_dynamic
from rnnkit.layers import (
    Bidirectional,
    EmbeddingDropout,
    LockedDropout,
    Recurrent,
    Stacked,
    flip_padded,
    gather_last,
    lengths_to_mask,
)

try:
    __version__ = version("rnnkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CELLS",
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "Cell",
    "CellWrapper",
    "ElmanCell",
    "EmbeddingDropout",
    "GRUCell",
    "HiddenState",
    "IndRNNCell",
    "LSTMCell",
    "LSTMState",
    "LayerNormGRUCell",
    "LayerNormLSTMCell",
    "LockedDropout",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "Recurrent",
    "RecurrentDropout",
    "Stacked",
    "WeightDrop",
    "Zoneout",
    "__version__",
    "flip_padded",
    "gather_last",
    "lengths_to_mask",
    "quantize_dynamic",
]
