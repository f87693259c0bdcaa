"""Learning-rate and teacher-forcing schedules: pure functions of the step, golden values."""

import math

import pytest

from rnnkit.train import TrainConfig, lr_at, teacher_forcing_at


def test_warmup_then_cosine():
    cfg = TrainConfig(lr=1.0, schedule="cosine", warmup_steps=4, min_lr_ratio=0.2)
    # warm-up: lr * (step + 1) / 4
    assert [lr_at(s, 0.0, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # cosine from 1.0 to 0.2: 0.2 + 0.8 * (1 + cos(pi p)) / 2
    assert lr_at(10, 0.0, cfg) == 1.0
    assert lr_at(10, 0.5, cfg) == pytest.approx(0.6)
    assert lr_at(10, 1.0, cfg) == pytest.approx(0.2)
    assert lr_at(10, 7.0, cfg) == pytest.approx(0.2)  # past the budget: stays at the floor
    assert lr_at(10, 0.25, cfg) == pytest.approx(0.2 + 0.4 * (1 + math.cos(math.pi / 4)))


def test_linear_constant_and_plateau():
    assert lr_at(5, 0.75, TrainConfig(lr=2.0, schedule="linear")) == pytest.approx(0.5)
    assert lr_at(5, 0.75, TrainConfig(lr=2.0)) == 2.0
    assert lr_at(5, 0.75, TrainConfig(lr=2.0, schedule="plateau")) == 2.0  # torch scales it


@pytest.mark.parametrize("kind, step, expected", [
    ("constant", 50, 0.9),
    ("linear", 0, 0.9), ("linear", 50, 0.9 + (0.1 - 0.9) * 0.5), ("linear", 500, 0.1),
    ("exponential", 100, 0.1 + 0.8 * math.exp(-1)),
    ("inverse_sigmoid", 0, 0.1 + 0.8 * 100 / 101),
    ("inverse_sigmoid", 100, 0.1 + 0.8 * 100 / (100 + math.e)),
    ("inverse_sigmoid", 10**9, 0.1),
])
def test_teacher_forcing_schedules(kind, step, expected):
    cfg = TrainConfig(teacher_forcing=kind, teacher_forcing_start=0.9, teacher_forcing_end=0.1,
                      teacher_forcing_steps=100)
    assert teacher_forcing_at(step, cfg) == pytest.approx(expected)


@pytest.mark.parametrize("field, value, message", [
    ("lr", 0, "lr must be a finite number > 0, got 0"),
    ("lr", float("nan"), "lr must be a finite number > 0, got nan"),
    ("epochs", 0, "epochs must be an int >= 1, got 0"),
    ("bptt", 2.5, "bptt must be None or an int >= 1, got 2.5"),
    ("clip_norm", -1.0, "clip_norm must be None or a finite number > 0, got -1.0"),
    ("optimizer", "adagrad", r"optimizer must be one of \['adam', 'adamw', 'sgd', 'rmsprop'\], got 'ada"),
    ("teacher_forcing_end", 1.5, "teacher_forcing_end must be a number in \\[0, 1\\], got 1.5"),
    ("amp", "fp8", "amp must be one of"),
    ("betas", (0.9,), "betas must be two numbers in \\[0, 1\\)"),
])
def test_config_errors_name_field_expectation_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})
