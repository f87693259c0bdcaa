"""Sentence pairs: the TSV reader's errors name file, line and value; splits hold out whole
groups or the last lines; PairLoader shifts targets, pads at the end and is a pure function
of the epoch; the embedded Bible excerpt reads."""

import pytest
import torch

from rnnkit.data.bible_pairs import EXCERPT, EXCERPT_BOOKS
from rnnkit.data.pairs import PairLoader, read_pairs, read_sources, split_pairs
from rnnkit.data.series import DataError
from rnnkit.train import IGNORE


def write(tmp_path, text, name="pairs.tsv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_reads_two_and_three_columns(tmp_path):
    pairs = read_pairs(write(tmp_path, "\ufeffa b\tx y\r\n\n  c \td\n"))
    assert (pairs.sources, pairs.targets, pairs.groups) == (("a b", "c"), ("x y", "d"), None)
    pairs = read_pairs(write(tmp_path, "a\tx\tG\nb\ty\tH\n"))
    assert pairs.groups == ("G", "H") and len(pairs) == 2
    assert read_pairs(write(tmp_path, "a\u2028b\tx\n")).sources == ("a\u2028b",)  # one line, not two


@pytest.mark.parametrize("text, line, message", [
    ("a\tb\nno tab here\n", 2, "expected 2 or 3 tab-separated columns, source<TAB>target[<TAB>group], got 1 "
                               "(columns must be separated by a tab): 'no tab here'"),
    ("a\tb\tc\td\n", 1, "expected 2 or 3 tab-separated columns"),
    ("a\tb\tG\nc\td\n", 2, "expected 3 columns like line 1, got 2"),
    ("a\tb\n \tc\n", 2, "expected a non-empty source, got an empty column"),
    ("a\t\n", 1, "expected a non-empty target, got an empty column"),
    (b"a\tb\nc\t\xff\n", 2, "expected UTF-8 text, got undecodable byte(s) b'\\xff'"),
])
def test_bad_lines_name_file_line_and_value(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_pairs(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_bad_files(tmp_path):
    for path, message in ((write(tmp_path, ""), "got an empty file"), (write(tmp_path, "\n \n", "b.tsv"),
                          "got an empty file"), (tmp_path / "none.tsv", "file not found"),
                          (tmp_path, "expected a file, got a directory")):
        with pytest.raises(DataError, match=message):
            read_pairs(path)


def test_read_sources_keeps_blank_lines_and_takes_the_first_column(tmp_path):
    assert read_sources(write(tmp_path, "one\n\ntwo\tdos\tG\n")) == ["one", "", "two"]
    with pytest.raises(DataError, match="empty file"):
        read_sources(write(tmp_path, "\n"))


def test_split_by_groups_and_by_position(tmp_path):
    pairs = read_pairs(write(tmp_path, "".join(f"s{i}\tt{i}\t{'ABCD'[i % 4]}\n" for i in range(20))))
    train, val, test = split_pairs(pairs, val_groups=("B",), test_groups=("C", "D"))
    assert set(val.groups) == {"B"} and set(test.groups) == {"C", "D"} and set(train.groups) == {"A"}
    assert len(train) + len(val) + len(test) == 20 and train.sources[:2] == ("s0", "s4")
    train, val, test = split_pairs(pairs, test_groups=("A",), val_fraction=0.2)
    assert test.sources[0] == "s0" and val.sources == ("s17", "s18", "s19") and len(train) == 12
    train, val, test = split_pairs(pairs)
    assert len(train) == 20 and val is None and test is None


def test_val_fraction_holds_out_the_last_ceil_n_times_fraction_pairs(tmp_path):
    nine = read_pairs(write(tmp_path, "".join(f"s{i}\tt{i}\n" for i in range(9))))
    train, val, test = split_pairs(nine, val_fraction=0.05)  # round(0.45) held out none
    assert val.sources == ("s8",) and train.sources == tuple(f"s{i}" for i in range(8)) and test is None
    lines = "".join(f"s{i}\tt{i}\t{'ABCD'[i % 4]}\n" for i in range(20))
    grouped = read_pairs(write(tmp_path, lines, "g.tsv"))
    train, val, test = split_pairs(grouped, test_groups=("A",), val_fraction=0.15)
    assert val.sources == ("s17", "s18", "s19") and len(train) == 12  # ceil(15 * 0.15) = ceil(2.25)


@pytest.mark.parametrize("groups, test_groups, message", [
    (False, (), "val_fraction=0.05 of 1 pairs holds out ceil(1 * 0.05) = 1 and leaves 0 to train on"),
    (True, ("A",), "val_fraction=0.05 of 1 pairs left after the test groups holds out ceil(1 * 0.05) = 1 "
                   "and leaves 0 to train on"),
])
def test_val_fraction_that_empties_a_side_is_an_error(tmp_path, groups, test_groups, message):
    text = "a\tb\tA\nc\td\tA\ne\tf\tB\n" if groups else "a\tb\n"
    with pytest.raises(ValueError) as err:
        split_pairs(read_pairs(write(tmp_path, text)), test_groups=test_groups, val_fraction=0.05)
    assert str(err.value).startswith(message) and "set val_fraction=0 for no validation" in str(err.value)


def test_split_errors(tmp_path):
    pairs = read_pairs(write(tmp_path, "a\tb\tG\nc\td\tH\n"))
    with pytest.raises(ValueError, match=r"test_groups \(--set data.test_groups=...\) must be groups of .*, "
                                         r"got \['X'\], which are not; the file has \['G', 'H'\]"):
        split_pairs(pairs, test_groups=("X",))
    with pytest.raises(ValueError, match=r"must not share a group, got \['G'\]"):
        split_pairs(pairs, val_groups=("G",), test_groups=("G",))
    with pytest.raises(ValueError, match="leaves no training pairs"):
        split_pairs(pairs, val_groups=("G",), test_groups=("H",))
    with pytest.raises(ValueError, match="val_groups needs a third .group. column"):
        split_pairs(read_pairs(write(tmp_path, "a\tb\n", "two.tsv")), val_groups=("G",))


def ids(*lengths, start=1):
    return [torch.arange(start, start + n) for n in lengths]


def test_pair_loader_shifts_pads_and_covers_every_pair_once():
    sources, targets = ids(3, 1, 5, 2, 4), ids(2, 4, 1, 3, 2, start=10)
    loader = PairLoader(sources, targets, bos_id=20, eos_id=21, batch_size=2, pool=2, seed=3)
    seen = []
    for batch in loader.batches(0):
        src, lengths, target_in = batch.inputs
        for b in range(batch.rows):
            n = int(lengths[b])
            row = next(i for i, s in enumerate(sources) if len(s) == n and torch.equal(s, src[b, :n]))
            t = targets[row]
            assert torch.equal(target_in[b, :len(t) + 1], torch.cat([torch.tensor([20]), t]))
            assert torch.equal(batch.targets[b, :len(t) + 1], torch.cat([t, torch.tensor([21])]))
            assert (batch.targets[b, len(t) + 1:] == IGNORE).all()
            seen.append(row)
    assert sorted(seen) == [0, 1, 2, 3, 4] and len(loader) == 3
    first = [b.targets for b in loader.batches(1)]
    assert all(torch.equal(a, b) for a, b in zip(first, [b.targets for b in loader.batches(1)], strict=True))
    assert [b.targets.shape for b in loader.batches(1, start=2)] == [first[2].shape]


def test_pair_loader_shards_and_checks():
    loader = PairLoader(ids(3, 1, 5, 2, 4), ids(2, 4, 1, 3, 2), bos_id=20, eos_id=21, batch_size=2)
    halves = [list(loader.shard(rank, 2).batches(0)) for rank in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == 2 and all(b.rows == 1 for half in halves for b in half)
    with pytest.raises(ValueError, match=r"targets\[1\] must be a non-empty 1-D int64 tensor"):
        PairLoader(ids(1, 1), [torch.tensor([1]), torch.zeros(0, dtype=torch.long)], bos_id=0, eos_id=1,
                   batch_size=1)
    with pytest.raises(ValueError, match="the same number"):
        PairLoader(ids(1, 1), ids(1), bos_id=0, eos_id=1, batch_size=1)


def test_embedded_bible_excerpt():
    pairs = read_pairs(EXCERPT)
    counts = {book: pairs.groups.count(book) for book in EXCERPT_BOOKS}
    assert counts == {"Mark": 678, "John": 879, "1John": 105, "2John": 13, "3John": 14}
    assert pairs.sources[0] == "The beginning of the gospel of Jesus Christ, the Son of God;"
    assert pairs.targets[0] == "PRINCIPIO del evangelio de Jesucristo, Hijo de Dios."
    assert not any("<" in s or "\\" in s or "¶" in s for s in pairs.sources + pairs.targets)
