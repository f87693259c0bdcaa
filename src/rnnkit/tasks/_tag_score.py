"""Tagging a whole file in batches, and scoring it: token accuracy next to the most-frequent-tag
baseline, and, for named-entity (chunk) tag sets, entity precision, recall and F1.

Chunks follow conlleval (CoNLL-2000's evaluation script), with the S-/E- rules of its common
extension (seqeval's default mode) for IOBES. Tags are ``O`` or ``PREFIX-TYPE``; a chunk

- starts at B-, at S-, at an I- or E- after O, E- or S-, and at any tag whose type differs
  from the previous tag's (so an I-X after O or after I-Y starts a chunk: IOB1 and sloppy
  IOB2 output are read as conlleval reads them);
- ends before O, B- or S- (after B- or I-), after E- and S-, and before a tag of another type.

L- (last) and U- (unit) of BILOU are E- and S-. A chunk is right only if its start, end and
type all equal a gold chunk's. Precision = right / predicted chunks, recall = right / gold
chunks, F1 their harmonic mean; as conlleval, 0 where a denominator is 0. The overall scores
are micro-averaged (summed over types), and each type's are reported too. A tag set is taken
for a chunk scheme if every tag is O or has one of the prefixes B I E S L U, a hyphen and a
type, and at least one is not O (``is_chunk_scheme``); otherwise (part of speech) there are
no entity scores.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from rnnkit.data.tag_features import SentenceLoader, TagVocab
from rnnkit.data.tagged import Tagged
from rnnkit.models.tagger import Tagger
from rnnkit.tasks._tag_baseline import MostFrequentTag

Chunk = tuple[int, int, str]  # start, end (exclusive), type
_CHUNK_TAG = re.compile(r"[BIESLU]-.+")
_PREFIX = {"B": "B", "I": "I", "E": "E", "S": "S", "L": "E", "U": "S"}


@torch.no_grad()
def predict_ids(model: Tagger, vocab: TagVocab, data: Tagged, batch_size: int = 256) -> list[list[int]]:
    """Tag ids for every sentence of ``data``, in file order (the model is put in eval mode)."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(data)), key=lambda n: -len(data.words[n]))  # similar lengths together
    features = [vocab.features(data.words[n]) for n in order]
    dummy = [torch.zeros(f.shape[0], dtype=torch.long) for f in features]  # no targets needed
    loader = SentenceLoader(features, dummy, batch_size=batch_size, shuffle=False)
    ids: list[list[int]] = [[] for _ in range(len(data))]
    position = 0
    for batch in loader.batches(0):
        lengths_B = batch.lengths_B.to(device)
        tags_BT = model.decode(model(batch.inputs.to(device), lengths_B), lengths_B).cpu()
        for row, n in zip(tags_BT, batch.lengths_B.tolist(), strict=True):
            ids[order[position]] = row[:n].tolist()
            position += 1
    return ids


def score(model: Tagger, vocab: TagVocab, baseline: MostFrequentTag, data: Tagged,
          batch_size: int = 256) -> dict[str, Any]:
    """Token accuracy of ``model`` and the baseline on ``data``, overall and on words unseen in
    training; a gold tag the model cannot produce counts as a mistake (``unknown_tag_tokens``).
    ``entities``: the model's entity scores (``entity_scores``) with the baselines' F1, or None
    if the tags are not a chunk scheme."""
    assert data.tags is not None
    ids = predict_ids(model, vocab, data, batch_size)
    names = {"model": [[vocab.tags[i] for i in row] for row in ids],
             "baseline_suffix": [baseline.predict(w, "suffix") for w in data.words],
             "baseline_overall": [baseline.predict(w, "overall") for w in data.words]}
    model = score_tags(data.tags, names["model"], vocab.tags)  # tokens, unknown tags, entities
    unseen = [not baseline.known(w) for words in data.words for w in words]  # flat, like `right`
    n_tokens, n_unseen = model["tokens"], sum(unseen)
    out: dict[str, Any] = {"tokens": n_tokens, "unknown_word_tokens": n_unseen,
                           "unknown_tag_tokens": model["unknown_tag_tokens"]}
    for name, predicted in names.items():
        right = [p == g for ps, gs in zip(predicted, data.tags, strict=True)
                 for p, g in zip(ps, gs, strict=True)]
        total = sum(right)
        on_unseen = sum(r for r, u in zip(right, unseen, strict=True) if u)
        prefix = "" if name == "model" else f"{name}_"
        out[f"{prefix}accuracy"] = total / n_tokens
        out[f"{prefix}unknown_word_accuracy"] = on_unseen / n_unseen if n_unseen else None
    out["entities"] = None if model["entities"] is None else {
        **model["entities"], **{f"{name}_f1": entity_scores(data.tags, names[name])["f1"]
                                for name in ("baseline_suffix", "baseline_overall")}}
    return out


def score_tags(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
               tagset: Sequence[str]) -> dict[str, Any]:
    """Token accuracy of ``predicted`` against ``gold``, how many gold tags ``tagset`` (the
    model's) lacks, and ``entities`` as in ``score``, without the baselines."""
    pairs = [(p, g) for ps, gs in zip(predicted, gold, strict=True) for p, g in zip(ps, gs, strict=True)]
    if not pairs:
        raise ValueError("gold must hold at least one token, got none")
    known = set(tagset)
    chunked = is_chunk_scheme([*tagset, *(g for _, g in pairs)])
    return {"tokens": len(pairs), "unknown_tag_tokens": sum(g not in known for _, g in pairs),
            "accuracy": sum(p == g for p, g in pairs) / len(pairs),
            "entities": entity_scores(gold, predicted) if chunked else None}


def is_chunk_scheme(tags: Iterable[str]) -> bool:
    """Whether every tag is O or PREFIX-TYPE (prefix B I E S L U) and one at least is not O."""
    tags = set(tags)
    return any(t != "O" for t in tags) and all(t == "O" or _CHUNK_TAG.fullmatch(t) for t in tags)


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """The chunks of one sentence's tags by conlleval's rules (module docstring), in order."""
    found: list[Chunk] = []
    start: int | None = None
    prev, prev_type = "O", ""
    for i, tag in enumerate([*tags, "O"]):  # the O closes a chunk at the end
        kind, type_ = _split(tag)
        if start is not None and _ends(prev, kind, prev_type, type_):
            found.append((start, i, prev_type))
            start = None
        if _starts(prev, kind, prev_type, type_):
            start = i
        prev, prev_type = kind, type_
    return found


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Chunk precision, recall and F1, overall (micro) and ``per_type``, with the counts."""
    counts: dict[str, Counter] = {"gold": Counter(), "predicted": Counter(), "correct": Counter()}
    for n, (gs, ps) in enumerate(zip(gold, predicted, strict=True)):
        if len(gs) != len(ps):
            raise ValueError(f"sentence {n} has {len(gs)} gold tags but {len(ps)} predicted")
        g, p = set(chunks(gs)), set(chunks(ps))
        counts["gold"].update(t for *_, t in g)
        counts["predicted"].update(t for *_, t in p)
        counts["correct"].update(t for *_, t in g & p)
    types = sorted(set(counts["gold"]) | set(counts["predicted"]))
    overall = _prf(*(sum(c.values()) for c in counts.values()))
    return {**overall, "per_type": {t: _prf(*(c[t] for c in counts.values())) for t in types}}


# -- pieces ------------------------------------------------------------------------------------


def _split(tag: str) -> tuple[str, str]:
    """(prefix, type): ("O", "") for O, as conlleval, which splits at the first hyphen."""
    if tag == "O":
        return "O", ""
    if not _CHUNK_TAG.fullmatch(tag):
        raise ValueError(f"tags must be O or PREFIX-TYPE with a prefix of B, I, E, S, L, U, got {tag!r}")
    prefix, _, type_ = tag.partition("-")
    return _PREFIX[prefix], type_


def _ends(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk open at ``prev`` ends before ``tag``."""
    return (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_type != type_))


def _starts(prev: str, tag: str, prev_type: str, type_: str) -> bool:
    """Whether a chunk starts at ``tag``."""
    return (tag in ("B", "S") or (prev in ("E", "S", "O") and tag in ("E", "I"))
            or (tag != "O" and prev_type != type_))


def _prf(gold: int, predicted: int, correct: int) -> dict[str, Any]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "gold": gold, "predicted": predicted, "correct": correct}
