"""rnnkit.data.tables: headers (guessed and given), the UCR 2018 .tsv layout, texts without
labels, and the hints in its messages."""

import math

import pytest
import torch

from rnnkit.data.series import DataError
from rnnkit.data.tables import Vocab, read_csv_series, read_text_csv, read_texts, tokenize

REVIEWS = 'neg,"ugly, sad film"\npos,lovely nice\nneg,dull plot\npos,"good, fine"\n'


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- text CSV headers --------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["label,text", "sentiment,review", "Category,Review Text",
                                   "y,comment_text"])
def test_text_csv_header_is_guessed(tmp_path, first):
    """A first row whose label is no other row's, while the others repeat as classes do, and
    whose text is a column name: a header (it used to be a training row and a fake class,
    but for exactly label,text)."""
    data, vocab = read_text_csv(write(tmp_path, "t.csv", f"{first}\n{REVIEWS}"))
    assert data.classes == ("neg", "pos") and len(data) == 4
    assert data.labels_N.tolist() == [0, 1, 0, 1]
    assert "review" not in vocab.tokens and "sad" in vocab.tokens


@pytest.mark.parametrize("first", [
    "neg,a film",  # its label is another row's: data
    'meh,"this one was neither good nor bad, in the end"',  # a sentence, not a column name
    'meh,"ok, I guess"',  # punctuation: not a column name
])
def test_text_csv_first_row_that_is_data(tmp_path, first):
    data, _ = read_text_csv(write(tmp_path, "t.csv", f"{first}\n{REVIEWS}"))
    assert len(data) == 5


def test_text_csv_header_needs_repeating_labels(tmp_path):
    """Labels that never repeat (ids, say, in a file to predict) are no classes to tell a
    header's name from: the first row is data."""
    data, _ = read_text_csv(write(tmp_path, "t.csv", "a,review\nb,good\nc,bad\n"))
    assert len(data) == 3


def test_text_csv_header_argument(tmp_path):
    path = write(tmp_path, "t.csv", f"sentiment,review\n{REVIEWS}")
    data, _ = read_text_csv(path, header=False)
    assert data.classes == ("neg", "pos", "sentiment") and len(data) == 5
    plain = write(tmp_path, "p.csv", REVIEWS)
    data, _ = read_text_csv(plain, header=True)
    assert len(data) == 3 and data.labels_N.tolist() == [1, 0, 1]
    with pytest.raises(DataError, match=r"h.csv: expected data rows after the header, got none"):
        read_text_csv(write(tmp_path, "h.csv", "neg,sad\n"), header=True)


def test_text_csv_test_file_header_against_the_training_classes(tmp_path):
    """A test file's first label is checked against the training classes: a rare class on
    line 1 is data, a column name a header."""
    train, vocab = read_text_csv(write(tmp_path, "train.csv", REVIEWS))
    test = write(tmp_path, "test.csv", "sentiment,review\nneg,sad\npos,good\n")  # no label repeats
    data, _ = read_text_csv(test, classes=train.classes, vocab=vocab)
    assert data.labels_N.tolist() == [0, 1]
    rare = write(tmp_path, "rare.csv", "pos,nice\nneg,sad\nneg,ugly\n")
    assert read_text_csv(rare, classes=train.classes, vocab=vocab)[0].labels_N.tolist() == [1, 0, 0]


# -- texts without labels ----------------------------------------------------------------------


def test_read_texts_one_per_line(tmp_path):
    """The whole line is the text, commas included; a line that is one quoted CSV field is
    read as that field; a first line 'text' (a one-column CSV's header) is skipped."""
    vocab = Vocab(("<pad>", "<unk>", "good", "film", ",", "bad"))
    path = write(tmp_path, "new.txt", 'text\ngood film\nbad, bad film\n"good, bad"\n\n  film  \n')
    data = read_texts(path, vocab=vocab)
    assert data.labels_N is None and len(data) == 4
    assert data.lengths_N.tolist() == [2, 4, 3, 1]
    assert data.inputs[1].tolist() == [5, 4, 5, 3] and data.inputs[2, :3].tolist() == [2, 4, 5]
    assert len(read_texts(path, vocab=vocab, header=False)) == 5  # "text" is a word, unknown
    assert len(read_texts(write(tmp_path, "n.txt", "good\nbad\n"), vocab=vocab, header=True)) == 1
    assert read_texts(path, vocab=vocab, max_tokens=2).lengths_N.tolist() == [2, 2, 2, 1]


def test_read_texts_errors(tmp_path):
    vocab = Vocab(("<pad>", "<unk>"))
    with pytest.raises(DataError, match=r"e.txt:2: expected a text with at least one token, got ''$"):
        read_texts(write(tmp_path, "e.txt", 'fine\n""\n'), vocab=vocab)
    with pytest.raises(DataError, match=r"h.txt: expected texts after the header, got none"):
        read_texts(write(tmp_path, "h.txt", "text\n"), vocab=vocab)
    with pytest.raises(DataError, match=r"x.txt: expected data, got an empty file"):
        read_texts(write(tmp_path, "x.txt", "\n\n"), vocab=vocab)


# -- series headers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["label", "Class", "target", "y"])
def test_pandas_header_of_numbers_is_a_header(tmp_path, name):
    """pandas' to_csv writes a label column's name then 0,1,...,n-1: a header, not a class."""
    path = write(tmp_path, "s.csv", f"{name},0,1,2,3\na,5,6,7,8\nb,8,9,10,11\n")
    data = read_csv_series(path)
    assert data.classes == ("a", "b") and data.inputs[:, :, 0].tolist() == [[5, 6, 7, 8], [8, 9, 10, 11]]


@pytest.mark.parametrize("content, n", [
    ("neg,0,1,2\npos,2,1,0\n", 2),  # a class, then a rising series: data
    ("label,0,2,3\na,1,2,3\n", 2),  # not 0,1,...: data (a class named label)
    ("0,0,1,2\n1,2,1,0\n", 2),  # a numeric label: data
])
def test_first_rows_of_numbers_are_data(tmp_path, content, n):
    assert len(read_csv_series(write(tmp_path, "s.csv", content))) == n


# -- the UCR 2018 archive's .tsv ---------------------------------------------------------------


def test_tsv_is_tab_separated_and_nan_padded(tmp_path):
    """UCR 2018: label then values, tab-separated, no header; varying-length series padded
    with NaN at the end (cut off), missing values NaN (kept, for fill_missing)."""
    path = write(tmp_path, "X_TRAIN.tsv", "1\t0.5\t1.5\t2.5\n-1\t3\tNaN\t4\n1\t7\t8\tNaN\n-1\t9\tnan\tNaN\n")
    data = read_csv_series(path)
    assert data.classes == ("-1", "1") and data.labels_N.tolist() == [1, 0, 1, 0]
    assert data.lengths_N.tolist() == [3, 3, 2, 1]
    x = data.inputs[:, :, 0]
    assert x[0].tolist() == [0.5, 1.5, 2.5] and x[2, :2].tolist() == [7, 8]
    assert x[1, 0] == 3 and math.isnan(x[1, 1]) and x[1, 2] == 4  # a missing value
    assert x[3, 0] == 9 and x[3, 1:].tolist() == [0, 0]  # padding: 0 beyond the length
    with pytest.raises(DataError, match=r"b.tsv:2: expected a label and at least one value"):
        read_csv_series(write(tmp_path, "b.tsv", "1\t2\t3\n2\tNaN\tNaN\n"))
    with pytest.raises(DataError, match=r"c.csv:2: expected a finite number, got 'NaN'"):
        read_csv_series(write(tmp_path, "c.csv", "1,2,3\n2,NaN,NaN\n"))  # a CSV keeps its rule


def test_values_under_another_separator_hint_at_it(tmp_path):
    """A .tsv of commas, a CSV of tabs or of spaces (the pre-2018 UCR archive's layout)."""
    expected = r"it looks like values separated by '{}', but a .tsv file is read tab-separated"
    with pytest.raises(DataError, match=r"s.tsv:1: expected a label and at least one value, got "
                                        r"\['1,2,3'\]; " + expected.format(",")):
        read_csv_series(write(tmp_path, "s.tsv", "1,2,3\n1,2,3\n"))
    with pytest.raises(DataError, match=r"u.tsv:2: expected a number, got '1,2,3' in column 1 .*"
                                        + expected.format(",")):
        read_csv_series(write(tmp_path, "u.tsv", "1,2,3\n1,2,3\n"), labelled=False)
    with pytest.raises(DataError, match=r"s.csv:1: .*got \['1 0.5 2'\]; " + expected.format(" ")):
        read_csv_series(write(tmp_path, "s.csv", "1 0.5 2\n2 1 0\n"))


# -- hints -------------------------------------------------------------------------------------


def test_a_csv_of_texts_read_as_series_hints_at_data_format_text(tmp_path):
    path = write(tmp_path, "t.csv", REVIEWS)
    with pytest.raises(DataError, match=r"t.csv:2: expected a number, got 'lovely nice' in column 2 "
                                        r"\('ugly, sad film'\); a CSV of label,text rows is read with "
                                        r"data.format=text \(--set data.format=text\)$"):
        read_csv_series(path)
    with pytest.raises(DataError, match=r"got 'two' in column 3$"):  # one word: a typo, no hint
        read_csv_series(write(tmp_path, "s.csv", "a,1,2\nb,1,two\n"))


def test_ragged_rows_name_the_cli_setting(tmp_path):
    with pytest.raises(DataError, match=r"s.csv:2: expected 3 columns like the first row \(label and 2 "
                                        r"values; for varying lengths pass ragged=True, --set "
                                        r"data.ragged=true\), got 4"):
        read_csv_series(write(tmp_path, "s.csv", "a,1,2\nb,1,2,3\n"))


def test_tokenize_is_unchanged():
    assert tokenize("Good, very good!") == ["good", ",", "very", "good", "!"]
    assert torch.equal(torch.tensor(Vocab(("<pad>", "<unk>", "a")).encode(["a", "b"])), torch.tensor([2, 1]))
