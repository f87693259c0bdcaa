"""A run directory: what a model needs to be used again, and what training needs to go on.

    RUN_DIR/
      config.json         {"architecture": name in MODELS or null, "model": {...}, "train": {...}}
      model.safetensors   the weights; a tensor shared by several names (tied embeddings)
                          is stored once and its other names listed in the metadata
      tokenizer.json      where the task has one (written by the task)
      metrics.csv, metrics.jsonl
      training_state.pt   weights, optimizer, scheduler, step, data position, RNG states,
                          carried recurrent state: read back only with weights_only=True

Every file is written atomically (temporary file, fsync, rename). ``training_state.pt``
holds the weights too, so that it alone is a consistent checkpoint: a kill between two
file writes can never pair the weights of one step with the optimizer of another.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn

from rnnkit._io import write_atomic

CONFIG, WEIGHTS, STATE = "config.json", "model.safetensors", "training_state.pt"
RUN_FILES = (CONFIG, WEIGHTS, STATE)  # what makes a directory a run that fit would replace
# what the tasks and `rnnkit plot` write about a run's model: gone with it when it is replaced
RUN_REPORTS = ("results.json", "curves.png")


def saved_run(run_dir: Path) -> list[str]:
    """The run files in ``run_dir``, or [] where it holds no weights and no training state:
    a config alone is left by a run that failed before its first save, and is no run to
    protect (a new one replaces it)."""
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    return present if WEIGHTS in present or STATE in present else []


class CheckpointError(ValueError):
    """A run directory that cannot be read back: missing, corrupt, or another model's."""


def save_config(run_dir: Path, config: Mapping[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / CONFIG, (json.dumps(config, indent=2) + "\n").encode("utf-8"))


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"run directory {run_dir} has no {CONFIG}: not a run directory") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); the file is corrupt") from None
    except OSError as err:  # a directory in its place, no permission
        raise CheckpointError(f"{path} must be a readable file, got {err.strerror or err}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def save_weights(path: Path, model: nn.Module) -> None:
    """``model.state_dict()`` as safetensors; tied tensors stored once (safetensors refuses
    two names on one storage), their aliases in the metadata."""
    tensors: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    first: dict[tuple, str] = {}
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride(), t.dtype)
        if t.numel() and key in first:
            aliases[name] = first[key]
            continue
        first[key] = name
        tensors[name] = t.detach().contiguous().cpu()
    metadata = {"format": "pt", "aliases": json.dumps(aliases)}
    write_atomic(path, st_save(tensors, metadata=metadata))


def load_weights(path: Path, model: nn.Module) -> None:
    """Load ``save_weights``'s file into ``model``, strictly (every name, every shape)."""
    try:
        data = Path(path).read_bytes()
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + header_len]).get("__metadata__", {})
        aliases = json.loads(metadata.get("aliases", "{}"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); "
                              f"it is truncated or corrupt") from None
    for name, target in aliases.items():
        tensors[name] = tensors[target]
    _load_state_dict(model, tensors, source=str(path))


def save_training_state(path: Path, state: Mapping[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    write_atomic(path, buffer.getvalue())


def load_training_state(path: Path) -> dict[str, Any]:
    """The training state, loaded with ``weights_only=True``: tensors and plain containers
    only, never code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist: nothing to resume from") from None
    except Exception as err:  # torch raises several types for a damaged zip or pickle
        detail = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise CheckpointError(f"{path} could not be read ({type(err).__name__}: {detail}); it is "
                              f"truncated or corrupt") from None
    if not isinstance(state, dict) or "model" not in state or "step" not in state:
        raise CheckpointError(f"{path} is not an rnnkit training state (no 'model' and 'step')")
    return state


def _load_state_dict(model: nn.Module, tensors: Mapping[str, Tensor], *, source: str) -> None:
    """``load_state_dict`` with an error that says the checkpoint is another architecture."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: checkpoint {tuple(tensors[k].shape)}, model {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source} holds a different architecture than the model "
            f"({type(model).__name__}): missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"wrong shapes {wrong[:5]}")
    model.load_state_dict(tensors)
