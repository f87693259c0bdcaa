"""The demo's report: saved (atomically) as JSON, and printed as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rnnkit._io import write_atomic


def save_report(out: Path, metrics: dict[str, Any]) -> dict[str, Path]:
    """``report.json`` (the figures below) in ``out``, next to the model directory's files."""
    write_atomic(out / "report.json", (json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
    names = ("config.json", "model.safetensors", "tokenizer.json", "metrics.csv", "training_state.pt",
             "report.json")
    files = {name.split(".")[0]: out / name for name in names}
    if "forecast" in metrics:
        files["forecast_plot"] = Path(metrics["forecast"]["plot"])
    return files


def format_report(result: dict[str, Any]) -> str:
    """The result table, then the sample."""
    m = result["metrics"]
    lstm = m["lstm"]
    orders = {int(n): bpc for n, bpc in m["ngram_bpc"].items()}
    best = m["best_ngram_order"]
    shown = [n for n in sorted(orders) if n <= 6 or n % 4 == 0 or n == best]  # 1-6, then a few
    rows = [(f"{n}-gram Kneser-Ney" + ("  (unigram)" if n == 1 else ""), orders[n]) for n in shown]
    rows.append((f"best n-gram baseline ({best}-gram)", m["best_ngram_bpc"]))
    rows.append((f"LSTM H={lstm['hidden_size']} L={lstm['num_layers']}", lstm["val_bpc"]))
    width = max(len(name) for name, _ in rows)
    classic = min((n for n in orders if n <= 6), key=orders.__getitem__)
    lines = [f"held-out bits per character ({m['val_chars']:,} chars, the last "
             f"{m['val_lines']} lines; n-grams fitted on the {m['train_chars']:,} training chars)",
             f"  {'model':<{width}}  bpc",
             *(f"  {name:<{width}}  {bpc:.3f}" for name, bpc in rows),
             f"  LSTM - best n-gram: {lstm['val_bpc'] - m['best_ngram_bpc']:+.3f} bpc"
             + (f"; LSTM - best of orders 1-6 ({classic}-gram): {lstm['val_bpc'] - orders[classic]:+.3f} bpc"
                if best > 6 else ""),
             *(["  (the held-out chapters, Exodus 36-40, retell 25-31 nearly word for word: long "
                "n-grams copy them)"] if best > 6 else []),
             f"training: {lstm['steps']} steps, {lstm['epochs']:.1f} epochs in "
             f"{lstm['train_seconds']:.0f} s, {lstm['chars_per_s']:,.0f} chars/s, "
             f"final train loss {lstm['train_bpc']:.3f} bpc (mean of the last log row's steps, at most 50)",
             f"saved to {result['out']}",
             "",
             f"sample (temperature {m['sample']['temperature']}, seed {m['sample']['seed']}):",
             m["sample"]["text"]]
    if "forecast" in m:
        f = m["forecast"]
        lines += ["", f"forecast of airline passengers, the held-out {f['months']} months from "
                      f"{f['first_month']} (MASE: lower is better; below 1 beats the in-sample "
                      f"seasonal naive)",
                  f"  seasonal naive (same month last year)  MASE {f['seasonal_naive']['mase']:.3f}  "
                  f"sMAPE {f['seasonal_naive']['smape']:.1f}%",
                  f"  LSTM forecaster (Gaussian, log scale)  MASE {f['mase']:.3f}  sMAPE {f['smape']:.1f}%  "
                  f"80% interval covers {f['coverage_80']:.0%} of the months",
                  f"plot: {f['plot']}"]
    return "\n".join(lines)
