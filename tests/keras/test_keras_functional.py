"""The functional API: Input tensors, layers called on them, Model(inputs, outputs), checked
against the same Sequential with the same weights and against the computation written out
in torch from get_weights()'s Keras arrays (float64, random inputs)."""

import numpy as np
import pytest
import torch

from rnnkit.keras import (
    GRU,
    LSTM,
    Add,
    Average,
    Concatenate,
    Dense,
    Embedding,
    Input,
    InputLayer,
    Model,
    Multiply,
    Sequential,
    load_model,
)

B, T, I, H, V = 5, 6, 3, 4, 11
RNG = np.random.default_rng(11)


def tokens():
    """Padding at the end, at the start (Keras's pad_sequences) and a full row."""
    x = RNG.integers(1, V, size=(B, T))
    x[0, 4:] = 0
    x[1, :3] = 0
    x[3, 1] = 0  # a gap between real steps
    return x


# -- one chain: the same function as the Sequential --------------------------------------------
def chain_models():
    x = Input(shape=(T,))
    h = Embedding(V, 5, mask_zero=True)(x)
    h = LSTM(H, return_sequences=True)(h)
    y = Dense(2, activation="softmax")(h)
    functional = Model(x, y)
    sequential = Sequential([Input(shape=(T,)), Embedding(V, 5, mask_zero=True),
                             LSTM(H, return_sequences=True), Dense(2, activation="softmax")])
    sequential.set_weights([RNG.normal(size=w.shape) for w in sequential.get_weights()])
    functional.set_weights(sequential.get_weights())
    return functional, sequential


def test_a_chain_is_the_sequential_with_its_weights_and_mask():
    functional, sequential = chain_models()
    x, y = tokens(), RNG.integers(0, 2, size=(B, T))
    np.testing.assert_allclose(functional.predict(x), sequential.predict(x), rtol=0, atol=0)
    for model in (functional, sequential):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # the mask reaches the loss: the padded steps do not count
    np.testing.assert_allclose(functional.evaluate(x, y, batch_size=2),
                               sequential.evaluate(x, y, batch_size=2), rtol=1e-12)
    y_other = np.where(x != 0, y, 1 - y)
    assert functional.evaluate(x, y_other) == pytest.approx(functional.evaluate(x, y), rel=1e-12)
    a = functional.fit(x, y, epochs=3, batch_size=2, seed=4, verbose=0).history
    b = sequential.fit(x, y, epochs=3, batch_size=2, seed=4, verbose=0).history
    assert list(a) == list(b) == ["loss", "accuracy"]
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10)
    for wa, wb in zip(functional.get_weights(), sequential.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-10)


def test_the_structure_as_keras_shows_it():
    functional, _ = chain_models()
    kinds = [type(layer).__name__ for layer in functional.layers]
    assert kinds == ["InputLayer", "Embedding", "LSTM", "Dense"]
    assert functional.get_layer(index=2) is functional.get_layer("lstm")
    # Keras's counts: V·E, 4H(E + H + 1), (H + 1)·2
    assert functional.count_params() == sum(p.numel() for p in functional.parameters()) == 55 + 160 + 10
    assert functional.layers[2].output.shape == (None, T, H) and functional.input.shape == (None, T)
    text = functional.summary(print_fn=None)
    assert "Connected to" in text and "input_layer (InputLayer)" in text
    assert " embedding[0][0]" in text and "lstm[0][0]" in text
    with pytest.raises(ValueError, match=r"No such layer: 'gru'"):
        functional.get_layer("gru")


# -- several inputs and outputs, merges and a shared layer, against torch by hand -------------
def branchy():
    a, b = Input(shape=(T, I), name="a"), Input(shape=(T, I), name="b")
    shared = LSTM(H, return_sequences=True)
    ha, hb = shared(a), shared(b)  # one layer, two calls: one set of weights
    merged = Concatenate()([Concatenate()([ha, hb]), Add()([ha, hb]), Multiply()([ha, hb]),
                            Average()([ha, hb])])
    steps = Dense(2, name="steps")(merged)
    last = Dense(1, name="last")(GRU(3)(Concatenate(axis=1)([ha, hb])))
    model = Model([a, b], [steps, last])
    model.set_weights([RNG.normal(size=w.shape) * 0.7 for w in model.get_weights()])
    return model


def keras_lstm(x, kernel, recurrent, bias):
    """Keras's LSTM equations on its arrays, gates i, f, c, o; every step's h."""
    h = c = torch.zeros(x.shape[0], recurrent.shape[0])
    out = []
    for t in range(x.shape[1]):
        i, f, g, o = (x[:, t] @ kernel + h @ recurrent + bias).chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        out.append(h)
    return torch.stack(out, 1)


def keras_gru(x, kernel, recurrent, bias):
    """Keras's GRU (reset_after=True), gates z, r, h; the last h."""
    h = torch.zeros(x.shape[0], recurrent.shape[0])
    for t in range(x.shape[1]):
        xz, xr, xh = (x[:, t] @ kernel + bias[0]).chunk(3, dim=-1)
        hz, hr, hh = (h @ recurrent + bias[1]).chunk(3, dim=-1)
        z, r = (xz + hz).sigmoid(), (xr + hr).sigmoid()
        h = z * h + (1 - z) * (xh + r * hh).tanh()
    return h


def by_hand(model, xa, xb):
    w = {f"{layer.name}/{k}": torch.as_tensor(a) for layer in model._weight_layers()
         for k, a in zip(layer.keras_weights(), layer.get_weights(), strict=True)}
    ha = keras_lstm(torch.as_tensor(xa), w["lstm/kernel"], w["lstm/recurrent_kernel"], w["lstm/bias"])
    hb = keras_lstm(torch.as_tensor(xb), w["lstm/kernel"], w["lstm/recurrent_kernel"], w["lstm/bias"])
    merged = torch.cat([ha, hb, ha + hb, ha * hb, (ha + hb) / 2], dim=-1)
    steps = merged @ w["steps/kernel"] + w["steps/bias"]
    last = keras_gru(torch.cat([ha, hb], 1), w["gru/kernel"], w["gru/recurrent_kernel"], w["gru/bias"])
    return steps.numpy(), (last @ w["last/kernel"] + w["last/bias"]).numpy()


def data(n=B):
    xa, xb = RNG.normal(size=(n, T, I)), RNG.normal(size=(n, T, I))
    return xa, xb, RNG.normal(size=(n, T, 2)), RNG.normal(size=(n, 1))


def test_merges_and_a_shared_layer_compute_what_keras_does():
    model = branchy()
    assert [layer.name for layer in model.layers][:3] == ["a", "b", "lstm"]
    assert model.output_names == ["steps", "last"]
    xa, xb, _, _ = data()
    steps, last = model.predict([xa, xb])
    want_steps, want_last = by_hand(model, xa, xb)
    np.testing.assert_allclose(steps, want_steps, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(last, want_last, rtol=1e-12, atol=1e-12)
    out = model.predict({"b": xb, "a": xa})  # by the Inputs' names
    np.testing.assert_array_equal(out[0], steps)
    text = model.summary(print_fn=None)
    assert "a[0][0]" in text and "b[0][0]" in text and "lstm[1][0]" in text  # the shared layer's two calls
    # one LSTM's weights for two calls: Keras's 4H(I + H + 1); the GRU's (reset_after) 3·3(H + 3 + 2)
    assert model.get_layer("lstm").count_params() == 4 * H * (I + H + 1)
    assert model.count_params() == 4 * H * (I + H + 1) + (5 * H + 1) * 2 + 3 * 3 * (H + 3 + 2) + 3 + 1


def test_losses_per_output_with_weights_as_keras_sums_them():
    model = branchy()
    xa, xb, y_steps, y_last = data(8)
    model.compile(optimizer="sgd", loss={"steps": "mse", "last": "mae"}, loss_weights=[0.5, 2.0],
                  metrics={"last": ["mse"]})
    steps, last = model.predict([xa, xb])
    mse, mae = ((steps - y_steps) ** 2).mean(), np.abs(last - y_last).mean()
    values = model.evaluate([xa, xb], {"steps": y_steps, "last": y_last}, batch_size=8, return_dict=True)
    assert values == pytest.approx({"loss": 0.5 * mse + 2.0 * mae, "steps_loss": mse, "last_loss": mae,
                                    "last_mse": ((last - y_last) ** 2).mean()}, rel=1e-12)
    assert list(values) == ["loss", "steps_loss", "last_loss", "last_mse"]
    history = model.fit([xa, xb], [y_steps, y_last], epochs=4, batch_size=4, verbose=0, validation_split=0.25)
    names = ["loss", "steps_loss", "last_loss", "last_mse"]
    assert list(history.history) == [*names, *(f"val_{k}" for k in names)]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_one_loss_for_every_output_and_sample_weights_per_output():
    model = branchy()
    xa, xb, y_steps, y_last = data(6)
    model.compile(optimizer="adam", loss="mse")
    steps, last = model.predict([xa, xb])
    w = RNG.uniform(0.5, 2.0, size=6)
    got = model.evaluate([xa, xb], [y_steps, y_last], sample_weight=[w, None], batch_size=6)
    want_steps = (w[:, None, None] * (steps - y_steps) ** 2).mean()
    assert got == pytest.approx([want_steps + ((last - y_last) ** 2).mean(), want_steps,
                                 ((last - y_last) ** 2).mean()], rel=1e-12)


def test_a_mask_flows_through_merges():
    x = Input(shape=(T,))
    e = Embedding(V, 3, mask_zero=True)
    summed = Add()([e(x), e(x)])
    model = Model(x, LSTM(H)(summed))
    toks = tokens()
    rnn = model.get_layer("lstm")
    with torch.no_grad():
        emb = e(torch.as_tensor(toks))
        want = rnn(2 * emb, mask=torch.as_tensor(toks != 0))
    np.testing.assert_allclose(model.predict(toks), want.numpy(), rtol=1e-12)


def test_save_and_load_model_give_the_same_predictions_and_compile(tmp_path):
    model = branchy()
    xa, xb, y_steps, y_last = data(8)
    model.compile(optimizer="adam", loss=["mse", "mae"], loss_weights={"steps": 0.5, "last": 2.0})
    model.fit([xa, xb], [y_steps, y_last], epochs=1, batch_size=4, verbose=0)
    path = tmp_path / "branchy.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is Model
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(loaded.predict([xa, xb]), model.predict([xa, xb]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.evaluate([xa, xb], [y_steps, y_last]) == model.evaluate([xa, xb], [y_steps, y_last])
    # training goes on from the saved optimizer state, as the original's does
    a = loaded.fit([xa, xb], [y_steps, y_last], epochs=1, batch_size=4, seed=2, verbose=0).history
    b = model.fit([xa, xb], [y_steps, y_last], epochs=1, batch_size=4, seed=2, verbose=0).history
    assert a == b
    loaded.save_weights(tmp_path / "w.safetensors")
    fresh = branchy()
    fresh.load_weights(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(fresh.predict([xa, xb])[1], loaded.predict([xa, xb])[1])


def test_trainable_and_weights_round_trip():
    model = branchy()
    model.get_layer("lstm").trainable = False
    text = model.summary(print_fn=None)
    assert f"Non-trainable params: {4 * H * (I + H + 1):,}" in text
    model.trainable = False
    model.compile(optimizer="adam", loss="mse")
    xa, xb, y_steps, y_last = data()
    with pytest.raises(ValueError, match="fit\\(\\) needs a trainable weight"):
        model.fit([xa, xb], [y_steps, y_last], verbose=0)
    other = branchy()
    other.set_weights(model.get_weights())  # (frozen weights may take another executor: to rounding)
    np.testing.assert_allclose(other.predict([xa, xb])[0], model.predict([xa, xb])[0], rtol=1e-12)


# -- errors at the boundary --------------------------------------------------------------------
def _two_inputs():
    a, b = Input(shape=(T, I), name="a"), Input(shape=(T, 2), name="b")
    model = Model([a, b], Dense(1)(Concatenate()([LSTM(2)(a), LSTM(2)(b)])))
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("make, error, message", [
    (lambda: Model(Input(shape=(3,)), Dense(1)(Input(shape=(3,), name="other"))), ValueError,
     r"outputs\[0\] is not derived from the model's inputs alone: it needs Input 'other' "
     r"\(shape \(None, 3\)\)"),
    (lambda: Model(Dense(2)(Input(shape=(3,))), Dense(1)(Input(shape=(3,)))), ValueError,
     r"inputs must be a tensor made by Input\(...\), got the output of layer 'dense'"),
    (lambda: Model(np.zeros((2, 3)), Dense(1)(Input(shape=(3,)))), TypeError,
     r"inputs of a Model must be a symbolic tensor .*got ndarray"),
    (lambda: _two_inputs().predict(np.zeros((4, T, I))), ValueError,
     r"x must be a list of 2 arrays \(one per input: \['a', 'b'\]\) or a dict by name, got ndarray of shape "
     r"\(4, 6, 3\)"),
    (lambda: _two_inputs().predict([np.zeros((4, T, I))]), ValueError,
     r"x must be a list of 2 arrays \(one per input: \['a', 'b'\]\), got a list of 1"),
    (lambda: _two_inputs().predict([np.zeros((4, T, I)), np.zeros((4, T, 3))]), ValueError,
     r"x\[1\] \(input 'b'\) must have shape \(None, 6, 2\) .*got \(4, 6, 3\)"),
    (lambda: _two_inputs().predict({"a": np.zeros((4, T, I))}), ValueError,
     r"x as a dict must have one array per input, keyed by name \['a', 'b'\], got keys \['a'\]"),
    (lambda: _two_inputs().fit([np.zeros((4, T, I)), np.zeros((3, T, 2))], np.zeros((4, 1))), ValueError,
     r"x must hold as many samples in every input, got shapes \[\(4, 6, 3\), \(3, 6, 2\)\]"),
    (lambda: branchy().compile(loss=["mse"]), ValueError,
     r"loss for a model of 2 outputs \['steps', 'last'\] must be a list with one entry per output"),
    (lambda: branchy().compile(loss={"step": "mse"}), ValueError,
         r"Expected keys \['steps', 'last'\] in loss dict, but found loss.keys\(\)=\['step'\]"),
    (lambda: Add()([Input(shape=(T, 2)), Input(shape=(T, 3))]), ValueError,
     r"inputs of add \(Add\) must all have the same shape, got \(None, 6, 2\) for input 0 and "
     r"\(None, 6, 3\)"),
    (lambda: Concatenate(axis=1)([Input(shape=(T, 2)), Input(shape=(T, 3))]), ValueError,
     r"must have the same shape except along axis 1, got \(None, 6, 2\) for input 0 and \(None, 6, 3\)"),
    (lambda: LSTM(4)(Input(shape=(T, 2)), initial_state=[Input(shape=(4,))]), ValueError,
     r"initial_state of lstm \(LSTM\) must be a list of 2 tensors of shape \(batch, 4\), got shapes "
     r"\[\(None, 4\)\]"),
    (lambda: LSTM(4)(Input(shape=(T, 2)), initial_state=[np.zeros((1, 4))] * 2), TypeError,
     r"initial_state of lstm \(LSTM\) mixes symbolic tensors \(from Input\) with ndarray"),
    (lambda: Dense(3)(Input(shape=(T, 2)), initial_state=[Input(shape=(3,))]), TypeError,
     r"dense \(Dense\) takes no initial_state"),
])
def test_errors_name_the_argument_and_what_it_got(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_input_is_a_symbolic_tensor_that_sequential_still_takes():
    x = Input(shape=(T, I), name="x")
    assert x.shape == (None, T, I) and isinstance(x.node.layer, InputLayer)
    with pytest.raises(TypeError, match="is one symbolic tensor, not a list"):
        _, _ = x
    model = Sequential([x, LSTM(2)])
    assert model.built and model.layers[0].input_shape == (None, T, I)


def test_one_output_in_a_list_and_loss_weights_of_one_output(tmp_path):
    x = Input(shape=(T, I))
    listed = Model(x, [Dense(1, name="out")(LSTM(2)(x))])
    xs, y = RNG.normal(size=(B, T, I)), RNG.normal(size=(B, 1))
    (out,) = listed.predict(xs)  # the structure the outputs were given in, as Keras keeps it
    listed.compile(optimizer="adam", loss={"out": "mse"}, loss_weights={"out": 3.0})
    assert listed.evaluate(xs, [y]) == pytest.approx(3.0 * ((out - y) ** 2).mean(), rel=1e-12)
    sequential = Sequential([LSTM(2, input_shape=(T, I)), Dense(1)])
    sequential.compile(optimizer="adam", loss="mse", loss_weights=[0.5])
    p = sequential.predict(xs)
    assert sequential.evaluate(xs, y) == pytest.approx(0.5 * ((p - y) ** 2).mean(), rel=1e-12)
    sequential.save(tmp_path / "weighted.keras")  # format 4: readers of 3 do not know loss_weights
    assert load_model(tmp_path / "weighted.keras").evaluate(xs, y) == sequential.evaluate(xs, y)
