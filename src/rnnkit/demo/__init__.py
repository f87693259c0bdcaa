"""``rnnkit demo``: a small, real end-to-end job on the embedded KJV Genesis+Exodus text.

A character-level LSTM trained with truncated BPTT by ``rnnkit.train.fit`` for a few
minutes, its held-out bits per character next to interpolated Kneser-Ney n-gram baselines
fitted on the same training text, a sample from a prompt, and the run saved to a model
directory (config.json, model.safetensors, tokenizer.json, metrics, training state).
Then a Gaussian LSTM forecaster (``rnnkit.tasks.forecast``) on the embedded airline series:
the last 12 months held out, MASE next to seasonal naive, and a plot of the forecast, its
80% interval and what happened.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import config as _config
from rnnkit.data.text import split_lines
from rnnkit.data.tokenizers import CharTokenizer, save_tokenizer
from rnnkit.decode.sampling import sample
from rnnkit.demo.config import DemoConfig
from rnnkit.demo.corpus import load_text
from rnnkit.demo.ngram import KneserNey, NGramCounts, ngram_baselines
from rnnkit.demo.report import format_report, save_report
from rnnkit.models import LanguageModel, LMConfig, architecture_config
from rnnkit.plot import plot_forecast
from rnnkit.tasks.forecast import ForecastConfig, read_data, train_forecaster
from rnnkit.train import StreamLoader, TrainConfig, evaluate, fit, read_config

__all__ = [
    "DemoConfig",
    "KneserNey",
    "NGramCounts",
    "check_inputs",
    "format_report",
    "load_text",
    "ngram_baselines",
    "run_demo",
]


def check_inputs(cfg: DemoConfig) -> tuple[str, str, CharTokenizer]:
    """(train text, val text, tokenizer); raises ValueError if the prompt has a character
    the training text lacks, or if ``cfg.out`` holds a run that is not an earlier demo's (a
    demo replaces its own). Cheap, so a caller can check before the long run."""
    out = Path(cfg.out)
    another_run = (out / "config.json").exists() and "demo" not in read_config(out)
    if another_run or (out / "ensemble.json").exists():  # an ensemble keeps its configs below
        raise ValueError(f"out must be a new directory or an earlier demo's, got {cfg.out!r}, which holds "
                         f"another run (no config.json with a demo section); choose another --out")
    train_text, val_text = split_lines(load_text(), cfg.val_fraction)
    tokenizer = CharTokenizer.train(train_text)
    tokenizer.encode(cfg.prompt, name="prompt")
    return train_text, val_text, tokenizer


def train_config(cfg: DemoConfig) -> TrainConfig:
    """The demo's budget and optimisation as a ``TrainConfig``: Adam with cosine decay over
    the time (or step) budget, clipping, a loss row every 50 steps."""
    return TrainConfig(epochs=1_000_000, max_steps=cfg.steps, max_minutes=cfg.minutes, lr=cfg.lr,
                       schedule="cosine", min_lr_ratio=cfg.lr_min_ratio, clip_norm=cfg.clip,
                       seed=cfg.seed, log_every=50, eval_every=cfg.eval_every)


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Train, evaluate, sample and save; returns ``{"metrics": ..., "out": ..., "files": ...}``.

    Sets torch's thread count and seeds the global RNG (weight init, dropout) from
    ``cfg.seed``; sampling uses its own ``torch.Generator``.
    """
    wall_start = time.perf_counter()
    # -- setup --
    torch.set_num_threads(cfg.threads or _cores())
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    # -- data --
    train_text, val_text, tokenizer = check_inputs(cfg)
    train_ids_N = tokenizer.encode(train_text, name="training text")
    val_ids_N = tokenizer.encode(val_text, name="validation text")
    # -- baseline: n-grams fitted on the training text only --
    ngram = ngram_baselines(train_text, val_text, max_order=cfg.ngram_max_order,
                            vocab=tokenizer.chars)
    best_order = min(ngram, key=ngram.__getitem__)
    # -- model and training --
    model = LanguageModel(LMConfig(vocab_size=tokenizer.vocab_size, embed_size=cfg.embed_size,
                                   hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                                   dropout=cfg.dropout))
    train = StreamLoader(train_ids_N, batch_size=cfg.batch_size, bptt=cfg.bptt)
    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, out)
    val = StreamLoader(val_ids_N, batch_size=1, bptt=2048)  # one stream from a zero state
    result = fit(model, train, train_config(cfg), val=val, run_dir=out, overwrite=True,
                 config={**architecture_config(model), "demo": _config.to_dict(cfg)})
    # -- evaluation of the final weights, and a sample --
    val_bpc = evaluate(model, val)["loss"] / math.log(2)
    generator = torch.Generator().manual_seed(cfg.seed)
    sample_ids = sample(model.eval(), tokenizer.encode(cfg.prompt, name="prompt"),
                        max_new_tokens=cfg.sample_chars, temperature=cfg.temperature, generator=generator)
    # -- report --
    chars = result.steps * cfg.batch_size * cfg.bptt
    metrics = {
        "val_lines": val_text.count("\n"), "val_chars": len(val_text),
        "train_chars": len(train_text),
        "ngram_bpc": {str(n): bpc for n, bpc in ngram.items()},
        "unigram_bpc": ngram[1], "best_ngram_order": best_order, "best_ngram_bpc": ngram[best_order],
        "lstm": {"val_bpc": val_bpc, "hidden_size": cfg.hidden_size, "num_layers": cfg.num_layers,
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "steps": result.steps, "epochs": result.steps / len(train),
                 "train_seconds": result.seconds, "chars_per_s": chars / max(result.seconds, 1e-9),
                 "train_bpc": result.last_train.get("loss", math.nan) / math.log(2)},
        "sample": {"prompt": cfg.prompt, "temperature": cfg.temperature, "seed": cfg.seed,
                   "text": cfg.prompt + tokenizer.decode(sample_ids)},
        "threads": torch.get_num_threads(),
    }
    metrics["forecast"] = run_forecast(cfg, out / "forecast")
    metrics["wall_seconds"] = time.perf_counter() - wall_start
    files = save_report(out, metrics)
    return {"metrics": metrics, "out": str(out), "files": {k: str(p) for k, p in files.items()}}


def run_forecast(cfg: DemoConfig, out: Path) -> dict[str, Any]:
    """Train the forecaster on the airline series minus its last year, score that year
    against seasonal naive and draw it to ``out/forecast.png``."""
    fc = _config.load(ForecastConfig, None, ["model.log_transform=true",
                                             f"train.epochs={cfg.forecast_epochs}",
                                             f"train.seed={cfg.seed}", "train.progress=false"])
    results = train_forecaster(fc, out, overwrite=True)
    series = read_data(fc.data)
    start, H = results["test_start"], results["horizon"]
    plot = plot_forecast(series.times[:start], series.target_N[:start], series.times[start:start + H],
                         np.asarray(results["forecast_BHQ"][0]), (0.1, 0.5, 0.9), out / "forecast.png",
                         title="Airline passengers (thousands): the held-out last year",
                         actual=series.target_N[start:start + H], show_last=96)
    return {key: results[key] for key in ("mase", "smape", "coverage_80", "seasonal_naive", "seconds")} | {
        "first_month": str(series.times[start]), "months": H, "plot": str(plot), "run": str(out)}


def _cores() -> int:
    """The cores this process may run on (respects taskset/cgroup affinity where the OS has it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)
