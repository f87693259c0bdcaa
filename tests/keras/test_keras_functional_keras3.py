"""The functional Model against Keras 3's own rules, each with the source it follows: merge
masks (layers/merging), a symbolic call's training= (models/functional.py), per-output
monitors (callbacks/monitor_callback.py), the evaluate list and per-output losses
(trainers/compile_utils.py, trainer.py) and the shared model API."""

import numpy as np
import pytest
import torch

from rnnkit.keras import (
    LSTM,
    Add,
    Average,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Input,
    Model,
    Multiply,
    Sequential,
    callbacks,
    load_model,
)

RNG = np.random.default_rng(7)
B, T = 3, 5


def masks():
    m1 = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    m2 = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    return m1, m2


# -- 2: merge masks ---------------------------------------------------------------------------
def test_concatenate_keeps_a_step_any_input_keeps_an_unmasked_input_all_true():
    """Keras 3's Concatenate.compute_mask: masks spread over the features (ones where an input
    has none), joined along the axis, any over the last axis."""
    a, b = torch.randn(B, T, 2), torch.randn(B, T, 3)
    m1, m2 = masks()
    features = Concatenate()
    assert torch.equal(features.output_mask([a, b], [m1, m2]), m1 | m2)
    assert torch.equal(features.output_mask([a, b], [m1, None]), torch.ones(B, T, dtype=torch.bool))
    assert features.output_mask([a, b], [None, None]) is None
    steps = Concatenate(axis=1)
    assert torch.equal(steps.output_mask([a, a], [m1, None]), torch.cat([m1, torch.ones_like(m1)], dim=1))


@pytest.mark.parametrize("merge", [Add, Multiply, Average])
def test_add_multiply_average_or_the_masks_and_drop_them_if_one_is_missing(merge):
    """Keras 3's Merge.compute_mask: None if any input has no mask, else the masks or-ed."""
    a = torch.randn(B, T, 2)
    m1, m2 = masks()
    assert torch.equal(merge().output_mask([a, a], [m1, m2]), m1 | m2)
    assert merge().output_mask([a, a], [m1, None]) is None


def test_a_model_reads_every_step_an_unmasked_input_concatenated_on_the_features_keeps():
    words, feats = Input(shape=(6,)), Input(shape=(6, 2))
    emb, lstm = Embedding(20, 3, mask_zero=True), LSTM(4)
    model = Model([words, feats], lstm(Concatenate()([emb(words), feats])))
    w, f = np.array([[5, 6, 7, 0, 0, 0]]), RNG.normal(size=(1, 6, 2))
    every_step = lstm(torch.cat([emb(torch.tensor(w)), torch.tensor(f)], dim=-1))
    np.testing.assert_allclose(model.predict([w, f]), every_step.detach().numpy(), rtol=1e-12)


# -- 3: training= in a symbolic call ----------------------------------------------------------
def test_a_recorded_training_true_always_applies_monte_carlo_dropout(tmp_path):
    """A layer called with training=True in the graph keeps that mode in every call of the
    model, predict included (Keras 3's layers take an argument given to their call over the
    call context's: the Monte Carlo dropout idiom); the other Dropout follows the model."""
    inp = Input(shape=(400,))
    model = Model(inp, Dropout(0.5)(Dropout(0.5)(inp), training=True))
    x = np.ones((1, 400))
    for out in (model(x), model(x, training=False), model.predict(x, verbose=0)):
        assert 120 < int((out == 0).sum()) < 280  # one layer's half, not three quarters
    assert 250 < int((model(x, training=True) == 0).sum()) < 350  # both layers
    model.save(tmp_path / "mc.keras")
    assert 120 < int((load_model(tmp_path / "mc.keras")(x) == 0).sum()) < 280
    with pytest.raises(TypeError, match=r"training of a symbolic call of .* must be True, False or None"):
        Dropout(0.5)(inp, training="yes")


# -- 4: callbacks monitoring one output's value -------------------------------------------------
def two_outputs(seed=0):
    inp = Input(shape=(4,))
    model = Model(inp, [Dense(1, name="r")(inp), Dense(3, activation="softmax", name="c")(inp)])
    model.compile("adam", loss=["mse", "sparse_categorical_crossentropy"], metrics=[None, ["accuracy"]])
    rng = np.random.default_rng(seed)
    return model, rng.normal(size=(12, 4)), [rng.normal(size=(12, 1)), rng.integers(0, 3, (12,))]


@pytest.mark.parametrize(("monitor", "mode"), [("val_c_accuracy", "max"), ("c_accuracy", "max"),
                                                ("val_c_loss", "min"), ("r_loss", "min")])
def test_per_output_monitors_take_the_direction_of_the_compiled_value(monitor, mode, tmp_path):
    model, x, y = two_outputs()
    stop = callbacks.EarlyStopping(monitor=monitor, patience=5)
    keep = callbacks.ModelCheckpoint(tmp_path / "best.keras", monitor=monitor, save_best_only=True)
    plateau = callbacks.ReduceLROnPlateau(monitor=monitor)
    model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[stop, keep, plateau])
    assert stop.mode == keep.mode == plateau.mode == mode
    assert (tmp_path / "best.keras").exists()


def test_a_per_output_monitor_the_model_did_not_compile_is_an_error_at_fit():
    model, x, y = two_outputs()
    with pytest.raises(ValueError, match=r"cannot tell whether monitor='val_zz_accuracy' .*no such loss"):
        model.fit(x, y, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_zz_accuracy")])


# -- 5: what evaluate and fit report ----------------------------------------------------------
def test_evaluate_lists_values_in_keras3_order():
    """_flatten_metrics_in_order: the names of model.metrics in the logs (loss, the compiled
    metrics by their own name, 'accuracy', which the logs call 'c_accuracy', then r_loss and
    c_loss), then the other keys sorted."""
    model, x, y = two_outputs()
    values = model.evaluate(x, y, return_dict=True)
    assert list(values) == ["loss", "r_loss", "c_loss", "c_accuracy"]
    assert model.evaluate(x, y) == list(values.values())
    history = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25).history
    assert list(history) == [*values, *(f"val_{k}" for k in values)]


def test_per_output_losses_are_reported_only_with_more_than_one_loss():
    model, x, y = two_outputs()
    model.compile("adam", loss={"r": "mse", "c": None}, metrics={"c": "accuracy"})
    assert list(model.evaluate(x, y, return_dict=True)) == ["loss", "c_accuracy"]


def test_a_loss_dict_without_every_output_is_an_error():
    model, _, _ = two_outputs()
    with pytest.raises(ValueError, match=r"Expected keys \['r', 'c'\] in loss dict, but found "
                                         r"loss.keys\(\)=\['r'\]"):
        model.compile("adam", loss={"r": "mse"})
    # a weight left out weighed 1, silently
    with pytest.raises(ValueError, match=r"Expected keys \['r', 'c'\] in loss_weights dict, but found "
                                         r"loss_weights.keys\(\)=\['c'\] \(0 for an output not trained\)"):
        model.compile("adam", loss=["mse", "sparse_categorical_crossentropy"], loss_weights={"c": 0.5})


# -- 6: errors and the API both models share --------------------------------------------------
def test_a_model_called_on_a_symbolic_tensor_says_nesting_is_not_supported():
    inp = Input(shape=(5, 2))
    for model in (Sequential([LSTM(4)]), Model(inp, LSTM(4)(inp))):
        with pytest.raises(TypeError, match="nesting a model as a layer of a functional Model is not "
                                            "supported"):
            model(Input(shape=(5, 2)))


@pytest.mark.parametrize("op", [lambda a, b: a[:, :2], lambda a, b: a + b, lambda a, b: 2 * a,
                                lambda a, b: -a])
def test_slicing_or_arithmetic_on_a_symbolic_tensor_points_to_a_layer(op):
    a, b = Input(shape=(4,)), Input(shape=(4,))
    with pytest.raises(TypeError, match=r"no Lambda layer or keras.ops; use a layer, e.g. Add\(\)"):
        op(a, b)


def test_reset_states_of_a_functional_model_zeroes_its_stateful_layers():
    inp = Input(batch_shape=(2, 4, 1))
    model = Model(inp, Dense(1)(LSTM(3, stateful=True)(inp)))
    x = RNG.normal(size=(2, 4, 1))
    first = model.predict(x, batch_size=2)
    assert not np.allclose(model.predict(x, batch_size=2), first)  # the state carried on
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x, batch_size=2), first)


def test_both_models_take_the_same_loss_weights_and_get_layer_indices():
    x, y = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 1))
    inp = Input(shape=(3,))
    functional = Model(inp, Dense(1)(inp))
    sequential = Sequential([Input(shape=(3,)), Dense(1)])
    sequential.set_weights(functional.get_weights())
    name = sequential.output_names[0]
    for weights in (2.0, [2.0], {name: 2.0}, np.float32(2.0)):
        losses = []
        for model in (functional, sequential):
            model.compile("sgd", {model.output_names[0]: "mse"}, loss_weights=weights)
            losses.append(model.evaluate(x, y))
        assert losses[0] == pytest.approx(losses[1])
        assert losses[0] == pytest.approx(2 * np.mean((functional.predict(x) - y) ** 2))
    assert functional.get_layer(index=np.int64(1)) is functional.layers[1]
    assert sequential.get_layer(index=np.int64(0)) is sequential.layers[0]


def test_unbuilt_model_errors_say_how_to_build_it():
    with pytest.raises(ValueError, match=r"count_params\(\) needs a built model, and 'sequential' is not "
                                         r"built: give it an Input"):
        Sequential([LSTM(2)]).count_params()
    inp = Input(shape=(3,))
    assert Model(inp, Add()([inp, inp])).count_params() == 0
