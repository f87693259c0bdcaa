"""The Bible verse pairs: markup cleaning on the modules' own markup, and clear errors when
pysword or the SWORD modules are missing. The extraction itself runs only where they are
installed."""

import sys
from pathlib import Path

import pytest

from rnnkit.data import bible_pairs
from rnnkit.data.bible_pairs import EXCERPT, chapter_aligned, clean_osis, verse_pairs
from rnnkit.data.pairs import read_pairs


def test_clean_osis_keeps_text_and_drops_markup():
    kjv = ('<div type="x-milestone" subType="x-preverse" sID="pv2376"/><title canonical="true" '
           'type="psalm">A <w lemma="strong:H4210">Psalm</w> of David.</title> <l level="1" sID="g1"/> The '
           '<divineName><w lemma="strong:H3068">LORD</w></divineName> <transChange type="added">is'
           '</transChange> my shepherd;<note placement="foot"><reference type="annotateRef">23.1 '
           '</reference>or, feed</note> I shall not want. <l eID="g1" level="1"/>')
    assert clean_osis(kjv) == "A Psalm of David. The LORD is my shepherd; I shall not want."
    assert clean_osis("¶ the \\nd LORD’s &amp; his\n people ") == "the LORD’s & his people"
    assert clean_osis('<chapter eID="Matt.1"/> <div eID="gen6429" type="x-p"/>') == ""


def test_chapter_aligned_spots_shifted_and_merged_verses():
    """Verse lengths of varied size: the Spanish side is the English one, 10% shorter and
    with noise, then shifted by one verse as in the module's Jonah 2, or with a slot emptied
    by a merge as in its Acts 19:40-41."""
    lengths = [40, 160, 75, 220, 60, 130, 300, 90, 55, 180]
    english = ["e" * n for n in lengths]
    spanish = ["s" * round(0.9 * n + (7 if v % 2 else -5)) for v, n in enumerate(lengths)]
    assert chapter_aligned(english, spanish)
    assert not chapter_aligned(english, ["s" * 50, *spanish[:-1]])  # everything one verse late
    assert not chapter_aligned(english, spanish[1:] + ["s" * 50])  # one verse early
    assert not chapter_aligned(english, [*spanish[:8], spanish[8] + spanish[9], ""])  # a merge
    assert chapter_aligned(english[:2], ["s" * 500, "s" * 3])  # too short to tell


def test_missing_pysword_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysword.modules", None)
    with pytest.raises(ModuleNotFoundError, match=r"need the Python package pysword \(pip install pysword"):
        next(verse_pairs())


def test_missing_modules_name_the_debian_packages(tmp_path):
    pytest.importorskip("pysword")
    with pytest.raises(FileNotFoundError, match="apt-get install sword-text-kjv sword-text-sparv"):
        next(verse_pairs(sword_dir=tmp_path))


def test_cache_path_is_under_the_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "rnnkit").mkdir()
    (tmp_path / "rnnkit" / bible_pairs.FILENAME).write_text("a\tb\tGen\n")
    assert bible_pairs.bible_pairs_path() == tmp_path / "rnnkit" / bible_pairs.FILENAME


@pytest.mark.skipif(not (Path(bible_pairs.SWORD_DIR) / "mods.d" / "spaRV1909eb.conf").exists(),
                    reason="needs the Debian packages sword-text-kjv and sword-text-sparv")
def test_extraction_reproduces_the_embedded_excerpt():
    pytest.importorskip("pysword")
    pairs = read_pairs(EXCERPT)
    letters = [(s, t, g) for s, t, g in zip(pairs.sources, pairs.targets, pairs.groups, strict=True)
               if g in ("2John", "3John")]
    assert list(verse_pairs(("2John", "3John"))) == letters
    assert [g for _, _, g in verse_pairs(("Jonah",))] == ["Jonah"] * 21  # Jonah 1-2 are misnumbered
    with pytest.raises(ValueError, match="books must be OSIS book ids"):
        next(verse_pairs(("Jonas",)))
