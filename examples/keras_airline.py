"""The classic Keras example on rnnkit: a SimpleRNN forecasts the airline passengers series.

Windows of 10 months predict the next month. The series is min-max scaled with the
training part only (1949-1958); the last 24 months (1959-1960) are held out, and the
RNN's one-step forecasts there are compared with the naive forecast "next = last".

    python examples/keras_airline.py
"""

import numpy as np
import torch

from rnnkit.keras import Dense, Sequential, SimpleRNN, datasets

WINDOW, HELD_OUT = 10, 24


def windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """x (N, window, 1): ``window`` consecutive values; y (N, 1): the value after them."""
    x = np.stack([series[k:k + window] for k in range(len(series) - window)])
    return x[..., None], series[window:, None]


def main() -> None:
    torch.manual_seed(0)
    passengers = datasets.airline()  # (144,) monthly, 1949-01 .. 1960-12
    split = len(passengers) - HELD_OUT
    lo, hi = passengers[:split].min(), passengers[:split].max()  # training part only
    scaled = (passengers - lo) / (hi - lo)

    x, y = windows(scaled, WINDOW)
    n_train = split - WINDOW  # windows whose target lies in the training part
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]

    model = Sequential([SimpleRNN(50, input_shape=(WINDOW, 1)), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.summary()
    model.fit(x_train, y_train, epochs=200, batch_size=16, verbose=0)

    pred = model.predict(x_test) * (hi - lo) + lo
    naive = x_test[:, -1] * (hi - lo) + lo
    truth = y_test * (hi - lo) + lo
    for label, guess in (("SimpleRNN", pred), ("naive (last value)", naive)):
        mse, mae = np.mean((guess - truth) ** 2), np.mean(np.abs(guess - truth))
        print(f"{label:>20}: MSE {mse:8.1f}  MAE {mae:5.1f}  (thousands of passengers, "
              f"last {HELD_OUT} months)")


if __name__ == "__main__":
    main()
