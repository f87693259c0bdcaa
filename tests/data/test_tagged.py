"""CoNLL and word/tag readers, the feature encoding and the sentence loader."""

import pytest
import torch

from rnnkit.data.series import DataError
from rnnkit.data.tag_features import SentenceLoader, TagVocab, normalize, word_shape
from rnnkit.data.tagged import conll_text, read_tagged, write_conll
from rnnkit.train import IGNORE

CONLL = "The\tat\ndog\tnn\nran\tvbd\n\n\n1/2 cd\nKO'd  vbn\n"
SLASH = "\tThe/at Fulton/np-tl 1/2/cd ./.\n\n\tIt/pps ran/vbd\n"


def write(tmp_path, text, name="f.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_reads_conll_with_tabs_or_spaces(tmp_path):
    data = read_tagged(write(tmp_path, CONLL))
    assert data.words == (("The", "dog", "ran"), ("1/2", "KO'd"))
    assert data.tags == (("at", "nn", "vbd"), ("cd", "vbn"))
    assert data.lines == ((1, 2, 3), (6, 7)) and data.n_tokens == 5


def test_reads_word_slash_tag_lines_split_at_the_last_slash(tmp_path):
    data = read_tagged(write(tmp_path, SLASH))
    assert data.words == (("The", "Fulton", "1/2", "."), ("It", "ran"))
    assert data.tags == (("at", "np-tl", "cd", "."), ("pps", "vbd"))
    assert data.lines == ((1,) * 4, (3, 3))


def test_conll_columns_and_docstart(tmp_path):
    text = "-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
    assert read_tagged(write(tmp_path, text)).tags == (("B-ORG", "O"),)
    assert read_tagged(write(tmp_path, text), tag_column=1).tags == (("NNP", "VBZ"),)
    with pytest.raises(ValueError, match="tag_column must pick a tag column of the 4"):
        read_tagged(write(tmp_path, text), tag_column=0)


def test_untagged_input(tmp_path):
    assert read_tagged(write(tmp_path, "The\nend\n\nHi\n"), tagged=False).words == (("The", "end"), ("Hi",))
    data = read_tagged(write(tmp_path, "the dog ran\nhi\n"), format="text", tagged=False)
    assert data.words == (("the", "dog", "ran"), ("hi",)) and data.tags is None
    assert read_tagged(write(tmp_path, SLASH), tagged=False).words[1] == ("It", "ran")
    with pytest.raises(ValueError, match="format 'text' holds no tags"):
        read_tagged(write(tmp_path, "a b\n"), format="text")


@pytest.mark.parametrize("text, words", [
    # several words on a line, widths differ or one line per sentence: plain text
    ("the dog runs .\n\nZürich café sees a cat\n", (("the", "dog", "runs", "."),
                                                      ("Zürich", "café", "sees", "a", "cat"))),
    ("a b\n", (("a", "b"),)),
    # columns: a tab, -DOCSTART-, or the same width on consecutive lines; one word per line
    ("-DOCSTART- -X- O\n\nEU NNP O\n\nHi UH O\n", (("EU",), ("Hi",))),
    ("the\tXX\n\ndog\tYY\n", (("the",), ("dog",))),
    ("EU NNP\nrejects VBZ\n\nHi UH\n", (("EU", "rejects"), ("Hi",))),
    ("Hi\n\nthere\n", (("Hi",), ("there",))),
])
def test_untagged_auto_detects_plain_text(tmp_path, text, words):
    assert read_tagged(write(tmp_path, text), tagged=False).words == words


# Brown corpus sentences (test split, simplified tags) in pairs of equal length: 6 and 8 words
BROWN = [("Range was a vital detail .", "nn bedz at jj nn ."),
         ("Designs of parts were sought .", "nns in nns bed vbn ."),
         ("He promptly went to communist East Germany .", "pps rb vbd in nn jj np ."),
         ("Then the youths fled with his money .", "rb at nns vbd in pp$ nn .")]


def brown_conll(rows, sep=" ", between="\n"):
    """Brown sentences ``rows`` as word-tag lines joined by ``sep``, ``between`` after each sentence."""
    return "".join("".join(f"{w}{sep}{t}\n" for w, t in zip(ws.split(), ts.split(), strict=True)) + between
                   for ws, ts in (BROWN[i] for i in rows))


def brown_text(rows):
    return "".join(BROWN[i][0] + "\n" for i in rows)


def words_of(rows):
    return tuple(tuple(BROWN[i][0].split()) for i in rows)


@pytest.mark.parametrize("text, n, width, as_text", [
    # the reviewer's case: two 4-word sentences were read as one CoNLL sentence "the the"
    ("the dog sees cats\nthe cat eats dogs\n", 2, 4, (("the", "dog", "sees", "cats"),
                                                    ("the", "cat", "eats", "dogs"))),
    (brown_text([0, 1]), 2, 6, words_of([0, 1])),
    (brown_text([2, 3]) + "\n", 2, 8, words_of([2, 3])),  # a trailing blank line separates nothing
    # one space-separated CoNLL sentence: read as text, its tags would be words
    (brown_conll([0], between=""), 6, 2, tuple(zip(BROWN[0][0].split(), BROWN[0][1].split(), strict=True))),
])
def test_auto_does_not_guess_between_conll_and_equal_width_text(tmp_path, text, n, width, as_text):
    """Lines of equally many space-separated words, no tab, no blank line between them: one CoNLL
    sentence or one sentence per line alike, so 'auto' asks for --format instead of guessing."""
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_tagged(path, tagged=False)
    assert str(err.value) == (
        f"{path}: format 'auto' cannot tell CoNLL columns from plain text: {n} lines of {width} "
        f"space-separated words, no tab and no blank line between them (CoNLL: one sentence of {n} "
        f"tokens; text: {n} sentences of {width} words); pass format 'text' or 'conll' (rnnkit tag "
        f"--format text|conll; --format is one of auto, conll, slash, text)")
    assert read_tagged(path, format="text", tagged=False).words == as_text
    assert read_tagged(path, format="conll", tagged=False).words == (tuple(s.split()[0] for s in
                                                                           text.splitlines() if s),)
    with pytest.raises(DataError, match=r"plain text has no tags, so if this is CoNLL set format 'conll' "
                                        r"\(rnnkit train tag --set data.format=conll\)$"):
        read_tagged(path)


@pytest.mark.parametrize("text, words", [
    (brown_conll([0, 1, 2]), words_of([0, 1, 2])),  # space-separated, blank lines between sentences
    (brown_conll([0, 1], sep="\t", between=""), (words_of([0, 1])[0] + words_of([0, 1])[1],)),  # tabs
    (brown_text([0, 2, 1]), words_of([0, 2, 1])),  # different widths: one sentence per line
    (brown_text([0]), words_of([0])),  # one line
    ("\n\n".join(BROWN[i][0] for i in (0, 1)) + "\n", words_of([0, 1])),  # blank lines between all lines
])
def test_auto_on_brown_sentences(tmp_path, text, words):
    assert read_tagged(write(tmp_path, text), tagged=False).words == words


def test_tagged_auto_reads_space_separated_conll_with_blank_lines(tmp_path):
    data = read_tagged(write(tmp_path, brown_conll([2, 3])))
    assert data.words == words_of([2, 3])
    assert data.tags == tuple(tuple(BROWN[i][1].split()) for i in (2, 3))
    assert data.lines == (tuple(range(1, 9)), tuple(range(10, 18)))


@pytest.mark.parametrize("text, message", [
    ("the dog runs .\n\nZürich café sees a cat\n", ":1: expected one word per line (CoNLL), got 4 "
                                                    "words: 'the dog runs .'; for one sentence per line, "
                                                    "use format 'text'"),
    ("Hi\n\nthe dog\n", ":3: expected one word per line (CoNLL), got 2 words: 'the dog'"),
    ("a\tx\nb\n", ":2: expected 2 columns like line 1 (word ... tag), got 1: 'b'"),
])
def test_untagged_conll_refuses_plain_text(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_tagged(path, format="conll", tagged=False)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


@pytest.mark.parametrize("text, fmt, message", [
    ("", "auto", "expected data, got an empty file"),
    ("\n  \n", "auto", "expected data, got an empty file"),
    ("-DOCSTART- O\n\n", "auto", "expected at least one sentence, got none"),
    ("a\tx\nb\n", "conll", ":2: expected 2 columns like line 1 (word ... tag), got 1: 'b'"),
    ("a\tx\nb y z\n", "conll", ":2: expected 2 columns like line 1"),
    ("word\n", "conll", ":1: expected a word and a tag separated by a tab or spaces, got 'word'"),
    ("a/x b/y\nc/z dee\n", "auto", ":2: expected word/tag tokens (split at the last '/'), got 'dee'"),
    ("a/x b/\n", "slash", ":1: expected word/tag tokens (split at the last '/'), got 'b/'"),
    (b"a\tx\n\xff\tx\n", "auto", ":2: expected UTF-8 text, got undecodable byte(s) b'\\xff'"),
])
def test_malformed_files_name_file_line_and_value(tmp_path, text, fmt, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as err:
        read_tagged(path, format=fmt)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_missing_file_and_bad_format(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_tagged(tmp_path / "none.conll")
    with pytest.raises(ValueError, match="format must be one of"):
        read_tagged(write(tmp_path, CONLL), format="json")


def test_conll_round_trip(tmp_path):
    data = read_tagged(write(tmp_path, SLASH))
    write_conll(tmp_path / "out.conll", data.words, data.tags)
    again = read_tagged(tmp_path / "out.conll")
    assert (again.words, again.tags) == (data.words, data.tags)
    with pytest.raises(ValueError, match="sentence 0 has 2 words but 1 tags"):
        conll_text([["a", "b"]], [["x"]])


def test_word_shapes_and_normalisation():
    shapes = {w: word_shape(w) for w in ["dog", "Fulton", "NATO", "McDonald", "1961", "3-1", ",", "A", "i"]}
    assert shapes == {"dog": 1, "Fulton": 2, "NATO": 3, "McDonald": 4, "1961": 5, "3-1": 5, ",": 6,
                      "A": 2, "i": 1}
    assert normalize("Route-66") == "route-00" and normalize("Route-66", lowercase=False) == "Route-00"


def test_vocab_features_and_unknown_tags(tmp_path):
    train = read_tagged(write(tmp_path, SLASH))
    vocab = TagVocab.build(train, max_word_chars=4)
    assert vocab.tags == (".", "at", "cd", "np-tl", "pps", "vbd")
    assert vocab.words[:2] == ("<pad>", "<unk>") and "fulton" in vocab.words
    x = vocab.features(["Fulton", "Zebra", "3/4"])
    index = {c: i for i, c in enumerate(vocab.chars)}
    assert x.shape == (3, 2 + 4)
    assert x[0].tolist() == [vocab.words.index("fulton"), 2, index["F"], index["u"], index["o"], index["n"]]
    assert x[1, 0] == 1 and x[1, 2] == 1  # unknown word and unknown character 'Z' -> UNK
    assert x[2, 0] == vocab.words.index("0/0")  # "1/2" and "3/4" share a normalised form
    assert TagVocab.from_json(vocab.to_json()) == vocab
    test = read_tagged(write(tmp_path, "It\tpps\nsat\tvbz\n", "test.conll"))
    with pytest.raises(DataError, match=r"test.conll:2: expected one of the 6 tags of the training data, "
                                        r"got the unknown tag 'vbz'"):
        vocab.tag_ids(test, 0)
    assert vocab.tag_ids(test, 0, unknown="ignore").tolist() == [4, IGNORE]


def test_sentence_loader_pads_and_covers_every_sentence():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 9, (23,), generator=g).tolist()
    features = [torch.randint(1, 5, (n, 2 + n % 3), generator=g) for n in lengths]
    targets = [torch.randint(0, 4, (n,), generator=g) for n in lengths]
    loader = SentenceLoader(features, targets, batch_size=5, seed=3)
    batches = list(loader.batches(0))
    assert len(batches) == len(loader) == 5
    assert [b.lengths_B.tolist() for b in batches] == [b.lengths_B.tolist() for b in loader.batches(0)]
    seen = []
    for batch in batches:
        B, T, F = batch.inputs.shape
        assert T == int(batch.lengths_B.max())
        for row, n in zip(range(B), batch.lengths_B.tolist(), strict=True):
            matches = [i for i, f in enumerate(features) if f.shape[0] == n and
                       torch.equal(batch.inputs[row, :n, : f.shape[1]], f) and
                       torch.equal(batch.targets[row, :n], targets[i])]
            assert matches and (batch.targets[row, n:] == IGNORE).all() and (batch.inputs[row, n:] == 0).all()
            seen.append(matches[0])
    assert sorted(seen) == list(range(23))
    assert [b.lengths_B.tolist() for b in loader.batches(1)] != [b.lengths_B.tolist() for b in batches]
    in_order = SentenceLoader(features, targets, batch_size=5, shuffle=False)
    assert torch.cat([b.lengths_B for b in in_order.batches(0)]).tolist() == lengths
