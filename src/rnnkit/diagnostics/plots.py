"""PNG figures of the gradient experiments, drawn with matplotlib's Agg canvas.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so that
drawing touches no global backend or figure registry; each PNG is rendered in memory and
written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

from rnnkit._io import write_atomic
from rnnkit.diagnostics.clipping import ClippingResult
from rnnkit.diagnostics.experiment import GradientProfile, final_loss
from rnnkit.plot import image_format

COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
NAMES = {"rnn": "Elman RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}
RUN_COLORS = ("tab:red", "tab:blue", "tab:gray")


def plot_gradient_profile(profile: GradientProfile, path: str | Path) -> None:
    """Log-scale ‖dL/dh_t‖ against t, one line per cell type; a second panel after training."""
    c = profile.config
    panels = [("at initialisation", profile.init, False)]
    if profile.trained:
        panels.append((f"after {c.train_steps} Adam steps (lr {c.lr:g})", profile.trained, True))
    fig = _figure(figsize=(6.0 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, norms, trained) in zip(axes, panels, strict=True):
        for cell, norms_T in norms.items():
            label = f"{NAMES[cell]}: ‖dL/dh_1‖ / ‖dL/dh_T‖ = {profile.ratio(cell, trained=trained):.1e}"
            if trained:
                label += f", loss {final_loss(profile.losses[cell]):.3f}"
            ax.semilogy(range(1, len(norms_T) + 1), norms_T, color=COLORS[cell], label=label)
        ax.set(title=title, xlabel="step t", xlim=(1, c.seq_len))
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    axes[0].set_ylabel("‖dLoss/dh_t‖ (mean over batches)")
    task = f"{c.task} problem, T={c.seq_len}, H={c.hidden_size}"
    if profile.trained:
        task += f"; input-blind loss {profile.baseline:.3f}"
    fig.suptitle(f"Gradient reaching step t: {task}")
    _save(fig, path)


def plot_clipping(result: ClippingResult, path: str | Path) -> None:
    """Three panels: ‖dL/dh_t‖ at initialisation, training loss, pre-clip gradient norm."""
    c = result.config
    fig = _figure(figsize=(15.0, 4.2), layout="constrained")
    probe_ax, loss_ax, norm_ax = fig.subplots(1, 3)
    for run, color in zip(result.runs, RUN_COLORS, strict=False):
        if run.clip is None:  # a clipped run starts from the same weights as its unclipped twin
            g = run.init_grad_norms
            probe_ax.semilogy(range(1, c.seq_len + 1), g, color=color,
                              label=f"ρ={run.spectral_radius:g}: ‖dL/dh_1‖ / ‖dL/dh_T‖ = {g[0] / g[-1]:.2g}")
        steps = range(len(run.losses))
        loss_ax.plot(steps, run.losses, color=color, alpha=0.2, linewidth=0.5)
        loss_ax.plot(steps, _running_mean(run.losses, 50), color=color, label=run.label)
        norm_ax.semilogy(steps, run.grad_norms, color=color, linewidth=0.6, label=run.label)
        if run.diverged_at is not None:
            norm_ax.plot([len(run.grad_norms) - 1], [run.grad_norms[-1]], "x", color=color)
            loss_ax.annotate(f"{run.label}: loss reached {max(run.losses):.0e},\n"
                             f"then non-finite at step {run.diverged_at}", (0.03, 0.97),
                             xycoords="axes fraction", va="top", color=color, fontsize=8)
    probe_ax.set(title="‖dLoss/dh_t‖ at initialisation", xlabel="step t", xlim=(1, c.seq_len))
    loss_ax.axhline(result.baseline, color="black", linestyle=":", linewidth=1,
                    label=f"input-blind loss {result.baseline:.3f}")
    # linear and cut at 3x the baseline: a diverging run would flatten every other curve
    loss_ax.set(title=f"training loss (SGD, lr {c.lr:g}; line: mean of 50 steps)", xlabel="step",
                ylim=(0, 3 * result.baseline))
    norm_ax.axhline(c.clip, color="black", linestyle=":", linewidth=1, label=f"clip at {c.clip:g}")
    norm_ax.set(title="gradient norm before clipping", xlabel="step")
    for ax in (probe_ax, loss_ax, norm_ax):
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is probe_ax else "upper right")
    fig.suptitle(f"Exploding gradients and clipping: Elman RNN (tanh), {c.task} problem, "
                 f"T={c.seq_len}, H={c.hidden_size}, W_hh rescaled to spectral radius ρ")
    _save(fig, path)


def _running_mean(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for k, v in enumerate(values):
        total += v - (values[k - window] if k >= window else 0.0)
        out.append(total / min(k + 1, window))
    return out


def _figure(**options):
    # imported here, so that every CLI command does not load matplotlib for the two that draw
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**options)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> None:
    """As .png, .pdf or .svg, from the suffix (``rnnkit.plot.image_format``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=image_format(path, name="path"))
    write_atomic(Path(path), buffer.getvalue())
