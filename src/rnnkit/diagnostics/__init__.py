"""Gradient diagnostics: ‖dLoss/dh_t‖ through the recurrence, long-dependency tasks, and
the vanishing/exploding gradient experiments. See docs/diagnostics.md.
"""

from rnnkit.diagnostics.clipping import ClippingConfig, ClippingResult, ClippingRun, clipping_experiment
from rnnkit.diagnostics.experiment import GradientConfig, GradientProfile, gradient_profile
from rnnkit.diagnostics.plots import plot_clipping, plot_gradient_profile
from rnnkit.diagnostics.probe import GradProbe, hidden_grad_norms, probed
from rnnkit.diagnostics.tasks import TASKS, Task, adding_problem, copy_problem

__all__ = [
    "TASKS",
    "ClippingConfig",
    "ClippingResult",
    "ClippingRun",
    "GradProbe",
    "GradientConfig",
    "GradientProfile",
    "Task",
    "adding_problem",
    "clipping_experiment",
    "copy_problem",
    "gradient_profile",
    "hidden_grad_norms",
    "plot_clipping",
    "plot_gradient_profile",
    "probed",
]
