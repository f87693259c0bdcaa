"""ReduceLROnPlateau and LearningRateScheduler against Keras 3's rules (keras/src/callbacks/
reduce_lr_on_plateau.py, learning_rate_scheduler.py): by hand on a sequence of values, and
through fit, where every full-batch SGD step must move the weights by -lr · gradient with the
rate the callback set (rnnkit's loop would otherwise reset it each step)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit.keras import Dense, Sequential, optimizers
from rnnkit.keras.callbacks import Callback, LambdaCallback, LearningRateScheduler, ReduceLROnPlateau

N, I = 16, 3
RNG = np.random.default_rng(5)
X = RNG.normal(size=(N, I))
Y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.2 * RNG.normal(size=(N, 1))


class CheckSteps(Callback):
    """Before each (full-batch) step, the weights and their gradient; after it, that the
    step was -lr · gradient with the optimizer's rate; keeps the rates used."""

    def __init__(self):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        params = list(self.model.parameters())
        loss = F.mse_loss(self.model(X), torch.as_tensor(Y))
        self.before = [p.detach().clone() for p in params]
        self.grads = torch.autograd.grad(loss, params)
        self.lr = optimizers.get_learning_rate(self.model.optimizer)  # a torch optimizer's too

    def on_train_batch_end(self, batch, logs=None):
        for p, p0, g in zip(self.model.parameters(), self.before, self.grads, strict=True):
            torch.testing.assert_close(p.detach(), p0 - self.lr * g)
        self.rates.append(self.lr)


def sgd_model(lr=0.1, *, torch_sgd=False):
    """A Dense(1) with rnnkit's SGD, or with a torch.optim.SGD instance (``torch_sgd``)."""
    torch.manual_seed(0)
    model = Sequential([Dense(1, input_shape=(I,))])
    sgd = torch.optim.SGD(model.parameters(), lr=lr) if torch_sgd else optimizers.SGD(learning_rate=lr)
    model.compile(optimizer=sgd, loss="mse")
    return model


class _Model:
    def __init__(self, lr):
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_reduce_on_plateau_by_hand():
    """patience 2, factor 0.5, cooldown 1, min_lr 0.2 (worked through Keras's on_epoch_end):
    reductions at epochs 3 and 5, then to min_lr at 7; at 9 the rate is not above
    float32(min_lr), so it stays. ``learning_rate`` in logs is the rate the epoch ran with."""
    callback = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    model = _Model(lr=1.0)
    callback.set_model(model)
    callback.on_train_begin()
    logged = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.96, 0.97, 0.98, 0.98]):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
    assert logged == pytest.approx([1, 1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2])
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.2)
    # min_delta: a gain of 0.05 is no improvement when 0.1 is asked; accuracy goes up
    callback = ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1, min_delta=0.1)
    model = _Model(lr=1.0)
    callback.set_model(model)
    for epoch, value in enumerate([0.5, 0.55, 0.9]):
        callback.on_epoch_end(epoch, {"val_accuracy": value})
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # at epoch 1 only


def test_reduce_on_plateau_in_fit_sets_the_rate_the_steps_use():
    # min_delta larger than any change: after the first epoch every epoch is a plateau
    checks = CheckSteps()
    model = sgd_model(lr=0.1)
    history = model.fit(X, Y, batch_size=N, epochs=4, shuffle=False, verbose=0,
                        callbacks=[ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0),
                                   checks])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert checks.rates == pytest.approx([0.1, 0.1, 0.05, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.0125)
    checks.rates.clear()  # the rate set at the last epoch's end is the next fit's
    model.fit(X, Y, batch_size=N, epochs=1, shuffle=False, verbose=0, callbacks=[checks])
    assert checks.rates == pytest.approx([0.0125])


def test_scheduler_keras_docstring_example():
    """Keras's: SGD() (0.01), the rate kept for 10 epochs then times exp(-0.1): after 15
    epochs round(lr, 5) == 0.00607 (inputs scaled, so that plain SGD stays finite)."""
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * math.exp(-0.1)

    torch.manual_seed(0)
    model = Sequential([Dense(10)])
    model.compile(optimizers.SGD(), loss="mse")
    assert round(model.optimizer.learning_rate, 5) == 0.01
    history = model.fit(np.arange(100).reshape(5, 20) / 100, np.zeros((5, 10)), epochs=15,
                        callbacks=[LearningRateScheduler(scheduler)], verbose=0)
    assert round(model.optimizer.learning_rate, 5) == 0.00607
    assert history.history["learning_rate"] == pytest.approx(
        [0.01] * 10 + [0.01 * math.exp(-0.1 * k) for k in range(1, 6)])


def test_scheduler_one_argument_form_drives_the_steps(capsys):
    checks = CheckSteps()
    model = sgd_model()
    model.fit(X, Y, batch_size=N, epochs=3, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch: 0.2 / (epoch + 1), verbose=1), checks])
    assert checks.rates == pytest.approx([0.2, 0.1, 0.2 / 3])
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.1." in capsys.readouterr().out


def test_scheduler_must_return_a_float_and_factor_must_reduce():
    with pytest.raises(ValueError, match=r"The output of the `schedule` function should be a float. Got: 1"):
        sgd_model().fit(X, Y, verbose=0, callbacks=[LearningRateScheduler(lambda epoch, lr: 1)])
    with pytest.raises(ValueError, match=r"factor must be a number in \[0, 1\) .*got 1.5"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau cannot tell whether monitor='val_f1'"):
        ReduceLROnPlateau(monitor="val_f1")


@pytest.mark.parametrize("torch_sgd", [False, True], ids=["rnnkit-SGD", "torch-SGD"])
def test_a_torch_scheduler_stepped_by_a_callback_sets_the_rate_the_steps_use(torch_sgd):
    """torch's StepLR (halve every 2 steps) stepped after each full-batch step: the steps run
    at 0.1, 0.1, 0.05, 0.05, 0.025, 0.025 (the loop used to put the compiled rate back)."""
    checks = CheckSteps()
    model = sgd_model(lr=0.1, torch_sgd=torch_sgd)
    holder = {}

    def begin(logs):
        holder["scheduler"] = torch.optim.lr_scheduler.StepLR(model.optimizer, step_size=2, gamma=0.5)

    stepper = LambdaCallback(on_train_begin=begin,
                             on_train_batch_end=lambda batch, logs: holder["scheduler"].step())
    model.fit(X, Y, batch_size=N, epochs=6, shuffle=False, verbose=0, callbacks=[checks, stepper])
    assert checks.rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize("torch_sgd", [False, True], ids=["rnnkit-SGD", "torch-SGD"])
def test_param_groups_written_by_a_callback_and_keras_callbacks_on_a_torch_optimizer(torch_sgd):
    """A rate written into param_groups at an epoch's start is the one its steps use, and
    LearningRateScheduler and ReduceLROnPlateau work on a torch optimizer instance too."""
    checks = CheckSteps()
    model = sgd_model(lr=0.1, torch_sgd=torch_sgd)

    def write(epoch, logs):
        for group in model.optimizer.param_groups:
            group["lr"] = [0.2, 0.03, 0.07][epoch]

    model.fit(X, Y, batch_size=N, epochs=3, shuffle=False, verbose=0,
              callbacks=[LambdaCallback(on_epoch_begin=write), checks])
    assert checks.rates == pytest.approx([0.2, 0.03, 0.07])
    checks.rates.clear()
    history = model.fit(X, Y, batch_size=N, epochs=4, shuffle=False, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1)),
        ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0), checks])
    # the scheduler sets each epoch's rate at its start; the plateau halves it at epochs 1-3's ends
    assert checks.rates == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    assert optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.0125)
