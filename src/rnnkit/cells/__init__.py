"""Recurrent cells: one step of each recurrence, written as its paper's equations.

``CELLS`` is the closed registry of cell names used by configs and the CLI.
"""

from rnnkit.cells.base import Cell, CellWrapper, HiddenCell, HiddenState, LSTMState, State, core_cell
from rnnkit.cells.elman import ElmanCell
from rnnkit.cells.gru import GRUCell
from rnnkit.cells.lstm import LSTMCell
from rnnkit.cells.mingru import MinGRUCell, MinLSTMCell
from rnnkit.cells.variants import IndRNNCell, LayerNormGRUCell, LayerNormLSTMCell

CELLS: dict[str, type[Cell]] = {
    "rnn": ElmanCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "layernorm_lstm": LayerNormLSTMCell,
    "layernorm_gru": LayerNormGRUCell,
    "indrnn": IndRNNCell,
    "mingru": MinGRUCell,
    "minlstm": MinLSTMCell,
}

__all__ = [
    "CELLS",
    "Cell",
    "CellWrapper",
    "ElmanCell",
    "GRUCell",
    "HiddenCell",
    "HiddenState",
    "IndRNNCell",
    "LSTMCell",
    "LSTMState",
    "LayerNormGRUCell",
    "LayerNormLSTMCell",
    "MinGRUCell",
    "MinLSTMCell",
    "State",
    "core_cell",
]
