"""The classic Keras example, as written, on the embedded airline series: a SimpleRNN beats
the naive last-value forecast on the held-out last 24 months."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rnnkit.keras import Dense, Sequential, SimpleRNN, datasets

ROOT = Path(__file__).resolve().parents[2]
WINDOW, HELD_OUT = 10, 24


def test_airline_series():
    passengers = datasets.airline()
    assert passengers.shape == (144,) and passengers.dtype == np.float64
    assert passengers[:12].tolist() == [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
    assert passengers[-1] == 432 and passengers.sum() == 40363  # R: sum(AirPassengers)


def test_airline_csv_is_up_to_date():
    spec = importlib.util.spec_from_file_location("make_series", ROOT / "tools" / "make_series.py")
    make_series = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_series)
    if not make_series.WHEEL.exists():
        pytest.skip(f"the pmdarima wheel is not at {make_series.WHEEL}")
    want = make_series.render(make_series.values_from_wheel(make_series.WHEEL))
    assert make_series.OUT.read_text(encoding="utf-8") == want


def test_simple_rnn_beats_naive_forecast():
    passengers = datasets.airline()
    split = len(passengers) - HELD_OUT
    lo, hi = passengers[:split].min(), passengers[:split].max()  # scale on the training part
    scaled = (passengers - lo) / (hi - lo)
    x = np.stack([scaled[k:k + WINDOW] for k in range(len(scaled) - WINDOW)])[..., None]
    y = scaled[WINDOW:, None]
    n_train = split - WINDOW
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    assert len(x_test) == HELD_OUT

    model = Sequential([SimpleRNN(50, input_shape=(WINDOW, 1)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, epochs=150, batch_size=16, verbose=0)

    unscale = lambda v: v * (hi - lo) + lo
    truth, rnn, naive = unscale(y_test), unscale(model.predict(x_test)), unscale(x_test[:, -1])
    mse = {k: float(np.mean((v - truth) ** 2)) for k, v in (("rnn", rnn), ("naive", naive))}
    mae = {k: float(np.mean(np.abs(v - truth))) for k, v in (("rnn", rnn), ("naive", naive))}
    assert mse["rnn"] < 0.8 * mse["naive"] and mae["rnn"] < mae["naive"], (
        f"held-out MSE rnn {mse['rnn']:.0f} vs naive {mse['naive']:.0f}, "
        f"MAE rnn {mae['rnn']:.1f} vs naive {mae['naive']:.1f}")
