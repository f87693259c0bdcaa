"""Saving a demo run (atomically) and printing its result table."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnkit._io import write_atomic


def save_run(out: Path, *, model: nn.Module, config: dict[str, Any], vocab: list[str],
             metrics: dict[str, Any]) -> dict[str, Path]:
    """``model.pt`` (state dict), ``config.json``, ``vocab.json``, ``metrics.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    files = {"model": out / "model.pt", "config": out / "config.json",
             "vocab": out / "vocab.json", "metrics": out / "metrics.json"}
    write_atomic(files["model"], buffer.getvalue())
    for name, payload in (("config", config), ("vocab", {"chars": vocab}), ("metrics", metrics)):
        write_atomic(files[name], (json.dumps(payload, indent=2) + "\n").encode("utf-8"))
    return files


def format_report(result: dict[str, Any]) -> str:
    """The result table, then the sample."""
    m = result["metrics"]
    lstm = m["lstm"]
    rows = [(f"{order}-gram Kneser-Ney" + ("  (unigram)" if int(order) == 1 else ""), bpc)
            for order, bpc in sorted(m["ngram_bpc"].items(), key=lambda kv: int(kv[0]))]
    rows.append((f"best n-gram baseline ({m['best_ngram_order']}-gram)", m["best_ngram_bpc"]))
    rows.append((f"LSTM H={lstm['hidden_size']} L={lstm['num_layers']}", lstm["val_bpc"]))
    width = max(len(name) for name, _ in rows)
    lines = [f"held-out bits per character ({m['val_chars']:,} chars, the last "
             f"{m['val_lines']} lines; n-grams fitted on the {m['train_chars']:,} training chars)",
             f"  {'model':<{width}}  bpc",
             *(f"  {name:<{width}}  {bpc:.3f}" for name, bpc in rows),
             f"  LSTM - best n-gram: {lstm['val_bpc'] - m['best_ngram_bpc']:+.3f} bpc",
             f"training: {lstm['steps']} steps, {lstm['epochs']:.1f} epochs in "
             f"{lstm['train_seconds']:.0f} s, {lstm['chars_per_s']:,.0f} chars/s, "
             f"final train loss {lstm['train_bpc_ema']:.3f} bpc",
             f"saved to {result['out']}",
             "",
             f"sample (temperature {m['sample']['temperature']}, seed {m['sample']['seed']}):",
             m["sample"]["text"]]
    return "\n".join(lines)
