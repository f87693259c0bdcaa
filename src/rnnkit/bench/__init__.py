"""Side-by-side benchmarks: rnnkit against its anchor, in one process (see BENCH.md).

Absolute times on a shared machine mean little, so every number here is a ratio: the
anchor (plain ``torch.nn``) and the candidate (rnnkit) run the same work, interleaved
A B A B after warm-up, and ``compare`` reports the median of each side and
``ratio = anchor / candidate`` (> 1 means rnnkit is faster).

Suites are modules of this package with a ``run(*, quick, repeats, on_result)`` function
that returns one result dict per case; ``run_suites`` sets the threads and collects them.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from rnnkit._io import write_atomic

SUITES = ("layers", "scan", "variants", "stream", "fit", "export")
DTYPE = torch.float32
MIN_SAMPLE_S = 0.05  # calls are batched until one sample takes this long (timer noise)


@dataclass(frozen=True)
class Timing:
    """One side of a comparison: milliseconds per call over the repeats."""

    median_ms: float
    min_ms: float
    max_ms: float


@dataclass(frozen=True)
class Comparison:
    """``ratio = anchor.median_ms / candidate.median_ms``; the ratio spread is the min and
    max of the per-repeat ratios (each anchor sample over the candidate sample after it)."""

    anchor: Timing
    candidate: Timing
    ratio: float
    ratio_min: float
    ratio_max: float
    calls_per_sample: int
    repeats: int
    first_call_ms: tuple[float, float]  # (anchor, candidate): what a user pays once
    others_cpu: float | None  # share of all cores other processes used while timing

    def to_dict(self) -> dict:
        return asdict(self)


def _seconds(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def compare(anchor_fn: Callable[[], object], candidate_fn: Callable[[], object], repeats: int,
            *, warmup: int = 2, min_sample_s: float | None = None) -> Comparison:
    """Time two zero-argument callables interleaved, A B A B, after warm-up.

    Fast calls are batched: ``calls_per_sample`` is chosen from the faster side's warm time
    so one sample takes at least ``min_sample_s`` (default ``MIN_SAMPLE_S``); every time is
    reported per call.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    min_sample_s = MIN_SAMPLE_S if min_sample_s is None else min_sample_s
    first = (_seconds(anchor_fn, 1) * 1e3, _seconds(candidate_fn, 1) * 1e3)
    for _ in range(warmup):
        anchor_fn(), candidate_fn()
    warm_s = min(_seconds(anchor_fn, 1), _seconds(candidate_fn, 1))
    calls = max(1, math.ceil(min_sample_s / max(warm_s, 1e-9)))
    a_ms, c_ms = [], []
    before = _cpu_times()
    for _ in range(repeats):
        a_ms.append(_seconds(anchor_fn, calls) * 1e3 / calls)
        c_ms.append(_seconds(candidate_fn, calls) * 1e3 / calls)
    others = _others_share(before, _cpu_times())
    ratios = [a / c for a, c in zip(a_ms, c_ms, strict=True)]
    a, c = (Timing(statistics.median(s), min(s), max(s)) for s in (a_ms, c_ms))
    return Comparison(a, c, a.median_ms / c.median_ms, min(ratios), max(ratios), calls, repeats,
                      first, others)


class EquivalenceError(AssertionError):
    """The two sides gave different numbers: the timing would be meaningless."""


def checked_comparison(result: dict, steps: tuple[Callable, Callable, Callable[[], None]],
                       repeats: int) -> dict:
    """``result`` with the timing of ``steps`` = (anchor, candidate, check) after ``check``
    passed, or with ``status: "mismatch"`` and the error when it raised EquivalenceError."""
    step_a, step_c, check = steps
    try:
        check()
    except EquivalenceError as e:
        return result | {"status": "mismatch", "error": str(e)}
    return result | {"status": "ok"} | compare(step_a, step_c, repeats).to_dict()


def executor_of(module: torch.nn.Module) -> str:
    """The executor the first recurrent layer of ``module`` runs on (``backend="auto"`` picks it)."""
    import rnnkit

    return next(m.executor for m in module.modules() if isinstance(m, rnnkit.Recurrent))


def run_each(cases: Sequence, measure: Callable[[object, int], dict], repeats: int,
             on_result: Callable[[dict], object] | None) -> list[dict]:
    """``measure(case, repeats)`` for every case, each result passed to ``on_result`` as it comes."""
    results = []
    for case in cases:
        results.append(measure(case, repeats))
        if on_result is not None:
            on_result(results[-1])
    return results


def _cpu_times() -> tuple[float, float, float] | None:
    """(all cores' elapsed, all cores' busy, this process's CPU) in seconds; Linux only."""
    try:
        jiffies = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    hz, t = os.sysconf("SC_CLK_TCK"), os.times()
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    return sum(jiffies) / hz, (sum(jiffies) - idle) / hz, t.user + t.system


def _others_share(before, after) -> float | None:
    """Share of the machine's CPU that other processes took: their work competes with ours
    for cores, and a oneDNN thread that loses its core stalls the whole parallel region."""
    if before is None or after is None:
        return None
    elapsed, busy, ours = (b - a for a, b in zip(before, after, strict=True))
    return round(min(1.0, max(0.0, busy - ours) / elapsed), 3) if elapsed > 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def all_cores() -> int:
    """Cores this process may run on (the affinity mask, not the whole machine)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine() -> dict:
    """What the numbers were measured on, for the header and the JSON."""
    import rnnkit

    return {
        "cpu": cpu_model(),
        "cores_available": all_cores(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "rnnkit": rnnkit.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dtype": str(DTYPE).removeprefix("torch."),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_avg_1m": _load(),  # other work on a shared machine inflates the spread
    }


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def header(desc: dict, repeats: int) -> str:
    return (f"torch {desc['torch']} | {desc['cpu']} | threads {desc['threads']} of "
            f"{desc['cores_available']} | {desc['dtype']} | {repeats} repeats, median | "
            f"load {desc['load_avg_1m']}\n"
            f"{'case':<22} {'shape':<28} {'anchor ms':>10} {'rnnkit ms':>10} {'ratio':>6}  "
            f"{'spread':<11} other load")


def row(result: dict) -> str:
    """One printed line per case: ``spread`` is the min-max of the per-repeat ratios, and
    ``other load`` the share of the cores other processes used meanwhile."""
    name, shape = result["case"], result["shape"]
    if result["status"] != "ok":  # "mismatch", or "skipped" (a missing optional package)
        status = "SKIPPED" if result["status"] == "skipped" else "FAILED"
        return f"{name:<22} {shape:<28} {status}: {result['error'].splitlines()[0]}"
    a, c = result["anchor"]["median_ms"], result["candidate"]["median_ms"]
    spread = f"{result['ratio_min']:.2f}-{result['ratio_max']:.2f}"
    others = result["others_cpu"]
    load = "?" if others is None else f"{others:.0%}"
    return (f"{name:<22} {shape:<28} {a:>10.3f} {c:>10.3f} {result['ratio']:>6.2f}  "
            f"{spread:<11} {load}")


def run_suites(names: Sequence[str], *, quick: bool = False, repeats: int | None = None,
               threads: int | None = None, echo: Callable[[str], object] = print) -> dict:
    """Run the named suites with ``threads`` threads (default: all cores), echoing a header
    and one row per case; returns ``{"machine", "settings", "results"}``."""
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"suite must be one of {SUITES}, got {unknown[0]!r}")
    repeats = repeats if repeats is not None else (3 if quick else 9)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or all_cores())
    try:
        desc = machine()
        echo(header(desc, repeats))
        results = []
        for name in names or SUITES:
            suite = importlib.import_module(f"rnnkit.bench.{name}")
            results += suite.run(quick=quick, repeats=repeats, on_result=lambda r: echo(row(r)))
    finally:
        torch.set_num_threads(previous)
    desc["load_avg_1m_end"] = _load()
    settings = {"suites": list(names or SUITES), "quick": quick, "repeats": repeats}
    return {"machine": desc, "settings": settings, "results": results}


def write_json(path: str | os.PathLike, report: dict) -> None:
    """Write ``report`` to ``path`` atomically: a temporary file beside it, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))


__all__ = ["SUITES", "Comparison", "EquivalenceError", "Timing", "checked_comparison", "compare",
           "executor_of", "machine", "run_each", "run_suites", "write_json"]
