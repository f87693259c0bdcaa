"""Keras's API surface that ported code reaches for: numpy scalars where Keras takes numbers,
array-likes as data, ``Input``/``InputLayer``, ``count_params``, ``get_layer``, an unbuilt
``summary()``, ``validation_data`` over ``validation_split``, and what ``fit`` refuses."""

import numpy as np
import pytest
import torch

from rnnkit.keras import (
    GRU,
    LSTM,
    Dense,
    Dropout,
    Embedding,
    Input,
    InputLayer,
    Sequential,
    SimpleRNN,
    load_model,
)

N, T, I = 16, 5, 2
RNG = np.random.default_rng(11)
X = RNG.normal(size=(N, T, I))
Y = X[:, :, :1].mean(axis=1) + X[:, -1, 1:]  # learnable, never constant


class ArrayLike:
    """A pandas DataFrame / xarray / h5py-style object: only ``__array__``."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a

    def __len__(self):
        return len(self.a)


def model(*layers, seed=0):
    torch.manual_seed(seed)
    net = Sequential(list(layers) or [LSTM(4, input_shape=(T, I)), Dense(1)])
    net.compile(optimizer="adam", loss="mse")
    return net


def fit(net, x=X, y=Y, **options):
    return net.fit(x, y, batch_size=options.pop("batch_size", 4), epochs=options.pop("epochs", 2),
                   shuffle=False, seed=0, verbose=0, **options).history


def test_numpy_scalars_are_read_as_python_numbers():
    grid = np.array([8, 16])
    layers = [LSTM(grid[0], input_shape=(np.int64(T), np.int32(I)), dropout=np.float32(0.25)),
              Dropout(np.float64(0.5)), Dense(np.int64(1))]
    assert (layers[0].units, layers[0].dropout, layers[1].rate) == (8, 0.25, 0.5)
    assert type(layers[0].units) is int and type(layers[0].get_config()["dropout"]) is float
    assert Embedding(np.int64(10), np.int16(3)).get_config()["output_dim"] == 3
    net = model(*layers)
    assert net.layers[0].input_shape == (None, T, I)
    history = net.fit(X, Y, batch_size=np.int64(4), epochs=np.int64(2), validation_split=np.float32(0.25),
                      verbose=np.int64(0), seed=np.int64(3))
    plain = model(LSTM(8, input_shape=(T, I), dropout=0.25), Dropout(0.5), Dense(1)).fit(
        X, Y, batch_size=4, epochs=2, validation_split=0.25, verbose=0, seed=3)
    assert history.history == plain.history and history.params["steps"] == 3
    assert net.evaluate(X, Y, batch_size=np.int64(5)) == pytest.approx(net.evaluate(X, Y, batch_size=5))


def test_array_likes_and_lists_are_data():
    as_arrays = fit(model())
    assert fit(model(), ArrayLike(X), ArrayLike(Y)) == as_arrays
    assert fit(model(), X.tolist(), list(Y[:, 0])) == fit(model(), X, Y[:, 0])
    net = model()
    fit(net)
    np.testing.assert_array_equal(net.predict(ArrayLike(X)), net.predict(X))
    with pytest.raises(TypeError, match=r"x must be a numpy array, a torch.Tensor, a list or an array-like "
                                        r"\(with __array__, e.g. a pandas DataFrame\), got object"):
        fit(model(), object(), Y)


def test_validation_data_wins_over_validation_split():
    """As Keras 3's fit docstring says: the split is then not taken, all the data trains."""
    x_val, y_val = X[:4] * 2, Y[:4] - 1
    both = fit(model(), validation_split=0.5, validation_data=(x_val, y_val))
    alone = fit(model(), validation_data=(x_val, y_val))
    assert both == alone
    net = model()
    fit(net, validation_split=0.5, validation_data=(x_val, y_val))
    assert both["val_loss"][-1] == pytest.approx(net.evaluate(x_val, y_val))


def test_input_gives_the_shape_and_is_not_a_layer(tmp_path):
    net = Sequential([Input(shape=(T, I)), GRU(3), Dense(1)])
    assert net.built and len(net.layers) == 2 and net.layers[0].input_shape == (None, T, I)
    assert net.count_params() == 3 * 3 * (I + 3 + 2) + 4  # Keras's GRU (reset_after) and Dense
    tokens = Sequential([InputLayer(shape=(T,), dtype="int32"), Embedding(9, 4), SimpleRNN(2)])
    assert tokens.layers[1].output_shape == (None, 2)
    stateful = Sequential([Input(batch_shape=(4, T, I)), LSTM(3, stateful=True)])
    assert stateful.layers[0]._batch_size == 4  # a stateful layer's batch size, as in Keras
    net.compile(optimizer="adam", loss="mse")
    net.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras").layers[0].input_shape == (None, T, I)


@pytest.mark.parametrize("make, message", [
    (lambda: Sequential([Dense(1), Input(shape=(3,))]),
     r"an Input must be the model's first element, got one after 1 layers"),
    (lambda: Input(), r"InputLayer takes shape or batch_shape \(one of them\), got shape=None"),
    (lambda: Input(shape=(3, 0)), r"shape must be a tuple of positive ints or None, got \(3, 0\)"),
], ids=["not-first", "no-shape", "bad-shape"])
def test_input_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_count_params_and_get_layer():
    net = model()
    assert net.count_params() == 4 * 4 * (I + 4 + 1) + 5 == sum(p.numel() for p in net.parameters())
    assert net.get_layer("dense") is net.layers[1] is net.get_layer(index=-1)
    assert net.get_layer(index=np.int64(0)) is net.layers[0]
    with pytest.raises(ValueError, match=r"No such layer: 'gru'. Existing layers are: \['lstm', 'dense'\]"):
        net.get_layer("gru")
    with pytest.raises(ValueError, match=r"index must be an int in \[-2, 2\) .*got 2"):
        net.get_layer(index=2)
    with pytest.raises(ValueError, match="get_layer takes a layer name or an index"):
        net.get_layer()
    with pytest.raises(ValueError, match=r"count_params\(\) needs a built model, and 'sequential' is not"):
        Sequential([LSTM(3)]).count_params()


def test_unbuilt_summary_then_built():
    net = Sequential([LSTM(3), Dense(1)])
    text = net.summary(print_fn=None)
    assert "lstm (LSTM)                  ?                         0 (unbuilt)" in text
    net.build((None, T, I))
    assert "lstm (LSTM)                  (None, 3)                 72" in net.summary(print_fn=None)


@pytest.mark.parametrize("x", [((X[:4], Y[:4]) for _ in range(2)),
                               torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
                                   torch.as_tensor(X), torch.as_tensor(Y)), batch_size=4)],
                         ids=["generator", "DataLoader"])
def test_fit_names_what_it_takes_instead_of_batches(x):
    with pytest.raises(TypeError, match=r"x and y must be arrays of samples \(numpy arrays, torch tensors, "
                                        r"lists, or array-likes .*got x of type (generator|DataLoader) and "
                                        r"y=None; generators, datasets and DataLoaders"):
        model().fit(x, epochs=1, verbose=0)
