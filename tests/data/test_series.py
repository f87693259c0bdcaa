"""The .ts reader and the CSV readers, on small files written in tmp_path."""

import math
import zipfile
from pathlib import Path

import pytest
import torch

from rnnkit.data.series import DataError, fill_missing, find_test_file, read_ts, read_ts_values
from rnnkit.data.tables import UNK, Vocab, read_csv_series, read_text_csv, tokenize

HEADER = "# a comment\n@problemName Toy\n@timeStamps false\n"


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_univariate_equal_length(tmp_path):
    path = write(tmp_path, "U_TRAIN.ts", HEADER + "@univariate true\n@equalLength true\n@seriesLength 3\n"
                 "@classLabel true b a\n@data\n1.5,-2,3e-1:a\n\n4,5,6:b\n")
    data = read_ts(path)
    assert data.inputs.shape == (2, 3, 1)
    torch.testing.assert_close(data.inputs[:, :, 0], torch.tensor([[1.5, -2.0, 0.3], [4.0, 5.0, 6.0]]),
                               check_dtype=False)
    assert data.lengths_N.tolist() == [3, 3]
    assert data.classes == ("b", "a")  # declared order, not sorted
    assert data.labels_N.tolist() == [1, 0]


def test_values_with_labels_as_written(tmp_path):
    """read_ts_values takes any label, one the header does not declare too, and reads the same
    series as read_ts."""
    path = write(tmp_path, "V.ts", HEADER + "@univariate true\n@classLabel true a b\n@data\n1,?,2:a\n3:zz\n")
    inputs, lengths_N, labels = read_ts_values(path)
    assert labels == ["a", "zz"] and lengths_N.tolist() == [3, 1]
    torch.testing.assert_close(inputs[:, :, 0], torch.tensor([[1.0, math.nan, 2.0], [3.0, 0.0, 0.0]]),
                               equal_nan=True, check_dtype=False)
    with pytest.raises(DataError, match=r"V.ts:8: expected a label in \['a', 'b'\], got 'zz'"):
        read_ts(path)
    bare = write(tmp_path, "B.ts", HEADER + "@classLabel false\n@data\n1,2\n")
    assert read_ts_values(bare)[2] is None


def test_multivariate_varying_length(tmp_path):
    path = write(tmp_path, "M.ts", HEADER + "@univariate false\n@dimensions 2\n@equalLength false\n"
                 "@classLabel true x y\n@data\n1,2,3:4,5,6:y\n7:8:x\n9,10:11,12:x\n")
    data = read_ts(path)
    assert data.inputs.shape == (3, 3, 2)
    assert data.lengths_N.tolist() == [3, 1, 2]
    torch.testing.assert_close(data.inputs[0], torch.tensor([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]),
                               check_dtype=False)
    torch.testing.assert_close(data.inputs[2, :2], torch.tensor([[9.0, 11.0], [10.0, 12.0]]),
                               check_dtype=False)
    assert data.inputs[1, 1:].abs().sum() == 0  # padding is 0
    assert data.labels_N.tolist() == [1, 0, 0]


@pytest.mark.parametrize("rows, line, got", [
    ("1,2:3,4:a\n5:6:b\n7:8:9:a\n", 9, 3),  # more dimensions than the first series
    ("1,2:3,4:a\n5:6:b\n7,8:a\n", 9, 1),  # fewer: they were padded with 0, silently
])
def test_multivariate_without_dimensions_tag_keeps_the_first_series_dimensions(tmp_path, rows, line, got):
    """@univariate false without @dimensions: every series must have the first one's number of
    dimensions (it used to crash with an IndexError, or fill the missing ones with 0)."""
    path = write(tmp_path, "M.ts", HEADER + "@univariate false\n@classLabel true a b\n@data\n" + rows)
    expected = rf"M.ts:{line}: expected 2 dimension\(s\) like the first series \(line 7\), got {got}$"
    with pytest.raises(DataError, match=expected):
        read_ts(path)
    with pytest.raises(DataError, match=expected):
        read_ts_values(path)
    same = write(tmp_path, "S.ts", HEADER + "@univariate false\n@classLabel true a b\n@data\n"
                 "1,2:3,4:a\n5:6:b\n")
    assert read_ts(same).inputs.shape == (2, 2, 2)


def test_missing_values_become_nan_and_trailing_ones_shorten(tmp_path):
    path = write(tmp_path, "N.ts", HEADER + "@univariate true\n@equalLength false\n@classLabel true 1 2\n"
                 "@data\n1,?,3:1\n?,2,?,?:2\n")
    data = read_ts(path)
    assert data.lengths_N.tolist() == [3, 2]
    assert math.isnan(data.inputs[0, 1, 0]) and math.isnan(data.inputs[1, 0, 0])
    filled = fill_missing(data.inputs, data.lengths_N)
    # forward fill in row 0; row 1 starts missing: the first value after it
    torch.testing.assert_close(filled[:, :, 0], torch.tensor([[1.0, 1.0, 3.0], [2.0, 2.0, 0.0]]),
                               check_dtype=False)


# ItalyPowerDemand_TRAIN.ts rows 1 and 2 (UCR archive, via the aeon 1.6.0 wheel), 24 values each
ITALY = ["-0.71051757,-1.1833204,-1.3724416,-1.5930829,-1.4670021,-1.3724416,-1.0887599,0.045966947,"
         "0.92853223,1.0861332,1.2752543,0.96005242,0.61333034,0.014446758,-0.6474772,-0.26923494,"
         "-0.20619456,0.61333034,1.3698149,1.4643754,1.054613,0.58181015,0.1720477,-0.26923494",
         "-0.99300935,-1.4267865,-1.5798843,-1.6054006,-1.6309169,-1.3757539,-1.0185257,-0.35510183,"
         "0.71658276,1.2013925,1.1248436,1.0482947,0.79313166,0.46141977,0.48693607,0.56348497,"
         "0.61451757,0.30832197,0.25728936,1.0993273,1.0482947,0.69106647,-0.048906237,-0.38061813"]
EQUAL = "@missing true\n@univariate true\n@equalLength true\n@seriesLength {}\n@classLabel true 1 2\n@data\n"


def with_missing(row, *positions):
    values = row.split(",")
    for t in positions:
        values[t] = "?"
    return ",".join(values)


def test_equal_length_trailing_missing_values_are_values(tmp_path):
    """@equalLength true: a trailing '?' is a missing value (NaN), not padding; it counts toward
    @seriesLength and fill_missing carries the last value into it."""
    rows = [with_missing(ITALY[0], 5, 23), with_missing(ITALY[1], 22, 23)]
    path = write(tmp_path, "I.ts", HEADER + EQUAL.format(24) + f"{rows[0]}:1\n{rows[1]}:2\n")
    data = read_ts(path)
    assert data.inputs.shape == (2, 24, 1) and data.lengths_N.tolist() == [24, 24]
    missing = data.inputs[:, :, 0].isnan().nonzero().tolist()
    assert missing == [[0, 5], [0, 23], [1, 22], [1, 23]]
    filled = fill_missing(data.inputs, data.lengths_N)[:, :, 0]
    expected = torch.tensor([[float(v) for v in row.split(",")] for row in ITALY])
    expected[0, 5], expected[0, 23] = expected[0, 4], expected[0, 22]
    expected[1, 22:] = expected[1, 21]
    torch.testing.assert_close(filled, expected, check_dtype=False)
    inputs, lengths_N, labels = read_ts_values(path)  # the prediction path reads the same
    assert lengths_N.tolist() == [24, 24] and labels == ["1", "2"]
    torch.testing.assert_close(inputs, data.inputs, equal_nan=True)


def test_reviewer_case_twenty_entries_with_a_trailing_missing_one(tmp_path):
    """The reviewer's tsq3.ts: 20 entries, the last '?', for @seriesLength 20 (rejected before with
    'got 19'); a '?' in the middle was already a value."""
    body = "# tsq3\n" + HEADER + EQUAL.format(20).replace("1 2", "a b")
    for row in ([*map(str, range(1, 20)), "?"], ["1", "?", *map(str, range(3, 21))]):
        path = write(tmp_path, "tsq3.ts", body + ",".join(row) + ":b\n")
        inputs, lengths_N, labels = read_ts_values(path)
        assert lengths_N.tolist() == [20] and labels == ["b"]
        filled = fill_missing(inputs, lengths_N)[0, :, 0]
        assert filled.tolist() == [float(v) if v != "?" else float(row[row.index("?") - 1]) for v in row]


@pytest.mark.parametrize("entries, got", [(19, 19), (21, 21)])
def test_equal_length_count_includes_missing_values(tmp_path, entries, got):
    row = ",".join(["0.5"] * (entries - 1) + ["?"])
    path = write(tmp_path, "tsq3.ts", HEADER + EQUAL.format(20) + f"{row}:1\n")
    with pytest.raises(DataError, match=rf"tsq3.ts:10: expected 20 values per dimension "
                                        rf"\(@seriesLength\), got {got}$"):
        read_ts(path)


def test_equal_length_dimensions_count_missing_values(tmp_path):
    # 3 entries each, one dimension missing throughout: equal lengths, the dimension filled with 0
    path = write(tmp_path, "M.ts", HEADER + "@dimensions 2\n@equalLength true\n@classLabel true a\n@data\n"
                 "0.25,-1.5,?:?,?,?:a\n")
    data = read_ts(path)
    assert data.lengths_N.tolist() == [3]
    torch.testing.assert_close(fill_missing(data.inputs, data.lengths_N)[0],
                               torch.tensor([[0.25, 0.0], [-1.5, 0.0], [-1.5, 0.0]]), check_dtype=False)
    ragged = write(tmp_path, "R.ts", HEADER + "@dimensions 2\n@equalLength true\n@classLabel true a\n"
                   "@data\n0.25,-1.5,?:1,2:a\n")
    with pytest.raises(DataError, match=r"R.ts:8: expected equal lengths .*got dimension lengths \[3, 2\]"):
        read_ts(ragged)


@pytest.mark.parametrize("tag", ["@equalLength false\n", ""])
def test_varying_length_trailing_missing_values_are_padding(tmp_path, tag):
    # without @equalLength true, trailing '?' pad a shorter series (the reader's documented choice)
    rows = f"{with_missing(ITALY[0], 5, 22, 23)}:1\n{ITALY[1]}:2\n"
    path = write(tmp_path, "P.ts", HEADER + f"@missing true\n@univariate true\n{tag}@data\n" + rows)
    data = read_ts(path)
    assert data.lengths_N.tolist() == [22, 24]
    assert data.inputs[0, :, 0].isnan().nonzero().flatten().tolist() == [5]
    assert data.inputs[0, 22:].abs().sum() == 0  # padding is 0


AEON_WHEEL = Path.home() / ".cache" / "rnnkit" / "wheels" / "aeon-1.6.0-py3-none-any.whl"


@pytest.mark.skipif(not AEON_WHEEL.is_file(), reason="no aeon 1.6.0 wheel in ~/.cache/rnnkit/wheels "
                                                      "(benchmarks/classify_ucr.py fetches it)")
@pytest.mark.parametrize("name, shape, lengths", [
    ("JapaneseVowels_TRAIN", (270, 26, 12), (7, 26)),  # varying lengths: padding 0 after each
    ("JapaneseVowels_eq_TRAIN", (270, 25, 12), (25, 25)),
])
def test_bundled_japanese_vowels(tmp_path, name, shape, lengths):
    with zipfile.ZipFile(AEON_WHEEL) as zf:
        path = write(tmp_path, f"{name}.ts", zf.read(f"aeon/datasets/data/JapaneseVowels/{name}.ts"), "wb")
    data = read_ts(path)
    assert data.inputs.shape == shape and len(data.classes) == 9
    assert (int(data.lengths_N.min()), int(data.lengths_N.max())) == lengths
    valid_NT = torch.arange(shape[1])[None, :] < data.lengths_N[:, None]
    assert not data.inputs.isnan().any() and data.inputs[~valid_NT].abs().sum() == 0
    written = [len(line.split(":")[0].split(",")) for line in path.read_text().split("@data")[1].split()]
    assert data.lengths_N.tolist() == written  # every series keeps all the values written


def test_labels_sort_numerically_and_test_file_uses_training_classes(tmp_path):
    tags = "@univariate true\n@equalLength true\n@classLabel true\n@data\n"
    train = write(tmp_path, "A_TRAIN.ts", tags + "1:10\n2:2\n3:1\n")
    test = write(tmp_path, "A_TEST.ts", tags + "4:2\n5:10\n")
    data = read_ts(train)
    assert data.classes == ("1", "2", "10")
    assert find_test_file(train) == test
    assert read_ts(test, classes=data.classes).labels_N.tolist() == [1, 2]
    assert find_test_file(test) is None


def test_unlabelled_file(tmp_path):
    path = write(tmp_path, "P.ts", "@univariate true\n@classLabel false\n@data\n1,2\n3\n")
    data = read_ts(path)
    assert data.labels_N is None and data.lengths_N.tolist() == [2, 1]


@pytest.mark.parametrize("body, line, expected", [
    ("@univariate true\n@classLabel true a b\n@data\n1,2:a\n1,x:b\n", 5,
     "expected a number or '?' in dimension 0, got 'x'"),
    ("@univariate true\n@classLabel true a b\n@data\n1,2:c\n", 4, "expected a label in ['a', 'b'], got 'c'"),
    ("@dimensions 2\n@classLabel true a b\n@data\n1,2:a\n", 4, "expected 2 dimension(s) and a label"),
    ("@univariate true\n@classLabel true a b\n@data\n1,nan:a\n", 4, "expected a finite number"),
    ("@dimensions 2\n@equalLength true\n@classLabel true a\n@data\n1,2:3:a\n", 5, "expected equal lengths"),
    ("@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2:a\n", 5,
     "expected 3 values per dimension (@seriesLength), got 2"),
    ("@univariate true\n@classLabel true a\n@data\n1,2:\n", 4, "expected a class label"),
    ("@univariate true\n@classLabel true a\n@data\n:a\n", 4, "expected at least one value"),
    ("@univariate maybe\n@data\n", 1, "expected @univariate true|false, got 'maybe'"),
    ("@dimensions two\n@data\n", 1, "expected @dimensions <int >= 1>"),
    ("1,2:a\n", 1, "expected a @tag line or @data"),
    ("@targetLabel true\n@data\n", 1, "expected a classification file"),
])
def test_ts_errors_name_file_line_and_value(tmp_path, body, line, expected):
    path = write(tmp_path, "bad.ts", body)
    with pytest.raises(DataError) as err:
        read_ts(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert expected in str(err.value)


@pytest.mark.parametrize("content, expected", [
    ("", "expected data, got an empty file"),
    ("\n  \n", "expected data, got an empty file"),
    ("@univariate true\n", "expected an @data line"),
    ("@univariate true\n@data\n", "expected at least one series after @data"),
])
def test_ts_file_level_errors(tmp_path, content, expected):
    path = write(tmp_path, "bad.ts", content)
    with pytest.raises(DataError, match=expected):
        read_ts(path)


def test_undecodable_bytes_name_their_line(tmp_path):
    path = write(tmp_path, "bad.ts", b"@univariate true\n@data\n1,2:\xff\xfe\n", mode="wb")
    with pytest.raises(DataError, match=r"bad.ts:3: expected UTF-8 text, got undecodable byte\(s\) b'\\xff'"):
        read_ts(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_ts(tmp_path / "nope.ts")


def test_csv_series_with_header_and_ragged_rows(tmp_path):
    path = write(tmp_path, "s.csv", "label,v1,v2,v3\nup,1,2,3\ndown,3,2,\nup,0.5,1,\n")
    with pytest.raises(DataError, match=r"s.csv:3: expected a number, got ''"):
        read_csv_series(path)
    data = read_csv_series(path, ragged=True)
    assert data.inputs.shape == (3, 3, 1) and data.lengths_N.tolist() == [3, 2, 2]
    assert data.classes == ("down", "up") and data.labels_N.tolist() == [1, 0, 1]
    torch.testing.assert_close(data.inputs[1, :, 0], torch.tensor([3.0, 2.0, 0.0]),
                               check_dtype=False)


@pytest.mark.parametrize("content, line, expected", [
    ("a,1,2\nb,1,2,3\n", 2, "expected 3 columns like the first row"),
    ("a,1,2\nb,1,inf\n", 2, "expected a finite number, got 'inf'"),
    ("a,1,2\nb,NaN,2\n", 2, "expected a finite number, got 'NaN'"),
    ("a,1,2\nb,1,two\n", 2, "expected a number, got 'two'"),
    ("a,1\nb\n", 2, "expected 2 columns"),
])
def test_csv_series_errors(tmp_path, content, line, expected):
    path = write(tmp_path, "s.csv", content)
    with pytest.raises(DataError) as err:
        read_csv_series(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and expected in str(err.value)


def test_csv_series_unknown_label_at_test_time(tmp_path):
    path = write(tmp_path, "t.csv", "a,1,2\nc,3,4\n")
    with pytest.raises(DataError, match=r"t.csv:2: expected a label in \['a', 'b'\], got 'c'"):
        read_csv_series(path, classes=("a", "b"))


@pytest.mark.parametrize("content, labelled, line, expected", [
    # the QA case: no header, a typo in the first row; it used to be skipped as a header
    ("a,12,1x3,14\nb,1,2,3\n", True, 1, "expected a number, got '1x3' in column 3; a first row with numbers"),
    ("12,1x3,14\n1,2,3\n", False, 1, "expected a number, got '1x3' in column 2; a first row with numbers"),
    ("\n\n7,8,oops\n1,2,3\n", False, 3, "got 'oops' in column 3"),  # blank lines keep their numbers
    ("a,1,nan\nb,2,3\n", True, 1, "expected a finite number, got 'nan' in column 3"),  # nan is a number
])
def test_csv_series_first_row_with_a_typo_is_data_not_a_header(tmp_path, content, labelled, line, expected):
    path = write(tmp_path, "s.csv", content)
    with pytest.raises(DataError) as err:
        read_csv_series(path, labelled=labelled)
    assert str(err.value).startswith(f"{path}:{line}: ") and expected in str(err.value)


@pytest.mark.parametrize("content, labelled, ragged, values, labels", [
    ("label,v1,v2\na,1,2\nb,3,-4\n", True, False, [[1, 2], [3, -4]], ["a", "b"]),
    ("a,1,2\nb,3,-4\n", True, False, [[1, 2], [3, -4]], ["a", "b"]),
    # the label column does not count: numeric labels under a word header
    ("class,t0,t1\n0,1.5,2\n1,3,4e1\n", True, False, [[1.5, 2], [3, 40]], ["0", "1"]),
    ("t0,t1\n1.5,2\n3,4\n", False, False, [[1.5, 2], [3, 4]], None),
    # blank header cells of a ragged file are not numbers either
    ("label,v1,v2,\na,1,2,3\nb,5,,\n", True, True, [[1, 2, 3], [5, 0, 0]], ["a", "b"]),
])
def test_csv_series_header_is_a_first_row_without_numbers(tmp_path, content, labelled, ragged, values,
                                                          labels):
    data = read_csv_series(write(tmp_path, "s.csv", content), labelled=labelled, ragged=ragged)
    torch.testing.assert_close(data.inputs[..., 0], torch.tensor(values, dtype=torch.float32))
    if labels is not None:
        assert [data.classes[i] for i in data.labels_N.tolist()] == labels


def test_csv_series_header_argument_overrides_the_guess(tmp_path):
    numbered = write(tmp_path, "n.csv", "label,0,1,2\na,5,6,7\nb,8,9,10\n")  # pandas' column names
    assert read_csv_series(numbered, header=False).classes == ("a", "b", "label")
    data = read_csv_series(numbered, header=True)
    assert data.classes == ("a", "b") and data.inputs[:, :, 0].tolist() == [[5, 6, 7], [8, 9, 10]]
    bad = write(tmp_path, "b.csv", "label,0,1,2\na,5,x,7\n")
    with pytest.raises(DataError, match=r"b.csv:2: expected a number, got 'x' in column 3 \('1'\)$"):
        read_csv_series(bad, header=True)  # the header's name for the column, too
    one = write(tmp_path, "one.csv", "1x3\n2\n3\n")  # one value column: a typo reads as a name
    assert read_csv_series(one, labelled=False).inputs[:, 0, 0].tolist() == [2, 3]
    with pytest.raises(DataError, match=r"one.csv:1: expected a number, got '1x3' in column 1$"):
        read_csv_series(one, labelled=False, header=False)


def test_text_csv_vocab_from_training_file_only(tmp_path):
    train = write(tmp_path, "train.csv", 'label,text\npos,"Good, very good!"\nneg,bad movie\n')
    test = write(tmp_path, "test.csv", "neg,a bad plot\n")
    data, vocab = read_text_csv(train)
    assert tokenize("Good, very good!") == ["good", ",", "very", "good", "!"]
    assert vocab.tokens[:3] == ("<pad>", "<unk>", "good")  # most frequent first
    assert data.lengths_N.tolist() == [5, 2] and data.classes == ("neg", "pos")
    assert data.inputs[1, 2:].tolist() == [0, 0, 0]
    test_data, same = read_text_csv(test, classes=data.classes, vocab=vocab)
    assert same is vocab
    assert test_data.inputs[0].tolist() == [UNK, vocab.encode(["bad"])[0], UNK]
    assert Vocab.from_json(vocab.to_json()) == vocab


@pytest.mark.parametrize("content, line, expected", [
    ("pos,fine\nneg,too,many\n", 2, "expected 2 columns (label,text"),
    ("pos,fine\nneg, ...\n", None, None),
    ("pos,fine\nneg,  \n", 2, "expected a text with at least one token"),
])
def test_text_csv_errors(tmp_path, content, line, expected):
    path = write(tmp_path, "t.csv", content)
    if expected is None:  # punctuation is a token
        assert read_text_csv(path)[0].lengths_N.tolist() == [1, 3]
        return
    with pytest.raises(DataError) as err:
        read_text_csv(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and expected in str(err.value)


def test_text_csv_undecodable(tmp_path):
    path = write(tmp_path, "t.csv", b"pos,ok\nneg,caf\xe9\n", mode="wb")
    with pytest.raises(DataError, match="t.csv:2: expected UTF-8 text"):
        read_text_csv(path)


def test_class_order_is_the_same_in_every_process():
    """sorted(set, key=float) left equal numbers ("1", "1.0") in the set's order, which
    PYTHONHASHSEED changes, and "nan" broke the numeric order: two runs of one command
    trained different models."""
    import os
    import subprocess
    import sys

    from rnnkit.data.series import sorted_labels

    assert sorted_labels(["10", "2", "1", "2"]) == ("1", "2", "10")
    assert sorted_labels(["1.0", "01", "1", "0.5"]) == ("0.5", "01", "1", "1.0")
    assert sorted_labels(["10", "nan", "1", "2"]) == ("1", "10", "2", "nan")  # text order
    assert sorted_labels(["b", "a", "10"]) == ("10", "a", "b")
    code = "from rnnkit.data.series import sorted_labels as s; print(s(['1.0', '1', 'nan', '10', '01', '2']))"
    orders = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(4)}
    assert len(orders) == 1
