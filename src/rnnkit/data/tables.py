"""CSV readers for classification: numeric series (``label,v1,v2,...``) and text (``label,text``).

Series. Comma-separated, or tab-separated for a ``.tsv`` file: the UCR 2018 archive's
layout (``X_TRAIN.tsv``: label then values, no header). In a ``.tsv`` file ``NaN`` is a
missing value, and trailing ones are cut off: the archive pads its varying-length series
with NaN and marks missing values with NaN (its README for the 14 such data sets), so a
NaN at a row's end cannot be told from padding.

Headers. ``header=`` says whether the first row is a header; None guesses, as follows.

- A series file's first row is a header when none of its value cells (the cells after the
  label; blank ones aside) is a number, ``label,v1,v2,v3``, or when it is the header
  pandas' ``to_csv`` writes, a label column name (``label``, ``class``, ``target``, ...)
  then ``0,1,...,n-1``. Other first rows of numbers are data (``neg,0,1,2`` and, without a
  label column, ``0,1,2`` too: ``header=True`` for those headers). A first row that mixes
  numbers and other words among its values, ``a,12,1x3,14``, is data with a typo: a
  ``DataError`` naming the line, the column and the cell (taken for a header, it would lose
  a row of data silently).
- A text file's first row is a header when it reads ``label,text``, or when its label is
  no other row's (nor one of ``classes``) while the other labels are classes (they repeat,
  or, for a test file, are all in ``classes``) and its text is a column name of at most
  three words (``sentiment,review``). A first row whose label is a real class, however
  rare, is data; ``header=True`` for the other headers.

Every error is a ``DataError`` naming file, line, expectation and value. Text is split by
``tokenize`` (lower case; words, numbers and single punctuation marks) and mapped to ids
by a ``Vocab`` built on the training file only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.data.series import (
    DataError,
    Labelled,
    decode_lines,
    encode_labels,
    is_number,
    pad_series,
    sorted_labels,
)

PAD, UNK = 0, 1
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
# the label column's name in a header that pandas writes: label,0,1,2,...
_LABEL_NAMES = frozenset({"label", "labels", "class", "classes", "target", "targets", "category", "y"})
_COLUMN_NAME = re.compile(r"[^\W\d]\w*(?:[ _.-]\w+){0,2}")  # a text column's name: review, Review Text
_TEXT_HINT = "; a CSV of label,text rows is read with data.format=text (--set data.format=text)"


def read_csv_series(path: str | Path, *, classes: Sequence[str] | None = None,
                    ragged: bool = False, labelled: bool = True, header: bool | None = None) -> Labelled:
    """Univariate series, one per row: ``label,v1,v2,...`` (tab-separated in a ``.tsv`` file,
    the UCR 2018 archive's layout, where ``NaN`` marks a missing value or, at a row's end,
    padding).

    Arguments:
        classes: the training set's label names (for a test file); None: the sorted labels.
        ragged: allow rows of different lengths (trailing empty fields are dropped);
            otherwise every row must have the first row's number of columns.
        labelled: False: no label column, ``v1,v2,...`` (data to predict); no labels come back.
        header: whether the first row is a header; None: guessed (see the module docstring).

    Returns:
        ``Labelled`` with inputs (N, T_max, 1) float32; missing values (``.tsv``) NaN.

    Raises:
        DataError: a cell that is not a finite number (named by line and column, and by the
            header's name for it), a row of the wrong width, an unknown label.
    """
    path = Path(path)
    tsv = path.suffix.lower() == ".tsv"
    rows = _csv_rows(path, "\t" if tsv else ",")
    first = 1 if labelled else 0  # the first value's column
    names: list[str] = []
    if header if header is not None else _is_header(path, *rows[0], first):
        names, rows = [name.strip() for name in rows[0][1]], rows[1:]
    if not rows:
        raise DataError(path, None, "expected data rows after the header, got none")
    width = len(rows[0][1])
    values, labels, numbers = [], [], []
    for number, fields in rows:
        if ragged:
            while fields and not fields[-1].strip():
                fields = fields[:-1]
        elif len(fields) != width:
            raise DataError(path, number, f"expected {width} columns like the first row ("
                                          f"{'label and ' * labelled}{width - first} values; for "
                                          f"varying lengths pass ragged=True, --set data.ragged=true), "
                                          f"got {len(fields)}")
        if tsv:  # the archive's padding of a shorter series
            while len(fields) > first and fields[-1].strip().lower() == "nan":
                fields = fields[:-1]
        if len(fields) <= first:
            raise DataError(path, number, f"expected {'a label and ' * labelled}at least one value, "
                                          f"got {fields!r}{_hint(fields[0]) if fields else ''}")
        cells = enumerate(fields[first:], first)
        values.append([[_number(path, number, word, c, names, nan=tsv) for c, word in cells]])
        labels.append(fields[0].strip())
        numbers.append(number)
    inputs, lengths_N = pad_series(values)
    if not labelled:
        return Labelled(inputs, lengths_N, None, (), path)
    known = tuple(classes) if classes is not None else sorted_labels(labels)
    return Labelled(inputs, lengths_N, encode_labels(path, labels, numbers, known), known, path)


def tokenize(text: str) -> list[str]:
    """Lower-cased words (with inner apostrophes), numbers and single punctuation marks."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocab:
    """Token <-> id; id 0 is padding and 1 the unknown token."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, texts: Iterable[list[str]], *, max_size: int = 20000, min_freq: int = 1) -> Vocab:
        counts = Counter(token for tokens in texts for token in tokens)
        kept = [t for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
        return cls(("<pad>", "<unk>", *kept[: max(0, max_size - 2)]))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        index = self._index
        return [index.get(t, UNK) for t in tokens]

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_cache", cached)
        return cached

    def to_json(self) -> str:
        return json.dumps({"kind": "word", "tokens": list(self.tokens)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        return cls(tuple(json.loads(text)["tokens"]))


def read_text_csv(path: str | Path, *, classes: Sequence[str] | None = None, vocab: Vocab | None = None,
                  max_vocab: int = 20000, min_freq: int = 1, max_tokens: int | None = None,
                  header: bool | None = None) -> tuple[Labelled, Vocab]:
    """Texts with labels, ``label,text`` (quote texts that hold commas).

    Arguments:
        classes, vocab: the training set's (for a test file); None: built from this file.
        max_tokens: keep the first ``max_tokens`` tokens of a longer text.
        header: whether the first row is a header; None: guessed (see the module docstring).

    Returns:
        ``(Labelled, vocab)``; inputs are (N, T_max) int64 ids padded with 0.
    """
    path = Path(path)
    rows = _csv_rows(path)
    if header if header is not None else _is_text_header(rows, classes):
        rows = rows[1:]
    if not rows:
        raise DataError(path, None, "expected data rows after the header, got none")
    texts, labels, numbers = [], [], []
    for number, fields in rows:
        if len(fields) != 2:
            raise DataError(path, number, f"expected 2 columns (label,text; quote a text holding "
                                          f"commas), got {len(fields)}: {fields[:3]!r}")
        texts.append(_tokens(path, number, fields[1], max_tokens))
        labels.append(fields[0].strip())
        numbers.append(number)
    vocab = vocab or Vocab.build(texts, max_size=max_vocab, min_freq=min_freq)
    ids_NT, lengths_N = _encode(texts, vocab)
    names = tuple(classes) if classes is not None else sorted_labels(labels)
    return Labelled(ids_NT, lengths_N, encode_labels(path, labels, numbers, names), names, path), vocab


def read_texts(path: str | Path, *, vocab: Vocab, max_tokens: int | None = None,
               header: bool | None = None) -> Labelled:
    """Texts without labels, one per line (to classify): the whole line is the text, commas
    included; a line that is one double-quoted CSV field (``"a, b"``, as a one-column CSV
    writes it) is read as that field. A text cannot span lines.

    Arguments:
        vocab: the training set's.
        max_tokens: keep the first ``max_tokens`` tokens of a longer text.
        header: whether the first line is a header; None: when it reads ``text``.

    Returns:
        ``Labelled`` with inputs (N, T_max) int64 ids padded with 0, and no labels.
    """
    path = Path(path)
    lines = [(number, _unquote(line)) for number, line in decode_lines(path)]
    if header if header is not None else lines[0][1].strip().lower() == "text":
        lines = lines[1:]
    if not lines:
        raise DataError(path, None, "expected texts after the header, got none")
    ids_NT, lengths_N = _encode([_tokens(path, number, line, max_tokens) for number, line in lines], vocab)
    return Labelled(ids_NT, lengths_N, None, (), path)


def _unquote(line: str) -> str:
    """The field of a line that is one double-quoted CSV field; else the line."""
    if len(line) < 2 or not (line.startswith('"') and line.endswith('"')):
        return line
    try:
        fields = next(csv.reader([line]))
    except csv.Error:
        return line
    return fields[0] if len(fields) == 1 else line


def _tokens(path: Path, number: int, text: str, max_tokens: int | None) -> list[str]:
    tokens = tokenize(text)[:max_tokens]
    if not tokens:
        raise DataError(path, number, f"expected a text with at least one token, got {text!r}")
    return tokens


def _encode(texts: list[list[str]], vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> ids (N, T_max) padded with 0, and lengths (N,)."""
    ids = [vocab.encode(tokens) for tokens in texts]
    lengths_N = torch.tensor([len(i) for i in ids], dtype=torch.long)
    ids_NT = torch.zeros(len(ids), int(lengths_N.max()), dtype=torch.long)
    for n, row in enumerate(ids):
        ids_NT[n, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids_NT, lengths_N


def _csv_rows(path: Path, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank rows; decoding errors name their line."""
    lines = decode_lines(path)  # strict UTF-8, blank lines dropped, empty file refused
    text = "\n".join(line for _, line in lines)
    try:
        parsed = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as err:
        raise DataError(path, None, f"expected CSV, got a parse error: {err}") from None
    if len(parsed) != len(lines):  # a quoted field spanning lines: numbers are approximate
        return [(i + 1, fields) for i, fields in enumerate(parsed)]
    return [(number, fields) for (number, _), fields in zip(lines, parsed, strict=True)]


def _is_text_header(rows: list[tuple[int, list[str]]], classes: Sequence[str] | None) -> bool:
    """Whether a text file's first row looks like its header (see the module docstring)."""
    fields = [f.strip() for f in rows[0][1]]
    if len(fields) != 2:
        return False
    label, text = fields
    if [label.lower(), text.lower()] == ["label", "text"]:
        return True
    others = [f[0].strip() for _, f in rows[1:] if f]
    if label in others or (classes is not None and label in classes):
        return False
    # the other labels are classes: the training set's, or labels that repeat
    classy = set(others) <= set(classes) if classes is not None else len(set(others)) < len(others)
    return classy and len(text) <= 40 and bool(_COLUMN_NAME.fullmatch(text))


def _is_header(path: Path, number: int, fields: list[str], first: int) -> bool:
    """True when no value cell (from column ``first``, 0-based) of the row is a number and
    one is not blank, or the row is pandas' header ``label,0,1,...``; False when every one
    is a number. A row mixing the two is data with a typo: a ``DataError`` at its first
    non-number."""
    cells = [(c, f.strip()) for c, f in enumerate(fields[first:], first) if f.strip()]
    words = [(c, f) for c, f in cells if not is_number(f)]
    if (first and fields[0].strip().lower() in _LABEL_NAMES and not words
            and [f for _, f in cells] == [str(i) for i in range(len(cells))]):
        return True
    if len(words) in (0, len(cells)):
        return bool(words)
    c, word = words[0]
    raise DataError(path, number, f"expected a number, got {word!r} in {_column(c, [])}; a first row "
                                  f"with numbers among its values is data, not a header (header=True, "
                                  f"data.header=true or --header if it is one){_hint(word)}")


def _hint(word: str) -> str:
    """A hint for a cell that is not a number: values under another separator (a .tsv read
    as CSV, a CSV read as .tsv, the old UCR archive's spaces), or words (a file of texts)."""
    for sep in (",", "\t", ";", " "):
        parts = word.strip().split(sep)
        if len(parts) > 1 and all(is_number(p.strip()) for p in parts):
            return (f"; it looks like values separated by {sep!r}, but a .tsv file is read "
                    f"tab-separated and other files comma-separated")
    return _TEXT_HINT if any(ch.isalpha() for ch in word) and len(word.split()) > 1 else ""


def _column(c: int, names: list[str]) -> str:
    """'column 3', and the header's name for it, from the 0-based index ``c``."""
    return f"column {c + 1}" + (f" ({names[c]!r})" if c < len(names) and names[c] else "")


def _number(path: Path, number: int, word: str, c: int, names: list[str], *, nan: bool = False) -> float:
    """The cell ``word`` of 0-based column ``c``; ``names``: the header's, for the errors;
    ``nan``: NaN is a missing value (``.tsv``), read as NaN."""
    try:
        value = float(word)
    except ValueError:
        raise DataError(path, number, f"expected a number, got {word!r} in {_column(c, names)}"
                                      f"{_hint(word)}") from None
    if math.isnan(value) and nan:
        return value
    if not math.isfinite(value):
        raise DataError(path, number, f"expected a finite number, got {word!r} in {_column(c, names)}")
    return value
