"""Token-level tagging (part of speech, named entities) on your CoNLL or word/tag files,
or on the Brown corpus.

    cfg = load(TagConfig, None, ["data.path=train.conll", "data.test_path=test.conll"])
    results = train_tagger(cfg, "runs/pos")          # fit, then score val and test
    tagged = predict_tags("runs/pos", "new.txt", format="text")
    scores = score_file("runs/pos", "gold.conll")    # a new labelled file

With no ``data.path`` the data is the Brown corpus's file-based split (``rnnkit.data.brown``;
fetched once with npm), with ``data.brown_tags`` choosing the tag set. Without a
``data.val_path`` the last ``data.val_fraction`` of the training sentences is held out (by
position, so that neighbouring sentences of one document stay on one side).

Words keep their case in the shape feature and the characters; the word embedding sees them
lower-cased (``data.lowercase``), digits as 0. Words missing from the training vocabulary
map to UNK, whose embedding word dropout trains (``model.word_dropout``).

Scores (``results.json``) are token accuracy on val and test, overall and on unknown words
(words whose normalised form the training sentences lack), next to the most-frequent-tag
baseline on the same tokens (``rnnkit.tasks._tag_baseline``). Where the tags are a chunk
scheme (named entities: O, B-PER, I-PER ...), ``entities`` adds conlleval's entity
precision, recall and F1, overall and per type, and the baselines' F1
(``rnnkit.tasks._tag_score``): token accuracy alone rewards tagging everything O. A val/test tag absent from
training (``data.unknown_tags``): "error" stops before training with a DataError naming
file, line and tag; "count" scores those tokens as mistakes (the model cannot produce the
tag) and reports how many there were. Default: "error" for your files, "count" for Brown,
whose test split holds 3 such tokens (simplified tags).

A run directory holds what ``fit`` writes plus ``tagger.json`` (words, characters, tags)
and ``results.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch

from rnnkit import config as _config
from rnnkit._io import read_run_file, write_atomic
from rnnkit.data.brown import brown_split
from rnnkit.data.series import DataError
from rnnkit.data.tag_features import SentenceLoader, TagVocab
from rnnkit.data.tagged import Format, Tagged, read_tagged
from rnnkit.models import architecture_config, load_model
from rnnkit.models.tagger import CharEncoder, Tagger, TaggerConfig
from rnnkit.tasks._resume import check_out, check_resumed_config
from rnnkit.tasks._tag_baseline import MostFrequentTag
from rnnkit.tasks._tag_score import predict_ids, score, score_tags
from rnnkit.train import TrainConfig, checkpoint, fit, read_config, seed_everything
from rnnkit.train.setup import make_optimizer

VOCAB, RESULTS = "tagger.json", "results.json"


@dataclass(frozen=True, kw_only=True)
class TagDataSection:
    path: str = ""  # training file (CoNLL or word/tag); "": the Brown corpus's training split
    val_path: str | None = None  # None: Brown's val split, or the last val_fraction of path
    test_path: str | None = None  # None: Brown's test split; for your data, no test
    format: Literal["auto", "conll", "slash"] = "auto"  # rnnkit.data.tagged
    tag_column: int = -1  # conll: the tag column
    word_column: int = 0  # conll: the word column (CoNLL-U: 1, FORM; its UPOS is tag_column 3)
    val_fraction: float = 0.1  # without val_path; 0: no validation
    brown_tags: Literal["simplified", "full"] = "simplified"  # Brown only: 190 or 472 tags
    max_train_sentences: int | None = None  # the first n sentences of path (before the val split)
    unknown_tags: Literal["error", "count"] | None = None  # None: error, count for Brown
    lowercase: bool = True  # the word embedding's input
    max_vocab: int = 50_000
    min_freq: int = 1
    max_word_chars: int = 16  # longer words keep their first and last halves
    batch_size: int = 32

    def __post_init__(self):
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction!r}")
        for name in ("batch_size", "min_freq", "max_word_chars", "max_train_sentences"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"data.{name} must be >= 1, got {value!r}")
        if isinstance(self.word_column, bool) or self.word_column < 0:
            raise ValueError(f"data.word_column must be an int >= 0, got {self.word_column!r}")
        if self.max_vocab < 2:
            raise ValueError(f"data.max_vocab must be >= 2 (padding and UNK), got {self.max_vocab!r}")


@dataclass(frozen=True, kw_only=True)
class TagModelSection:
    """``TaggerConfig`` less what the data decides (vocabulary, characters, tags)."""

    embed_size: int = 100
    shape_size: int = 8
    char_encoder: CharEncoder = "cnn"
    char_embed_size: int = 30
    char_features: int = 50
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.25
    word_dropout: float = 0.05
    crf: bool = False

    def __post_init__(self):
        TaggerConfig(vocab_size=2, num_tags=2, num_chars=2, **_config.to_dict(self))  # its checks


def _default_train() -> TrainConfig:
    # lr and schedule as chosen on Brown's validation files (benchmarks/tag_brown.py)
    return TrainConfig(epochs=5, lr=5e-3, schedule="cosine", clip_norm=5.0, log_every=50)


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    data: TagDataSection = field(default_factory=TagDataSection)
    model: TagModelSection = field(default_factory=TagModelSection)
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self):
        if self.train.bptt is not None:
            raise ValueError(f"train.bptt must be None: a tagger reads whole sentences, "
                             f"got {self.train.bptt}")


def train_tagger(cfg: TagConfig, out: str | Path, *, overwrite: bool = False,
                 resume: bool = False) -> dict[str, Any]:
    """Read and check every file, train, score val and test; see the module docstring.
    ``resume`` continues the interrupted run in ``out``, with the settings it was started
    with but for its length (``rnnkit.tasks._resume``).

    Returns:
        the results written to ``out/results.json``.

    Raises:
        DataError: a file that cannot be read, or an unknown val/test tag (with "error").
        FileExistsError: ``out`` holds a run and neither ``overwrite`` nor ``resume``.
        FileNotFoundError: ``resume`` and ``out`` holds no saved run.
    """
    out = Path(out)
    check_out(out, resume=resume, overwrite=overwrite, device=cfg.train.device)
    paths, unknown = _paths(cfg.data)
    train, val, test = _read_all(cfg.data, paths)  # every file is checked before training
    vocab = TagVocab.build(train, max_words=cfg.data.max_vocab, min_freq=cfg.data.min_freq,
                           lowercase=cfg.data.lowercase, max_word_chars=cfg.data.max_word_chars)
    if unknown == "error":  # an unknown val/test tag fails now, not after training
        for part in (val, test):
            for n in range(0 if part is None else len(part)):
                vocab.tag_ids(part, n)
    seed_everything(cfg.train.seed)  # the initial weights too, as fit seeds dropout
    model = Tagger(_model_config(cfg.model, vocab))
    monitored = None if val is None else _known_tags(vocab, val)  # the loss needs known tags
    val_loader = _loader(vocab, monitored, 256, shuffle=False) if monitored else None
    config = {**architecture_config(model), "task": "tag", "data": _config.to_dict(cfg.data)}
    train_loader = _loader(vocab, train, cfg.data.batch_size, seed=cfg.train.seed)
    if resume:
        check_resumed_config(out, config, cfg.train, data=train_loader, val=val_loader)
    result = fit(model, train_loader, cfg.train,
                 loss_fn=model.loss, val=val_loader, metrics={"accuracy": model.accuracy},
                 optimizer=_optimizer(model, cfg.train), run_dir=out,
                 overwrite=overwrite, resume=resume, config=config)
    write_atomic(out / VOCAB, vocab.to_json().encode("utf-8"))
    baseline = MostFrequentTag(train, lowercase=cfg.data.lowercase)
    results = {
        "tagset_size": len(vocab.tags), "vocab_size": len(vocab.words),
        "train_path": str(paths["train"]), "val_path": None if val is None else str(val.source),
        "test_path": None if test is None else str(test.source),
        "n_train_sentences": len(train), "n_train_tokens": train.n_tokens,
        "unknown_tags": unknown, "crf": cfg.model.crf,
        "val": None if val is None else score(model, vocab, baseline, val),
        "test": None if test is None else score(model, vocab, baseline, test),
        "steps": result.steps, "seconds": round(result.seconds, 3), "stopped": result.stopped,
    }
    write_atomic(out / RESULTS, (json.dumps(results, indent=2) + "\n").encode())
    return results


class FileTags(NamedTuple):
    """A file as ``tag_file`` read it (words, gold tags if it has them) and the predictions."""

    data: Tagged
    predicted: tuple[tuple[str, ...], ...]
    tagset: tuple[str, ...]  # the run's tags


def tag_file(run_dir: str | Path, path: str | Path, *, format: Format | None = None,
             batch_size: int = 256) -> FileTags:
    """Tag every sentence of ``path`` with the model in ``run_dir``, keeping the file's gold tags
    where it has them (slash files; conll files with the run's ``data.tag_column``);
    ``format`` None: the training run's ``data.format``. The run's ``data.word_column`` says
    where the words are."""
    run_dir = Path(run_dir)
    saved = read_config(run_dir)
    if saved.get("task") != "tag":
        raise checkpoint.CheckpointError(f"{run_dir} is not a tagging run directory (its config.json "
                                         f"names task {saved.get('task')!r}; expected 'tag')")
    data = _config.from_dict(TagDataSection, saved.get("data") or {})
    vocab = read_run_file(run_dir / VOCAB, TagVocab.from_json, what="the tagger's words, characters and tags")
    model = load_model(run_dir)
    assert isinstance(model, Tagger)
    sentences = read_tagged(path, format=format or data.format, tag_column=data.tag_column,
                            word_column=data.word_column, tagged=None)
    ids = predict_ids(model, vocab, sentences, batch_size)
    return FileTags(sentences, tuple(tuple(vocab.tags[i] for i in row) for row in ids), vocab.tags)


def predict_tags(run_dir: str | Path, path: str | Path, *, format: Format | None = None,
                 batch_size: int = 256) -> Tagged:
    """Tag every sentence of ``path`` (tags in it, if any, are ignored) with the model in
    ``run_dir``; ``format`` None: the training run's ``data.format``."""
    data, predicted, _ = tag_file(run_dir, path, format=format, batch_size=batch_size)
    return Tagged(data.words, predicted, data.lines, data.source)


def score_file(run_dir: str | Path, path: str | Path, *, format: Format | None = None,
               batch_size: int = 256) -> dict[str, Any]:
    """Token accuracy and, for chunk tags, entity scores of the model in ``run_dir`` on the
    labelled file ``path`` (``rnnkit.tasks._tag_score.score_tags``; no baseline: that needs
    the training file).

    Raises:
        DataError: ``path`` has no tag column to score against, or cannot be read.
    """
    return score_tagged(tag_file(run_dir, path, format=format, batch_size=batch_size))


def score_tagged(tags: FileTags) -> dict[str, Any]:
    """``score_file`` on what ``tag_file`` returned."""
    if tags.data.tags is None:
        raise DataError(tags.data.source, None, "expected gold tags to score against (a word/tag file, or "
                                                "CoNLL columns with the run's data.tag_column), got "
                                                "words only")
    return {"path": str(tags.data.source), **score_tags(tags.data.tags, tags.predicted, tags.tagset)}


# -- pieces ------------------------------------------------------------------------------------


def _paths(data: TagDataSection) -> tuple[dict[str, Path | None], str]:
    if data.path:
        return ({"train": Path(data.path), "val": data.val_path and Path(data.val_path),
                 "test": data.test_path and Path(data.test_path)}, data.unknown_tags or "error")
    brown = brown_split(data.brown_tags)
    return ({"train": brown["train"], "val": Path(data.val_path) if data.val_path else brown["val"],
             "test": Path(data.test_path) if data.test_path else brown["test"]}, data.unknown_tags or "count")


def _read_all(data: TagDataSection,
              paths: dict[str, Path | None]) -> tuple[Tagged, Tagged | None, Tagged | None]:
    def read(path: Path) -> Tagged:
        return read_tagged(path, format=data.format, tag_column=data.tag_column, word_column=data.word_column)

    train = read(paths["train"])
    if data.max_train_sentences is not None:
        train = train.slice(0, data.max_train_sentences)
    val = None if paths["val"] is None else read(paths["val"])
    if val is None and data.val_fraction > 0:
        n_val = max(1, round(len(train) * data.val_fraction))
        if n_val >= len(train):
            raise DataError(train.source, None, f"expected more sentences than the {n_val} held out by "
                                                f"data.val_fraction={data.val_fraction}, got {len(train)}")
        train, val = train.slice(0, len(train) - n_val), train.slice(len(train) - n_val)
    test = None if paths["test"] is None else read(paths["test"])
    return train, val, test


def _loader(vocab: TagVocab, data: Tagged, batch_size: int, *, seed: int = 0,
            shuffle: bool = True) -> SentenceLoader:
    features = [vocab.features(words) for words in data.words]
    targets = [vocab.tag_ids(data, n) for n in range(len(data))]
    return SentenceLoader(features, targets, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _known_tags(vocab: TagVocab, data: Tagged) -> Tagged:
    """The sentences whose tags are all in ``vocab``: what the loss during training can
    score (the final scores count the others' unknown tags as mistakes)."""
    assert data.tags is not None
    tags = set(vocab.tags)
    keep = [n for n, sentence in enumerate(data.tags) if all(t in tags for t in sentence)]
    return Tagged(tuple(data.words[n] for n in keep), tuple(data.tags[n] for n in keep),
                  tuple(data.lines[n] for n in keep), data.source)


def _optimizer(model: Tagger, cfg: TrainConfig) -> torch.optim.Optimizer | None:
    """Adam(W) with ``fused=True``: its step over the word embedding (V x E, millions of
    weights, all updated every step) is about 6x faster on CPU (Brown, V = 42,400: 54 -> 9 ms).
    None (fit's own optimizer) for the others."""
    if cfg.optimizer not in ("adam", "adamw"):
        return None
    model.to(torch.device(cfg.device))  # fused kernels run where the weights are
    return make_optimizer(model, cfg, fused=True)


def _model_config(section: TagModelSection, vocab: TagVocab) -> TaggerConfig:
    return TaggerConfig(vocab_size=len(vocab.words), num_tags=len(vocab.tags), num_chars=len(vocab.chars),
                        **_config.to_dict(section))
