"""``rnnkit.keras``: a Keras-style API as thin front ends over rnnkit's layers.

    from rnnkit.keras import Sequential, SimpleRNN, Dense
    model = Sequential([SimpleRNN(50, input_shape=(10, 1)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, epochs=100, batch_size=16)

The functional API too: ``Input(shape=...)`` tensors, layers called on them, and
``Model(inputs, outputs)`` (``rnnkit.keras._functional``), with the merge layers
``Concatenate``, ``Add``, ``Multiply`` and ``Average``.

Keras's conventions: batch-first (B, T, I) inputs, shapes inferred on build, numpy in and
out. The recurrent layers run on ``rnnkit.Recurrent`` and rnnkit's cells, so every rnnkit
executor applies; ``fit`` is ``rnnkit.train.fit``. Where this front end keeps state that
rnnkit's layers don't (``stateful=True``), it says so; see ``rnnkit.keras._recurrent``.
"""

from rnnkit.keras import backend, callbacks, datasets, losses, models, optimizers, utils
from rnnkit.keras._functional import Model
from rnnkit.keras._saving import load_model
from rnnkit.keras.layers import (
    GRU,
    LSTM,
    Add,
    Average,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Layer,
    Multiply,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
)
from rnnkit.keras.model import History, Sequential

__all__ = [
    "GRU",
    "LSTM",
    "Add",
    "Average",
    "Bidirectional",
    "Concatenate",
    "Dense",
    "Dropout",
    "Embedding",
    "History",
    "Input",
    "InputLayer",
    "Layer",
    "Model",
    "Multiply",
    "RepeatVector",
    "Sequential",
    "SimpleRNN",
    "TimeDistributed",
    "backend",
    "callbacks",
    "datasets",
    "load_model",
    "losses",
    "models",
    "optimizers",
    "utils",
]
