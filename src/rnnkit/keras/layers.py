"""The layers of ``rnnkit.keras``, as ``keras.layers`` names them."""

from rnnkit.keras._base import Layer
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._core import Dense, Dropout, Embedding, Input, InputLayer
from rnnkit.keras._merge import Add, Average, Concatenate, Multiply
from rnnkit.keras._recurrent import GRU, LSTM, RNNLayer, SimpleRNN
from rnnkit.keras._time_distributed import RepeatVector, TimeDistributed

__all__ = ["GRU", "LSTM", "Add", "Average", "Bidirectional", "Concatenate", "Dense", "Dropout", "Embedding",
           "Input", "InputLayer", "Layer", "Multiply", "RNNLayer", "RepeatVector", "SimpleRNN",
           "TimeDistributed"]
