"""Token-level labelled text (part-of-speech tags, named entities): read and write.

Formats (``format=``):

- ``conll``: one token per line, ``word<TAB or spaces>tag``; a blank line ends a sentence
  (CoNLL-2000/2003 style). With more than two columns the word is column ``word_column``
  (default 0, the first) and the tag column ``tag_column`` (default -1, the last:
  CoNLL-2003's NER column); every token line of a file must have as many columns as the
  first. ``-DOCSTART-`` lines are skipped. A line holding a tab is split at tabs only, so
  its words may hold spaces (NBSP, U+3000 ...); a line without one at any whitespace.
  CoNLL-U: in a ``.conllu`` file or one whose first non-blank line starts with ``#``, lines
  starting with ``#`` are comments, and multiword-token and empty-node lines (ID ``1-2``,
  ``1.1``) are skipped; a word column holding 1..n in every sentence (CoNLL-U's ID) is
  refused, with the advice to set ``word_column=1`` (FORM; UPOS is ``tag_column=3``).
- ``slash``: one sentence per line, space-separated ``word/tag`` tokens split at the LAST
  ``/`` (the Brown corpus's form: ``1/2/cd`` is the word ``1/2`` with tag ``cd``).
- ``text`` (untagged input only): one sentence per line, tokens separated by whitespace.
- ``auto``: ``slash`` if the first non-blank line has at least two tokens and every one is
  ``word/tag`` (non-empty on both sides of its last ``/``; a file whose first sentence is one
  token needs ``format="slash"``). Otherwise the layout decides (``_layout``), never equal word
  counts alone:

  - ``conll`` if a line holds a tab or starts with ``-DOCSTART-``, if every line is one word,
    or if lines of equally many words come in blank-line-separated blocks, one of several lines;
  - ``text`` if lines hold different numbers of words, or every line is its own block (one
    line, or blank lines between all of them); tagged reading, which has no ``text``, takes
    these as ``conll`` (different widths then fail at the first odd line);
  - else (several lines of equally many space-separated words, no tab, no blank line between
    them: one CoNLL sentence or one sentence per line alike) a ``DataError`` that asks for
    ``format``.

Lines end at ``\n`` (or ``\r\n``) only, never at other Unicode line breaks (U+0085,
U+2028 ...), which stay inside words.

Untagged reading (``tagged=False``, for prediction) takes conll files of any number of
columns (only the word column is read), slash files (tags dropped) and text. ``tagged=None``
reads as untagged, but keeps the tags of slash files and of conll files that have the
tag column (gold tags to print beside predictions, or to score them). A conll
file that looks like plain text (several words per line, no columns) is refused rather than
read one word per line. Every error is a ``DataError`` naming the file, the line, what was
expected and the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rnnkit._io import write_atomic
from rnnkit.data.series import DataError, read_utf8

Format = Literal["auto", "conll", "slash", "text"]
FORMATS = ("auto", "conll", "slash", "text")


@dataclass(frozen=True)
class Tagged:
    """Sentences of words, their tags (None for untagged input), and the file line of
    every token (for error messages), in file order."""

    words: tuple[tuple[str, ...], ...]
    tags: tuple[tuple[str, ...], ...] | None
    lines: tuple[tuple[int, ...], ...]
    source: Path

    def __len__(self) -> int:
        return len(self.words)

    @property
    def n_tokens(self) -> int:
        return sum(len(w) for w in self.words)

    def slice(self, start: int, stop: int | None = None) -> Tagged:
        """Sentences ``start:stop``, in order."""
        tags = None if self.tags is None else self.tags[start:stop]
        return Tagged(self.words[start:stop], tags, self.lines[start:stop], self.source)


def read_tagged(path: str | Path, *, format: Format = "auto", tag_column: int = -1, word_column: int = 0,
                tagged: bool | None = True) -> Tagged:
    """Read a tagged file (``tagged=False``: untagged; None: tags where the file has them);
    see the module docstring.

    Raises:
        DataError: unreadable or undecodable file, no sentence, wrong columns, a token that is
            not ``word/tag``, a file whose format ``auto`` cannot tell, CoNLL-U token ids as
            words; ValueError: a bad ``format``, ``tag_column`` or ``word_column``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}")
    if format == "text" and tagged:
        raise ValueError("format 'text' holds no tags: it is for untagged input only (tagged=False)")
    if isinstance(tag_column, bool) or not isinstance(tag_column, int):
        raise ValueError(f"tag_column must be an int, got {tag_column!r}")
    if isinstance(word_column, bool) or not isinstance(word_column, int) or word_column < 0:
        raise ValueError(f"word_column must be an int >= 0, got {word_column!r}")
    if tagged not in (True, False, None):
        raise ValueError(f"tagged must be True, False or None, got {tagged!r}")
    path = Path(path)
    lines = _read_lines(path)
    kind = _detect(path, lines, tagged=bool(tagged)) if format == "auto" else format
    if kind == "conll":
        sentences = _conll(path, lines, _Columns(word_column, tag_column, tagged))
    else:
        sentences = _per_line(path, lines, slash=kind == "slash")
    if not sentences:
        raise DataError(path, None, "expected at least one sentence, got none")
    words = tuple(tuple(w for w, _, _ in s) for s in sentences)
    has_tags = tagged is not False and all(t is not None for s in sentences for _, t, _ in s)
    tags = tuple(tuple(t for _, t, _ in s) for s in sentences) if has_tags else None
    return Tagged(words, tags, tuple(tuple(n for _, _, n in s) for s in sentences), path)


def conll_text(words: Sequence[Sequence[str]], *columns: Sequence[Sequence[str]]) -> str:
    """``word<TAB>tag`` lines (one tab-separated column more for every further ``columns``,
    e.g. gold and predicted tags), a blank line after every sentence."""
    if not columns:
        raise ValueError("conll_text needs at least one tag column, got none")
    _check_lengths(words, columns)
    parts = []
    for ws, *cs in zip(words, *columns, strict=True):
        parts.append("".join("\t".join(row) + "\n" for row in zip(ws, *cs, strict=True)) + "\n")
    return "".join(parts)


def aligned_text(data: Tagged, predicted: Sequence[Sequence[str]]) -> str:
    """``predicted`` tags for ``data`` in the layout of its file, as conlleval reads it
    (``conlleval -d '\\t'``): where every token had its own line (conll), one line per line
    of the file, ``word<TAB>gold<TAB>predicted`` where ``data`` has gold tags, else
    ``word<TAB>predicted``; a ``-DOCSTART-`` line becomes ``-DOCSTART-`` with O in each tag
    column (as CoNLL-2003 tags it, so every line has as many columns); blank lines, comments
    and CoNLL-U's multiword-token lines are copied. Tokens that shared lines (slash, text)
    are written as by ``conll_text``."""
    columns = (predicted,) if data.tags is None else (data.tags, predicted)
    _check_lengths(data.words, columns)
    numbers = [n for s in data.lines for n in s]
    if len(set(numbers)) != len(numbers):
        return conll_text(data.words, *columns)
    rows = {n: "\t".join(row) for s in zip(data.lines, data.words, *columns, strict=True)
            for n, *row in zip(*s, strict=True)}
    out = []
    for number, line in enumerate(_split_lines(read_utf8(data.source)), 1):
        if number in rows:
            out.append(rows.pop(number))
        elif line.strip().startswith("-DOCSTART-"):
            out.append("\t".join(["-DOCSTART-"] + ["O"] * len(columns)))
        else:
            out.append(line if line.strip() else "")
    if rows:  # the file changed since it was read: never write a misaligned file
        raise DataError(data.source, min(rows), "expected the file as it was read, got fewer lines")
    return "".join(f"{line}\n" for line in out)


def write_conll(path: str | Path, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> None:
    """Write ``conll_text`` to ``path`` atomically (never half a file)."""
    write_atomic(Path(path), conll_text(words, tags).encode("utf-8"))


# -- pieces ------------------------------------------------------------------------------------

Token = tuple[str, str | None, int]  # word, tag, line number
_ASCII_SPACE = " \t\r\f\v"
_CONLLU_SKIP = re.compile(r"\d+[-.]\d+\t")  # CoNLL-U's multiword tokens (1-2) and empty nodes (1.1)


@dataclass(frozen=True)
class _Columns:
    """Where the word and the tag are, and whether the tag is read (``read_tagged``'s ``tagged``)."""

    word: int
    tag: int
    tagged: bool | None


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Every line as (1-based number, text less surrounding ASCII whitespace), blank ones too,
    CoNLL-U's comments and multiword-token lines left out; strict UTF-8."""
    lines = [(i, s.strip(_ASCII_SPACE)) for i, s in enumerate(_split_lines(read_utf8(path)), 1)]
    if not any(s for _, s in lines):
        raise DataError(path, None, "expected data, got an empty file")
    if path.suffix.lower() == ".conllu" or next(s for _, s in lines if s).startswith("#"):
        lines = [(i, s) for i, s in lines if not s.startswith("#") and not _CONLLU_SKIP.match(s)]
    return lines


def _split_lines(text: str) -> list[str]:
    """At ``\n`` only (``str.splitlines`` also splits at U+0085, U+2028, form feed ...);
    a ``\r`` before it goes too."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [s.removesuffix("\r") for s in lines]


def _check_lengths(words: Sequence[Sequence[str]], columns: Sequence[Sequence[Sequence[str]]]) -> None:
    for column in columns:
        if len(column) != len(words):
            raise ValueError(f"expected tags for the {len(words)} sentences, got {len(column)}")
        for n, (ws, ts) in enumerate(zip(words, column, strict=True)):
            if len(ws) != len(ts):
                raise ValueError(f"sentence {n} has {len(ws)} words but {len(ts)} tags")


def _split_slash(token: str) -> tuple[str, str] | None:
    word, sep, tag = token.rpartition("/")
    return (word, tag) if sep and word and tag else None


def _detect(path: Path, lines: list[tuple[int, str]], *, tagged: bool) -> str:
    first = next(s for _, s in lines if s).split()
    if len(first) >= 2 and all(_split_slash(t) for t in first):
        return "slash"
    layout = _layout(lines)
    if layout == "either":
        raise DataError(path, None, _ambiguous(lines, tagged=tagged))
    return "text" if layout == "text" and not tagged else "conll"


def _layout(lines: list[tuple[int, str]]) -> Literal["conll", "text", "either"]:
    """What the lines of a file with no word/tag tokens look like (see the module docstring):
    ``conll`` columns, plain ``text``, or ``either`` (no way to tell)."""
    tokens = [(n, s) for n, s in lines if s]
    if any("\t" in s or s.startswith("-DOCSTART-") for _, s in tokens):
        return "conll"
    widths = {len(s.split()) for _, s in tokens}
    if widths == {1}:
        return "conll"
    if len(widths) > 1:  # CoNLL's token lines all have as many columns
        return "text"
    blocks = _block_sizes([n for n, _ in tokens])
    if max(blocks) == 1:  # CoNLL sentences of one token each are unlikely; sentences per line are not
        return "text"
    # blank lines end CoNLL sentences; with none, equal widths may be chance (two 4-word sentences)
    return "conll" if len(blocks) > 1 else "either"


def _block_sizes(numbers: list[int]) -> list[int]:
    """The sizes of the runs of consecutive line numbers (blocks between blank lines)."""
    sizes = [1]
    for a, b in zip(numbers, numbers[1:], strict=False):
        if b == a + 1:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


def _ambiguous(lines: list[tuple[int, str]], *, tagged: bool) -> str:
    tokens = [s for _, s in lines if s]
    n, width = len(tokens), len(tokens[0].split())
    found = (f"format 'auto' cannot tell CoNLL columns from plain text: {n} lines of {width} "
             f"space-separated words, no tab and no blank line between them (CoNLL: one sentence of "
             f"{n} tokens; text: {n} sentences of {width} words)")
    if tagged:
        return (f"{found}; plain text has no tags, so if this is CoNLL set format 'conll' "
                f"(rnnkit train tag --set data.format=conll)")
    return (f"{found}; pass format 'text' or 'conll' (rnnkit tag --format text|conll; --format is "
            f"one of {', '.join(FORMATS)})")


def _is_plain_text(lines: list[tuple[int, str]]) -> bool:
    """Whether a file cannot be CoNLL columns (its layout says ``text``)."""
    return _layout(lines) == "text"


def _conll(path: Path, lines: list[tuple[int, str]], columns: _Columns) -> list[list[Token]]:
    if not columns.tagged and _is_plain_text(lines):
        number, line = next((n, s) for n, s in lines if len(s.split()) > 1)
        raise DataError(path, number, f"expected one word per line (CoNLL), got {len(line.split())} "
                                      f"words: {line[:80]!r}; for one sentence per line, use format "
                                      f"'text' (rnnkit tag --format text)")
    sentences: list[list[Token]] = []
    current: list[Token] = []
    width, first, tag = None, 0, None
    for number, line in lines:
        fields = _fields(line)
        if not fields or fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
                current = []
            continue
        if width is None:
            width, first = len(fields), number
            tag = _check_columns(path, number, fields, columns)
        elif len(fields) != width:
            raise DataError(path, number, f"expected {width} columns like line {first} (word ... tag), "
                                          f"got {len(fields)}: {line[:80]!r}")
        current.append((fields[columns.word], None if tag is None else fields[tag], number))
    if current:
        sentences.append(current)
    _check_not_ids(path, sentences, columns.word)
    return sentences


def _fields(line: str) -> list[str]:
    """A line's columns: split at tabs only if it holds one (words may hold spaces), else at
    whitespace."""
    if "\t" in line:
        return [f.strip(" ") for f in line.split("\t")]
    return line.split()


def _check_columns(path: Path, number: int, fields: list[str], columns: _Columns) -> int | None:
    """The tag's column index (None: not read), after checking both columns fit ``fields``."""
    n = len(fields)
    if columns.word >= n:
        raise ValueError(f"word_column must pick one of the {n} columns in {path}:{number} "
                         f"(0..{n - 1}), got {columns.word}")
    if columns.tagged is False:
        return None
    tag = columns.tag % n if -n <= columns.tag < n else None
    if columns.tagged is None:  # tags only where the file has them
        return tag if n > 1 and tag != columns.word else None
    if n < 2:
        raise DataError(path, number, f"expected a word and a tag separated by a tab or spaces, got "
                                      f"{' '.join(fields)[:80]!r}")
    if tag is None or tag == columns.word:
        raise ValueError(f"tag_column must pick a tag column of the {n} in {path}:{number} "
                         f"({-n}..{n - 1}; {columns.word} is the word, word_column), got {columns.tag}")
    return tag


def _check_not_ids(path: Path, sentences: list[list[Token]], word: int) -> None:
    """Refuse a word column that numbers the tokens 1..n in every sentence: CoNLL-U's ID."""
    if sum(map(len, sentences)) < 2:
        return
    if all([w for w, _, _ in s] == [str(i) for i in range(1, len(s) + 1)] for s in sentences):
        raise DataError(path, sentences[0][0][2],
                        f"expected words in column {word} (word_column), got the token numbers 1..n of "
                        f"every sentence, as CoNLL-U's ID column; for CoNLL-U set data.word_column=1 "
                        f"(FORM; data.tag_column=3 is UPOS) when training (rnnkit train tag --set ...)")


def _per_line(path: Path, lines: list[tuple[int, str]], *, slash: bool) -> list[list[Token]]:
    sentences = []
    for number, line in lines:
        if not line.split():
            continue
        tokens: list[Token] = []
        for token in line.split():
            if not slash:
                tokens.append((token, None, number))
                continue
            pair = _split_slash(token)
            if pair is None:
                raise DataError(path, number, f"expected word/tag tokens (split at the last '/'), "
                                              f"got {token[:60]!r}")
            tokens.append((pair[0], pair[1], number))
        sentences.append(tokens)
    return sentences
