"""Entity (chunk) scores against hand-derived values and the reviewer's conlleval-style script."""

import random

import pytest

from rnnkit.tasks._tag_score import chunks, entity_scores, is_chunk_scheme, score_tags


@pytest.mark.parametrize("tags, expected", [
    # IOB2: B-PER starts at 0, I-PER continues, O ends it; B-LOC at 3 ends with the sentence
    (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),
    # IOB1: I-PER after the sentence start (O) starts a chunk; B-PER after I-PER ends it and
    # starts one; O ends that; I-LOC after O starts one
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]),
    # an I- of another type ends the chunk and starts one (conlleval), whatever the prefix
    (["B-PER", "I-LOC", "I-LOC"], [(0, 1, "PER"), (1, 3, "LOC")]),
    (["O", "I-ORG", "I-ORG"], [(1, 3, "ORG")]),  # invalid IOB2, read as conlleval reads it
    (["B-X", "B-X"], [(0, 1, "X"), (1, 2, "X")]),
    # IOBES: S- is a chunk of one; a chunk ends after E-; E- or I- after E- or S- starts one
    (["S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "E-LOC", "O"],
     [(0, 1, "PER"), (1, 4, "LOC"), (4, 5, "LOC"), (5, 6, "LOC")]),
    (["B-X", "E-X", "E-X"], [(0, 2, "X"), (2, 3, "X")]),
    (["B-X", "E-X", "I-X"], [(0, 2, "X"), (2, 3, "X")]),
    (["S-X", "I-X"], [(0, 1, "X"), (1, 2, "X")]),
    (["B-X", "S-X"], [(0, 1, "X"), (1, 2, "X")]),
    # BILOU: U- is S-, L- is E-
    (["U-PER", "B-LOC", "L-LOC", "L-LOC"], [(0, 1, "PER"), (1, 3, "LOC"), (3, 4, "LOC")]),
    # types may hold hyphens: conlleval splits at the first one
    (["B-GPE-LOC", "I-GPE-LOC"], [(0, 2, "GPE-LOC")]),
    (["O", "O"], []),
])
def test_chunks_follow_conlleval(tags, expected):
    assert chunks(tags) == expected


def test_entity_scores_by_hand():
    """Gold chunks: (0, 2, PER), (3, 4, LOC) | (0, 1, ORG). Predicted: (0, 2, PER), (3, 4, PER) |
    (0, 2, ORG) (I-ORG I-ORG). Right: (0, 2, PER) only, so P = R = F1 = 1/3 overall; PER:
    1 right of 2 predicted and 1 gold (P 1/2, R 1, F1 2/3); LOC and ORG: 0. Tokens: 3 of 4 right
    in the first sentence, 0 of 2 in the second: accuracy 1/2."""
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-PER"], ["I-ORG", "I-ORG"]]
    third = pytest.approx(1 / 3)
    result = score_tags(gold, predicted, ["B-LOC", "B-ORG", "B-PER", "I-ORG", "I-PER", "O"])
    assert result["tokens"] == 6 and result["accuracy"] == 0.5 and result["unknown_tag_tokens"] == 0
    entities = result["entities"]
    assert (entities["precision"], entities["recall"], entities["f1"]) == (third, third, third)
    assert (entities["gold"], entities["predicted"], entities["correct"]) == (3, 3, 1)
    assert entities["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 0, "correct": 0},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 1, "correct": 0},
        "PER": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "gold": 1, "predicted": 2,
                "correct": 1}}
    # no chunk predicted (all O): precision, recall and F1 are 0 as conlleval's, not a division by 0
    none = entity_scores(gold, [["O"] * 4, ["O"] * 2])
    assert (none["precision"], none["recall"], none["f1"], none["predicted"]) == (0.0, 0.0, 0.0, 0)
    assert score_tags([["NN", "VB"]], [["NN", "NN"]], ["NN", "VB"])["entities"] is None


def test_chunk_scheme_detection():
    assert is_chunk_scheme(["O", "B-PER", "I-PER", "E-LOC", "S-LOC", "L-X", "U-X"])
    assert not is_chunk_scheme(["O"])  # nothing to chunk
    assert not is_chunk_scheme(["O", "B-PER", "NN"])  # one tag outside the scheme
    assert not is_chunk_scheme(["nn", "np-tl", "b-x"])  # Brown's tags
    assert not is_chunk_scheme(["B-", "O"])  # a prefix without a type
    with pytest.raises(ValueError, match=r"tags must be O or PREFIX-TYPE .* got 'NN'"):
        chunks(["B-X", "NN"])
    with pytest.raises(ValueError, match="sentence 0 has 2 gold tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])


def reviewer_chunks(tags):
    """/tmp/review_tag/entity_f1.py's chunks (IOB1/IOB2 as conlleval), written independently."""
    out, start, typ = set(), None, None
    for i, t in enumerate(list(tags) + ["O"]):
        p, _, ty = t.partition("-") if t != "O" else ("O", "", None)
        begin = p == "B" or (p == "I" and ty != typ) or p == "S"
        if typ is not None and (p == "O" or begin):
            out.add((start, i, typ))
            typ = None
        if p != "O" and (begin or typ is None):
            start, typ = i, ty
    return out


def reviewer_f1(gold, pred):
    tp = fp = fn = 0
    for g, p in zip(gold, pred, strict=True):
        G, P = reviewer_chunks(g), reviewer_chunks(p)
        tp, fp, fn = tp + len(G & P), fp + len(P - G), fn + len(G - P)
    precision, recall = (tp / (tp + fp) if tp + fp else 0), (tp / (tp + fn) if tp + fn else 0)
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0


def metrics_gap_test_file():
    """The reviewer's make_ner.py (metrics_gap.sh): 200 training, then 40 test sentences."""
    rng = random.Random(0)
    names, surnames = ["John", "Mary", "Peter", "Anna", "Paul"], ["Smith", "Jones", "Brown"]
    cities = ["Paris", "Berlin", "Rome"]
    filler = "the man said that he went to a place yesterday and".split()

    def sentence():
        tokens = []
        for _ in range(rng.randint(3, 10)):
            r = rng.random()
            if r < 0.1:
                tokens += [(rng.choice(names), "B-PER"), (rng.choice(surnames), "I-PER")]
            elif r < 0.15:
                tokens += [(rng.choice(cities), "B-LOC")]
            else:
                tokens += [(rng.choice(filler), "O")]
        return tokens

    sentences = [sentence() for _ in range(240)]
    return [[t for _, t in s] for s in sentences[200:]]


def test_metrics_gap_data_all_o_and_noisy_predictions_match_the_reviewer():
    """The reviewer's finding: on its test file an all-O model scores 77.6% token accuracy
    (235 of 303 tokens are O) and finds none of the 37 entities. Noisy predictions (each tag
    replaced with probability 0.3 by a random one of the five, IOB1-style I- starts included)
    score as the reviewer's script scores them."""
    gold = metrics_gap_test_file()
    all_o = [["O"] * len(s) for s in gold]
    result = score_tags(gold, all_o, ["B-LOC", "B-PER", "I-PER", "O"])
    assert result["tokens"] == 303 and result["accuracy"] == 235 / 303
    assert result["entities"]["gold"] == 37 and result["entities"]["f1"] == 0.0
    per_type = result["entities"]["per_type"]
    assert per_type["PER"]["gold"] == 31 and per_type["LOC"]["gold"] == 6
    rng = random.Random(1)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    for _ in range(20):
        noisy = [[rng.choice(tags) if rng.random() < 0.3 else t for t in s] for s in gold]
        ours = entity_scores(gold, noisy)
        assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx(reviewer_f1(gold, noisy))
        assert all(set(chunks(p)) == reviewer_chunks(p) for p in noisy)
