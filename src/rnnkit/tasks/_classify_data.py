"""The classification task's data: reading its training, test and prediction files, and the
stratified validation split (``rnnkit.tasks.classify``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rnnkit.data.series import DataError, Labelled, fill_missing, read_ts, read_ts_values
from rnnkit.data.tables import Vocab, read_csv_series, read_text_csv, read_texts

if TYPE_CHECKING:
    from rnnkit.tasks.classify import DataSection


def file_format(data: DataSection) -> str:
    """``data.format``, with ``auto`` read from the training file's suffix (``.tsv`` and other
    files are series, the reader tells a .tsv by its suffix)."""
    if data.format != "auto":
        return data.format
    return "ts" if Path(data.path).suffix.lower() == ".ts" else "csv"


def read_labelled(kind: str, path: Path, data: DataSection, classes: tuple[str, ...] | None = None,
                  vocab: Vocab | None = None) -> tuple[Labelled, Vocab | None]:
    """The file as a ``Labelled``; series get their missing values filled."""
    if kind == "text":
        return read_text_csv(path, classes=classes, vocab=vocab, max_vocab=data.max_vocab,
                             min_freq=data.min_freq, max_tokens=data.max_tokens, header=data.header)
    dataset = read_ts(path, classes=classes) if kind == "ts" else read_csv_series(
        path, classes=classes, ragged=data.ragged, header=data.header)
    if dataset.labels_N is None:
        raise DataError(path, None, "expected labelled series (@classLabel true), got @classLabel false")
    if len(dataset.classes) < 2:
        raise DataError(path, None, f"expected at least 2 classes, got {list(dataset.classes)}")
    filled = fill_missing(dataset.inputs, dataset.lengths_N).to(torch.get_default_dtype())
    return Labelled(filled, dataset.lengths_N, dataset.labels_N, dataset.classes, path), None


def check_features(dataset: Labelled, features: int, against: str) -> None:
    """Series (N, T, D) must have the training data's number of dimensions (``features``);
    ``against`` names where that number comes from, for the error."""
    found = dataset.inputs.shape[-1]
    if found != features:
        raise DataError(dataset.source, None, f"expected {features} dimension(s) per step like {against}, "
                                              f"got {found}")


def read_unlabelled(kind: str, path: Path, data: DataSection, vocab: Vocab | None, *,
                    labelled: bool, header: bool | None) -> tuple[Labelled, list[str] | None]:
    """The file's sequences without labels (series filled as in ``read_labelled``), and its labels
    as written (any strings) or None; for prediction, where labels are not used. Without
    ``labelled``: a CSV of values only, or texts one per line (``read_texts``)."""
    if not labelled and kind == "ts":
        raise ValueError("--no-labels (labels=False) is for runs on CSV series or texts; a .ts file "
                         "says it has no labels itself, with @classLabel false; got a run trained on "
                         "format 'ts'")
    if kind == "ts":
        inputs, lengths_N, given = read_ts_values(path)
    elif not labelled:
        assert kind != "text" or vocab is not None
        found, given = (read_texts(path, vocab=vocab, max_tokens=data.max_tokens, header=header)
                        if kind == "text" else
                        read_csv_series(path, ragged=data.ragged, labelled=False, header=header)), None
        inputs, lengths_N = found.inputs, found.lengths_N
    else:
        # classes=None: this file's own labels are its classes, so none is refused
        found = read_text_csv(path, vocab=vocab, max_tokens=data.max_tokens, header=header)[0] \
            if kind == "text" else read_csv_series(path, ragged=data.ragged, header=header)
        assert found.labels_N is not None
        inputs, lengths_N = found.inputs, found.lengths_N
        given = [found.classes[i] for i in found.labels_N.tolist()]
    if kind != "text":
        inputs = fill_missing(inputs, lengths_N).to(torch.get_default_dtype())
    return Labelled(inputs, lengths_N, None, (), path), given


def stratified_split(data: Labelled, fraction: float, seed: int) -> tuple[Labelled, Labelled | None]:
    """A stratified split: round(fraction x n) of each class's n examples held out, at least one
    kept; a ValueError where that holds out nothing at all."""
    if fraction == 0.0:
        return data, None
    generator = torch.Generator().manual_seed(seed)
    held: list[Tensor] = []
    for c in range(len(data.classes)):
        rows = (data.labels_N == c).nonzero().squeeze(1)
        rows = rows[torch.randperm(len(rows), generator=generator)]
        held.append(rows[: min(round(fraction * len(rows)), len(rows) - 1)])
    val_rows = torch.cat(held).sort().values
    if len(val_rows) == 0:  # as scikit-learn's stratified split, an error, not a run without validation
        counts = {name: int((data.labels_N == c).sum()) for c, name in enumerate(data.classes)}
        raise ValueError(f"data.val_fraction={fraction} holds out round({fraction} x n) of each class's n "
                         f"examples (keeping at least one), which is none for these classes: {counts}; "
                         "raise it, or set data.val_fraction=0 for no validation")
    keep = torch.ones(len(data), dtype=torch.bool)
    keep[val_rows] = False
    return data.subset(keep.nonzero().squeeze(1)), data.subset(val_rows)
