"""Layer names as Keras 3 gives them: once, at creation, unique in the session (``dense``,
``dense_1``, ...; ``backend.clear_session()`` starts again, and conftest does so before each
test); a model never renames a layer, and two layers of one name in a model are an error."""

import numpy as np
import pytest

from rnnkit.keras import GRU, LSTM, Dense, Input, Model, Sequential, backend, load_model

RNG = np.random.default_rng(5)


def test_names_are_given_at_creation_in_creation_order():
    inp = Input(shape=(4,))
    first = Dense(1)(inp)  # made first: "dense", whatever model it ends up in
    second = Dense(3, activation="softmax")(inp)
    model = Model(inp, [second, first])
    assert model.output_names == ["dense_1", "dense"]  # Keras 3's, not the order of the walk
    assert [layer.name for layer in model.layers] == ["input_layer", "dense_1", "dense"]  # walk order
    assert [LSTM(2).name, GRU(2).name, LSTM(2).name] == ["lstm", "gru", "lstm_1"]
    assert Input(shape=(3,)).name == "input_layer_1"


def test_another_model_never_renames_the_layers_of_the_first():
    inp = Input(shape=(4,))
    head = Dense(1)
    model = Model(inp, [head(inp), Dense(2)(inp)])
    names = model.output_names
    other_inp = Input(shape=(4,))
    Model(other_inp, head(Dense(4)(other_inp)))  # the shared head meets a newer "dense_2" first
    assert model.output_names == names == ["dense", "dense_1"]


def test_settings_keyed_by_auto_names_reach_their_output():
    """loss_weights by name train the output the name was given to (the reviewer's t5b)."""
    inp = Input(shape=(4,))
    a = Dense(1)(inp)  # "dense"
    b = Dense(1)(inp)  # "dense_1"
    model = Model(inp, [b, a])
    model.compile("sgd", loss="mse", loss_weights={"dense": 1.0, "dense_1": 0.0})
    x, y = RNG.normal(size=(8, 4)), RNG.normal(size=(8, 1))
    wa, wb = a.node.layer.get_weights()[0], b.node.layer.get_weights()[0]
    model.fit(x, [y, y], epochs=1, verbose=0)
    assert not np.allclose(wa, a.node.layer.get_weights()[0])
    np.testing.assert_array_equal(wb, b.node.layer.get_weights()[0])


def test_two_layers_of_one_name_in_a_model_are_an_error_naming_both():
    inp = Input(shape=(4,))
    with pytest.raises(ValueError, match=r'The name "x" is used by 2 layers in the model, x \(Dense\) of '
                                         r"output shape \(None, 1\) and x \(Dense\) of output shape "
                                         r"\(None, 2\)"):
        Model(inp, [Dense(1, name="x")(inp), Dense(2, name="x")(inp)])
    with pytest.raises(ValueError, match=r"unique names. Name 'x' of x \(Dense\) is already the name of "
                                         r"x \(LSTM\)"):
        Sequential([LSTM(2, name="x", input_shape=(3, 1)), Dense(1, name="x")])


def test_clear_session_starts_the_names_again_and_loading_keeps_the_file_names(tmp_path):
    model = Sequential([Input(shape=(3, 2)), LSTM(2), Dense(1)])
    model.compile("adam", "mse")
    model.save(tmp_path / "m.keras")
    backend.clear_session()
    assert Dense(1).name == "dense"
    loaded = load_model(tmp_path / "m.keras")
    assert [layer.name for layer in loaded.layers] == ["lstm", "dense"]  # as written, counting nothing
    assert Dense(1).name == "dense_1"
