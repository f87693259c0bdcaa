"""``plot_run``: a run's training curves, from its metrics file, as one PNG.

One panel per metric, ``loss`` first, each split (train, val, ...) a line on the same panel
against the step. The gradient norm gets its own panel on a log axis, because it spans orders
of magnitude early in training: the mean pre-clip norm of the steps of each row, the largest
one (``grad_norm_max``, dashed), and the clip threshold (``clip_norm``, logged or read from
the run's ``config.json``) as a black dashed line.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rnnkit._io import write_atomic
from rnnkit.train.metrics import read_metrics

GRAD_NAMES = ("grad_norm", "grad_norm_max", "grad_norm_clipped", "clip_norm")
_NOT_METRICS = ("step", "split", "time")
_MARKERS_UP_TO = 50  # points per line; sparse lines (val) get markers so single points show

# name -> split -> (steps, values), both in step order
Series = dict[str, dict[str, tuple[list[int], list[float]]]]


IMAGE_FORMATS = ("png", "pdf", "svg")


def image_format(out: str | Path, *, name: str = "out") -> str:
    """The format to write ``out`` in, from its suffix (matplotlib's own rule): png, pdf or
    svg; a ValueError naming ``name`` for any other, before anything is drawn."""
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in IMAGE_FORMATS:
        raise ValueError(f"{name} must end in .png, .pdf or .svg (the image format follows it), "
                         f"got {str(out)!r}")
    return suffix


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the curves logged in ``run_dir`` (see ``rnnkit.train.metrics``) to an image.

    Args:
        run_dir: a run directory holding ``metrics.jsonl`` or ``metrics.csv``.
        out: the .png, .pdf or .svg to write; default ``run_dir/curves.png``. Written
            atomically.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: if ``run_dir`` or ``out``'s directory does not exist, or
            ``run_dir`` has no metrics file.
        ValueError: if the metrics file is corrupt or holds no values, or ``out`` is not a
            .png, .pdf or .svg.
    """
    run_dir = Path(run_dir)
    out = run_dir / "curves.png" if out is None else Path(out)
    kind = image_format(out)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir must be an existing directory, got {str(run_dir)!r}")
    series = _series(read_metrics(run_dir))
    clip = _clip_norm(run_dir)
    if series and clip is not None and "clip_norm" not in series and "grad_norm" in series:
        steps = sorted({step for steps, _ in series["grad_norm"].values() for step in steps})
        series["clip_norm"] = {"train": ([steps[0], steps[-1]], [clip, clip])}
    if not series:
        raise ValueError(f"run_dir must hold logged metrics, got {str(run_dir)!r} whose metrics "
                         "file has no values yet")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"out's directory must exist, got {str(out.parent)!r}")
    write_atomic(out, _draw(series, title=run_dir.resolve().name, kind=kind))
    return out


def _clip_norm(run_dir: Path) -> float | None:
    """``train.clip_norm`` from the run's config.json, if it has one."""
    try:
        clip = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["train"]["clip_norm"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(clip) if isinstance(clip, int | float) and not isinstance(clip, bool) else None


def _series(rows: Sequence[dict[str, Any]]) -> Series:
    """Rows of ``read_metrics`` to per-metric, per-split lines, metrics in the order first
    logged but ``loss`` first."""
    series: Series = {}
    for row in rows:
        for name, value in row.items():
            if name not in _NOT_METRICS:
                steps, values = series.setdefault(name, {}).setdefault(row["split"], ([], []))
                steps.append(row["step"])
                values.append(value)
    for by_split in series.values():
        for split, (steps, values) in by_split.items():
            # a run resumed without truncation can log a step twice; keep the line monotonic
            order = sorted(range(len(steps)), key=steps.__getitem__)
            by_split[split] = ([steps[k] for k in order], [values[k] for k in order])
    return dict(sorted(series.items(), key=lambda item: item[0] != "loss"))


def _draw(series: Series, title: str, kind: str = "png") -> bytes:
    # imported here so that `rnnkit --help` and the training loop do not pay for matplotlib;
    # a bare Figure on the Agg canvas never touches pyplot's global state or a display
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [name for name in series if name not in GRAD_NAMES]
    panels = names + (["grad_norm"] if any(name in series for name in GRAD_NAMES) else [])
    splits = list(dict.fromkeys(["train", "val", *(s for by in series.values() for s in by)]))
    colors = {split: f"C{k}" for k, split in enumerate(splits)}  # a split keeps its colour

    cols = 2 if len(panels) == 4 else min(3, len(panels))  # 2x2 rather than 3+1
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(5.0 * cols, 3.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, panels, strict=False):
        if name == "grad_norm":
            _grad_panel(ax, series, colors)
        else:
            for split, (steps, values) in series[name].items():
                _line(ax, steps, values, label=split, color=colors[split])
            ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=100)
    return buffer.getvalue()


def _grad_panel(ax, series: Series, colors: dict[str, str]) -> None:
    several = len({split for name in GRAD_NAMES for split in series.get(name, {})}) > 1
    for name in GRAD_NAMES:
        for split, (steps, values) in series.get(name, {}).items():
            label = f"{split} {name}" if several else name
            # the clipped norm equals grad_norm below the threshold: a different colour on top
            color = {"grad_norm": colors[split], "grad_norm_max": colors[split],
                     "grad_norm_clipped": "tab:red"}.get(name, "black")
            style = "-" if name == "grad_norm" else "--"
            _line(ax, steps, values, label=label, color=color, linestyle=style)
    ax.set_yscale("log")
    ax.set_title("gradient norm (log scale)")


def _line(ax, steps: list[int], values: list[float], **style: Any) -> None:
    marker = "o" if len(steps) <= _MARKERS_UP_TO else None
    ax.plot(steps, values, marker=marker, markersize=3, linewidth=1.2, **style)


def plot_forecast(history_times: Any, history: Sequence[float], times: Any, forecast_HQ: Any,
                  quantiles: Sequence[float], out: str | Path, *, title: str = "",
                  actual: Sequence[float] | None = None, show_last: int | None = None) -> Path:
    """History, the median forecast and its central interval (the outer quantiles) in one
    image (.png, .pdf or .svg, from ``out``'s suffix), written atomically.

    Arguments:
        history_times, times: x values (datetime64 or numbers) of the history and forecast.
        forecast_HQ: (H, Q) values at ``quantiles`` (must include 0.5).
        actual: the true values at ``times``, when known (a held-out test).
        show_last: draw only this many history steps (None: all).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    kind = image_format(out)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"out's directory must exist, got {str(out.parent)!r}")
    start = 0 if show_last is None else max(len(history) - show_last, 0)
    levels = list(quantiles)
    fig = Figure(figsize=(9, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(history_times[start:], history[start:], color="black", lw=1.2, label="history")
    if len(levels) > 1:
        low, high = levels[0], levels[-1]
        ax.fill_between(times, forecast_HQ[:, 0], forecast_HQ[:, -1], color="tab:blue", alpha=0.25,
                        label=f"{round(100 * (high - low))}% interval")
    ax.plot(times, forecast_HQ[:, levels.index(0.5)], color="tab:blue", lw=1.6, label="forecast (median)")
    if actual is not None:
        ax.plot(times, actual, color="tab:red", lw=1.0, ls="--", label="actual")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=kind, dpi=100)
    write_atomic(out, buffer.getvalue())
    return out
