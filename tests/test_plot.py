"""rnnkit.plot: a run's curves as one PNG, loss first, the gradient norm on a log axis."""

import math
import random
import struct

import pytest
from matplotlib.figure import Figure

from rnnkit.plot import _series, plot_run
from rnnkit.train.metrics import MetricsLog

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_run(run_dir, steps=300):
    """Noisy, decaying curves like a real run: train every 5 steps, val every 50."""
    rng = random.Random(0)
    with MetricsLog(run_dir) as log:
        for step in range(0, steps + 1, 5):
            grad = math.exp(rng.gauss(0, 0.4)) * (8 * math.exp(-step / 30) + 0.4)
            log.log(step, "train", {"lr": 1e-3, "loss": 1.4 + 2.8 * math.exp(-step / 60),
                                    "grad_norm": grad, "grad_norm_clipped": min(grad, 1.0),
                                    "clip_norm": 1.0})
            if step % 50 == 0:
                log.log(step, "val", {"loss": 1.6 + 2.7 * math.exp(-step / 70), "bpc": 2.3})
    return run_dir


def png_size(data):
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_writes_a_png_next_to_the_metrics(tmp_path):
    run = write_run(tmp_path / "run")
    path = plot_run(run)
    assert path == run / "curves.png"
    data = path.read_bytes()
    width, height = png_size(data)
    assert width >= 800 and height >= 600 and len(data) > 20_000
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "metrics.csv", "metrics.jsonl"]


def test_out_path_and_csv_only_runs(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "metrics.jsonl").unlink()
    path = plot_run(run, tmp_path / "elsewhere.png")
    assert path == tmp_path / "elsewhere.png" and png_size(path.read_bytes())
    assert not (run / "curves.png").exists()


def test_panels(tmp_path, monkeypatch):
    figures = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (figures.append(fig), savefig(fig, *a, **k)))
    plot_run(write_run(tmp_path))
    axes = [ax for ax in figures[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "lr", "bpc", "gradient norm (log scale)"]
    assert [line.get_label() for line in axes[0].get_lines()] == ["train", "val"]
    assert [line.get_label() for line in axes[2].get_lines()] == ["val"]
    grad = axes[3]
    assert grad.get_yscale() == "log"
    styles = {line.get_label(): line.get_linestyle() for line in grad.get_lines()}
    assert styles == {"grad_norm": "-", "grad_norm_clipped": "--", "clip_norm": "--"}
    train_loss = axes[0].get_lines()[0]
    assert list(train_loss.get_xdata()) == list(range(0, 301, 5))


def test_series_puts_loss_first_and_sorts_steps():
    rows = [{"step": 10, "split": "train", "time": 1.0, "acc": 0.5, "loss": 2.0},
            {"step": 5, "split": "train", "time": 2.0, "acc": 0.4, "loss": 3.0},
            {"step": 10, "split": "val", "loss": 2.5}]
    series = _series(rows)
    assert list(series) == ["loss", "acc"]
    assert series["loss"] == {"train": ([5, 10], [3.0, 2.0]), "val": ([10], [2.5])}


def test_non_finite_values_still_plot(tmp_path):
    with MetricsLog(tmp_path) as log:
        for step in range(20):
            log.log(step, "train", {"loss": math.nan if step == 7 else 1.0 / (step + 1),
                                    "grad_norm": math.inf if step == 3 else 0.5 + step})
    assert png_size(plot_run(tmp_path).read_bytes())


@pytest.mark.parametrize("setup, error, message", [
    ("missing", FileNotFoundError, r"run_dir must be an existing directory, got '.*run'"),
    ("nothing", FileNotFoundError, r"run_dir must hold metrics.jsonl or metrics.csv"),
    ("empty", ValueError, r"run_dir must hold logged metrics, got '.*' whose metrics file has no values"),
    ("no values", ValueError, r"run_dir must hold logged metrics"),
    ("corrupt", ValueError, r"metrics.jsonl line 1 must be a JSON object"),
    ("bad out", FileNotFoundError, r"out's directory must exist, got '.*nowhere'"),
])
def test_errors(tmp_path, setup, error, message):
    run, out = tmp_path / "run", None
    if setup != "missing":
        run.mkdir()
    if setup == "empty":
        (run / "metrics.jsonl").write_text("")
    if setup == "no values":
        (run / "metrics.jsonl").write_text('{"step": 0, "split": "train", "time": 1.0}\n')
    if setup == "corrupt":
        (run / "metrics.jsonl").write_text("<html>\n")
    if setup == "bad out":
        write_run(run, steps=10)
        out = tmp_path / "nowhere" / "curves.png"
    with pytest.raises(error, match=message):
        plot_run(run, out)
    assert not list(tmp_path.rglob("*.png"))


def test_clip_threshold_from_the_run_config(tmp_path, monkeypatch):
    """The loop logs grad_norm and grad_norm_max; the threshold comes from config.json."""
    figures = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (figures.append(fig), savefig(fig, *a, **k)))
    with MetricsLog(tmp_path) as log:
        for step in (10, 20, 30):
            log.log(step, "train", {"loss": 1.0 / step, "grad_norm": 0.5 * step, "grad_norm_max": step})
    (tmp_path / "config.json").write_text('{"train": {"clip_norm": 2.5}}')
    plot_run(tmp_path)
    grad = [ax for ax in figures[0].axes if ax.get_title().startswith("gradient")][0]
    lines = {line.get_label(): line for line in grad.get_lines()}
    assert sorted(lines) == ["clip_norm", "grad_norm", "grad_norm_max"]
    assert list(lines["clip_norm"].get_ydata()) == [2.5, 2.5]
    assert list(lines["clip_norm"].get_xdata()) == [10, 30]


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", PNG_SIGNATURE)])
def test_the_format_follows_the_suffix(tmp_path, suffix, magic):
    run = write_run(tmp_path / "run")
    path = plot_run(run, tmp_path / f"curves{suffix}")
    assert path.read_bytes().startswith(magic)


def test_an_unknown_suffix_is_refused_before_drawing(tmp_path):
    """It wrote a PNG under a .txt name."""
    run = write_run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"out must end in .png, .pdf or .svg .* got '.*curves.txt'"):
        plot_run(run, tmp_path / "curves.txt")
    assert not (tmp_path / "curves.txt").exists()
