"""Peak memory of one training step (forward + backward), rnnkit against torch.nn.

    python benchmarks/memory.py

Each case runs in a fresh process: build the layer and the input, note the resident set
size (RSS), run one forward + backward of a sum over the output, and report the rise of
the process's peak RSS (``ru_maxrss``) over that baseline, in MiB. CPU float32, 1 thread.
It is an upper bound on what the step held at once (allocator caching included) and is
compared only side by side. Results: benchmarks/results/memory-cpu.json.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "memory-cpu.json"
LONG, REF = (8, 1024, 128), (32, 128, 128)
CASES = {  # name -> (module expression, input shape)
    "nn.LSTM B=32 T=128 I=128 H=256": ("torch.nn.LSTM(128, 256, batch_first=True)", REF),
    "rnnkit.LSTM (native) B=32 T=128 I=128 H=256": ("rnnkit.LSTM(128, 256, batch_first=True)", REF),
    "rnnkit.LSTM layer_norm (reference loop) B=32 T=128": (
        "rnnkit.LSTM(128, 256, batch_first=True, layer_norm=True, backend='reference')", REF),
    "rnnkit.LSTM layer_norm (loop) B=32 T=128": (
        "rnnkit.LSTM(128, 256, batch_first=True, layer_norm=True)", REF),
    "rnnkit.LSTM peephole + zoneout (loop) B=32 T=128": (
        "rnnkit.LSTM(128, 256, batch_first=True, peephole=True, zoneout=0.1)", REF),
    "nn.GRU B=32 T=128 I=128 H=256": ("torch.nn.GRU(128, 256, batch_first=True)", REF),
    "rnnkit.GRU layer_norm (loop) B=32 T=128": (
        "rnnkit.GRU(128, 256, batch_first=True, layer_norm=True)", REF),
    "rnnkit.GRU reset_after=False (loop) B=32 T=128": (
        "rnnkit.GRU(128, 256, batch_first=True, reset_after=False)", REF),
    "nn.GRU B=8 T=1024 I=128 H=256": ("torch.nn.GRU(128, 256, batch_first=True)", LONG),
    "rnnkit.MinGRU (fused) B=8 T=1024 I=128 H=256": ("rnnkit.MinGRU(128, 256, batch_first=True)", LONG),
    "rnnkit.MinLSTM (fused) B=8 T=1024 I=128 H=256": ("rnnkit.MinLSTM(128, 256, batch_first=True)", LONG),
}

CHILD = """
import resource, sys, torch, rnnkit
torch.set_num_threads(1)
torch.manual_seed(0)
layer = {module}
x = torch.randn(*{shape})
layer(x[:, :2])[0].sum().backward()  # warm-up at length 2: loads the kernels, not the memory
layer.zero_grad(set_to_none=True)
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024
before, earlier_peak = rss_kib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
layer(x)[0].sum().backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert peak > earlier_peak, "the step did not raise the process's peak: the figure would be wrong"
print(before, peak)
"""


# A fixed mmap threshold: glibc otherwise raises it after the first large free, later
# buffers come from the heap and stay resident, and the peak then depends on the order of
# frees (the same case measured 88-117 MiB over three runs); fixed, every block of 128 KiB
# or more is its own mapping, returned when freed, and the figure repeats to 0.1 MiB.
ENV = os.environ | {"MALLOC_MMAP_THRESHOLD_": "131072"}


def measure(module: str, shape: tuple[int, ...]) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD.format(module=module, shape=shape)],
                         capture_output=True, text=True, check=True, env=ENV)
    before, peak = map(int, out.stdout.split()[-2:])
    return (peak - before) / 1024


def main() -> None:
    results = {}
    for name, (module, shape) in CASES.items():
        results[name] = round(measure(module, shape), 1)
        print(f"{name:<52} {results[name]:8.1f} MiB", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"peak_rss_rise_mib": results, "threads": 1, "dtype": "float32",
                                   "malloc_mmap_threshold": ENV["MALLOC_MMAP_THRESHOLD_"],
                                   "date": time.strftime("%Y-%m-%d"),
                                   "maxrss_units": "KiB (Linux)", "resource": resource.__name__},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
