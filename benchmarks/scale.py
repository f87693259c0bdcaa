"""How a training step's cost grows with T, B and H, per executor: measured curves.

    python benchmarks/scale.py [--threads 2]

One training step = forward + backward of a sum over the output, float32, I = 128. Each
point is the median of 5 timed calls after 1 warm-up, all layers timed at the same point
one after another. Swept around B=8, T=256, H=256: T in 64..1024, B in 1..64, H in 64..512.
Layers: torch.nn.LSTM and torch.nn.GRU (the anchors), rnnkit.LSTM on the native executor
(torch's fused op), rnnkit.MinGRU on the fused executor (compiled scan), and
rnnkit.LSTM(layer_norm=True) on the loop executor (the variant cells' compiled time loop).
Writes benchmarks/results/scale-cpu.json and docs/img/scale_cpu.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import rnnkit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "torch.nn.LSTM": lambda H: torch.nn.LSTM(128, H, batch_first=True),
    "rnnkit.LSTM (native)": lambda H: rnnkit.LSTM(128, H, batch_first=True, dtype=torch.float32),
    "torch.nn.GRU": lambda H: torch.nn.GRU(128, H, batch_first=True),
    "rnnkit.MinGRU (fused)": lambda H: rnnkit.MinGRU(128, H, batch_first=True, dtype=torch.float32),
    "rnnkit.LSTM layer_norm (loop)": lambda H: rnnkit.LSTM(128, H, batch_first=True, layer_norm=True,
                                                           dtype=torch.float32),
}
BASE = {"B": 8, "T": 256, "H": 256}
SWEEPS = {"T": [64, 128, 256, 512, 1024], "B": [1, 4, 16, 64], "H": [64, 128, 256, 512]}


def step_ms(make, B: int, T: int, H: int) -> float:
    torch.manual_seed(0)
    layer = make(H)
    x = torch.randn(B, T, 128)

    def step():
        layer.zero_grad(set_to_none=True)
        layer(x)[0].sum().backward()

    step()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "base": BASE, "date": time.strftime("%Y-%m-%d"),
                     "torch": torch.__version__, "ms": {}}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (dim, values) in zip(axes, SWEEPS.items(), strict=True):
        curves = {name: [] for name in LAYERS}
        for v in values:
            point = {**BASE, dim: v}
            for name, make in LAYERS.items():
                curves[name].append(step_ms(make, point["B"], point["T"], point["H"]))
            print(dim, v, {k: round(c[-1], 1) for k, c in curves.items()}, flush=True)
        results["ms"][dim] = {"values": values, **curves}
        for name, ms in curves.items():
            ax.plot(values, ms, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(dim + " (others at " + ", ".join(f"{k}={BASE[k]}" for k in BASE if k != dim) + ")")
        ax.set_ylabel("training step, ms")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Training step (forward + backward), float32, I=128, {args.threads} threads, 2-core CPU")
    fig.tight_layout()
    image = ROOT / "docs" / "img" / "scale_cpu.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image, dpi=110)
    out = ROOT / "benchmarks" / "results" / "scale-cpu.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {image} and {out}")


if __name__ == "__main__":
    main()
