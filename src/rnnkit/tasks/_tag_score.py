"""Tagging a whole file in batches, and scoring it next to the most-frequent-tag baseline."""

from __future__ import annotations

from typing import Any

import torch

from rnnkit.data.tag_features import SentenceLoader, TagVocab
from rnnkit.data.tagged import Tagged
from rnnkit.models.tagger import Tagger
from rnnkit.tasks._tag_baseline import MostFrequentTag


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
    training; a gold tag the model cannot produce counts as a mistake (``unknown_tag_tokens``)."""
    assert data.tags is not None
    ids = predict_ids(model, vocab, data, batch_size)
    names = {"model": [[vocab.tags[i] for i in row] for row in ids],
             "baseline_suffix": [baseline.predict(w, "suffix") for w in data.words],
             "baseline_overall": [baseline.predict(w, "overall") for w in data.words]}
    known = set(vocab.tags)
    unseen = [not baseline.known(w) for words in data.words for w in words]  # flat, like `right`
    n_tokens, n_unseen = data.n_tokens, sum(unseen)
    out: dict[str, Any] = {"tokens": n_tokens, "unknown_word_tokens": n_unseen,
                           "unknown_tag_tokens": sum(t not in known for s in data.tags for t in s)}
    for name, predicted in names.items():
        right = [p == g for ps, gs in zip(predicted, data.tags, strict=True)
                 for p, g in zip(ps, gs, strict=True)]
        total = sum(right)
        on_unseen = sum(r for r, u in zip(right, unseen, strict=True) if u)
        prefix = "" if name == "model" else f"{name}_"
        out[f"{prefix}accuracy"] = total / n_tokens
        out[f"{prefix}unknown_word_accuracy"] = on_unseen / n_unseen if n_unseen else None
    return out
