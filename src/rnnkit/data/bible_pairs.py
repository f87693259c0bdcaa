"""English-Spanish verse pairs: the King James Version (1769 text) and the Reina-Valera 1909,
joined on (book, chapter, verse). Both are in the public domain.

    path = bible_pairs_path()   # the whole Bible as TSV, extracted once and cached
    EXCERPT                     # a few books, embedded in the package (no extraction needed)

The TSV has one verse per line, ``english<TAB>spanish<TAB>book`` (the book's OSIS id, e.g.
``Gen``, ``Matt``), Genesis 1:1 to Revelation 22:21 in order; ``rnnkit.data.pairs`` reads it
and splits off whole books for validation and test.

The texts come from the CrossWire SWORD modules ``engKJV2006eb`` and ``spaRV1909eb``
(Debian packages ``sword-text-kjv`` and ``sword-text-sparv``), read with ``pysword`` (PyPI,
MIT). Both declare the KJV versification, so a reference names the same verse in both. The
OSIS markup is stripped: footnotes (``<note>``) go with their text, every other tag goes and
its text stays (psalm titles, the acrostic letters of Psalm 119, the words of Jesus),
pilcrows (¶) and 27 stray USFM markers (``\\nd``) go, and whitespace is collapsed.

In a few chapters the Spanish module keeps its own numbering inside the KJV slots: it
merges two verses and leaves a slot empty (Acts 19:40-41), or starts a chapter a verse or
three early (Jonah 1:17 is its Jonah 2:1, so all of Jonah 2 is one verse off). Such a
chapter is left out whole (``chapter_aligned``): 19 chapters, 432 verses of 31,102.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path

from rnnkit._io import write_atomic
from rnnkit.data.text import cache_dir

SWORD_DIR = Path("/usr/share/sword")
MODULES = {"english": "engKJV2006eb", "spanish": "spaRV1909eb"}
PACKAGES = "sword-text-kjv sword-text-sparv"
FILENAME = "bible_en_es.tsv"
EXCERPT = Path(__file__).with_name("bible_en_es_excerpt.tsv")
EXCERPT_BOOKS = ("Mark", "John", "1John", "2John", "3John")  # what EXCERPT holds, in order
_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TAG = re.compile(r"<[^>]*>")
_USFM = re.compile(r"\\[a-z]+\*?")  # a stray USFM marker left in the KJV module: "the \nd LORD"


def bible_pairs_path() -> Path:
    """The cached whole-Bible TSV (``$XDG_CACHE_HOME/rnnkit/bible_en_es.tsv``), extracted
    first if it is not there yet (about two minutes)."""
    path = cache_dir() / FILENAME
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "".join(f"{en}\t{es}\t{book}\n" for en, es, book in verse_pairs()).encode("utf-8"))
    return path


def verse_pairs(books: tuple[str, ...] | None = None,
                sword_dir: str | Path = SWORD_DIR) -> Iterator[tuple[str, str, str]]:
    """(english, spanish, book) for every verse of ``books`` (OSIS ids; None: the whole
    Bible), in canonical order.

    Raises:
        ModuleNotFoundError: pysword is not installed.
        FileNotFoundError: a SWORD module is not installed under ``sword_dir``.
    """
    english, spanish = _open_bibles(Path(sword_dir))
    structure = english.get_structure().get_books()
    known = [book for testament in ("ot", "nt") for book in structure[testament]]
    names = [book.osis_name for book in known]
    for name in books or ():
        if name not in names:
            raise ValueError(f"books must be OSIS book ids such as 'Gen' or 'Matt', got {name!r}; "
                             f"expected one of {names}")
    for book in known:
        if books is not None and book.osis_name not in books:
            continue
        for chapter in range(1, book.num_chapters + 1):
            en = list(english.get_iter(books=[book.osis_name], chapters=[chapter], clean=False))
            es = list(spanish.get_iter(books=[book.osis_name], chapters=[chapter], clean=False))
            if len(en) != len(es) or len(en) != book.chapter_lengths[chapter - 1]:
                raise RuntimeError(f"{book.osis_name} {chapter}: expected {book.chapter_lengths[chapter - 1]}"
                                   f" verses in both modules, got {len(en)} and {len(es)}")
            en, es = [clean_osis(v) for v in en], [clean_osis(v) for v in es]
            if chapter_aligned(en, es):
                yield from ((source, target, book.osis_name) for source, target in zip(en, es, strict=True))


def chapter_aligned(english: list[str], spanish: list[str], *, margin: float = 0.75) -> bool:
    """False when a chapter's verses look misnumbered on one side: a verse is empty on
    either side (two verses were merged into one slot, or moved to the next chapter), or
    the lengths fit better shifted by one to three verses. The misfit at shift k is the mean
    of |ln(len(spanish[v + k]) / len(english[v]))|; a shift wins when its misfit is below
    ``margin`` times the unshifted one. (Spanish verses are about 5% shorter than English
    ones on average, 125.8 against 132.5 characters, but the ratio varies verse to verse.)"""
    if not all(english) or not all(spanish):
        return False
    aligned = _misfit(english, spanish, 0)
    shifted = [m for k in (-3, -2, -1, 1, 2, 3) if (m := _misfit(english, spanish, k)) is not None]
    return aligned is None or not shifted or min(shifted) >= margin * aligned


def _misfit(english: list[str], spanish: list[str], shift: int) -> float | None:
    pairs = [(e, spanish[v + shift]) for v, e in enumerate(english) if 0 <= v + shift < len(spanish)]
    if len(pairs) < 3:  # too few verses to tell
        return None
    return sum(abs(math.log(len(s) / len(e))) for e, s in pairs) / len(pairs)


def clean_osis(markup: str) -> str:
    """A verse's plain text: footnotes removed, other tags and USFM markers stripped (their
    text kept), entities decoded, pilcrows removed, whitespace collapsed to single spaces."""
    text = _USFM.sub("", _TAG.sub("", _NOTE.sub("", markup)))
    text = html.unescape(text).replace("¶", " ")
    return " ".join(text.split())


def _open_bibles(sword_dir: Path):
    try:
        from pysword.modules import SwordModules
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the English-Spanish verse pairs need the Python package pysword (pip install pysword, "
            "or pip install 'rnnkit[translate]'); or train on your own TSV of source<TAB>target "
            "pairs, or on the embedded excerpt rnnkit.data.bible_pairs.EXCERPT") from None
    modules = SwordModules(str(sword_dir))
    found = modules.parse_modules() if (sword_dir / "mods.d").is_dir() else {}
    missing = [name for name in MODULES.values() if name not in found]
    if missing:
        raise FileNotFoundError(
            f"the SWORD modules {missing} must be installed under {sword_dir}, got "
            f"{sorted(found) or 'none'}; on Debian/Ubuntu: apt-get install {PACKAGES}")
    return (modules.get_bible_from_module(MODULES["english"]),
            modules.get_bible_from_module(MODULES["spanish"]))
