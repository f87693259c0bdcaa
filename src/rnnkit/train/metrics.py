"""``MetricsLog``: what the training loop writes at each log step, in files any tool can read.

A run directory gets, per ``log(step, split, values)`` call:

- ``metrics.jsonl``: one JSON object ``{"step", "split", "time", **values}`` per call. JSON has
  no NaN or infinity, so a non-finite value is written as ``null`` (``read_metrics`` gives NaN).
- ``metrics.csv``: long format, ``step,split,name,value``, one row per value, so a metric
  that first appears later (a val metric, say) needs no new column. Non-finite values are
  written as ``nan``/``inf``/``-inf``.
- ``tensorboard/`` (optional): scalars tagged ``"{split}/{name}"``.

Each call is flushed, so a killed run keeps everything it logged. On resume from a checkpoint
at step N, the rows after N were logged by the run that died after saving it; they are dropped
so that the resumed run's rows replace them rather than sit next to them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnnkit._io import write_atomic

JSONL = "metrics.jsonl"
CSV = "metrics.csv"
CSV_HEADER = ["step", "split", "name", "value"]
_RESERVED = ("step", "split", "time")


class MetricsLog:
    """Appends metrics to ``run_dir/metrics.jsonl``, ``run_dir/metrics.csv`` and, optionally,
    TensorBoard. Use it as a context manager, or call ``close()``.

    Args:
        run_dir: the run directory; created if missing.
        tensorboard: also write TensorBoard scalars to ``run_dir/tensorboard``.
        resume_step: the step of the checkpoint being resumed: rows with a larger step are
            dropped before appending. None appends to whatever is there.
        enabled: False makes every method a no-op, for the non-zero ranks of a DDP run.
    """

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = False,
                 resume_step: int | None = None, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._jsonl = self._csv = self._tensorboard = None
        if not enabled:
            return
        if resume_step is not None and (isinstance(resume_step, bool) or not isinstance(resume_step, int)
                                        or resume_step < 0):
            raise ValueError(f"resume_step must be an int >= 0 or None, got {resume_step!r}")
        writer_class = _summary_writer_class() if tensorboard else None  # fail before any file
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _truncate(self.run_dir / JSONL, resume_step, lambda line: json.loads(line)["step"])
        _truncate(self.run_dir / CSV, resume_step, lambda line: int(line.split(",", 1)[0]))
        self._jsonl = open(self.run_dir / JSONL, "a", encoding="utf-8")
        new_csv = not (self.run_dir / CSV).exists() or (self.run_dir / CSV).stat().st_size == 0
        self._csv = open(self.run_dir / CSV, "a", encoding="utf-8", newline="")
        if new_csv:
            csv.writer(self._csv).writerow(CSV_HEADER)
            self._csv.flush()
        if writer_class is not None:
            # purge_step hides events at or after it, as the truncation above does for the files
            purge = None if resume_step is None else resume_step + 1
            self._tensorboard = writer_class(str(self.run_dir / "tensorboard"), purge_step=purge)

    def log(self, step: int, split: str, values: Mapping[str, float]) -> None:
        """Record ``values`` (name -> number; 0-dim tensors are fine) for ``split`` at ``step``.

        Raises:
            ValueError: on a negative or non-int step, an empty split, a name that is one of
                ``step``/``split``/``time``, or a value that ``float()`` cannot convert.
        """
        if not self.enabled:
            return
        if self._jsonl is None:
            raise ValueError(f"MetricsLog for {self.run_dir} is closed")
        floats = _check(step, split, values)
        row = {"step": step, "split": split, "time": time.time(),
               **{name: value if math.isfinite(value) else None for name, value in floats.items()}}
        self._jsonl.write(json.dumps(row, allow_nan=False) + "\n")
        self._jsonl.flush()
        csv.writer(self._csv).writerows([step, split, name, repr(value)] for name, value in floats.items())
        self._csv.flush()
        if self._tensorboard is not None:
            for name, value in floats.items():
                self._tensorboard.add_scalar(f"{split}/{name}", value, step)
            self._tensorboard.flush()

    def close(self) -> None:
        """Close the files; a second call does nothing."""
        for handle in (self._jsonl, self._csv, self._tensorboard):
            if handle is not None:
                handle.close()
        self._jsonl = self._csv = self._tensorboard = None

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` (or, without it, ``metrics.csv``) as dicts with
    ``step``, ``split`` and one float per metric (NaN for a logged non-finite value). A torn
    last line, from a run killed mid-write, is skipped.

    Raises:
        FileNotFoundError: if ``run_dir`` has neither file.
        ValueError: if a line is not a metrics row.
    """
    run_dir = Path(run_dir)
    if (run_dir / JSONL).is_file():
        return [_json_row(line, run_dir / JSONL, n) for n, line in _complete_lines(run_dir / JSONL)]
    if (run_dir / CSV).is_file():
        return _csv_rows(run_dir / CSV)
    members = sorted(p.parent.name for p in run_dir.glob(f"member*/{CSV}"))
    hint = (f" (an ensemble's top level: each member logs its own, e.g. {run_dir / members[0]})"
            if members else "")
    raise FileNotFoundError(f"run_dir must hold {JSONL} or {CSV}, got {str(run_dir)!r} without either{hint}")


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError("MetricsLog(tensorboard=True) needs the tensorboard package: "
                          "pip install 'rnnkit[tensorboard]'") from err
    return SummaryWriter


def _check(step: Any, split: Any, values: Mapping[str, Any]) -> dict[str, float]:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string such as 'train' or 'val', got {split!r}")
    floats = {}
    for name, value in values.items():
        if name in _RESERVED or not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings other than {_RESERVED}, got {name!r}")
        try:
            floats[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"metric {name!r} must be a number, got {value!r}") from None
    return floats


def _complete_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line that ends in a newline."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # the part after the last newline is empty or torn
    return [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]


def _truncate(path: Path, resume_step: int | None, step_of) -> None:
    """Rewrite ``path`` without a torn last line and, given ``resume_step``, without the rows
    after it. The first line of the CSV is its header and always stays."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]
    is_csv = path.name == CSV
    keep = [line for k, line in enumerate(lines)
            if (is_csv and k == 0) or not line.strip() or resume_step is None
            or _step(step_of, line, path, k + 1) <= resume_step]
    new = "".join(line + "\n" for line in keep)
    if new != text:
        write_atomic(path, new.encode("utf-8"))


def _step(step_of, line: str, path: Path, n: int) -> int:
    try:
        return int(step_of(line))
    except (ValueError, KeyError, TypeError, IndexError):
        raise ValueError(f"{path} line {n} must be a metrics row, got {line[:80]!r}") from None


def _json_row(line: str, path: Path, n: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        row = None
    if not (isinstance(row, dict) and isinstance(row.get("step"), int) and isinstance(row.get("split"), str)
            and all(v is None or isinstance(v, int | float) and not isinstance(v, bool)
                    for k, v in row.items() if k not in ("step", "split"))):
        raise ValueError(f"{path} line {n} must be a JSON object with an int step, a string split "
                         f"and numbers, got {line[:80]!r}")
    return {k: v if k in ("step", "split") else math.nan if v is None else float(v) for k, v in row.items()}


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    """Long rows back to one dict per (step, split) run of consecutive rows, as logged."""
    lines = _complete_lines(path)
    if lines and lines[0][1].strip() != ",".join(CSV_HEADER):
        raise ValueError(f"{path} must start with the header {','.join(CSV_HEADER)}, got {lines[0][1]!r}")
    rows: list[dict[str, Any]] = []
    for n, line in lines[1:]:
        fields = next(csv.reader(io.StringIO(line)))
        try:
            step, split, name, value = int(fields[0]), fields[1], fields[2], float(fields[3])
        except (ValueError, IndexError):
            raise ValueError(f"{path} line {n} must be step,split,name,value, got {line[:80]!r}") from None
        if not rows or (rows[-1]["step"], rows[-1]["split"]) != (step, split) or name in rows[-1]:
            rows.append({"step": step, "split": split})
        rows[-1][name] = value
    return rows
