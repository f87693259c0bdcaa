"""int8 against float32 on a trained character LM: held-out bits per character and the
speed of one streaming step, side by side.

    python benchmarks/int8_lm.py [RUN_DIR]     # default runs/demo, written by `make demo`

The model is the demo's 2-layer LSTM language model trained on the embedded King James
text; the held-out slice is the demo's (the last 10% of lines). ``rnnkit.quantize_dynamic``
quantizes the LSTM (int8 weights per output row, activations per step); embedding and head
stay float32. Scores are ``heldout_nats`` (every target scored once, 8 streams) on both
models; the step timing is ``rnnkit.bench.compare`` (interleaved, median of 15 repeats) of
the LSTM's ``step`` at batch 1. Results: benchmarks/results/int8_lm.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import rnnkit
from rnnkit.bench import compare, machine
from rnnkit.data.tokenizers import load_tokenizer
from rnnkit.demo import check_inputs
from rnnkit.demo.config import DemoConfig
from rnnkit.models import load_model
from rnnkit.tasks.lm import heldout_nats

RESULTS = Path(__file__).parent / "results" / "int8_lm.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="runs/demo", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.run_dir).float().eval()
    tokenizer = load_tokenizer(args.run_dir)
    _, val_text, _ = check_inputs(DemoConfig())
    ids_N = torch.as_tensor(tokenizer.encode(val_text), dtype=torch.long)
    quantized = rnnkit.quantize_dynamic(model)
    scores = {}
    for name, m in (("float32", model), ("int8", quantized)):
        started = time.perf_counter()
        bits = heldout_nats(m, ids_N) / (ids_N.numel() - 1) / math.log(2)
        scores[name] = {"bits_per_char": bits, "seconds": round(time.perf_counter() - started, 1)}
        print(f"{name}: {bits:.5f} bits/char ({scores[name]['seconds']} s)", flush=True)
    lstm, lstm8 = model.rnn, quantized.rnn
    x_BI = torch.randn(1, lstm.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _, hx = lstm.step(x_BI)

        def fp32():
            with torch.inference_mode():
                return lstm.step(x_BI, hx)

        def int8():
            with torch.inference_mode():
                return lstm8.step(x_BI, hx)

        timing = compare(fp32, int8, repeats=15).to_dict()
    print(f"step at batch 1: float32 {timing['anchor']['median_ms'] * 1e3:.1f} us, int8 "
          f"{timing['candidate']['median_ms'] * 1e3:.1f} us, ratio {timing['ratio']:.2f} "
          f"({timing['ratio_min']:.2f}-{timing['ratio_max']:.2f})")
    report = {"machine": machine(), "run_dir": str(args.run_dir), "held_out_chars": ids_N.numel(),
              "layer": repr(lstm), "scores": scores, "step_timing": timing,
              "date": time.strftime("%Y-%m-%d")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
