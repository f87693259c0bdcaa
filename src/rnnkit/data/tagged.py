"""Token-level labelled text (part-of-speech tags, named entities): read and write.

Formats (``format=``):

- ``conll``: one token per line, ``word<TAB or spaces>tag``; a blank line ends a sentence
  (CoNLL-2000/2003 style). With more than two columns the word is the first and the tag
  column ``tag_column`` (default -1, the last: CoNLL-2003's NER column); every token line of
  a file must have as many columns as the first. ``-DOCSTART-`` lines are skipped. Words
  cannot hold whitespace.
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

Untagged reading (``tagged=False``, for prediction) takes conll files of any number of
columns (only the first, the word, is read), slash files (tags dropped) and text. A conll
file that looks like plain text (several words per line, no columns) is refused rather than
read one word per line. Every error is a ``DataError`` naming the file, the line, what was
expected and the value.
"""

from __future__ import annotations

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


def read_tagged(path: str | Path, *, format: Format = "auto", tag_column: int = -1,
                tagged: bool = True) -> Tagged:
    """Read a tagged (or, with ``tagged=False``, untagged) file; see the module docstring.

    Raises:
        DataError: unreadable or undecodable file, no sentence, wrong columns, a token that is
            not ``word/tag``, a file whose format ``auto`` cannot tell; ValueError: a bad
            ``format`` or ``tag_column``.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}")
    if format == "text" and tagged:
        raise ValueError("format 'text' holds no tags: it is for untagged input only (tagged=False)")
    if isinstance(tag_column, bool) or not isinstance(tag_column, int):
        raise ValueError(f"tag_column must be an int, got {tag_column!r}")
    path = Path(path)
    lines = _read_lines(path)
    kind = _detect(path, lines, tagged=tagged) if format == "auto" else format
    if kind == "conll":
        sentences = _conll(path, lines, tag_column if tagged else None)
    else:
        sentences = _per_line(path, lines, slash=kind == "slash")
    if not sentences:
        raise DataError(path, None, "expected at least one sentence, got none")
    words = tuple(tuple(w for w, _, _ in s) for s in sentences)
    tags = tuple(tuple(t for _, t, _ in s) for s in sentences) if tagged else None
    return Tagged(words, tags, tuple(tuple(n for _, _, n in s) for s in sentences), path)


def conll_text(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> str:
    """``word<TAB>tag`` lines, a blank line after every sentence."""
    parts = []
    for n, (ws, ts) in enumerate(zip(words, tags, strict=True)):
        if len(ws) != len(ts):
            raise ValueError(f"sentence {n} has {len(ws)} words but {len(ts)} tags")
        parts.append("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts, strict=True)) + "\n")
    return "".join(parts)


def write_conll(path: str | Path, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> None:
    """Write ``conll_text`` to ``path`` atomically (never half a file)."""
    write_atomic(Path(path), conll_text(words, tags).encode("utf-8"))


# -- pieces ------------------------------------------------------------------------------------

Token = tuple[str, str | None, int]  # word, tag, line number


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Every line as (1-based number, stripped text), blank ones too; strict UTF-8."""
    lines = [(i, s.strip()) for i, s in enumerate(read_utf8(path).splitlines(), 1)]
    if not any(s for _, s in lines):
        raise DataError(path, None, "expected data, got an empty file")
    return lines


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


def _conll(path: Path, lines: list[tuple[int, str]], tag_column: int | None) -> list[list[Token]]:
    if tag_column is None and _is_plain_text(lines):
        number, line = next((n, s) for n, s in lines if len(s.split()) > 1)
        raise DataError(path, number, f"expected one word per line (CoNLL), got {len(line.split())} "
                                      f"words: {line[:80]!r}; for one sentence per line, use format "
                                      f"'text' (rnnkit tag --format text)")
    sentences: list[list[Token]] = []
    current: list[Token] = []
    width, first = None, 0
    for number, line in lines:
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
                current = []
            continue
        if width is None:
            width, first = len(fields), number
            _check_columns(path, number, fields, tag_column)
        elif len(fields) != width:
            raise DataError(path, number, f"expected {width} columns like line {first} (word ... tag), "
                                          f"got {len(fields)}: {line[:80]!r}")
        current.append((fields[0], None if tag_column is None else fields[tag_column], number))
    if current:
        sentences.append(current)
    return sentences


def _check_columns(path: Path, number: int, fields: list[str], tag_column: int | None) -> None:
    if tag_column is None:
        return
    if len(fields) < 2:
        raise DataError(path, number, f"expected a word and a tag separated by a tab or spaces, got "
                                      f"{' '.join(fields)[:80]!r}")
    if not -len(fields) < tag_column < len(fields) or tag_column == 0:
        n = len(fields)
        raise ValueError(f"tag_column must pick a tag column of the {n} in {path}:{number} "
                         f"(1..{n - 1}, or -1..-{n - 1}; 0 is the word), got {tag_column}")


def _per_line(path: Path, lines: list[tuple[int, str]], *, slash: bool) -> list[list[Token]]:
    sentences = []
    for number, line in lines:
        if not line:
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
