"""Labelled series for classification: the ``Labelled`` container and a UCR/UEA ``.ts`` reader.

The ``.ts`` format (sktime/aeon; Bagnall et al., the UEA & UCR archives)::

    # comments
    @problemName JapaneseVowels
    @univariate false
    @dimensions 12
    @equalLength false
    @seriesLength 29          (equal-length problems only)
    @classLabel true 1 2 3    (the declared labels; "false": the file has no label column)
    @data
    v1,v2,...:v1,v2,...:label (one segment per dimension, then the label)

Missing values are written ``?`` and read as NaN, for ``fill_missing`` to fill. In an
``@equalLength true`` file every ``?`` is a value, trailing ones too: each series has the
declared length, so a ``?`` at its end cannot be padding, and it counts toward
``@seriesLength`` (sktime and aeon read it so). Elsewhere (``@equalLength false`` or no such
tag) a segment's trailing ``?`` are cut off, since some archives pad varying-length series
that way; this deviates from sktime, which keeps them as NaN. Every error is a ``DataError``
naming the file, the line, what was expected and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor


class DataError(ValueError):
    """A data file that cannot be read as asked; the message names file, line and value."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = Path(path), line


@dataclass(frozen=True)
class Labelled:
    """Padded sequences with class labels.

    Shapes:
        inputs: (N, T, D) float (series, padding 0) or (N, T) int64 (token ids, padding 0);
        lengths_N: (N,) int64 in [1, T]; labels_N: (N,) int64 indices into ``classes``,
        or None for a file without labels.
    """

    inputs: Tensor
    lengths_N: Tensor
    labels_N: Tensor | None
    classes: tuple[str, ...]
    source: Path

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, rows_M: Tensor) -> Labelled:
        """The rows ``rows_M``, with the time axis cut to their longest sequence."""
        lengths_M = self.lengths_N[rows_M]
        T = int(lengths_M.max())
        labels = None if self.labels_N is None else self.labels_N[rows_M]
        return Labelled(self.inputs[rows_M][:, :T], lengths_M, labels, self.classes, self.source)


def read_ts(path: str | Path, *, classes: Sequence[str] | None = None) -> Labelled:
    """Read a UCR/UEA ``.ts`` file into float tensors.

    Arguments:
        path: the ``.ts`` file.
        classes: the label names of the training set (for a test file): a label outside them
            is an error. None: the ``@classLabel`` names in declared order, else the sorted
            labels found.

    Returns:
        ``Labelled`` with inputs (N, T_max, D); missing values NaN, padding 0.
    """
    path = Path(path)
    header, rows, labels, row_lines = _read_rows(path)
    declared = header.get("classlabel")
    known = tuple(classes) if classes is not None else declared
    if header["labelled"] is False:
        labels_N, names = None, tuple(classes or ())
    else:
        names = known if known is not None else sorted_labels(labels)
        labels_N = encode_labels(path, labels, row_lines, names)
    inputs, lengths_N = pad_series(rows)
    return Labelled(inputs, lengths_N, labels_N, tuple(names), path)


def read_ts_values(path: str | Path) -> tuple[Tensor, Tensor, list[str] | None]:
    """The series of a ``.ts`` file and its labels as written, whatever they are (for
    prediction, where a label outside the training classes, or outside the file's own
    ``@classLabel`` names, is no error).

    Returns:
        ``(inputs, lengths_N, labels)``: inputs (N, T_max, D) float32, missing values NaN,
        padding 0; labels one string per series, or None for ``@classLabel false``.
    """
    path = Path(path)
    header, rows, labels, _ = _read_rows(path)
    inputs, lengths_N = pad_series(rows)
    return inputs, lengths_N, None if header["labelled"] is False else labels


def _read_rows(path: Path) -> tuple[dict, list[list[list[float]]], list, list[int]]:
    """The header, each series' per-dimension values, its label (None when unlabelled) and
    its line number."""
    lines = decode_lines(path)
    header, start = _read_header(path, lines)
    rows, labels, row_lines = [], [], []
    for number, line in lines[start:]:
        segments, label = _split_row(path, number, line, header)
        if rows and len(segments) != len(rows[0]):  # only without @dimensions: _split_row checks that
            raise DataError(path, number, f"expected {len(rows[0])} dimension(s) like the first series "
                                          f"(line {row_lines[0]}), got {len(segments)}")
        rows.append(segments)
        labels.append(label)
        row_lines.append(number)
    if not rows:
        raise DataError(path, None, "expected at least one series after @data, got none")
    return header, rows, labels, row_lines


def find_test_file(train_path: str | Path) -> Path | None:
    """``X_TEST.ts`` beside ``X_TRAIN.ts`` (same suffix for other formats), if it exists."""
    train_path = Path(train_path)
    stem = train_path.stem
    for a, b in (("_TRAIN", "_TEST"), ("_train", "_test"), ("-train", "-test")):
        if stem.endswith(a):
            candidate = train_path.with_name(stem[: -len(a)] + b + train_path.suffix)
            return candidate if candidate.is_file() else None
    return None


def pad_series(rows: Sequence[Sequence[Sequence[float]]]) -> tuple[Tensor, Tensor]:
    """Rows of per-dimension value lists -> (N, T_max, D) padded with 0, and lengths (N,).
    A row's length is its longest dimension; shorter dimensions are padded with NaN."""
    D = len(rows[0])
    assert all(len(row) == D for row in rows), "the readers check the dimensions of every row"
    lengths = [max(len(seg) for seg in row) for row in rows]
    x_NTD = torch.zeros(len(rows), max(lengths), D, dtype=torch.float32)
    for n, row in enumerate(rows):
        x_NTD[n, : lengths[n]] = math.nan
        for d, seg in enumerate(row):
            x_NTD[n, : len(seg), d] = torch.tensor(seg, dtype=torch.float32)
    return x_NTD, torch.tensor(lengths, dtype=torch.long)


def fill_missing(x_NTD: Tensor, lengths_N: Tensor) -> Tensor:
    """NaN within each sequence's valid steps -> the last value before it (forward fill),
    or the first value after it at the start; a feature missing throughout becomes 0."""
    x = x_NTD.clone()
    N, T, _ = x.shape
    valid_NT = torch.arange(T)[None, :] < lengths_N[:, None]
    for t in range(1, T):  # forward fill
        x[:, t] = torch.where(x[:, t].isnan(), x[:, t - 1], x[:, t])
    for t in range(T - 2, -1, -1):  # backward fill what the start left
        x[:, t] = torch.where(x[:, t].isnan(), x[:, t + 1], x[:, t])
    x = torch.nan_to_num(x, nan=0.0)
    return torch.where(valid_NT[..., None], x, torch.zeros_like(x))


def read_utf8(path: Path) -> str:
    """The whole file as strict UTF-8 (a BOM is dropped); a DataError names the file and,
    for undecodable bytes, the line and the bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, "expected a file, got a directory") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(path, line, f"expected UTF-8 text, got undecodable byte(s) "
                                    f"{data[err.start:err.end]!r}") from None


def decode_lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-blank lines as (1-based number, stripped text); strict UTF-8."""
    text = read_utf8(path)
    lines = [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]
    if not lines:
        raise DataError(path, None, "expected data, got an empty file")
    return lines


def _read_header(path: Path, lines: list[tuple[int, str]]) -> tuple[dict, int]:
    """Tags up to ``@data``: ``dimensions``, ``equallength``, ``serieslength``,
    ``classlabel`` (names or None), ``labelled``; and the index of the first data line."""
    header: dict = {"labelled": None}
    for index, (number, line) in enumerate(lines):
        if line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise DataError(path, number, f"expected a @tag line or @data before the data, got {line[:60]!r}")
        tag, _, rest = line[1:].partition(" ")
        tag, words = tag.lower(), rest.split()
        if tag == "data":
            return header, index + 1
        if tag in ("univariate", "equallength", "timestamps", "missing"):
            header[tag] = _bool(path, number, tag, words)
        elif tag in ("dimensions", "serieslength"):
            if len(words) != 1 or not words[0].isdigit() or int(words[0]) < 1:
                raise DataError(path, number, f"expected @{tag} <int >= 1>, got {rest!r}")
            header[tag] = int(words[0])
        elif tag == "classlabel":
            header["labelled"] = _bool(path, number, tag, words[:1])
            header["classlabel"] = tuple(words[1:]) if header["labelled"] and words[1:] else None
        elif tag == "targetlabel":
            raise DataError(path, number, "expected a classification file (@classLabel), got "
                                          "@targetLabel (a regression problem)")
    raise DataError(path, None, "expected an @data line, got none")


def _bool(path: Path, number: int, tag: str, words: list[str]) -> bool:
    if len(words) != 1 or words[0].lower() not in ("true", "false"):
        raise DataError(path, number, f"expected @{tag} true|false, got {' '.join(words)!r}")
    return words[0].lower() == "true"


def _split_row(path: Path, number: int, line: str, header: dict) -> tuple[list[list[float]], str | None]:
    parts = line.split(":")
    D = header.get("dimensions", 1 if header.get("univariate", True) else None)
    labelled = header["labelled"] is not False
    segments, label = (parts[:-1], parts[-1].strip()) if labelled else (parts, None)
    if D is not None and len(segments) != D:
        raise DataError(path, number, f"expected {D} dimension(s){' and a label' if labelled else ''} "
                                      f"separated by ':', got {len(parts)} field(s)")
    if labelled and not label:
        raise DataError(path, number, "expected a class label after the last ':', got nothing")
    equal = bool(header.get("equallength"))
    values = [_segment(path, number, d, seg, padded=not equal) for d, seg in enumerate(segments)]
    if equal and len({len(v) for v in values}) > 1:
        raise DataError(path, number, f"expected equal lengths (@equalLength true), got dimension "
                                      f"lengths {[len(v) for v in values]}")
    expected = header.get("serieslength")
    if equal and expected is not None and len(values[0]) != expected:
        raise DataError(path, number, f"expected {expected} values per dimension (@seriesLength), "
                                      f"got {len(values[0])}")
    return values, label


def _segment(path: Path, number: int, d: int, text: str, *, padded: bool) -> list[float]:
    """One dimension's values, ``?`` as NaN; with ``padded``, trailing ``?`` are cut off."""
    words = [w.strip() for w in text.split(",")]
    while padded and words and words[-1] == "?":  # padding of a shorter, varying-length series
        words.pop()
    if not words or words == [""]:
        raise DataError(path, number, f"expected at least one value in dimension {d}, got {text!r}")
    values = []
    for word in words:
        if word == "?":
            values.append(math.nan)
            continue
        try:
            value = float(word)
        except ValueError:
            raise DataError(path, number,
                            f"expected a number or '?' in dimension {d}, got {word!r}") from None
        if not math.isfinite(value):
            raise DataError(path, number, f"expected a finite number (write '?' for a missing "
                                          f"value) in dimension {d}, got {word!r}")
        values.append(value)
    return values


def encode_labels(path: Path, labels: Sequence[str], row_lines: Sequence[int],
                  names: Sequence[str]) -> Tensor:
    """Label strings -> indices into ``names``; an unknown label names its line."""
    index = {name: i for i, name in enumerate(names)}
    for label, number in zip(labels, row_lines, strict=True):
        if label not in index:
            raise DataError(path, number, f"expected a label in {list(names)}, got {label!r}")
    return torch.tensor([index[label] for label in labels], dtype=torch.long)


def is_number(word: str) -> bool:
    """Whether ``float`` reads ``word`` (nan and inf included: the readers refuse those later,
    with their own message)."""
    try:
        float(word)
    except ValueError:
        return False
    return True


def sorted_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The distinct labels, in numeric order when all are finite numbers ("2" before "10"),
    equal numbers ("1", "1.0") by their text; else in text order. The same order in every
    process (a set's order depends on PYTHONHASHSEED, and float("nan") sorts nowhere)."""
    distinct = sorted(set(labels))
    try:
        values = [float(label) for label in distinct]
    except ValueError:
        return tuple(distinct)
    if not all(math.isfinite(v) for v in values):
        return tuple(distinct)
    return tuple(label for _, label in sorted(zip(values, distinct, strict=True)))
