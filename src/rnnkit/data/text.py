"""Text for language models: any UTF-8 file, a held-out split by position, and the King
James Bible from Debian's ``bible-kjv`` package.

    text = read_text("my_corpus.txt")
    train_text, val_text = split_lines(text, val_fraction=0.05)  # the last 5% of lines
    bible = kjv_text()  # Gen 1:1 - Rev 22:21, one verse per line, cached after the first call
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from rnnkit._io import cache_dir, write_atomic

KJV_RANGE = "Gen1:1-Rev22:21"
KJV_VERSES = 31_102  # the verse count of the KJV Old and New Testaments
KJV_DATA_DIR = "/usr/lib"  # where bible-kjv-text installs bible.data
_REF = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")  # "Ge1:1 In the ...", "1Sa3:4 That ..."


def read_text(path: str | Path, *, name: str = "text file") -> str:
    """The contents of a UTF-8 text file; ``name`` is the argument named in errors.

    Raises:
        ValueError: the path is missing or not a file, the file is empty, or a byte is not
            UTF-8 (the message gives its offset and line).
    """
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "not found"
        raise ValueError(f"{name} must be an existing UTF-8 text file, got {str(path)!r}: {what}")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{name} must be a non-empty UTF-8 text file, got {str(path)!r}: 0 bytes")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark is no character of the text
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{name} must be UTF-8 text, got {str(path)!r} with the undecodable byte "
                         f"0x{data[err.start]:02x} at byte offset {err.start} (line {line})") from None


def split_lines(text: str, val_fraction: float) -> tuple[str, str]:
    """(train, val): the last ``val_fraction`` of the lines (at least one) are held out.

    Splitting by position rather than at random keeps near-duplicate neighbouring lines
    (verses of one chapter, paragraphs of one story) from sitting on both sides.
    """
    if isinstance(val_fraction, bool) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    lines = text.splitlines(keepends=True)
    n_val = max(1, round(len(lines) * val_fraction))
    if n_val >= len(lines):
        raise ValueError(f"the text must have more lines than the {n_val} held out by "
                         f"val_fraction={val_fraction}, got {len(lines)} line(s)")
    return "".join(lines[:-n_val]), "".join(lines[-n_val:])


def kjv_path() -> Path:
    """The cached whole-Bible text file, extracted first if it is not there yet."""
    path = cache_dir() / "kjv.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, extract_kjv().encode("utf-8"))
    return path


def kjv_text() -> str:
    """The King James Bible, Genesis 1:1 to Revelation 22:21: one verse per line, references
    removed, whitespace collapsed, ASCII. Public domain; extracted once with Debian's
    ``bible`` program and cached (``kjv_path``)."""
    text = kjv_path().read_text(encoding="utf-8")
    if text.count("\n") != KJV_VERSES:  # a cache from elsewhere, or tampered with
        raise ValueError(f"the cached KJV {kjv_path()} must hold {KJV_VERSES} lines, got "
                         f"{text.count(chr(10))}; delete it to extract it again")
    return text


def extract_kjv(program: str = "bible") -> str:
    """Run ``bible -f -p /usr/lib Gen1:1-Rev22:21`` and keep each verse's text."""
    exe = shutil.which(program)
    if exe is None:
        raise FileNotFoundError(
            f"the KJV text needs the {program!r} program of the Debian packages bible-kjv and "
            f"bible-kjv-text (apt-get install bible-kjv), which is not on PATH; or pass any UTF-8 "
            f"text file instead")
    run = subprocess.run([exe, "-f", "-p", KJV_DATA_DIR, KJV_RANGE], capture_output=True,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{exe} exited with status {run.returncode}: "
                           f"{run.stderr.decode(errors='replace').strip()}")
    verses = []
    for line in run.stdout.decode("ascii").splitlines():
        if not line.strip():
            continue
        match = _REF.match(line)
        if match is None:
            raise RuntimeError(f"{exe} printed a line without a verse reference: {line[:80]!r}")
        verses.append(" ".join(match.group(4).split()))
    if len(verses) != KJV_VERSES:
        raise RuntimeError(f"{exe} printed {len(verses)} verses, expected {KJV_VERSES}")
    return "\n".join(verses) + "\n"
