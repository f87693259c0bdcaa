"""The loop's bookkeeping: where it is, how that is saved and restored, and how a signal
stops it at a step boundary."""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnkit.train import checkpoint
from rnnkit.train.data import Batch, Loader
from rnnkit.train.tbptt import map_state, tbptt_chunks


@dataclass
class Position:
    """Where training is: the next step, epoch, batch and chunk, and running sums.

    Everything here is saved with a checkpoint, so a resumed run repeats the original.
    """

    step: int = 0
    epoch: int = 0
    batch: int = 0
    chunk: int = 0
    seconds: float = 0.0  # training time spent before this process started
    best: float | None = None  # best value of the monitored metric so far
    bad_evals: int = 0  # evaluations since `best` improved
    window: dict[str, float] = field(default_factory=dict)  # sums since the last log row
    epoch_sums: dict[str, float] = field(default_factory=dict)  # sums over this epoch

    def add(self, sums: dict[str, float], values: dict[str, float]) -> None:
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value


def chunks(train: Loader, bptt: int | None, epochs: int,
           pos: Position) -> Iterator[tuple[Batch, tuple[int, int, int]]]:
    """Every chunk from ``pos`` on, with the (epoch, batch, chunk) after it; after an epoch's
    last chunk that is (epoch, len(train), 0). The first chunk of a batch from a loader that
    carries no state resets every row."""
    epoch, start, skip = pos.epoch, pos.batch, pos.chunk
    while epoch < epochs:
        for index, batch in enumerate(train.batches(epoch, start), start=start):
            if not train.carries_state:
                batch = batch._replace(reset_B=torch.ones(batch.rows, dtype=torch.bool))
            parts = list(tbptt_chunks(batch, bptt))
            for k in range(skip, len(parts)):
                last = k == len(parts) - 1
                yield parts[k], (epoch, index + last, 0 if last else k + 1)
            skip = 0
        epoch, start = epoch + 1, 0


def snapshot(model, optimizer, plateau, scaler, pos: Position, state: Any,
             ranks: list[dict[str, Any]] | None = None, data: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything a resumed run needs, as tensors and plain containers (weights_only-safe).
    ``ranks``: every process's ``rank_snapshot`` in a data-parallel run, so that one file
    holds them all and a kill can never leave the processes' parts from different steps.
    ``data``: the loaders' ``fingerprints`` (training and validation), which ``restore`` checks."""
    return {
        "data": data,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "plateau": None if plateau is None else plateau.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "step": pos.step,
        "position": dataclasses.asdict(pos),
        "world_size": len(ranks) if ranks else 1,
        "ranks": ranks or [],
        **rank_snapshot(state),
    }


def rank_snapshot(state: Any) -> dict[str, Any]:
    """What differs between the processes of a data-parallel run: the RNG and the state of
    this process's streams (NamedTuple states saved as plain tuples: the layers take those)."""
    return {"state": map_state(lambda t: t.detach().cpu(), _plain(state)),
            "rng": {"torch": torch.get_rng_state(), "python": _python_rng(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}}


def restore(run_dir: Path, model, optimizer, plateau, scaler, device, *, rank: int = 0,
            world_size: int = 1, data: dict[str, str] | None = None) -> tuple[Position, Any]:
    """Load a checkpoint into the model, optimizer and schedules; returns the position and
    the carried state (this process's, in a data-parallel run). ``data``: the loaders'
    ``fingerprints``, refused where the checkpoint holds others (see ``check_data``)."""
    path = run_dir / checkpoint.STATE
    saved = checkpoint.load_training_state(path)
    if saved.get("world_size", 1) != world_size:
        raise checkpoint.CheckpointError(
            f"{path} was saved by {saved.get('world_size', 1)} process(es); resume it with the "
            f"same number, got world_size={world_size}")
    check_data(run_dir, saved, data)
    checkpoint._load_state_dict(model, saved["model"], source=str(path))
    optimizer.load_state_dict(saved["optimizer"])
    if plateau is not None and saved["plateau"] is not None:
        plateau.load_state_dict(saved["plateau"])
    if scaler.is_enabled() and saved["scaler"] is not None:
        scaler.load_state_dict(saved["scaler"])
    own = saved["ranks"][rank] if world_size > 1 else saved
    torch.set_rng_state(own["rng"]["torch"])
    version, internal, gauss = own["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    if own["rng"]["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(own["rng"]["cuda"])
    return Position(**saved["position"]), map_state(lambda t: t.to(device), own["state"])


# TrainConfig fields a resumed run may change: how long to train, how often to save, log or show
# progress, and where to run; any other change would be taken back by the checkpoint (the
# optimizer's state brings back its own learning rate) or change the run's meaning
RESUMABLE = ("epochs", "max_steps", "max_minutes", "checkpoint_every", "log_every", "progress", "device")


def check_resumed_train(run_dir: Path, given: dict[str, Any]) -> None:
    """Refuse a resume whose TrainConfig (``given``, as ``to_dict`` makes it) differs from the
    one in ``run_dir``'s config.json outside ``RESUMABLE``, naming each differing field."""
    saved = checkpoint.read_config(run_dir).get("train")
    if not isinstance(saved, dict):  # a run saved without its TrainConfig: nothing to compare
        return
    given = json.loads(json.dumps(given))  # as config.json holds it (tuples as lists)
    # a field missing from an older config.json reads as None, its likely default then
    differ = differences(saved, given, may_change=RESUMABLE, absent=None)
    if differ:
        raise ValueError(f"resume must use the TrainConfig the run in {run_dir} was started with (only "
                         f"{', '.join(RESUMABLE)} may change), got {len(differ)} different: "
                         + "; ".join(differ))


def differences(saved: Mapping[str, Any], given: Mapping[str, Any], *, may_change: Sequence[str] = (),
                absent: Any = "(absent)") -> list[str]:
    """``"key: saved X, given Y"`` for each key of two flat settings dicts whose values
    differ, sorted, but for ``may_change``; a missing key reads as ``absent``."""
    return [f"{k}: saved {saved.get(k, absent)!r}, given {given.get(k, absent)!r}"
            for k in sorted(saved.keys() | given.keys())
            if k not in may_change and saved.get(k, absent) != given.get(k, absent)]


def fingerprints(**loaders) -> dict[str, str] | None:
    """``{"train": ..., "val": ...}``: the fingerprint of each loader given that has one
    (``Loader.fingerprint``; a duck-typed loader without one is not checked), or None."""
    found = {name: loader.fingerprint() for name, loader in loaders.items()
             if loader is not None and hasattr(loader, "fingerprint")}
    return found or None


def check_data(run_dir: Path, saved: dict[str, Any], data: dict[str, str] | None) -> None:
    """Refuse a resume whose loaders' ``fingerprints`` differ from those in the checkpoint
    ``saved``, per loader where both have one: a checkpoint from before fingerprints has
    none, one from before validation fingerprints only the training data's (a string)."""
    kept = saved.get("data")
    kept = {"train": kept} if isinstance(kept, str) else kept or {}
    for name, what in (("train", "train on the data the run in {} started with, in the same batches"),
                       ("val", "validate on the data the run in {} started with")):
        if name in kept and name in (data or {}) and kept[name] != data[name]:
            raise checkpoint.CheckpointError(
                f"resume must {what.format(run_dir)}: the {name} data's fingerprint is {data[name]}, "
                f"the checkpoint's {kept[name]} (the data, its split, batch size or shuffling seed "
                f"changed); start a new run for new data")


def _plain(state: Any) -> Any:
    if isinstance(state, tuple):
        return tuple(_plain(s) for s in state)
    if isinstance(state, list):
        return [_plain(s) for s in state]
    if isinstance(state, dict):
        return {k: _plain(v) for k, v in state.items()}
    return state


def _python_rng() -> tuple:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


class StopOnSignal:
    """SIGINT/SIGTERM set a flag that the loop reads at the next step boundary, so it can
    save and return instead of dying mid-write. A second SIGINT interrupts at once."""

    def __init__(self, *, enabled: bool = True):
        self.received: str | None = None
        self.enabled = enabled
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        # signals go to the main thread; disabled, Ctrl-C interrupts as usual
        if self.enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def to_float(value: Tensor | float) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)
