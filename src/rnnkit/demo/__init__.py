"""``rnnkit demo``: a small, real end-to-end job on the embedded KJV Genesis+Exodus text.

A character-level LSTM trained with truncated BPTT for a few minutes, its held-out bits
per character next to interpolated Kneser-Ney n-gram baselines fitted on the same
training text, a sample from a prompt, and the run saved to a directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from rnnkit.demo.charlm import CharLM, TrainStats, bits_per_char, fit, lr_at, sample
from rnnkit.demo.config import DemoConfig
from rnnkit.demo.corpus import CharTokenizer, Chunk, load_text, split_by_lines, tbptt_chunks
from rnnkit.demo.ngram import KneserNey, NGramCounts, ngram_baselines
from rnnkit.demo.report import format_report, save_run, write_atomic

__all__ = [
    "CharLM",
    "CharTokenizer",
    "Chunk",
    "DemoConfig",
    "KneserNey",
    "NGramCounts",
    "TrainStats",
    "bits_per_char",
    "check_inputs",
    "fit",
    "format_report",
    "load_text",
    "lr_at",
    "ngram_baselines",
    "run_demo",
    "sample",
    "save_run",
    "split_by_lines",
    "tbptt_chunks",
    "write_atomic",
]


def check_inputs(cfg: DemoConfig) -> tuple[str, str, CharTokenizer]:
    """(train text, val text, tokenizer); raises ValueError if the prompt has a character
    the training text lacks. Cheap, so a caller can check before the long run."""
    train_text, val_text = split_by_lines(load_text(), cfg.val_fraction)
    tokenizer = CharTokenizer.from_text(train_text)
    tokenizer.encode(cfg.prompt, name="prompt")
    return train_text, val_text, tokenizer


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Train, evaluate, sample and save; returns ``{"metrics": ..., "out": ..., "files": ...}``.

    Sets torch's thread count and seeds the global RNG (weight init, dropout) from
    ``cfg.seed``; sampling uses its own ``torch.Generator``.
    """
    wall_start = time.perf_counter()
    # -- setup --
    torch.set_num_threads(cfg.threads or _cores())
    torch.manual_seed(cfg.seed)
    # -- data --
    train_text, val_text, tokenizer = check_inputs(cfg)
    train_ids_N = tokenizer.encode(train_text, name="training text")
    val_ids_N = tokenizer.encode(val_text, name="validation text")
    # -- baseline: n-grams fitted on the training text only --
    ngram = ngram_baselines(train_text, val_text, max_order=cfg.ngram_max_order,
                            vocab=tokenizer.chars)
    best_order = min(ngram, key=ngram.__getitem__)
    # -- model and training --
    model_kwargs = dict(vocab_size=tokenizer.vocab_size, embed_size=cfg.embed_size,
                        hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                        dropout=cfg.dropout)
    model = CharLM(**model_kwargs)
    stats = fit(model, train_ids_N, cfg)
    # -- evaluation and sample --
    val_bpc = bits_per_char(model, val_ids_N)
    generator = torch.Generator().manual_seed(cfg.seed)
    sample_ids = sample(model, tokenizer.encode(cfg.prompt, name="prompt"),
                        length=cfg.sample_chars, temperature=cfg.temperature, generator=generator)
    # -- save --
    metrics = {
        "val_lines": val_text.count("\n"), "val_chars": len(val_text),
        "train_chars": len(train_text),
        "ngram_bpc": {str(n): bpc for n, bpc in ngram.items()},
        "unigram_bpc": ngram[1], "best_ngram_order": best_order, "best_ngram_bpc": ngram[best_order],
        "lstm": {"val_bpc": val_bpc, "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers,
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "steps": stats.steps, "epochs": stats.epochs, "train_seconds": stats.seconds,
                 "chars_per_s": stats.chars_per_s, "train_bpc_ema": stats.final_loss_bpc},
        "sample": {"prompt": cfg.prompt, "temperature": cfg.temperature, "seed": cfg.seed,
                   "text": cfg.prompt + tokenizer.decode(sample_ids)},
        "threads": torch.get_num_threads(),
    }
    metrics["wall_seconds"] = time.perf_counter() - wall_start
    # CharLM(**config["model"]) rebuilds the model; DemoConfig.from_dict(config["demo"]) the run
    config = {"demo": cfg.to_dict(), "model": model_kwargs}
    out = Path(cfg.out)
    files = save_run(out, model=model, config=config, vocab=list(tokenizer.chars),
                     metrics=metrics)
    return {"metrics": metrics, "out": str(out), "files": {k: str(p) for k, p in files.items()}}


def _cores() -> int:
    """The cores this process may run on (respects taskset/cgroup affinity where the OS has it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)
