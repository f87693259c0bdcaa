"""The reader's lines and columns (Unicode whitespace, CoNLL-U, word_column, tags where present)
and the writer that keeps a file's layout."""

import pytest

from rnnkit.data.series import DataError
from rnnkit.data.tagged import aligned_text, read_tagged

CONLLU = ("# sent_id = 1\n# text = John went home.\n"
          "1\tJohn\tJohn\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\n"
          "2-3\twent home\t_\t_\t_\t_\t_\t_\t_\t_\n"
          "2\twent\tgo\tVERB\tVBD\t_\t0\troot\t_\t_\n"
          "3\thome\thome\tADV\tNN\t_\t2\tobj\t_\tSpaceAfter=No\n\n"
          "# sent_id = 2\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n")


def write(tmp_path, text, name="f.conll"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("text, words, tags", [
    # str.splitlines split at U+0085, U+2028 and form feed, str.split at NBSP and U+3000
    ("New\u00a0York\tB-LOC\nis\tO\n\n", ("New\u00a0York", "is"), ("B-LOC", "O")),
    ("a\u2028b\tO\nis\tO\n\n", ("a\u2028b", "is"), ("O", "O")),
    ("caf\u0085\tO\nis\tO\n\n", ("caf\u0085", "is"), ("O", "O")),
    ("a\x0cb\tO\nc\tO\n", ("a\x0cb", "c"), ("O", "O")),
    ("東京\tB-LOC\n\u3000\tO\n大阪\tB-LOC\n\n", ("東京", "\u3000", "大阪"), ("B-LOC", "O", "B-LOC")),
    ("New York\tB-LOC\nis \tO\n", ("New York", "is"), ("B-LOC", "O")),  # spaces inside, around a field
    ("EU\tB-ORG\r\nrejects\tO\r\n", ("EU", "rejects"), ("B-ORG", "O")),
])
def test_lines_end_at_newline_and_tab_lines_split_at_tabs(tmp_path, text, words, tags):
    path = write(tmp_path, text)
    data = read_tagged(path)
    assert (data.words, data.tags) == ((words,), (tags,))
    assert read_tagged(path, tagged=False).words == (words,)


def test_conllu_comments_multiword_lines_and_word_column(tmp_path):
    path = write(tmp_path, CONLLU, "ud.conllu")
    data = read_tagged(path, word_column=1, tag_column=3)
    assert data.words == (("John", "went", "home"), ("Hi",))
    assert data.tags == (("PROPN", "VERB", "ADV"), ("INTJ",))
    assert data.lines == ((3, 5, 6), (9,))
    assert read_tagged(path, word_column=1, tagged=False).words == data.words
    # the same without the suffix: the first line's '#' makes it CoNLL-U
    assert read_tagged(write(tmp_path, CONLLU, "ud.txt"), word_column=1, tag_column=3).words == data.words


@pytest.mark.parametrize("text, name", [(CONLLU, "ud.conllu"),
                                        ("1\tJohn\tPROPN\n2\twent\tVERB\n\n1\tHi\tINTJ\n", "ud.conll")])
def test_token_ids_as_words_are_refused(tmp_path, text, name):
    """The ID column (1..n in every sentence) read as words: with comments kept this failed on
    columns; without them, tag_column=3 trained on '1', '2', '3' silently."""
    path = write(tmp_path, text, name)
    for tagged in (True, False):
        with pytest.raises(DataError, match=r"expected words in column 0 \(word_column\), got the token "
                                            r"numbers 1..n of every sentence, as CoNLL-U's ID column; "
                                            r"for CoNLL-U set data.word_column=1"):
            read_tagged(path, tag_column=2, tagged=tagged)


def test_word_column_bad_values(tmp_path):
    path = write(tmp_path, "a\tB\tO\n")
    with pytest.raises(ValueError, match=r"word_column must pick one of the 3 columns in .*f.conll:1 "
                                         r"\(0..2\), got 3"):
        read_tagged(path, word_column=3)
    with pytest.raises(ValueError, match=r"tag_column must pick a tag column of the 3 .*\(-3..2; 1 is the "
                                         r"word, word_column\), got -2"):
        read_tagged(path, word_column=1, tag_column=-2)
    with pytest.raises(ValueError, match="word_column must be an int >= 0, got -1"):
        read_tagged(path, word_column=-1)
    assert read_tagged(path, word_column=1, tag_column=0).tags == (("a",),)


def test_tags_where_present(tmp_path):
    conll = write(tmp_path, "-DOCSTART- -X- O\n\nEU NNP B-ORG\nsaid VBD O\n")
    assert read_tagged(conll, tagged=None).tags == (("B-ORG", "O"),)
    assert read_tagged(write(tmp_path, "EU\nsaid\n"), tagged=None).tags is None  # one column
    assert read_tagged(write(tmp_path, "a/DT dog/NN\n"), tagged=None).tags == (("DT", "NN"),)
    assert read_tagged(write(tmp_path, "a dog\nran off fast\n"), tagged=None).tags is None  # text
    assert read_tagged(conll, tagged=None, tag_column=5).tags is None  # no such column


def test_aligned_text_keeps_every_line(tmp_path):
    text = ("\n-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
            "Peter NNP B-NP B-PER\n  \n-DOCSTART- -X- -X- O\n\nBRUSSELS NNP B-NP B-LOC\n")
    data = read_tagged(write(tmp_path, text), tagged=None)
    predicted = (("B-ORG", "O"), ("B-LOC",), ("O",))
    out = aligned_text(data, predicted)
    assert out == ("\n-DOCSTART-\tO\tO\n\nEU\tB-ORG\tB-ORG\nrejects\tO\tO\n\nPeter\tB-PER\tB-LOC\n\n"
                   "-DOCSTART-\tO\tO\n\nBRUSSELS\tB-LOC\tO\n")
    assert len(out.splitlines()) == len(text.splitlines())
    # scoring the output reads it back: gold in column 1, predictions in the last
    back = write(tmp_path, out, "out.conll")
    assert read_tagged(back, tag_column=1).tags == data.tags
    assert read_tagged(back).tags == predicted
    untagged = read_tagged(write(tmp_path, "EU\nsaid\n\nHi\n"), tagged=False)
    assert aligned_text(untagged, (("B-ORG", "O"), ("O",))) == "EU\tB-ORG\nsaid\tO\n\nHi\tO\n"


def test_aligned_text_copies_conllu_comments_and_falls_back_to_blocks(tmp_path):
    data = read_tagged(write(tmp_path, CONLLU, "ud.conllu"), word_column=1, tag_column=3, tagged=None)
    out = aligned_text(data, (("X", "Y", "Z"), ("W",)))
    assert out.splitlines() == ["# sent_id = 1", "# text = John went home.", "John\tPROPN\tX",
                                CONLLU.splitlines()[3], "went\tVERB\tY", "home\tADV\tZ", "",
                                "# sent_id = 2", "Hi\tINTJ\tW", ""]
    slash = read_tagged(write(tmp_path, "a/DT dog/NN\nhi/UH\n"), tagged=None)
    assert aligned_text(slash, (("DT", "VB"), ("UH",))) == "a\tDT\tDT\ndog\tNN\tVB\n\nhi\tUH\tUH\n\n"
    with pytest.raises(ValueError, match="sentence 1 has 1 words but 2 tags"):
        aligned_text(slash, (("DT", "VB"), ("UH", "UH")))
