"""Translation on your sentence pairs: train an attentional encoder-decoder (``Seq2Seq``),
score it on held-out pairs with chrF and BLEU (sacrebleu) next to copying the source, and
translate new text.

    cfg = load(Seq2SeqTaskConfig, None, ["data.path=pairs.tsv", "data.test_groups=Mark"])
    results = train_seq2seq(cfg, "runs/en-es")       # fit, then beam-search the held-out pairs
    translate("runs/en-es", ["In the beginning God created the heaven and the earth."])

The data is a TSV of ``source<TAB>target[<TAB>group]`` lines (``rnnkit.data.pairs``):
whole groups (``data.val_groups``, ``data.test_groups``) or the last lines
(``data.val_fraction``) are held out, or a separate ``data.test_path``. One tokenizer per
side is learned from the training pairs alone.

A run directory holds what ``fit`` writes, plus ``source_tokenizer.json``,
``target_tokenizer.json``, ``results.json`` and the held-out translations, one per line
(``val_translations.txt``, ``test_translations.txt``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from rnnkit import config as _config
from rnnkit._io import write_atomic
from rnnkit.data.pairs import PairLoader, Pairs, read_pairs, split_pairs
from rnnkit.data.tokenizers import Kind, load_tokenizer, save_tokenizer, train_tokenizer
from rnnkit.models import architecture_config, load_model
from rnnkit.models.seq2seq import Attention, Seq2Seq, Seq2SeqConfig
from rnnkit.tasks._resume import check_out, check_resumed_config
from rnnkit.tasks._translation import (
    DecodeConfig,
    check_scorer,
    encode_known,
    length_ratio,
    score,
    translate_texts,
)
from rnnkit.train import TrainConfig, fit, read_config, seed_everything

SOURCE_TOKENIZER, TARGET_TOKENIZER, RESULTS = "source_tokenizer.json", "target_tokenizer.json", "results.json"


@dataclass(frozen=True, kw_only=True)
class Seq2SeqData:
    path: str = ""  # TSV: source<TAB>target[<TAB>group]
    test_path: str | None = None  # a TSV of test pairs, instead of test_groups
    val_groups: tuple[str, ...] = ()  # whole groups (third column) held out for validation
    test_groups: tuple[str, ...] = ()  # ... and for the test
    # without val_groups: the last ceil(n * val_fraction) lines (at least one; data.splits)
    # are the validation pairs; 0: none
    val_fraction: float = 0.05
    tokenizer: Kind = "bpe"  # one per side, learned from the training pairs
    source_vocab_size: int = 4000  # bpe: 256 bytes + merges
    target_vocab_size: int = 4000
    max_tokens: int = 120  # training pairs longer than this on either side are left out
    batch_size: int = 32

    def __post_init__(self):
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"data.tokenizer must be one of ['bpe', 'char'], got {self.tokenizer!r}")
        for name, low in (("source_vocab_size", 256), ("target_vocab_size", 256), ("max_tokens", 1),
                          ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"data.{name} must be an int >= {low}, got {value!r}")
        if isinstance(self.val_fraction, bool) or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.test_path and self.test_groups:
            raise ValueError(f"data.test_path and data.test_groups are two ways to choose the test pairs; "
                             f"give one, got {self.test_path!r} and {list(self.test_groups)}")


@dataclass(frozen=True, kw_only=True)
class Seq2SeqModel:
    """``Seq2SeqConfig`` less the vocabulary sizes, which the tokenizers give."""

    cell: Literal["lstm", "gru"] = "lstm"
    embed_size: int = 256
    hidden_size: int = 256  # H: the decoder's; the bidirectional encoder has H/2 per direction
    num_layers: int = 1
    attention: Attention = "general"  # dot, general, additive, or none
    attention_size: int = 256  # additive only
    input_feeding: bool = True
    dropout: float = 0.0
    sampled_input: Literal["sample", "argmax"] = "sample"  # under scheduled sampling (train.teacher_forcing)

    def __post_init__(self):
        self.with_vocab(1, 3)  # the model's own checks, before any data is read

    def with_vocab(self, source_vocab_size: int, target_vocab_size: int) -> Seq2SeqConfig:
        return Seq2SeqConfig(source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size,
                             **_config.to_dict(self))


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=10, lr=1e-3, clip_norm=1.0, log_every=50)


@dataclass(frozen=True, kw_only=True)
class Seq2SeqTaskConfig:
    data: Seq2SeqData = field(default_factory=Seq2SeqData)
    model: Seq2SeqModel = field(default_factory=Seq2SeqModel)
    train: TrainConfig = field(default_factory=_default_train)
    decode: DecodeConfig = field(default_factory=DecodeConfig)  # for the held-out scores

    def __post_init__(self):
        if self.train.bptt is not None:
            raise ValueError(f"train.bptt must be None for seq2seq (the decoder runs over the whole "
                             f"target), got {self.train.bptt}")


def train_seq2seq(cfg: Seq2SeqTaskConfig, out: str | Path, *, overwrite: bool = False,
                  resume: bool = False) -> dict[str, Any]:
    """Train on ``cfg.data.path``; score the validation and test pairs by beam search.
    ``resume`` continues the interrupted run in ``out``, with the settings it was started
    with but for its length (``rnnkit.tasks._resume``).

    Returns:
        the results written to ``out/results.json``: sizes, training figures, and chrF/BLEU
        of the model and of copying the source, for the validation and test pairs.

    Raises:
        DataError: a data file that cannot be read (names file, line, value).
        ValueError: a split that cannot be made; FileExistsError: ``out`` holds a run;
            FileNotFoundError: ``resume`` and ``out`` holds none.
        ModuleNotFoundError: sacrebleu is missing (checked before training).
    """
    if not cfg.data.path:
        raise ValueError("data.path must name a TSV of source<TAB>target pairs, got ''")
    out = Path(out)
    # checked before anything is written: fit refuses the same directories, but later
    check_out(out, resume=resume, overwrite=overwrite, device=cfg.train.device)
    if not (overwrite or resume) and (out / RESULTS).exists():
        raise FileExistsError(f"out must be a new run directory, got {str(out)!r}, which already holds "
                              f"a run's {RESULTS}; choose another or overwrite it")
    check_scorer()
    # -- data: splits, one tokenizer per side from the training pairs only --
    train_pairs, val_pairs, test_pairs = _splits(cfg.data)
    kind, d = cfg.data.tokenizer, cfg.data
    source_tok = train_tokenizer(kind, "\n".join(train_pairs.sources), vocab_size=d.source_vocab_size)
    target_tok = train_tokenizer(kind, "\n".join(train_pairs.targets), vocab_size=d.target_vocab_size)
    train_src, train_tgt = _ids(train_pairs, source_tok, target_tok, max_tokens=d.max_tokens)
    if not train_src:
        raise ValueError(f"data.max_tokens={d.max_tokens} leaves no training pair; raise it")
    # -- model and training --
    seed_everything(cfg.train.seed)  # the initial weights too, as fit seeds dropout
    model = Seq2Seq(cfg.model.with_vocab(source_tok.vocab_size, target_tok.vocab_size + 2))
    bos, eos = model.config.bos_id, model.config.eos_id
    train = PairLoader(train_src, train_tgt, bos_id=bos, eos_id=eos, batch_size=d.batch_size,
                       seed=cfg.train.seed)
    val, val_src = None, []
    if val_pairs is not None:
        val_src, val_tgt = _ids(val_pairs, source_tok, target_tok)
        if not val_src:  # still translated and scored below, from their text
            warnings.warn(f"no validation pair has a known token on both sides, so training reports "
                          f"no validation loss ({len(val_pairs)} pairs held out; their chrF/BLEU are "
                          f"still scored)", stacklevel=2)
        else:
            val = PairLoader(val_src, val_tgt, bos_id=bos, eos_id=eos, batch_size=64, shuffle=False)
    if cfg.decode.length_ratio is None:  # measured here, saved for rnnkit translate
        cfg = replace(cfg, decode=replace(cfg.decode, length_ratio=length_ratio(train_src, train_tgt)))
    config = {**architecture_config(model), "task": "seq2seq", "data": _config.to_dict(d),
              "decode": _config.to_dict(cfg.decode)}
    if resume:  # before the tokenizers are rewritten: another config could change them
        check_resumed_config(out, config, cfg.train, data=train, val=val)
    out.mkdir(parents=True, exist_ok=True)
    for name in (RESULTS, "val_translations.txt", "test_translations.txt"):  # none left from an old run
        (out / name).unlink(missing_ok=True)
    save_tokenizer(source_tok, out, SOURCE_TOKENIZER)  # on resume, the same ones again
    save_tokenizer(target_tok, out, TARGET_TOKENIZER)
    result = fit(model, train, cfg.train, val=val, run_dir=out, overwrite=overwrite, resume=resume,
                 config=config)
    # -- held-out translations and scores, next to copying the source --
    model.to(torch.device(cfg.train.device)).eval()
    results: dict[str, Any] = {
        "data": {"path": d.path, "tokenizer": kind, "n_train": len(train_src),
                 "n_train_left_out": len(train_pairs) - len(train_src),
                 "n_val": 0 if val_pairs is None else len(val_pairs),
                 "n_val_left_out_of_loss": 0 if val_pairs is None else len(val_pairs) - len(val_src),
                 "n_test": 0 if test_pairs is None else len(test_pairs),
                 "source_vocab_size": source_tok.vocab_size, "target_vocab_size": target_tok.vocab_size},
        "train": {"steps": result.steps, "epochs": result.steps / len(train),
                  "seconds": round(result.seconds, 3), "stopped": result.stopped,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "last_val_loss": result.last_eval.get("loss")},
        "decode": _config.to_dict(cfg.decode),
    }
    for name, pairs in (("val", val_pairs), ("test", test_pairs)):
        results[name] = None if pairs is None else _held_out(
            model, source_tok, target_tok, pairs, cfg.decode, out / f"{name}_translations.txt")
    write_atomic(out / RESULTS, (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return results


def translate(run_dir: str | Path, texts: Sequence[str], **options: Any) -> list[str]:
    """Translations of ``texts`` by the model in ``run_dir`` (from ``train_seq2seq``).
    ``options`` override the run's ``decode`` settings: beam_width, alpha, max_len."""
    run_dir = Path(run_dir)
    saved = read_config(run_dir)
    if saved.get("task") != "seq2seq":
        raise ValueError(f"run_dir must hold a seq2seq run (from rnnkit train seq2seq), got {str(run_dir)!r} "
                         f"with task {saved.get('task')!r}")
    decode = _config.from_dict(DecodeConfig, {**(saved.get("decode") or {}), **options})
    model = load_model(run_dir)
    source_tok = load_tokenizer(run_dir / SOURCE_TOKENIZER)
    target_tok = load_tokenizer(run_dir / TARGET_TOKENIZER)
    return translate_texts(model, source_tok, target_tok, texts, decode)


def format_results(results: dict[str, Any]) -> str:
    """The held-out scores as a few lines of text."""
    t = results["train"]
    lines = [f"trained on {results['data']['n_train']:,} pairs: {t['steps']:,} steps in {t['seconds']:.0f} s "
             f"({t['stopped']})"]
    for name in ("val", "test"):
        r = results[name]
        if r is not None:
            lines.append(f"  {name:<4} ({r['n']:,} pairs)  chrF {r['chrf']:.2f}  BLEU {r['bleu']:.2f}   "
                         f"copy the source: chrF {r['copy_chrf']:.2f}  BLEU {r['copy_bleu']:.2f}")
    return "\n".join(lines)


def _held_out(model: Seq2Seq, source_tok, target_tok, pairs: Pairs, decode: DecodeConfig,
              path: Path) -> dict[str, Any]:
    """Translate the held-out sources into ``path``, one per line; score them and the
    sources themselves (the copy baseline) against the targets."""
    hypotheses = translate_texts(model, source_tok, target_tok, pairs.sources, decode)
    write_atomic(path, "".join(f"{h}\n" for h in hypotheses).encode("utf-8"))
    return {"n": len(pairs), **score(hypotheses, pairs.targets),
            **{f"copy_{k}": v for k, v in score(pairs.sources, pairs.targets).items()}}


def _splits(data: Seq2SeqData) -> tuple[Pairs, Pairs | None, Pairs | None]:
    pairs = read_pairs(data.path)
    train, val, test = split_pairs(pairs, val_groups=data.val_groups, test_groups=data.test_groups,
                                   val_fraction=data.val_fraction)
    if data.test_path:
        test = read_pairs(data.test_path)
    return train, val, test


def _ids(pairs: Pairs, source_tok, target_tok, *, max_tokens: int | None = None):
    """(sources, targets) as id tensors; pairs with an empty side, or longer than
    ``max_tokens`` on either side, are left out."""
    sources, targets = [], []
    for source, target in zip(pairs.sources, pairs.targets, strict=True):
        s, t = encode_known(source_tok, source), encode_known(target_tok, target)
        if s.numel() and t.numel() and (max_tokens is None or max(s.numel(), t.numel()) <= max_tokens):
            sources.append(s)
            targets.append(t)
    return sources, targets
