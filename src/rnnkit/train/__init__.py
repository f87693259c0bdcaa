"""Training: one fit loop, truncated BPTT streams, schedules, checkpoints and metrics.

    from rnnkit.train import TrainConfig, StreamLoader, fit
    result = fit(model, StreamLoader(ids_N, batch_size=32, bptt=64), TrainConfig(epochs=2))
"""

from rnnkit.train.checkpoint import CheckpointError, load_weights, read_config, save_weights
from rnnkit.train.config import TrainConfig
from rnnkit.train.data import IGNORE, Batch, Loader, TensorLoader
from rnnkit.train.distributed import init_from_env
from rnnkit.train.loop import FitResult, evaluate, fit
from rnnkit.train.metrics import MetricsLog, read_metrics
from rnnkit.train.schedules import lr_at, teacher_forcing_at
from rnnkit.train.setup import default_loss, seed_everything
from rnnkit.train.tbptt import StreamLoader, detach_state, reset_state, tbptt_chunks

__all__ = [
    "IGNORE",
    "Batch",
    "CheckpointError",
    "FitResult",
    "Loader",
    "MetricsLog",
    "StreamLoader",
    "TensorLoader",
    "TrainConfig",
    "default_loss",
    "detach_state",
    "evaluate",
    "fit",
    "init_from_env",
    "load_weights",
    "lr_at",
    "read_config",
    "read_metrics",
    "reset_state",
    "save_weights",
    "seed_everything",
    "tbptt_chunks",
    "teacher_forcing_at",
]
