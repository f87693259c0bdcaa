"""One time series from a CSV file: a target column, optional covariate columns and an
optional time column, for forecasting.

    series = read_series_csv("airline.csv", target="passengers", time_col="month")
    series.values_NF      # (N, 1 + covariates) float64, the target first
    series.season         # 12: inferred from the monthly time column

The file has a header row naming the columns. A first row of numbers and times only reads
as data, and is an error unless ``target``, ``time_col`` or ``covariates`` name one of its
cells (a file without a header would otherwise lose its first row as column names). Every
value must be a finite number: a missing or non-numeric value is a ``DataError`` naming
file, line, column and value (fill gaps before forecasting; silently interpolating would
change what is being forecast).
Times, when given, must increase; they are parsed as ISO dates (``1949-01``,
``2000-06-05``, ``2000-06-05 00:30``) or as plain numbers.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.data.series import DataError, decode_lines, is_number

# seasonal period by time step: the cycle a seasonal-naive forecast repeats
_SEASONS = {np.timedelta64(30, "m"): 48, np.timedelta64(1, "h"): 24, np.timedelta64(1, "D"): 7,
            np.timedelta64(7, "D"): 52}
_MONTH_SEASONS = {1: 12, 3: 4}


@dataclass(frozen=True)
class TimeSeries:
    """Shapes: values_NF (N, F) float64, column 0 the target; times (N,) datetime64 or float64, or None."""

    values_NF: np.ndarray
    names: tuple[str, ...]  # target first, then covariates
    times: np.ndarray | None
    path: Path | None = None

    def __len__(self) -> int:
        return self.values_NF.shape[0]

    @property
    def target_N(self) -> np.ndarray:
        return self.values_NF[:, 0]

    @property
    def season(self) -> int:
        """The seasonal period implied by the time step (monthly 12, quarterly 4, half-hourly
        48, hourly 24, daily 7, weekly 52), else 1."""
        step = time_step(self.times)
        if isinstance(step, tuple):
            return _MONTH_SEASONS.get(step[1], 1)
        return _SEASONS.get(step, 1) if isinstance(step, np.timedelta64) else 1

    def future_times(self, horizon: int) -> np.ndarray:
        """The ``horizon`` times after the last one, one step apart (steps 1..H when there
        is no time column)."""
        if self.times is None:
            return np.arange(len(self) + 1, len(self) + horizon + 1, dtype=np.float64)
        step = time_step(self.times)
        k = np.arange(1, horizon + 1)
        if isinstance(step, tuple):  # calendar months: after 31 Jan comes 29 Feb, not 2 Mar
            months_K = self.times[-1].astype("datetime64[M]") + k * step[1]
            if _month_end(self.times.astype("datetime64[D]")).all() and len(self) > 1:
                return ((months_K + 1).astype("datetime64[D]") - 1).astype(self.times.dtype)
            offset = self.times[-1] - self.times[-1].astype("datetime64[M]").astype(self.times.dtype)
            return months_K.astype(self.times.dtype) + offset
        future = self.times[-1] + k * step
        # 3.2 + 0.1 is 3.3000000000000003: decimal steps are rounded back to what was meant
        return np.round(future, 10) if future.dtype.kind == "f" else future


def bundled_airline() -> Path:
    """The embedded Box-Jenkins airline series (``month,passengers``; see data/README.md)."""
    return Path(str(files("rnnkit.data").joinpath("airline.csv")))


def read_series_csv(path: str | Path, *, target: str | None = None, time_col: str | None = None,
                    covariates: Sequence[str] = ()) -> TimeSeries:
    """Read the target (and covariates) from a CSV with a header row.

    Arguments:
        target: the column to forecast; None: the only column that is neither ``time_col``
            nor a covariate.
        time_col: a column of increasing times (ISO dates or numbers); None: no times.
        covariates: extra input columns, observed up to the forecast origin.

    Raises:
        DataError: missing or unknown columns, ragged rows, non-finite values, times that
            do not increase, or fewer than 2 rows.
    """
    path = Path(path)
    lines = decode_lines(path)
    numbers = [number for number, _ in lines]
    rows = [next(csv.reader([line])) for _, line in lines]
    if len(rows) < 3:
        raise DataError(path, None, f"expected a header and at least 2 rows, got {len(rows)} lines")
    header = [name.strip() for name in rows[0]]
    _check_header(path, numbers[0], header, named={target, time_col, *covariates})
    for name in (time_col, *covariates):  # named by the user: missing ones first, by name
        if name is not None:
            _column(path, header, name)
    target = _pick_target(path, header, target, time_col, covariates)
    columns = [_column(path, header, name) for name in (target, *covariates)]
    values, raw_times = [], []
    for number, fields in zip(numbers[1:], rows[1:], strict=True):
        if len(fields) != len(header):
            raise DataError(path, number, f"expected {len(header)} columns like the header, "
                                          f"got {len(fields)}")
        values.append([_value(path, number, header[c], fields[c]) for c in columns])
        if time_col is not None:
            raw_times.append(fields[_column(path, header, time_col)].strip())
    times = None if time_col is None else _parse_times(path, numbers[1:], raw_times)
    return TimeSeries(np.asarray(values, dtype=np.float64), (target, *covariates), times, path)


def time_step(times: np.ndarray | None) -> np.timedelta64 | tuple[str, int] | float | None:
    """The most common gap between times: ``("months", k)`` for calendar months (dates on
    the same day of each month, or each on its month's last day), a timedelta64 for other
    dates, a float for numbers."""
    if times is None or len(times) < 2:
        return None
    gaps, months = _time_gaps(times)
    if months and np.all(gaps == gaps[0]) and gaps[0] >= 1:
        return ("months", int(gaps[0]))
    return _most_common(np.diff(times))


def _monthly(times: np.ndarray) -> bool:
    """Every time on the first time's day of the month and clock, or all at month ends."""
    offset_N = times - times.astype("datetime64[M]").astype(times.dtype)
    return bool(np.all(offset_N == offset_N[0]) or np.all(_month_end(times.astype("datetime64[D]"))))


def _month_end(days_N: np.ndarray) -> np.ndarray:
    return (days_N + 1).astype("datetime64[M]") != days_N.astype("datetime64[M]")


# -- pieces ------------------------------------------------------------------------------------


def _check_header(path: Path, number: int, header: list[str], named: set[str | None]) -> None:
    """Refuse a header row that reads as data: every cell a number or an ISO time, and no
    cell asked for by name (``target="0"`` accepts pandas' header ``0``)."""
    if named & set(header) or not all(_reads_as_value(name) for name in header):
        return
    raise DataError(path, number, f"expected a header row naming the columns, got {header}, which reads as "
                                  f"a row of values; add a first line naming the columns (e.g. "
                                  f"month,passengers), or pass target= if these are the names")


def _reads_as_value(text: str) -> bool:
    """A number, or an ISO time (they start with a digit: 'today' and 'now' parse too)."""
    if is_number(text):
        return True
    try:
        return text[:1].isdigit() and not np.isnat(np.datetime64(text.replace(" ", "T")))
    except ValueError:
        return False


def _pick_target(path: Path, header: list[str], target: str | None, time_col: str | None,
                 covariates: Sequence[str]) -> str:
    if target is not None:
        return target
    rest = [name for name in header if name != time_col and name not in covariates]
    if len(rest) != 1:
        raise DataError(path, 1, f"expected the column to forecast to be named (data.target, --target: "
                                 f"one of {rest}; or name the time column, data.time_col, --time-col); "
                                 f"got none and {len(rest)} candidate columns")
    return rest[0]


def _column(path: Path, header: list[str], name: str) -> int:
    if name not in header:
        raise DataError(path, 1, f"expected a column named {name!r}; the header has {header}")
    return header.index(name)


def _value(path: Path, number: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(path, number, f"expected a number in column {column!r}, got {text!r}") from None
    if not math.isfinite(value):
        raise DataError(path, number, f"expected a finite number in column {column!r} (fill missing "
                                      f"values first), got {text!r}")
    return value


_UTC_OFFSET = re.compile(r"\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$")


def _parse_times(path: Path, numbers: list[int], raw: list[str]) -> np.ndarray:
    try:
        times = np.array([float(t) for t in raw], dtype=np.float64)
    except ValueError:
        times = None
    if times is None:
        parsed = []
        for number, text in zip(numbers, raw, strict=True):
            if _UTC_OFFSET.search(text.strip()):  # numpy would convert it to UTC, silently
                raise DataError(path, number, f"expected a time without a UTC offset (times are taken as "
                                              f"written: all local or all UTC), got {text!r}")
            try:
                parsed.append(np.datetime64(text.replace(" ", "T")))
            except ValueError:
                raise DataError(path, number, f"expected a time (ISO date such as 1949-01 or "
                                              f"2000-06-05 00:30, or a number), got {text!r}") from None
        times = np.array(parsed).astype(np.result_type(*[t.dtype for t in parsed]))
    bad = np.flatnonzero(np.diff(times) <= np.diff(times).dtype.type(0))
    if len(bad):
        i = int(bad[0]) + 1
        raise DataError(path, numbers[i], f"expected times to increase, got {raw[i]!r} after {raw[i - 1]!r}")
    return times


def check_regular_times(series: TimeSeries) -> None:
    """Refuse times that are not one step apart, the step being the most common gap.

    Windows, seasonal naive and future times all count rows as equal steps, and the season
    comes from the most common gap: one missing month left gaps of 28-31 days, so the season
    fell silently from 12 to 1. Dates on one day of each month (or all on month ends) are
    compared in calendar months, other dates in their own unit, numbers to a tenth of the
    step (decimals such as 0.1 do not subtract exactly, and files round their times).

    Raises:
        DataError: naming the file, the line of the first time after a wrong gap, the step
            and the gap.
    """
    times = series.times
    if times is None or len(times) < 3:  # no times, or a single gap: nothing to compare
        return
    gaps_N, months = _time_gaps(times)
    if gaps_N.dtype.kind == "f":
        # the mode of the gaps rounded past parse noise, then one of those gaps as parsed:
        # a step of 1e-10 rounded to 9 decimals would be 0
        rounded_N = np.round(gaps_N, 9)
        step = gaps_N[np.argmax(rounded_N == _most_common(rounded_N))]
        # a tenth of the step: rounding in the file (decimal years to 4 places) and of large
        # times (epoch seconds) stays far inside it, a missing row (a gap of 2 steps) far outside
        off_N = np.abs(gaps_N - step) > 0.1 * abs(step)
    else:
        step = _most_common(gaps_N)
        off_N = gaps_N != step
    if not off_N.any():
        return
    i = int(np.flatnonzero(off_N)[0]) + 1  # the row after the first wrong gap
    line = None if series.path is None else decode_lines(series.path)[i + 1][0]  # after the header
    raise DataError(series.path or "", line,
                    f"expected evenly spaced times, {_duration(step, months)} apart (the most common "
                    f"step), got {_duration(gaps_N[i - 1], months)} from {_time(times[i - 1])} to "
                    f"{_time(times[i])}; forecasting treats rows as equal steps: add the missing rows, "
                    f"or leave out the time column (data.time_col, --time-col) and set data.season")


def _time_gaps(times_N: np.ndarray) -> tuple[np.ndarray, bool]:
    """The gaps between times, and whether they count calendar months (see ``time_step``)."""
    if times_N.dtype.kind == "M" and _monthly(times_N):
        return np.diff(times_N.astype("datetime64[M]")).astype(np.int64), True
    return np.diff(times_N), False


def _most_common(gaps_N: np.ndarray) -> Any:
    """The most frequent gap (ties: the smallest)."""
    values, counts = np.unique(gaps_N, return_counts=True)
    return values[counts.argmax()]


def _duration(gap: Any, months: bool) -> str:
    """A gap for a message: "1 month", "2 days", "30 minutes", "0.5"."""
    if months:
        return f"{int(gap)} month{'s' if gap != 1 else ''}"
    if not isinstance(gap, np.timedelta64):
        return f"{float(gap):.15g}"
    for unit, name in (("W", "week"), ("D", "day"), ("h", "hour"), ("m", "minute"), ("s", "second")):
        count = gap / np.timedelta64(1, unit)
        if count == round(count):
            return f"{int(count)} {name}{'s' if count != 1 else ''}"
    return str(gap)


def _time(t: Any) -> str:
    return str(t) if isinstance(t, np.datetime64) else f"{float(t):.15g}"
