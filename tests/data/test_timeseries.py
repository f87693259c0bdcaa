"""read_series_csv: columns, times, seasons and every kind of bad file."""

import numpy as np
import pytest

from rnnkit.data.series import DataError
from rnnkit.data.timeseries import bundled_airline, read_series_csv


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bundled_airline_is_monthly_with_season_12():
    series = read_series_csv(bundled_airline(), target="passengers", time_col="month")
    assert len(series) == 144 and series.names == ("passengers",)
    assert series.target_N[:3].tolist() == [112, 118, 132] and series.season == 12
    assert [str(t) for t in series.future_times(3)] == ["1961-01", "1961-02", "1961-03"]


def test_target_and_covariates_in_order(tmp_path):
    path = write(tmp_path, "t,a,b,c\n1,10,0.5,7\n2,11,0.25,8\n3,12,0.125,9\n")
    series = read_series_csv(path, target="c", time_col="t", covariates=("a",))
    np.testing.assert_array_equal(series.values_NF, [[7, 10], [8, 11], [9, 12]])
    assert series.season == 1 and series.future_times(2).tolist() == [4.0, 5.0]


def test_half_hourly_dates_give_48_and_calendar_months_keep_the_day(tmp_path):
    rows = "".join(f"2000-06-05 {h:02d}:{m:02d},{h}\n" for h in range(3) for m in (0, 30))
    series = read_series_csv(write(tmp_path, "time,load\n" + rows), time_col="time")
    assert series.season == 48 and str(series.future_times(1)[0]) == "2000-06-05T03:00"
    months = read_series_csv(write(tmp_path, "d,v\n2000-01-31,1\n2000-02-29,2\n2000-03-31,3\n", "m.csv"),
                             time_col="d")
    assert str(months.future_times(2)[1]) == "2000-05-31"  # month ends stay month ends


def test_target_is_the_only_other_column_or_must_be_named(tmp_path):
    assert read_series_csv(write(tmp_path, "t,v\n1,5\n2,6\n"), time_col="t").names == ("v",)
    with pytest.raises(DataError, match=r"data.target, --target: one of \[.v., .w.\]"):
        read_series_csv(write(tmp_path, "t,v,w\n1,5,1\n2,6,1\n", "two.csv"), time_col="t")


@pytest.mark.parametrize("text, message", [
    ("t,v\n1,5\n2,nan\n3,4\n", "finite"),
    ("t,v\n1,5\n2,x\n3,4\n", "expected a number in column 'v'"),
    ("t,v\n1,5\n2,6,7\n3,4\n", "expected 2 columns"),
    ("t,v\n1,5\n1,6\n3,4\n", "increase"),
    ("t,v\n2000-01,5\nJanuary,6\n", "expected a time"),
    ("t,v\n1,5\n", "at least 2 rows"),
    ("", "empty file"),
])
def test_bad_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_series_csv(write(tmp_path, text), target="v", time_col="t")


def test_unknown_column_lists_the_header(tmp_path):
    with pytest.raises(DataError, match=r"column named 'load'.*\['t', 'v'\]"):
        read_series_csv(write(tmp_path, "t,v\n1,5\n2,6\n"), target="load")


@pytest.mark.parametrize("text, kwargs, cells", [
    ("1949-01,112\n1949-02,118\n1949-03,132\n", {}, "['1949-01', '112']"),
    ("112\n118\n132\n", {}, "['112']"),  # one column: its first value would become its name
    ("2000-06-05 00:30,5\n2000-06-05 01:00,6\n2000-06-05 01:30,7\n", {"target": "v"},
     "['2000-06-05 00:30', '5']"),
])
def test_a_file_without_a_header_is_refused(tmp_path, text, kwargs, cells):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_series_csv(path, **kwargs)
    assert str(err.value) == (f"{path}:1: expected a header row naming the columns, got {cells}, which reads "
                              f"as a row of values; add a first line naming the columns (e.g. "
                              f"month,passengers), or pass target= if these are the names")


def test_a_header_with_some_or_named_numbers_is_a_header(tmp_path):
    series = read_series_csv(write(tmp_path, "t,2020\n1,5\n2,6\n"), time_col="t")  # a year as a name
    assert series.names == ("2020",) and series.target_N.tolist() == [5, 6]
    pandas = write(tmp_path, "0\n5\n6\n", "p.csv")  # pandas writes an unnamed Series under '0'
    assert read_series_csv(pandas, target="0").target_N.tolist() == [5, 6]
    with pytest.raises(DataError, match="expected a header row"):
        read_series_csv(pandas)
    words = read_series_csv(write(tmp_path, "today,now\n1,5\n2,6\n", "w.csv"), time_col="today")
    assert words.names == ("now",)  # numpy parses 'today' and 'now' as times; as names they stay names


def test_decimal_steps_give_the_times_that_were_meant(tmp_path):
    """3.2 + 0.1 is 3.3000000000000003 in binary: the CSV printed the noise."""
    series = read_series_csv(write(tmp_path, "t,v\n" + "".join(f"{i / 10:.1f},{i % 3}\n" for i in range(33))),
                             time_col="t")
    assert series.future_times(3).tolist() == [3.3, 3.4, 3.5]


@pytest.mark.parametrize("time", ["2024-03-31T02:00+01:00", "2024-03-31 02:00Z", "2024-03-31T02:00:00-0500"])
def test_a_utc_offset_is_refused_not_converted(tmp_path, time):
    """numpy read 02:00+01:00 as 01:00 UTC and wrote the forecast's times in UTC, silently."""
    with pytest.raises(DataError, match=r"s.csv:3: expected a time without a UTC offset \(times are taken as "
                                        r"written: all local or all UTC\), got '" + time.replace("+", r"\+")):
        read_series_csv(write(tmp_path, f"t,v\n2024-03-31T01:00,1\n{time},2\n"), time_col="t")
