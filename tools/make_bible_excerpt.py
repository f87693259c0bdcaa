#!/usr/bin/env python3
"""Regenerate src/rnnkit/data/bible_en_es_excerpt.tsv: the English-Spanish verse pairs of
Mark, John and 1-3 John (KJV and Reina-Valera 1909, both public domain).

Requires the Debian packages ``sword-text-kjv`` and ``sword-text-sparv`` and the Python
package ``pysword``::

    apt-get install -y sword-text-kjv sword-text-sparv && pip install pysword

Then, from the repository root::

    python3 tools/make_bible_excerpt.py            # writes the data file
    python3 tools/make_bible_excerpt.py --check    # only verifies it is up to date

The pairs are made by ``rnnkit.data.bible_pairs.verse_pairs`` (markup stripped, whitespace
collapsed, misnumbered chapters left out), exactly as in the cached whole-Bible TSV; the
output is deterministic.
"""

import sys

from _regenerate import regenerate

from rnnkit.data.bible_pairs import EXCERPT, EXCERPT_BOOKS, verse_pairs


def build() -> str:
    return "".join(f"{en}\t{es}\t{book}\n" for en, es, book in verse_pairs(EXCERPT_BOOKS))


def main() -> int:
    def summary(text: str) -> str:
        books = {book: text.count(f"\t{book}\n") for book in EXCERPT_BOOKS}
        return f"{len(text.encode())} bytes, {text.count(chr(10))} pairs {books}"

    return regenerate(__doc__.splitlines()[0], EXCERPT, build, summary)


if __name__ == "__main__":
    sys.exit(main())
