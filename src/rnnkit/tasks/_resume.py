"""The run-directory checks every task makes before it trains: a new run must not replace
an old one unasked, and a resumed run must be the run it continues.

A resumed task rebuilds its data, tokenizers and model from the config and the data files,
as the original run did, and ``fit(..., resume=True)`` then goes on from the checkpoint. So
the config must be the one saved in ``config.json``, except for the fields in
``MAY_CHANGE``: they say how long to train, how often to save or show progress, and where
to run, which ``fit`` reads afresh on resume (to extend a run or shorten one, or to go on
on a GPU; the checkpoint is loaded to the CPU and moved), and the paths of the training and
validation files, whose contents the data's fingerprints check instead. With a decaying learning-rate
schedule (cosine, linear) a new length also reshapes the rest of the schedule; on another
device the run goes on with that device's rounding and random numbers, not bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnnkit import config as _config
from rnnkit.train import TrainConfig, checkpoint
from rnnkit.train.data import Loader
from rnnkit.train.loop import usable_device
from rnnkit.train.run import RESUMABLE, check_data, differences, fingerprints

ENSEMBLE = "ensemble.json"  # a classifier ensemble's member list (rnnkit.tasks.classify)

# the training and validation files may be named by another path (./text.txt, an absolute
# one, from another directory): their loaders' fingerprints say whether the data is the same;
# a translator's decoding settings act after training only
MAY_CHANGE = (*(f"train.{name}" for name in RESUMABLE), "data.path", "data.val_path",
              *(f"decode.{name}" for name in ("beam_width", "alpha", "max_len", "length_ratio")))


def check_out(out: Path, *, resume: bool, overwrite: bool, device: str | None = None,
              ensemble_ok: bool = False) -> None:
    """Refuse, before anything is read or written, a resume that contradicts ``overwrite``
    or has no run to continue, a new run over an old one, and a ``device`` (``train.device``)
    this machine lacks, which ``fit`` would refuse only once the task has written files.

    Raises:
        ValueError: ``resume`` and ``overwrite`` both True; no such device.
        FileNotFoundError: ``resume`` and ``out`` holds no saved run.
        FileExistsError: neither, and ``out`` holds a saved run.
    """
    if resume and overwrite:
        raise ValueError(f"resume continues the run in out and overwrite replaces it: give one, got "
                         f"resume=True and overwrite=True for out={str(out)!r}")
    if device is not None:
        usable_device(device)
    if not ensemble_ok and (out / ENSEMBLE).is_file():
        raise FileExistsError(f"out must be a new run directory, got {str(out)!r}, which holds a classifier "
                              f"ensemble (ensemble.json, member*/) that this run would not replace; choose "
                              f"another directory (rnnkit train classify --overwrite replaces an ensemble)")
    saved = checkpoint.saved_run(out)
    if resume and not saved:
        raise FileNotFoundError(f"resume needs a saved run in out, got {str(out)!r}, which holds none "
                                f"(no {checkpoint.WEIGHTS} or {checkpoint.STATE}); start it without resume")
    if saved and not resume and not overwrite:
        raise FileExistsError(f"out must be a new run directory, got {str(out)!r}, which already holds a "
                              f"run; pass resume=True (--resume) to continue it, overwrite=True "
                              f"(--overwrite) to replace it, or choose another")


def check_resumed_config(out: Path, config: Mapping[str, Any], train: TrainConfig,
                         data: Loader | None = None, val: Loader | None = None) -> None:
    """Refuse to resume the run in ``out`` with settings other than those it was started
    with (``config`` and ``train``, as the task hands them to ``fit``), but for
    ``MAY_CHANGE``, or on other training or validation data (``data`` and ``val``, the
    loaders it hands ``fit``, whose fingerprints ``fit`` also checks, but only after the task
    has written its files); a new length is recorded in ``config.json``.

    Raises:
        ValueError: naming every differing key with its saved and given value; other data.
    """
    saved = checkpoint.read_config(out)
    given = json.loads(json.dumps({**config, "train": _config.to_dict(train)}))  # as fit saves it
    differ = differences(_flat(saved), _flat(given), may_change=MAY_CHANGE)
    if differ:
        raise ValueError(f"resume must use the settings the run in {str(out)!r} was started with "
                         f"(only {', '.join(MAY_CHANGE)} may change), got {len(differ)} different: "
                         + "; ".join(differ))
    if data is not None:  # the settings first: a changed one names itself, and changes the batches
        saved_state = checkpoint.load_training_state(out / checkpoint.STATE)
        check_data(out, saved_state, fingerprints(train=data, val=val))
    if saved != given:
        checkpoint.save_config(out, given)


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as dotted keys: {"train": {"lr": 1}} -> {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
