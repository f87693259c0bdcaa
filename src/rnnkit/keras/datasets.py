"""Small data sets for the Keras-style examples, read from ``rnnkit/data``."""

from __future__ import annotations

import csv
import io
from importlib.resources import files

import numpy as np


def airline() -> np.ndarray:
    """The Box & Jenkins airline passengers series (Series G; R's ``AirPassengers``):
    monthly totals of international airline passengers in thousands, January 1949 to
    December 1960, as a float64 array of shape (144,). See ``rnnkit/data/README.md``."""
    text = files("rnnkit.data").joinpath("airline.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return np.array([float(row["passengers"]) for row in rows])
