"""Task models, and the fixed registry that a run directory's ``config.json`` names.

A saved run records ``{"architecture": "language_model", "model": {...}}``; loading looks
the name up in ``MODELS``, never imports a class path from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from rnnkit import config as _config
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.tagger import Tagger, TaggerConfig
from rnnkit.train import checkpoint

__all__ = ["MODELS", "LMConfig", "LanguageModel", "Seq2Seq", "Seq2SeqConfig", "architecture_config",
           "load_model"]

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "language_model": (LanguageModel, LMConfig),
    "sequence_classifier": (SequenceClassifier, ClassifierConfig),
    "seq2seq": (Seq2Seq, Seq2SeqConfig),
    "forecaster": (Forecaster, ForecasterConfig),
    "tagger": (Tagger, TaggerConfig),
}


def architecture_config(model: nn.Module) -> dict[str, Any]:
    """``{"architecture": name, "model": config}`` for a registered model, for config.json."""
    for name, (cls, _) in MODELS.items():
        if type(model) is cls:
            return {"architecture": name, "model": _config.to_dict(model.config)}
    raise TypeError(f"model must be one of the registered architectures "
                    f"{[cls.__name__ for cls, _ in MODELS.values()]}, got {type(model).__name__}")


def load_model(run_dir: str | Path) -> nn.Module:
    """The model saved in ``run_dir``: built from config.json, weights from model.safetensors."""
    run_dir = Path(run_dir)
    saved = checkpoint.read_config(run_dir)
    name = saved.get("architecture")
    if name not in MODELS:
        raise checkpoint.CheckpointError(f"{run_dir / checkpoint.CONFIG} names architecture {name!r}; "
                                         f"expected one of {sorted(MODELS)}")
    cls, config_cls = MODELS[name]
    try:
        model_config = _config.from_dict(config_cls, saved.get("model") or {})
    except (TypeError, ValueError) as err:
        raise checkpoint.CheckpointError(f"{run_dir / checkpoint.CONFIG}: bad model config: {err}") from None
    model = cls.from_config(model_config)
    checkpoint.load_weights(run_dir / checkpoint.WEIGHTS, model)
    return model.eval()
