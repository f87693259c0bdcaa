"""Text files with clear errors, the positional split, and the cached KJV from Debian."""

import shutil

import pytest

from rnnkit.data import text as text_mod
from rnnkit.data.text import KJV_VERSES, cache_dir, kjv_path, kjv_text, read_text, split_lines
from rnnkit.demo.corpus import load_text


def test_read_text_reads_utf8(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("héllo\nwörld\n".encode())
    assert read_text(path) == "héllo\nwörld\n"


def test_read_text_missing_file_names_the_argument_and_path(tmp_path):
    with pytest.raises(ValueError) as err:
        read_text(tmp_path / "nope.txt", name="--data")
    assert str(err.value) == (f"--data must be an existing UTF-8 text file, got '{tmp_path / 'nope.txt'}': "
                              f"not found")
    with pytest.raises(ValueError, match="got .*: a directory"):
        read_text(tmp_path, name="--data")


def test_read_text_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^--data must be a non-empty UTF-8 text file, "
                                         r"got '.*empty.txt': 0 bytes$"):
        read_text(path, name="--data")


def test_read_text_undecodable_byte_gives_offset_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"ab\ncaf\xe9\n")  # 'é' in Latin-1: byte 6, on line 2
    with pytest.raises(ValueError) as err:
        read_text(path, name="--data")
    assert str(err.value) == (f"--data must be UTF-8 text, got '{path}' with the undecodable byte 0xe9 "
                              f"at byte offset 6 (line 2)")


def test_split_holds_out_the_last_lines_in_order():
    text = "".join(f"line {i}\n" for i in range(10))
    train, val = split_lines(text, 0.2)
    assert train == "".join(f"line {i}\n" for i in range(8))
    assert val == "line 8\nline 9\n"
    # without a final newline, and a fraction that rounds to 0 lines still holds one out
    assert split_lines("a\nb\nc", 0.01) == ("a\nb\n", "c")


def test_split_errors():
    with pytest.raises(ValueError, match=r"the text must have more lines than the 1 held out by "
                                         r"val_fraction=0.5, got 1 line\(s\)"):
        split_lines("one line only\n", 0.5)
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\), got 1.0"):
        split_lines("a\nb\n", 1.0)


def test_cache_dir_follows_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "rnnkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "rnnkit"


def test_missing_bible_program_names_the_debian_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        kjv_text()
    assert "Debian packages bible-kjv and bible-kjv-text (apt-get install bible-kjv)" in str(err.value)
    assert not (tmp_path / "rnnkit" / "kjv.txt").exists()


@pytest.mark.skipif(shutil.which("bible") is None, reason="needs Debian's bible-kjv")
def test_kjv_is_the_whole_bible_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    text = kjv_text()
    assert text.count("\n") == KJV_VERSES == 31_102
    assert text.startswith(load_text())  # the embedded Genesis + Exodus excerpt, verse for verse
    assert text.endswith("\nThe grace of our Lord Jesus Christ be with you all. Amen.\n")
    assert len(text) == 4_137_847 and text.isascii()
    assert kjv_path() == tmp_path / "rnnkit" / "kjv.txt"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # the second call reads the cache
    assert kjv_text() == text


def test_a_bad_cache_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "rnnkit").mkdir()
    (tmp_path / "rnnkit" / "kjv.txt").write_text("In the beginning\n")
    with pytest.raises(ValueError, match="must hold 31102 lines, got 1; delete it to extract it again"):
        kjv_text()


def test_extract_rejects_a_program_that_prints_no_verses(tmp_path, monkeypatch):
    fake = tmp_path / "bible"
    fake.write_text("#!/bin/sh\necho 'no reference here'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="printed a line without a verse reference: 'no reference here'"):
        text_mod.extract_kjv()
