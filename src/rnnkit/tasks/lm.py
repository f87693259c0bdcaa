"""Language modelling on any UTF-8 text: train, measure held-out bits per character next to
Kneser-Ney n-gram baselines on the same split, and generate.

    result = train_lm(LMTaskConfig(data=LMDataConfig(path="corpus.txt")), "runs/lm")
    for piece in generate("runs/lm", "And God said", max_new_tokens=200, strategy="sample"):
        print(piece, end="", flush=True)

The held-out slice is the last ``val_fraction`` of the lines. Bits per character is the
total negative log-likelihood of the held-out tokens over the characters they spell, in
bits, so that a char model, a BPE model and a character n-gram are on one scale:

    bpc = Σ_t -ln P(token_t | tokens_<t) / n_chars / ln 2

The first held-out token is context only, as the n-gram's first character is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit import config as _config
from rnnkit._io import write_atomic
from rnnkit.data.text import read_text, split_lines
from rnnkit.data.tokenizers import Kind, decode_stream, load_tokenizer, save_tokenizer, train_tokenizer
from rnnkit.decode import beam_search, greedy_pick, sampling_pick, stream
from rnnkit.demo.ngram import ngram_baselines
from rnnkit.models import LanguageModel, LMConfig, architecture_config, load_model
from rnnkit.models.language_model import Cell
from rnnkit.tasks._resume import check_out, check_resumed_config
from rnnkit.train import StreamLoader, TrainConfig, fit, seed_everything
from rnnkit.train.tbptt import map_state

RESULTS = "results.json"


@dataclass(frozen=True, kw_only=True)
class LMDataConfig:
    path: str | None = None  # a UTF-8 text file
    tokenizer: Kind = "char"
    bpe_vocab_size: int = 1024  # tokenizer "bpe": 256 bytes + merges
    val_fraction: float = 0.05  # the last 5% of the lines are held out
    batch_size: int = 32  # B contiguous training streams
    eval_streams: int = 8  # the held-out text is scored as this many rows, each from a zero state

    def __post_init__(self):
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"tokenizer must be one of ['char', 'bpe'], got {self.tokenizer!r}")
        for name, low in (("bpe_vocab_size", 256), ("batch_size", 1), ("eval_streams", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")


@dataclass(frozen=True, kw_only=True)
class LMModelConfig:
    """``rnnkit.models.LMConfig`` without ``vocab_size``, which the tokenizer gives."""

    cell: Cell = "lstm"
    embed_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    embed_dropout: float = 0.0
    weight_drop: float = 0.0
    tie_weights: bool = False

    def __post_init__(self):
        LMConfig(vocab_size=1, **_config.to_dict(self))  # the model's own checks

    def with_vocab(self, vocab_size: int) -> LMConfig:
        return LMConfig(vocab_size=vocab_size, **_config.to_dict(self))


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=1, bptt=64, lr=3e-3, schedule="cosine", min_lr_ratio=0.1, clip_norm=1.0,
                       eval_every=500, log_every=50)


@dataclass(frozen=True, kw_only=True)
class LMTaskConfig:
    data: LMDataConfig = field(default_factory=LMDataConfig)
    model: LMModelConfig = field(default_factory=LMModelConfig)
    train: TrainConfig = field(default_factory=_default_train)  # train.bptt is the stream chunk
    ngram_max_order: int = 0  # Kneser-Ney baselines of orders 1..n on the same split; 0: none

    def __post_init__(self):
        if self.train.bptt is None:
            raise ValueError("train.bptt must be an int >= 1 (the TBPTT chunk of the streams), got None")
        if isinstance(self.ngram_max_order, bool) or not isinstance(self.ngram_max_order, int) \
                or self.ngram_max_order < 0:
            raise ValueError(f"ngram_max_order must be an int >= 0, got {self.ngram_max_order!r}")


def train_lm(cfg: LMTaskConfig, out: str | Path, *, text: str | None = None,
             overwrite: bool = False, resume: bool = False) -> dict[str, Any]:
    """Train a language model as ``cfg`` says and save it to the run directory ``out``
    (config.json, model.safetensors, tokenizer.json, metrics, results.json).

    Arguments:
        text: the corpus; default: read from ``cfg.data.path``.
        overwrite: replace a run already in ``out`` (refused otherwise).
        resume: continue the interrupted (or finished) run in ``out``, with the settings it
            was started with but for its length (``rnnkit.tasks._resume``).

    Returns:
        The results written to ``out/results.json``: data sizes, held-out bpc, training
        figures and the n-gram baselines.
    """
    out = Path(out)
    # checked before tokenizer.json is written: fit refuses the same directories, but later
    check_out(out, resume=resume, overwrite=overwrite, device=cfg.train.device)
    # -- data: split by position, tokenizer from the training text only --
    if text is None:
        if cfg.data.path is None:
            raise ValueError("data.path must name a UTF-8 text file, got None")
        text = read_text(cfg.data.path, name="data.path")
    train_text, val_text = split_lines(text, cfg.data.val_fraction)
    tokenizer = train_tokenizer(cfg.data.tokenizer, train_text, vocab_size=cfg.data.bpe_vocab_size)
    train_ids_N = tokenizer.encode(train_text, name="the training text")
    val_ids_N = tokenizer.encode(val_text, name=f"the held-out text (the last {cfg.data.val_fraction:g} "
                                                f"of the lines)")
    if val_ids_N.numel() < 2:
        raise ValueError(f"the held-out text must hold at least 2 tokens, got {val_ids_N.numel()}")
    # -- model and training --
    seed_everything(cfg.train.seed)
    model = LanguageModel(cfg.model.with_vocab(tokenizer.vocab_size))
    train = StreamLoader(train_ids_N, batch_size=cfg.data.batch_size, bptt=cfg.train.bptt)
    val = StreamLoader(val_ids_N, batch_size=min(cfg.data.eval_streams, val_ids_N.numel() - 1),
                       bptt=cfg.train.bptt)  # the loss curve; the final figure is exact below
    config = {**architecture_config(model), "task": "lm", "data": _config.to_dict(cfg.data),
              "ngram_max_order": cfg.ngram_max_order}
    if resume:  # before tokenizer.json is rewritten: another config could change it
        check_resumed_config(out, config, cfg.train, data=train, val=val)
    save_tokenizer(tokenizer, out)  # on resume, the same tokenizer again (trained deterministically)
    result = fit(model, train, cfg.train, val=val, run_dir=out, overwrite=overwrite, resume=resume,
                 config=config)
    # -- held-out bits per character, and the baselines on the same split --
    model.to(torch.device(cfg.train.device))
    nats = heldout_nats(model, val_ids_N, streams=cfg.data.eval_streams)
    n_chars = len(val_text) - len(tokenizer.decode(val_ids_N[:1]))
    ngram = (ngram_baselines(train_text, val_text, max_order=cfg.ngram_max_order,
                             vocab=sorted(set(train_text) | set(val_text))) if cfg.ngram_max_order else {})
    results = {
        "data": {"source": cfg.data.path, "chars": len(text), "train_chars": len(train_text),
                 "val_chars": len(val_text), "val_lines": val_text.count("\n"),
                 "tokenizer": cfg.data.tokenizer, "vocab_size": tokenizer.vocab_size,
                 "train_tokens": train_ids_N.numel(), "val_tokens": val_ids_N.numel()},
        "lm": {"val_bpc": nats / n_chars / math.log(2), "val_nats_per_token": nats / (val_ids_N.numel() - 1),
               "parameters": sum(p.numel() for p in model.parameters()), "steps": result.steps,
               "epochs": result.steps / len(train), "train_seconds": result.seconds,
               "stopped": result.stopped, "cell": cfg.model.cell},
        "ngram_bpc": {str(n): bpc for n, bpc in ngram.items()},
    }
    if ngram:
        best = min(ngram, key=ngram.__getitem__)
        results.update(best_ngram_order=best, best_ngram_bpc=ngram[best])
    write_atomic(out / RESULTS, (json.dumps(results, indent=2) + "\n").encode("utf-8"))
    return results


@torch.no_grad()
@torch.no_grad()
def heldout_nats(model: nn.Module, ids_N: Tensor, *, streams: int = 8, chunk: int = 512) -> float:
    """Σ_{t=1..N-1} -ln P(ids_t | ids_<t), in nats. The text is cut into ``streams`` contiguous
    rows scored side by side in chunks, each row from a zero state; the few targets left over
    continue the last row's state, so that every target is scored exactly once."""
    N = ids_N.numel()
    n = max(1, min(streams, N - 1))
    L = (N - 1) // n
    device = next(model.parameters()).device
    inputs_nL = ids_N[:n * L].view(n, L).to(device)
    targets_nL = ids_N[1:n * L + 1].view(n, L).to(device)
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    for start in range(0, L, chunk):
        logits_nTV, state = model(inputs_nL[:, start:start + chunk], state)
        total += float(F.cross_entropy(logits_nTV.flatten(0, 1), targets_nL[:, start:start + chunk].flatten(),
                                       reduction="sum"))
    if n * L < N - 1:  # the last row goes on over the leftover targets
        last = map_state(lambda t: t.index_select(-2, torch.tensor([n - 1], device=t.device)), state)
        logits_1TV, _ = model(ids_N[n * L:N - 1].unsqueeze(0).to(device), last)
        total += float(F.cross_entropy(logits_1TV[0], ids_N[n * L + 1:].to(device), reduction="sum"))
    model.train(was_training)
    return total


Strategy = Literal["greedy", "sample", "beam"]


@dataclass(frozen=True, kw_only=True)
class GenerateConfig:
    prompt: str = "\n"  # a newline: the start of a line
    max_new_tokens: int = 200
    strategy: Strategy = "sample"
    temperature: float = 1.0  # sample
    top_k: int | None = None  # sample
    top_p: float | None = None  # sample
    beam_width: int = 5  # beam
    seed: int = 0  # sample

    def __post_init__(self):
        if not self.prompt:
            raise ValueError("prompt must be a non-empty string (a recurrent model needs a first "
                             "token), got ''")
        if self.strategy not in ("greedy", "sample", "beam"):
            raise ValueError(f"strategy must be one of ['greedy', 'sample', 'beam'], got {self.strategy!r}")
        for name, low in (("max_new_tokens", 0), ("beam_width", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if self.seed >= 2**64:  # torch's generators take 64 bits
            raise ValueError(f"seed must be an int in [0, 2**64), got {self.seed}")
        if self.strategy == "sample":  # the settings greedy and beam search do not read go unchecked
            sampling_pick(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)  # its checks


def generate(run_dir: str | Path, prompt: str = "\n", **options: Any) -> Iterator[str]:
    """Text pieces after ``prompt``, as the model in ``run_dir`` produces them (beam search
    gives its best continuation in one piece at the end). ``options`` are the other fields of
    ``GenerateConfig``: max_new_tokens, strategy, temperature, top_k, top_p, beam_width, seed.

    The run, the tokenizer and the prompt are checked before this returns.
    """
    cfg = GenerateConfig(prompt=prompt, **options)
    model, tokenizer = load_model(run_dir), load_tokenizer(run_dir)
    prompt_ids_T = tokenizer.encode(cfg.prompt, name="prompt")
    if cfg.strategy == "beam":
        return _beam_pieces(model, tokenizer, prompt_ids_T, cfg)
    pick = greedy_pick if cfg.strategy == "greedy" else sampling_pick(
        temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
        generator=torch.Generator().manual_seed(cfg.seed))
    return decode_stream(tokenizer, stream(model, prompt_ids_T, max_new_tokens=cfg.max_new_tokens, pick=pick))


def _beam_pieces(model, tokenizer, prompt_ids_T: Tensor, cfg: GenerateConfig) -> Iterator[str]:
    best = beam_search(model, prompt_ids_T, beam_width=cfg.beam_width, max_new_tokens=cfg.max_new_tokens)[0]
    yield tokenizer.decode(best.ids_T)


def format_results(results: dict[str, Any]) -> str:
    """The held-out figures as a few lines of text, best n-gram first."""
    d, lm = results["data"], results["lm"]
    lines = [f"held-out: the last {d['val_lines']:,} lines ({d['val_chars']:,} chars, {d['val_tokens']:,} "
             f"{d['tokenizer']} tokens); trained on {d['train_chars']:,} chars, {lm['steps']:,} steps "
             f"in {lm['train_seconds']:.0f} s ({lm['stopped']})",
             f"  {lm.get('cell', 'lstm').upper():<5} language model  {lm['val_bpc']:.4f} bits/char"]
    if "best_ngram_order" in results:
        lines.append(f"  best Kneser-Ney n-gram {results['best_ngram_bpc']:.4f} bits/char "
                     f"(order {results['best_ngram_order']} of 1-{len(results['ngram_bpc'])})")
    return "\n".join(lines)
