"""rnnkit.keras.optimizers against Keras 3's update rules (keras/src/optimizers/*.py and
base_optimizer.py), written here in numpy: a Dense(1) least-squares fit, one full batch per
epoch, so every step's gradient is 2/N Xᵀ(XW + b - Y) for the kernel and its sum for the bias."""

import copy

import numpy as np
import pytest
import torch

from rnnkit.keras import LSTM, Dense, Sequential, load_model, optimizers

N, I = 32, 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, I))
Y = X @ np.array([[0.5], [-1.0], [2.0]]) + 0.3 + 0.1 * RNG.normal(size=(N, 1))


def fitted(optimizer, steps, y=Y):
    """Our weights after ``steps`` full-batch steps, and the initial ones."""
    torch.manual_seed(0)
    model = Sequential([Dense(1, input_shape=(I,))])
    model.compile(optimizer=optimizer, loss="mse")
    start = [w.copy() for w in model.get_weights()]
    model.fit(X, y, batch_size=N, epochs=steps, shuffle=False, verbose=0)
    return model.get_weights(), start


def keras_reference(update, start, steps, y=Y):
    """Keras's loop: the gradients of the mean squared error, then ``update(t, [(w, g)])``,
    which changes the weights in place (t is 1-based, Keras's iterations + 1)."""
    W, b = (w.copy() for w in start)
    for t in range(1, steps + 1):
        r = X @ W + b - y
        update(t, [(W, 2 / N * X.T @ r), (b, 2 / N * r.sum(0))])
    return [W, b]


def keras_nadam(lr=1e-3, beta_1=0.9, beta_2=0.999, eps=1e-7):
    """keras/src/optimizers/nadam.py: the u_product variable is updated once per step, before
    the variables, then each variable's m, v and update."""
    state = {"u_product": 1.0}

    def update(t, pairs):
        u_t, u_t1 = (beta_1 * (1 - 0.5 * 0.96 ** s) for s in (t, t + 1))
        state["u_product"] *= u_t
        u_product_t = state["u_product"]
        for k, (w, g) in enumerate(pairs):
            m, v = state.get(("m", k), 0.0), state.get(("v", k), 0.0)
            m, v = m + (g - m) * (1 - beta_1), v + (g * g - v) * (1 - beta_2)
            state["m", k], state["v", k] = m, v
            m_hat = u_t1 * m / (1 - u_product_t * u_t1) + (1 - u_t) * g / (1 - u_product_t)
            v_hat = v / (1 - beta_2 ** t)
            w -= m_hat * lr / (np.sqrt(v_hat) + eps)
    return update


def keras_sgd(lr=0.01, momentum=0.0, nesterov=False, weight_decay=None, clip=None):
    """keras/src/optimizers/sgd.py after base_optimizer.apply's clipping and decoupled decay
    (``clip``: a function of the list of gradients)."""
    state = {}

    def update(t, pairs):
        grads = [g for _, g in pairs] if clip is None else clip([g for _, g in pairs])
        for k, ((w, _), g) in enumerate(zip(pairs, grads, strict=True)):
            if weight_decay:
                w -= w * weight_decay * lr
            if momentum:
                m = momentum * state.get(k, 0.0) - lr * g
                state[k] = m
                w += momentum * m - lr * g if nesterov else m
            else:
                w -= lr * g
    return update


def test_nadam_is_keras_momentum_schedule_over_100_steps():
    ours, start = fitted("nadam", 100)
    reference = keras_reference(keras_nadam(), start, 100)
    assert np.abs(reference[0] - start[0]).max() > 0.05  # the weights moved
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    # torch's default momentum_decay (0.004) is another schedule, visibly
    torch_default, _ = fitted(torch.optim.NAdam, 100)
    assert np.abs(torch_default[0] - reference[0]).max() > 1e-4


def test_nadam_class_arguments():
    ours, start = fitted(optimizers.Nadam(learning_rate=0.01, beta_1=0.8, beta_2=0.99), 100)
    reference = keras_reference(keras_nadam(lr=0.01, beta_1=0.8, beta_2=0.99), start, 100)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("make, rule", [
    (lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9)),
    (lambda: optimizers.SGD(0.05, 0.9, True), dict(lr=0.05, momentum=0.9, nesterov=True)),
    (lambda: optimizers.SGD(learning_rate=0.05, weight_decay=0.2), dict(lr=0.05, weight_decay=0.2)),
], ids=["momentum", "nesterov", "weight-decay"])
def test_sgd_momentum_and_decoupled_weight_decay_are_keras(make, rule):
    ours, start = fitted(make(), 40)
    reference = keras_reference(keras_sgd(**rule), start, 40)
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _by_norm(c):
    return lambda grads: [g * c / max(np.linalg.norm(g), c) for g in grads]


def _by_global_norm(c):
    return lambda grads: [g * c / max(np.sqrt(sum((h * h).sum() for h in grads)), c) for g in grads]


@pytest.mark.parametrize("argument, clip", [
    (dict(clipnorm=0.5), _by_norm(0.5)),
    (dict(global_clipnorm=0.5), _by_global_norm(0.5)),
    (dict(clipvalue=0.3), lambda grads: [np.clip(g, -0.3, 0.3) for g in grads]),
], ids=["clipnorm", "global_clipnorm", "clipvalue"])
def test_clipping_is_keras(argument, clip):
    """Targets 20 times larger: the gradients' norms are well above the thresholds for most
    of the 30 steps, so the clipping acts (checked on the first step)."""
    y = 20 * Y
    ours, start = fitted(optimizers.SGD(learning_rate=0.1, **argument), 30, y=y)
    reference = keras_reference(keras_sgd(lr=0.1, clip=clip), start, 30, y=y)
    unclipped = keras_reference(keras_sgd(lr=0.1), start, 30, y=y)
    assert np.abs(unclipped[0] - reference[0]).max() > 0.1
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_learning_rate_reads_and_sets_every_group_before_and_after_the_build():
    optimizer = optimizers.Adam(learning_rate=np.float32(0.5))
    assert optimizer.learning_rate == 0.5 and not optimizer.built
    optimizer.learning_rate = 0.25  # before fit: the rate it is built with
    torch.manual_seed(0)
    model = Sequential([Dense(1, input_shape=(I,))])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="mse")
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)  # model.optimizer after compile
    model.fit(X, Y, batch_size=N, epochs=1, verbose=0)
    model.add(Dense(1))  # a second parameter group
    model.optimizer.learning_rate = 0.01
    assert [g["lr"] for g in model.optimizer.param_groups] == [0.01, 0.01]
    # one more full-batch step moves the weights by exactly -0.01 * their gradient
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.mse_loss(model(X), torch.as_tensor(Y))
    grads = torch.autograd.grad(loss, list(model.parameters()))
    model.fit(X, Y, batch_size=N, epochs=1, shuffle=False, verbose=0)
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        torch.testing.assert_close(p, p0 - 0.01 * g)
    assert model.optimizer.learning_rate == pytest.approx(0.01)  # the loop kept it


def test_names_are_the_classes_with_keras_defaults():
    expected = {
        "adam": dict(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
        "adamw": dict(learning_rate=1e-3, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
        "sgd": dict(learning_rate=0.01, momentum=0.0, nesterov=False),
        "rmsprop": dict(learning_rate=1e-3, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
        "nadam": dict(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
        "adamax": dict(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
        "adagrad": dict(learning_rate=1e-3, initial_accumulator_value=0.1, epsilon=1e-7),
        "adadelta": dict(learning_rate=1e-3, rho=0.95, epsilon=1e-7),
    }
    for name, defaults in expected.items():
        optimizer = optimizers.get(name.upper())
        config = optimizer.get_config()
        assert {k: config[k] for k in defaults} == defaults, name
        assert type(optimizers.get(optimizers.serialize(optimizer))) is type(optimizer)
    assert optimizers.get("rmsprop").get_config()["name"] == "rmsprop"


def test_torch_arguments_follow_keras_names():
    params = [torch.nn.Parameter(torch.randn(3))]
    rms = optimizers.RMSprop(learning_rate=0.02, rho=0.8, momentum=0.5, epsilon=1e-5, centered=True)
    rms.build(params)
    group = rms.param_groups[0]
    assert (group["lr"], group["alpha"], group["momentum"], group["eps"], group["centered"]) == (
        0.02, 0.8, 0.5, 1e-5, True)
    adamw = optimizers.AdamW(learning_rate=0.02, weight_decay=0.1, beta_1=0.8, amsgrad=True)
    adamw.build(params)
    group = adamw.param_groups[0]
    assert (group["weight_decay"], group["betas"], group["amsgrad"]) == (0.1, (0.8, 0.999), True)
    assert isinstance(adamw, torch.optim.AdamW) and repr(adamw).startswith("AdamW(name='adamw'")


@pytest.mark.parametrize("make, error, message", [
    (lambda: optimizers.Adam(clipnorm=1.0, clipvalue=0.5), ValueError,
     r"only one of clipnorm, clipvalue and global_clipnorm can be set, as in Keras, got \{'clipnorm': 1.0"),
    (lambda: optimizers.SGD(learning_rate=-0.1), ValueError,
     r"learning_rate must be a finite number >= 0, got -0.1"),
    (lambda: optimizers.Adam(beta_1=1.0), ValueError, r"beta_1 must be in \[0, 1\), got 1.0"),
    (lambda: optimizers.Adam(clipnorm=0), ValueError, r"clipnorm must be a finite number > 0, got 0"),
    (lambda: optimizers.AdamW(weight_decay=None), ValueError, r"weight_decay of AdamW must be a number"),
    (lambda: optimizers.SGD(nesterov="yes"), TypeError, r"nesterov must be True or False, got 'yes'"),
    (lambda: optimizers.Adam(use_ema=True), TypeError, r"unexpected keyword argument 'use_ema'"),
    (lambda: optimizers.get("lion"), ValueError, r"optimizer must be one of \['adadelta', .*got 'lion'"),
    (lambda: optimizers.get(dict), TypeError, r"optimizer must be a name, .*got the class dict"),
    (lambda: optimizers.SGD(momentum=1.5), ValueError, r"momentum must be a float between \[0, 1\].*got 1.5"),
    (lambda: optimizers.RMSprop(momentum=-0.1), ValueError, r"momentum must be a float between \[0, 1\]"),
    (lambda: optimizers.Adam(torch.nn.Linear(2, 2).parameters()), TypeError,
     r"Adam takes Keras's arguments, learning_rate first, not parameters: .*learning_rate of type generator"),
    (lambda: optimizers.SGD(lr=0.1), TypeError,
     r"SGD takes Keras's arguments: learning_rate=, not torch's lr="),
], ids=["two-clips", "lr", "beta", "clipnorm", "adamw-decay", "flag", "unknown-argument", "name",
        "other-class", "sgd-momentum", "rmsprop-momentum", "torch-params", "torch-lr"])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_one_optimizer_object_builds_on_one_model():
    adam = optimizers.Adam()
    first = Sequential([Dense(1, input_shape=(I,))])
    first.compile(optimizer=adam, loss="mse")
    first.fit(X, Y, verbose=0)
    assert first.optimizer is adam and adam.built
    second = Sequential([Dense(1, input_shape=(I,))])
    second.compile(optimizer=adam, loss="mse")
    with pytest.raises(ValueError, match="optimizer 'adam' is built on another model's weights"):
        second.fit(X, Y, verbose=0)


def test_an_optimizer_object_is_saved_and_training_resumes(tmp_path):
    """compile(optimizer=Adam(...)) with clipping and decay: the class and config are saved
    with the state, and the loaded model goes on exactly as the saved one."""
    x = RNG.normal(size=(12, 5, I))
    y = x[:, :, :1].mean(axis=1) - x[:, -1, 1:2]

    def model():
        torch.manual_seed(1)
        net = Sequential([LSTM(4, input_shape=(5, I)), Dense(1)])
        adam = optimizers.Adam(learning_rate=0.01, clipnorm=0.05, weight_decay=0.1)
        net.compile(optimizer=adam, loss="mse")
        return net

    def fit(net, epochs):
        net.fit(x, y, epochs=epochs, batch_size=4, shuffle=False, seed=0, verbose=0)

    whole, parted = model(), model()
    fit(whole, 4)
    fit(parted, 2)
    parted.optimizer.learning_rate = 0.005  # the current rate travels with the state
    whole.optimizer.learning_rate = 0.005
    parted.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded.optimizer) is optimizers.Adam
    assert loaded.optimizer.get_config() == parted.optimizer.get_config()
    assert loaded.optimizer.get_config()["clipnorm"] == 0.05
    fit(loaded, 2)
    fit(parted, 2)
    for a, b in zip(loaded.parameters(), parted.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_model_and_its_optimizer_deep_copy():
    """copy.deepcopy keeps the Keras side (config, rate, clipping hook), built or not."""
    model = Sequential([Dense(1, input_shape=(I,))])
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1, clipvalue=0.05), loss="mse")
    unbuilt = copy.deepcopy(model)
    assert not unbuilt.optimizer.built and unbuilt.optimizer.get_config() == model.optimizer.get_config()
    model.fit(X, 20 * Y, batch_size=N, verbose=0)
    twin = copy.deepcopy(model)
    for net in (model, twin):
        net.fit(X, 20 * Y, batch_size=N, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    assert twin.optimizer.param_groups[0]["params"][0] is next(twin.parameters())
    clipped = keras_reference(keras_sgd(lr=0.1, clip=lambda grads: [np.clip(g, -0.05, 0.05) for g in grads]),
                              [w.copy() for w in unbuilt.get_weights()], 4, y=20 * Y)
    for a, b in zip(twin.get_weights(), clipped, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_an_unbuilt_optimizer_is_a_torch_optimizer_and_builds_as_torchs():
    """Before build: one empty group with Keras's arguments in torch's names, so torch's API
    works (state_dict, zero_grad, a scheduler); build puts the weights in its place, with the
    rate set meanwhile, and the steps are torch.optim.Adam's with the same arguments."""
    adam = optimizers.Adam(learning_rate=0.5, beta_1=0.8, epsilon=1e-5)
    assert not adam.built and adam.state_dict()["param_groups"][0]["betas"] == (0.8, 0.999)
    adam.zero_grad()
    scheduler = torch.optim.lr_scheduler.StepLR(adam, step_size=1, gamma=0.5)
    adam.learning_rate = 0.02
    torch.manual_seed(3)
    ours = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    adam.build(ours)
    reference = torch.optim.Adam(theirs, lr=0.02, betas=(0.8, 0.999), eps=1e-5)
    assert adam.built and [len(g["params"]) for g in adam.param_groups] == [2]
    x = torch.randn(5, 4)
    for _ in range(3):
        for opt, (w, b) in ((adam, ours), (reference, theirs)):
            opt.zero_grad()
            ((x @ w + b) ** 2).mean().backward()
            opt.step()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    scheduler.step()
    assert adam.learning_rate == pytest.approx(0.01)  # the scheduler drives the group's rate
    with pytest.raises(ValueError, match="optimizer 'adam' holds no weights: build it"):
        optimizers.Adam().step()  # rnnkit.train.fit(optimizer=Adam()) would step it unbuilt


def test_compile_takes_a_class_of_this_module_and_refuses_other_classes():
    torch.manual_seed(0)
    model = Sequential([Dense(1, input_shape=(I,))])
    model.compile(optimizer=optimizers.Nadam, loss="mse")
    assert type(model.optimizer) is optimizers.Nadam and not model.optimizer.built
    model.fit(X, Y, batch_size=N, epochs=2, verbose=0)
    assert model.optimizer.get_config() == optimizers.Nadam().get_config()  # Keras's defaults
    assert model.optimizer.state_dict()["state"][0]["step"] == 2
    with pytest.raises(TypeError, match="optimizer must be a name, .*got the class Sequential"):
        model.compile(optimizer=Sequential, loss="mse")


def test_get_config_reads_what_load_state_dict_brought():
    """The hyperparameters that torch's groups hold come from the groups: another optimizer's
    state_dict gives its rate, betas and epsilon (the clipping, Keras's own, stays)."""
    params = [torch.nn.Parameter(torch.randn(3))]
    source = optimizers.Adam(learning_rate=0.03, beta_1=0.7, epsilon=1e-4)
    source.build(params)
    target = optimizers.Adam(clipnorm=2.0)
    target.build([torch.nn.Parameter(torch.randn(3))])
    target.load_state_dict(source.state_dict())
    config = target.get_config()
    assert config == {**source.get_config(), "clipnorm": 2.0}
    assert (config["learning_rate"], config["beta_1"], config["epsilon"]) == (0.03, 0.7, 1e-4)
    sgd = optimizers.SGD(momentum=0.0, nesterov=True)  # torch's group drops nesterov without momentum
    assert sgd.param_groups[0]["nesterov"] is False and sgd.get_config()["nesterov"] is True


def test_a_torch_optimizer_instance_trains_what_it_was_given_and_refuses_a_stray_learning_rate():
    """A torch optimizer instance keeps the parameters its user gave it, as in torch: a layer
    unfrozen later is not added (this module's optimizers add it); ``learning_rate =`` on it
    (torch reads param_groups) is refused."""
    torch.manual_seed(0)
    model = Sequential([Dense(2, input_shape=(I,)), Dense(1)])
    model.layers[0].trainable = False
    model.compile(optimizer=torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05),
                  loss="mse")
    model.fit(X, Y, batch_size=N, verbose=0)
    first = [w.copy() for w in model.layers[0].get_weights()]
    model.layers[0].trainable = True
    model.fit(X, Y, batch_size=N, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.layers[0].get_weights(), first, strict=True))
    model.optimizer.add_param_group({"params": list(model.layers[0].parameters())})  # torch's way
    model.fit(X, Y, batch_size=N, verbose=0)
    assert all(np.abs(a - b).max() > 0 for a, b in zip(model.layers[0].get_weights(), first, strict=True))
    model.optimizer.learning_rate = 0.5
    with pytest.raises(ValueError, match=r"torch.optim.SGD, .*learning_rate attribute \(0.5\) is not read"):
        model.fit(X, Y, batch_size=N, verbose=0)
