"""Evenly spaced times: what the forecast task reads (``read_data``) refuses and accepts.

The check lives in ``rnnkit.data.timeseries.check_regular_times``; it is tested here, beside the
reader's tests, because it is about the time column of the file.
"""

import numpy as np
import pytest

from rnnkit.data.series import DataError
from rnnkit.data.timeseries import bundled_airline
from rnnkit.tasks.forecast import DataSection, read_data


def write(tmp_path, times, name="s.csv", header="t,v"):
    """A file whose values swing (sin plus a trend), one row per time."""
    values = 50 + 10 * np.sin(np.arange(len(times)) * 0.7) + np.arange(len(times))
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{t},{v:.3f}\n" for t, v in zip(times, values, strict=True)))
    return path


def read(path, time_col="t"):
    return read_data(DataSection(path=str(path), time_col=time_col))


def months(start, n, every=1):
    first = np.datetime64(start, "M")
    return [str(first + k * every) for k in range(n)]


def test_a_missing_month_of_the_airline_series_is_refused_with_file_line_step_and_gap(tmp_path):
    # the reviewer's case: sed '50d' drops 1953-01; the season fell silently from 12 to 1
    lines = bundled_airline().read_text().splitlines()
    assert lines[49].startswith("1953-01")
    gap = tmp_path / "gap.csv"
    gap.write_text("\n".join(lines[:49] + lines[50:]) + "\n")
    with pytest.raises(DataError) as err:
        read(gap, time_col="month")
    assert str(err.value).startswith(f"{gap}:50: expected evenly spaced times, 1 month apart (the most "
                                     f"common step), got 2 months from 1952-12 to 1953-02; ")
    assert read_data(DataSection()).season == 12  # the whole series is still monthly


@pytest.mark.parametrize("times, season", [
    (months("2000-01", 30), 12),
    (months("2000-01", 30, every=3), 4),  # quarterly
    ([str(np.datetime64(m, "M") + 1 - np.timedelta64(1, "D")) for m in months("2000-01", 30)], 12),  # ends
    ([f"2000-01-{d:02d}" for d in range(1, 29)], 7),
    ([f"2000-06-05 {h:02d}:{m:02d}" for h in range(10) for m in (0, 30)], 48),
    (list(range(1949, 1961)), 1),  # years as numbers
    ([f"{1000 + 0.1 * k:.1f}" for k in range(40)], 1),  # decimals do not subtract exactly
    ([f"{k}e-10" for k in range(40)], 1),  # a step below the rounding that finds the common one
])
def test_evenly_spaced_times_are_read_with_their_season(tmp_path, times, season):
    assert read(write(tmp_path, times)).season == season


def test_a_file_without_a_time_column_keeps_working(tmp_path):
    path = write(tmp_path, [3, 1, 2, 9, 4], header="v,w")  # rows are the steps; no times to check
    series = read_data(DataSection(path=str(path), target="w"))
    assert series.times is None and series.season == 1 and len(series) == 5


def drop(times, *rows):
    return [t for i, t in enumerate(times) if i not in rows]


@pytest.mark.parametrize("times, line, step, gap, before, after", [
    (drop(months("2000-01", 30, every=3), 5), 7, "3 months", "6 months", "2001-01", "2001-07"),
    (drop([f"2000-01-{d:02d}" for d in range(1, 29)], 9, 10), 11, "1 day", "3 days", "2000-01-09",
     "2000-01-12"),
    (drop([f"2000-06-05 {h:02d}:{m:02d}" for h in range(10) for m in (0, 30)], 3), 5, "30 minutes",
     "1 hour", "2000-06-05T01:00", "2000-06-05T02:00"),
    (drop(list(range(1949, 1961)), 4), 6, "1", "2", "1952", "1954"),
    (drop([f"{1000 + 0.5 * k:.1f}" for k in range(30)], 20), 22, "0.5", "1", "1009.5", "1010.5"),
    # 40 missing months, as in `rnnkit forecast RUN --data file`
    (drop(months("1949-01", 144), *range(60, 100)), 62, "1 month", "41 months", "1953-12", "1957-05"),
])
def test_a_gap_names_the_line_after_it_the_step_and_the_gap(tmp_path, times, line, step, gap, before,
                                                            after):
    path = write(tmp_path, times)
    with pytest.raises(DataError) as err:
        read(path)
    assert str(err.value).startswith(f"{path}:{line}: expected evenly spaced times, {step} apart (the most "
                                     f"common step), got {gap} from {before} to {after}; ")


def test_the_line_counts_blank_lines_and_a_first_gap_is_found(tmp_path):
    path = write(tmp_path, drop(months("2000-01", 24), 1))  # 2000-02 missing: the first gap is wrong
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:2] + ["", ""] + rows[2:]) + "\n")  # two blank lines before it
    with pytest.raises(DataError, match=r"s\.csv:5: .* got 2 months from 2000-01 to 2000-03"):
        read(path)


@pytest.mark.parametrize("times", [
    [f"{1600000000 + 0.1 * k:.1f}" for k in range(30)],  # epoch seconds at 10 Hz
    [f"{1990 + k / 12:.4f}" for k in range(30)],  # decimal years, rounded in the file
    [f"{2450000 + k / 24:.6f}" for k in range(30)],  # hourly Julian days
], ids=["epoch-seconds", "decimal-years", "julian-days"])
def test_rounded_or_large_float_times_pass_and_a_missing_row_does_not(times, tmp_path):
    """float64 rounding of 1.6e9 + 0.1 k, and times rounded when written, leave gaps within a
    tenth of the step (they failed a relative 1e-6); a missing row doubles one gap."""
    assert read(write(tmp_path, times)).times is not None
    with pytest.raises(DataError, match=r"s\.csv:12: expected evenly spaced times"):
        read(write(tmp_path, times[:10] + times[11:]))
