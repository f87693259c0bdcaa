"""rnnkit.keras.Sequential: build, summary, compile/fit/evaluate/predict through rnnkit's
training loop, losses and metrics, stateful models, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.keras import LSTM, Bidirectional, Dense, Dropout, Embedding, Sequential, SimpleRNN, losses

B, T, I, H = 3, 6, 4, 5


def regression_data(n=40, seed=0):
    """y = the mean of each sequence's first feature: learnable, never constant."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, 2))
    return x, x[:, :, :1].mean(axis=1)


def test_summary_matches_keras():
    model = Sequential([SimpleRNN(50, input_shape=(10, 1)), Dense(1)])
    text = model.summary(print_fn=None)
    counts = [layer.count_params() for layer in model.layers]
    assert counts == [2600, 51]  # Keras: 50 * (1 + 50 + 1) and 50 * 1 + 1
    assert sum(counts) == sum(p.numel() for p in model.parameters())
    assert "simple_rnn (SimpleRNN)" in text and "(None, 50)" in text and "2,600" in text
    assert "dense (Dense)" in text and "(None, 1)" in text
    assert "Total params: 2,651" in text and "Non-trainable params: 0" in text


def test_build_on_first_use_and_unique_names():
    model = Sequential()
    model.add(LSTM(H, return_sequences=True))
    model.add(LSTM(H))
    model.add(Dense(2))
    assert not model.built
    text = model.summary(print_fn=None)  # Keras 3's table of an unbuilt model
    assert "lstm_1 (LSTM)" in text and " ?  " in text and "0 (unbuilt)" in text
    assert "Total params: 0" in text
    out = model.predict(np.random.default_rng(0).normal(size=(B, T, I)))
    assert isinstance(out, np.ndarray) and out.shape == (B, 2)
    assert [layer.name for layer in model.layers] == ["lstm", "lstm_1", "dense"]
    assert model.layers[0].output_shape == (None, T, H)


def test_fit_history_and_validation_split_takes_the_end():
    x, y = regression_data()
    model = Sequential([LSTM(8, input_shape=(T, 2)), Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    assert list(history.history) == ["loss", "mae", "val_loss", "val_mae"]
    assert all(len(v) == 3 for v in history.history.values()) and history.epoch == [0, 1, 2]
    assert model.history is history
    # the last epoch's validation is the model as it ended, on the last 25% (Keras semantics)
    val_loss, val_mae = model.evaluate(x[30:], y[30:])
    assert history.history["val_loss"][-1] == pytest.approx(val_loss)
    assert history.history["val_mae"][-1] == pytest.approx(val_mae)
    assert model.evaluate(x[:30], y[:30]) != pytest.approx(val_loss)


def test_fit_is_rnnkit_loop_with_the_optimizers_own_lr():
    """One full-batch SGD step: params move by exactly -lr * grad (the loop keeps lr=0.1)."""
    x, y = regression_data(n=12)
    model = Sequential([SimpleRNN(4, input_shape=(T, 2)), Dense(1)])
    params0 = [p.detach().clone() for p in model.parameters()]
    loss = F.mse_loss(model(x), torch.as_tensor(y))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss="mse")
    model.fit(x, y, epochs=1, batch_size=12, shuffle=False, verbose=0)
    for p, p0, g in zip(model.parameters(), params0, grads, strict=True):
        torch.testing.assert_close(p, p0 - 0.1 * g)
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


@pytest.mark.parametrize("name, cls, lr", [("adam", torch.optim.Adam, 1e-3), ("sgd", torch.optim.SGD, 0.01),
                                           ("rmsprop", torch.optim.RMSprop, 1e-3),
                                           ("adamw", torch.optim.AdamW, 1e-3),
                                           ("Adam", torch.optim.Adam, 1e-3),  # Keras reads class names
                                           ("Nadam", torch.optim.NAdam, 1e-3),
                                           ("adamax", torch.optim.Adamax, 1e-3),
                                           ("adagrad", torch.optim.Adagrad, 1e-3),
                                           ("adadelta", torch.optim.Adadelta, 1e-3)])
def test_optimizer_names_use_keras_defaults(name, cls, lr):
    x, y = regression_data(n=8)
    model = Sequential([SimpleRNN(4, input_shape=(T, 2)), Dense(1)])
    model.compile(optimizer=name, loss="mae")
    model.fit(x, y, epochs=1, verbose=0)
    assert isinstance(model.optimizer, cls) and model.optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    assert type(model.optimizer).torch_class() is cls and model.optimizer.learning_rate == pytest.approx(lr)
    optimizer = model.optimizer
    model.fit(x, y, epochs=1, verbose=0)
    assert model.optimizer is optimizer  # kept across fit calls, as Keras keeps its state


def test_layer_added_after_fit_joins_the_kept_optimizer():
    x, y = regression_data(n=16)
    y3 = np.random.default_rng(1).normal(size=(16, 3))
    model = Sequential([LSTM(6, input_shape=(T, 2)), Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y3, epochs=1, batch_size=8, verbose=0)
    optimizer = model.optimizer
    model.add(Dense(1))
    head = [p.detach().clone() for p in model.layers[-1].parameters()]
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.optimizer is optimizer
    assert all(not torch.equal(p, p0) for p, p0 in zip(model.layers[-1].parameters(), head, strict=True))
    new = optimizer.param_groups[-1]  # compile's hyperparameters: Keras's Adam defaults
    assert new["lr"] == pytest.approx(1e-3) and new["eps"] == pytest.approx(1e-7)
    # the first layers' Adam state is kept (2 + 2 steps); the new layer's starts at its first
    first, last = next(model.layers[0].parameters()), next(model.layers[-1].parameters())
    assert float(optimizer.state[first]["step"]) == 4 and float(optimizer.state[last]["step"]) == 2


def test_fit_is_repeatable_under_manual_seed():
    x, y = regression_data()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = Sequential([LSTM(6, input_shape=(T, 2), dropout=0.2), Dropout(0.1), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        runs.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"])
    assert runs[0] == runs[1]


def test_evaluate_returns_float_or_list_and_predict_numpy():
    x, y = regression_data(n=10)
    model = Sequential([SimpleRNN(4, input_shape=(T, 2)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    loss = model.evaluate(x, y, batch_size=4)
    pred = model.predict(x, batch_size=4)
    assert isinstance(loss, float) and loss == pytest.approx(float(np.mean((pred - y) ** 2)))
    model.compile(optimizer="adam", loss="mse", metrics=["mae", "mse"])
    loss2, mae, mse = model.evaluate(x, y)
    assert loss2 == pytest.approx(loss) and mse == pytest.approx(loss)
    assert mae == pytest.approx(float(np.mean(np.abs(pred - y))))
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss2, "mae": mae, "mse": mse}


def test_stateful_model_carries_state_across_predict_and_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3 * T, 2))
    model = Sequential([SimpleRNN(H, return_sequences=True, stateful=True, batch_input_shape=(4, None, 2)),
                        Dense(1)])
    whole = model.predict(x)  # one call over the whole sequences
    model.reset_states()
    parts = [model.predict(x[:, k * T:(k + 1) * T]) for k in range(3)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-12)
    model.reset_states()
    np.testing.assert_allclose(model.predict(x[:, :T]), whole[:, :T], rtol=1e-12, atol=1e-12)
    model.compile(optimizer="adam", loss="mse")
    y = rng.normal(size=(8, T, 1))
    model.fit(np.concatenate([x[:, :T], x[:, T:2 * T]]), y, shuffle=False, epochs=1, verbose=0)
    assert model.layers[0]._states is not None  # kept after fit, as Keras keeps it
    with pytest.raises(ValueError, match=r"batch_size=4 sequences: the number of samples must be "
                                         r"a multiple of it, got 6"):
        model.fit(x[:, :T].repeat(2, 0)[:6], y[:6], epochs=1, verbose=0)


@pytest.mark.parametrize("where", ["embedding", "bidirectional"])
def test_a_stateful_layer_takes_the_models_batch_size(where):
    """Keras's recipe puts batch_input_shape on the first layer (an Embedding, or the
    Bidirectional wrapper): the stateful layer behind it keeps state for that batch size, and
    fit/predict batch by it (they took 32, i.e. the whole data, as one batch)."""
    rng = np.random.default_rng(0)
    if where == "embedding":
        model = Sequential([Embedding(20, 4, batch_input_shape=(2, 5)), LSTM(H, stateful=True), Dense(1)])
        x = rng.integers(1, 20, size=(6, 5))
    else:
        model = Sequential([Bidirectional(LSTM(H, stateful=True), batch_input_shape=(2, 5, 3)), Dense(1)])
        x = rng.normal(size=(6, 5, 3))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, rng.normal(size=(6, 1)), shuffle=False, epochs=1, verbose=0)
    model.reset_states()
    batched = model.predict(x)  # three batches of 2, the state carried from each to the next
    model.reset_states()
    by_hand = np.concatenate([model.predict(x[k:k + 2], batch_size=2) for k in (0, 2, 4)])
    np.testing.assert_allclose(batched, by_hand, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="stateful with batch_size 2"):
        model.predict(x[:4], batch_size=4)


def test_embedding_lstm_classifier_learns_a_rule():
    """Label: does token 1 occur in the (post-padded, mask_zero) sequence? (Passes for seeds
    0-4.)"""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n, vocab, T_max = 320, 8, 8
    tokens = torch.randint(2, vocab, (n, T_max), generator=gen)
    plant = torch.rand(n, generator=gen) < 0.5
    lengths = torch.randint(2, T_max + 1, (n,), generator=gen)
    where = (torch.rand(n, generator=gen) * lengths).long()
    tokens[plant, where[plant]] = 1
    tokens[torch.arange(T_max) >= lengths[:, None]] = 0  # padding at the end
    labels = plant.double()[:, None]
    model = Sequential([Embedding(vocab, 8, mask_zero=True), LSTM(16), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(tokens[:256].numpy(), labels[:256].numpy(), epochs=12, batch_size=16,
                        validation_data=(tokens[256:].numpy(), labels[256:].numpy()), verbose=0)
    assert history.history["val_accuracy"][-1] > 0.9, history.history


def test_softmax_crossentropy_is_finite_and_matches_torch():
    logits = torch.randn(B, 4) * 3
    labels = torch.tensor([0, 3, 1])
    probs = F.softmax(logits, dim=-1)
    want = F.cross_entropy(logits, labels)
    torch.testing.assert_close(losses.sparse_categorical_crossentropy(labels, probs), want)
    one_hot = F.one_hot(labels, 4).double()
    torch.testing.assert_close(losses.categorical_crossentropy(one_hot, probs), want)
    saturated = torch.tensor([[200.0, 0.0, -200.0]], requires_grad=True)
    loss = losses.categorical_crossentropy(torch.tensor([[0.0, 0.0, 1.0]]), F.softmax(saturated, -1))
    assert loss.item() == pytest.approx(-np.log(1e-7))  # clipped as Keras clips, not inf
    loss.backward()
    assert torch.isfinite(saturated.grad).all()
    p = torch.rand(5, 1)
    t = torch.tensor([[0.0], [1.0], [1.0], [0.0], [1.0]])
    torch.testing.assert_close(losses.binary_crossentropy(t, p), F.binary_cross_entropy(p, t))


@pytest.mark.parametrize("y_true, y_pred, want", [
    (torch.tensor([[1.0], [0.0]]), torch.tensor([[0.7], [0.6]]), 0.5),  # binary: one unit
    (torch.tensor([2, 0]), torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]]), 1.0),  # sparse ids
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[0.9, 0.1], [0.8, 0.2]]), 0.5),  # one-hot
], ids=["binary", "sparse", "categorical"])
def test_accuracy_resolves_as_keras(y_true, y_pred, want):
    assert losses.accuracy(y_true, y_pred).item() == want


def _model():
    return Sequential([SimpleRNN(H, input_shape=(T, I)), Dense(1)])


def _compiled():
    model = _model()
    model.compile(optimizer="adam", loss="mse")
    return model


def _with_states():
    model = Sequential([LSTM(H, input_shape=(T, I), return_state=True)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _sequences():
    model = Sequential([LSTM(H, input_shape=(T, I), return_sequences=True), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("call, error, message", [
    (lambda: _model().fit(np.zeros((4, T, I)), np.zeros((4, 1))), RuntimeError,
     r"fit\(\) needs a compiled model with a loss: call model.compile"),
    (lambda: _model().compile(loss="hinge_ish"), ValueError,
     r"loss must be a callable or one of .*'hinge_ish'"),
    (lambda: _model().compile(optimizer="adamax_ish", loss="mse"), ValueError,
     r"optimizer must be one of \['adadelta', 'adagrad', 'adam', 'adamax', 'adamw', 'nadam', 'rmsprop', "
     r"'sgd'\].*got 'adamax_ish'"),
    (lambda: _model().compile(loss="mse", metrics=["precision_ish"]), ValueError,
     r"metrics must be callables or names in .*got 'precision_ish'"),
    (lambda: _compiled().fit(np.zeros((4, T, I)), np.zeros((3, 1))), ValueError,
     r"x and y must have the same number of samples .*got shapes \(4, 6, 4\) and \(3, 1\)"),
    (lambda: _compiled().fit(np.zeros((4, T, I + 2)), np.zeros((4, 1))), ValueError,
     r"inputs of simple_rnn \(SimpleRNN\) must have 4 features .*got 6"),
    (lambda: _compiled().predict(np.zeros((4, I))), ValueError, r"must be 3-D .*got shape \(4, 4\)"),
    (lambda: _compiled().fit(np.zeros((4, T, I)), np.zeros((4, 2))), ValueError,
     r"y must have the model output's shape \(4, 1\) for mean_squared_error .*got \(4, 2\)"),
    (lambda: _compiled().fit(np.zeros((4, T, I)), np.zeros((4, 1)), validation_split=1.5), ValueError,
     r"validation_split must be a fraction in \[0, 1\), got 1.5"),
    (lambda: Sequential([LSTM(H, return_state=True), Dense(1)]), ValueError,
     r"only the last layer may return states"),
    (lambda: _compiled().fit("abc", np.zeros((4, 1))), TypeError,
     r"x must be a numpy array, a torch.Tensor, a list or an array-like .*got str"),
    (lambda: _with_states().fit(np.zeros((4, T, I)), np.zeros((4, H))), ValueError,
     r"fit\(\) needs a model whose output is one tensor, got a list \[output, \*states\]: its last "
     r"layer lstm \(LSTM\) has return_state=True"),
    (lambda: _with_states().evaluate(np.zeros((4, T, I)), np.zeros((4, H))), ValueError,
     r"evaluate\(\) needs a model whose output is one tensor.*lstm \(LSTM\) has return_state=True"),
    (lambda: Sequential([LSTM(4, input_shape=(None, 3))]).predict(np.zeros((2, 0, 3))), ValueError,
     r"inputs of lstm \(LSTM\) must have at least one time step, got shape \(2, 0, 3\)"),
    (lambda: Sequential([LSTM(4)]).predict(np.zeros((2, 0, 3))), ValueError,
     r"inputs of lstm \(LSTM\) must have at least one time step, got shape \(2, 0, 3\)"),
    (lambda: _sequences().fit(np.zeros((4, T, I)), np.zeros((4, 1)), verbose=0),
     ValueError, r"^y must have the model output's shape \(4, 6, 1\) .*got \(4, 1\)$"),  # as given
    (lambda: _compiled().fit(np.zeros((4, T, I)), np.zeros((4, 1)), verbose=0,
                             validation_data=(np.zeros((4, T, I)), np.zeros((4, 2)))),
     ValueError, r"^validation_data y must have the model output's shape \(4, 1\) .*got \(4, 2\)$"),
], ids=["fit-before-compile", "loss-name", "optimizer-name", "metric-name", "xy-length", "features",
        "rank", "y-shape", "validation-split", "return-state-inside", "string-x", "return-state-fit",
        "return-state-evaluate", "no-steps", "no-steps-unbuilt", "y-shape-as-given", "validation-y-shape"])
def test_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_integer_targets_train_whatever_their_value():
    """rnnkit's loop skips integer per-step targets of -100 (its ignore index); Keras trains
    on them, so integer targets reach the loop as floats (the weights did not move)."""
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()[0].copy()
    history = model.fit(np.random.default_rng(0).random((8, 3)), np.full((8, 1), -100), epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    assert not np.array_equal(before, model.get_weights()[0])


def test_get_weights_returns_copies_that_training_leaves_alone():
    """The LSTM's kernels are read through views of its parameters: get_weights handed out
    arrays sharing their memory, so weights saved before fit moved with it."""
    model = Sequential([LSTM(H, input_shape=(T, I)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(2).normal(size=(8, T, I))
    saved = model.get_weights()
    kept = [w.copy() for w in saved]
    model.fit(x, x[:, :1, 0], epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(saved, kept, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), kept, strict=True))


def test_a_metric_may_share_a_name_with_the_loops_values():
    """Keras users log the learning rate or their own loss as metrics named ``lr``/``loss``-like;
    the loop's own row names are not theirs to avoid."""
    def lr(y_true, y_pred):
        return (y_pred - y_true).abs().mean()

    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=[lr])
    x = np.random.default_rng(3).random((8, 3))
    history = model.fit(x, x[:, :1], epochs=2, verbose=0)
    assert list(history.history) == ["loss", "lr"] and history.history["lr"][0] > 0


def test_class_ids_stay_exact_in_a_bfloat16_model():
    """Integer targets reach the loop as float64: bfloat16 would round class 299 to 300."""
    model = Sequential([Dense(600, input_shape=(3,), activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    kernel, bias = model.get_weights()
    bias[299] = 4.0  # class 299 far likelier than 300, so a rounded id shows in the loss
    model.set_weights([kernel, bias])
    model.to(torch.bfloat16)
    x = np.random.default_rng(4).random((4, 3))
    p = model.predict(x).astype(np.float64)
    assert p[:, 299].min() > 10 * p[:, 300].max()
    assert model.evaluate(x, np.full(4, 299)) == pytest.approx(float(-np.log(p[:, 299]).mean()), rel=0.02)
