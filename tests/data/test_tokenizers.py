"""Tokenizers: round trips, the unknown-character error, tokenizer.json by type, BPE on
bytes, and streaming decode that never splits a character."""

import json

import pytest
import torch

from rnnkit.data.tokenizers import (
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    decode_stream,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)

TEXT = ("In the beginning God created the heaven and the earth.\n"
        "And the earth was without form, and void; and darkness was upon the face of the deep.\n"
        "And God said, Let there be light: and there was light.\n") * 3


def test_char_tokenizer_round_trip_and_sorted_vocabulary():
    tok = train_tokenizer("char", "cab\nba")
    assert tok.chars == ("\n", "a", "b", "c") and tok.vocab_size == 4
    ids = tok.encode("abc\n")
    assert ids.dtype == torch.long and ids.tolist() == [1, 2, 3, 0]
    assert tok.decode(ids) == "abc\n" and tok.decode([3, 1]) == "ca"


def test_char_tokenizer_names_the_unknown_character_and_its_position():
    tok = CharTokenizer.train("hello world")
    with pytest.raises(ValueError) as err:
        tok.encode("hello wörld", name="prompt")
    message = str(err.value)
    assert message.startswith("prompt must use only the 8 characters of the training text")
    assert "got 'ö' (U+00F6) at position 7" in message


def test_bpe_learns_merges_from_the_training_text_and_encodes_any_text():
    tok = train_tokenizer("bpe", TEXT, vocab_size=300)
    assert isinstance(tok, BPETokenizer) and 256 < tok.vocab_size <= 300
    ids = tok.encode(TEXT)
    assert len(ids) < len(TEXT) / 2  # merges of frequent words
    assert tok.decode(ids) == TEXT
    unseen = "Ünïcödé ☃ 🎄 text\n\n"  # characters never seen in training: their UTF-8 bytes
    assert tok.decode(tok.encode(unseen)) == unseen


def test_bpe_training_is_deterministic():
    a = BPETokenizer.train(TEXT, vocab_size=290).to_dict()
    b = BPETokenizer.train(TEXT, vocab_size=290).to_dict()
    assert a == b


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_saved_tokenizer_loads_back_by_type(kind, tmp_path):
    tok = train_tokenizer(kind, TEXT, vocab_size=280)
    assert isinstance(tok, Tokenizer)
    path = save_tokenizer(tok, tmp_path / "run")
    assert path == tmp_path / "run" / "tokenizer.json"
    assert json.loads(path.read_text(encoding="utf-8"))["type"] == kind
    for source in (tmp_path / "run", path):  # a run directory or the file itself
        again = load_tokenizer(source)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        assert again.encode(TEXT).tolist() == tok.encode(TEXT).tolist()


def test_load_tokenizer_never_imports_a_class_path(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"type": "os.system", "chars": ["a"]}))
    with pytest.raises(ValueError, match=r"must hold \{\"type\": one of \['bpe', 'char'\], \.\.\.\}, "
                                         r"got type 'os.system'"):
        load_tokenizer(tmp_path)


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(ValueError, match="tokenizer file must exist, got .*tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="must be UTF-8 JSON"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"type": "char", "chars": "abc"}))
    with pytest.raises(ValueError, match=r'must hold "chars": a list of strings, got \'abc\''):
        load_tokenizer(tmp_path)


def test_bpe_vocab_size_must_cover_the_bytes():
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256 \\(the byte alphabet\\), got 100"):
        train_tokenizer("bpe", TEXT, vocab_size=100)
    with pytest.raises(ValueError, match=r"tokenizer must be one of \['bpe', 'char'\], got 'word'"):
        train_tokenizer("word", TEXT)


def test_decode_stream_holds_back_partial_characters():
    tok = BPETokenizer.train(TEXT, vocab_size=280)
    text = "God ☃ said 🎄."
    ids = tok.encode(text).tolist()
    assert len(ids) > len(text) - 4  # the snowman and the tree are split into byte tokens
    pieces = list(decode_stream(tok, ids))
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert len(pieces) > 3  # it streams


def test_decode_stream_is_one_piece_per_char_for_the_char_tokenizer():
    tok = CharTokenizer.train("abc")
    assert list(decode_stream(tok, iter([0, 2, 1]))) == ["a", "c", "b"]
