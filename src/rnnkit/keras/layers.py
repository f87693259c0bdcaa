"""The layers of ``rnnkit.keras``, as ``keras.layers`` names them."""

from rnnkit.keras._base import Layer
from rnnkit.keras._bidirectional import Bidirectional
from rnnkit.keras._core import Dense, Dropout, Embedding, Input, InputLayer
from rnnkit.keras._recurrent import GRU, LSTM, RNNLayer, SimpleRNN

__all__ = ["GRU", "LSTM", "Bidirectional", "Dense", "Dropout", "Embedding", "Input", "InputLayer", "Layer",
           "RNNLayer", "SimpleRNN"]
