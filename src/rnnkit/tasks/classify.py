"""Sequence classification on your data: UCR/UEA ``.ts`` files, CSV series or CSV texts.

    cfg = load(ClassifyConfig, None, ["data.path=GunPoint_TRAIN.ts", "train.epochs=100"])
    results = train_classifier(cfg, "runs/gunpoint")   # fit, validate, test
    rows = predict("runs/gunpoint", "GunPoint_TEST.ts")  # id, label, given, class probabilities

A run directory holds what ``rnnkit.train.fit`` writes (config.json with the "data" section,
model.safetensors, metrics.csv, training_state.pt), plus ``labels.json`` (the class names,
so that predictions map back), ``tokenizer.json`` for text, and ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from rnnkit import config as _config
from rnnkit._io import read_run_file, write_atomic
from rnnkit.data.series import Labelled, find_test_file
from rnnkit.data.tables import Vocab
from rnnkit.models import architecture_config, load_model
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks._classify_data import (
    check_features,
    file_format,
    read_labelled,
    read_unlabelled,
    stratified_split,
)
from rnnkit.tasks._resume import ENSEMBLE, check_out, check_resumed_config
from rnnkit.train import FitResult, TensorLoader, TrainConfig, checkpoint, fit, read_config, seed_everything

Format = Literal["auto", "ts", "csv", "text"]
LABELS, TOKENIZER, RESULTS = "labels.json", "tokenizer.json", "results.json"


@dataclass(frozen=True, kw_only=True)
class DataSection:
    path: str = ""  # the training file: X_TRAIN.ts, label,v1,... CSV, or label,text CSV
    test_path: str | None = None  # None: X_TEST.ts beside X_TRAIN.ts, if there is one
    format: Format = "auto"  # auto: .ts -> ts, other files -> csv (series; .tsv: tab-separated, UCR 2018)
    ragged: bool = False  # csv: rows of varying length
    header: bool | None = None  # csv, text: whether the first row is a header; None: guessed
    val_fraction: float = 0.1  # stratified split of the training file; 0: no validation
    batch_size: int = 16
    max_vocab: int = 20000  # text
    min_freq: int = 1  # text
    max_tokens: int = 400  # text: longer texts are cut

    def __post_init__(self):
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction!r}")
        for name in ("batch_size", "max_vocab", "min_freq", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"data.{name} must be >= 1, got {getattr(self, name)!r}")


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """``ClassifierConfig`` less what the data decides (classes, features, vocabulary)."""

    cell: Literal["lstm", "gru", "rnn"] = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    pooling: Literal["last", "mean", "attention"] = "last"
    attention_size: int = 64
    embed_size: int = 64  # text
    dropout: float = 0.0
    input_noise: float = 0.0  # training-only Gaussian noise on the standardised input
    conv_channels: tuple[int, ...] = ()  # LSTM-FCN conv branch: filters per block, e.g. 128,256,128
    conv_kernels: tuple[int, ...] = (8, 5, 3)  # its kernel size per block

    def __post_init__(self):
        ClassifierConfig(num_classes=2, **dataclasses.asdict(self))  # its checks, before any data is read


@dataclass(frozen=True, kw_only=True)
class ClassifyConfig:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=30, lr=3e-3, clip_norm=1.0))
    # members trained independently (seeds train.seed + 1000 i, the same data split) whose
    # class probabilities are averaged, as InceptionTime averages 5 networks (Ismail Fawaz
    # et al. 2020, sec. 3.2); each member is a run directory out/member<i>
    ensemble: int = 1

    def __post_init__(self):
        if isinstance(self.ensemble, bool) or not isinstance(self.ensemble, int) or self.ensemble < 1:
            raise ValueError(f"ensemble must be an int >= 1, got {self.ensemble!r}")


def train_classifier(cfg: ClassifyConfig, out: str | Path, *, overwrite: bool = False,
                     resume: bool = False) -> dict[str, Any]:
    """Train on ``cfg.data.path``, validate on a held-out split, test on the test file.
    ``resume`` continues the interrupted run in ``out``, with the settings it was started
    with but for its length (``rnnkit.tasks._resume``): each ensemble member with a saved
    run goes on from it (a finished one just reloads), the others start. ``overwrite``
    replaces the run in ``out``: once the data is read, the old run's ``results.json``,
    ``ensemble.json`` and ``member<i>`` directories go, so none outlives it.

    Returns:
        the results written to ``out/results.json``: accuracies and losses (train, val,
        test; None where there is no such split), sizes, classes, steps and seconds; with an
        ensemble, the averaged members' scores and each member's in ``members``. A signal
        stops the ensemble after the member it interrupted (``stopped``: "SIGINT" or
        "SIGTERM"); the results are those of the members trained so far.

    Raises:
        DataError: a data file that cannot be read (names file, line, value).
        FileExistsError: ``out`` holds a checkpoint or an ensemble and neither ``overwrite``
            nor ``resume``.
        FileNotFoundError: ``resume`` and ``out`` holds no saved run.
        ValueError: ``resume`` with ``overwrite``, or with settings that differ from the run's.
    """
    if not cfg.data.path:
        raise ValueError("data.path must name the training file, got ''")
    out = Path(out)
    dirs = [out] if cfg.ensemble == 1 else [out / f"member{i}" for i in range(cfg.ensemble)]
    # an ensemble's top level holds no checkpoint for check_out to find, only these files
    marks = (out / ENSEMBLE, out / RESULTS) if cfg.ensemble > 1 else (out / ENSEMBLE,)
    held = [str(p) for p in marks if p.exists()]
    if held and not (overwrite or resume):
        raise FileExistsError(f"out already holds an ensemble's run ({', '.join(held)}); pass "
                              f"resume=True (--resume) to continue it or overwrite=True (--overwrite) "
                              f"to replace it")
    if resume:
        _check_ensemble_size(out, cfg.ensemble)
    # the first member starts every ensemble
    check_out(dirs[0], resume=resume, overwrite=overwrite, device=cfg.train.device, ensemble_ok=True)
    kind = file_format(cfg.data)
    full, vocab = read_labelled(kind, Path(cfg.data.path), cfg.data)
    train_set, val_set = stratified_split(full, cfg.data.val_fraction, cfg.train.seed)
    test_path = Path(cfg.data.test_path) if cfg.data.test_path else find_test_file(cfg.data.path)
    test_set = (None if test_path is None
                else read_labelled(kind, test_path, cfg.data, full.classes, vocab)[0])
    if test_set is not None and vocab is None:  # before training: a mismatch would fail only after it
        check_features(test_set, full.inputs.shape[-1], f"the training file {cfg.data.path}")
    if overwrite:  # only now that the data has been read: a bad file leaves the old run whole
        _remove_old_run(out)
    models, fits = [], []
    for i, run_dir in enumerate(dirs):
        model, result = _fit_member(cfg, i, run_dir, (full, vocab, train_set, val_set),
                                    resume=resume, overwrite=overwrite)
        _write_labels(run_dir, full.classes, kind, vocab)
        models.append(model)
        fits.append(result)
        if result.stopped in ("SIGINT", "SIGTERM"):
            break  # the user asked to stop: the members after it start on --resume
    dirs = dirs[: len(models)]
    splits = {"train": train_set, "val": val_set, "test": test_set}
    # every member's class probabilities on every split, computed once: (M, N, C)
    probs = {name: None if data is None else torch.stack([_probabilities(m, data) for m in models])
             for name, data in splits.items()}
    results = {
        **_scores({name: None if p is None else p.mean(dim=0) for name, p in probs.items()}, splits),
        "n_train": len(train_set), "n_val": 0 if val_set is None else len(val_set),
        "n_test": 0 if test_set is None else len(test_set),
        "classes": list(full.classes), "train_path": str(cfg.data.path),
        "test_path": None if test_path is None else str(test_path),
        "steps": sum(f.steps for f in fits), "seconds": round(sum(f.seconds for f in fits), 3),
        "stopped": fits[-1].stopped,
    }
    if cfg.ensemble > 1:
        results["members"] = [_scores({k: None if p is None else p[i] for k, p in probs.items()}, splits)
                              for i in range(len(models))]
        listed = {"members": [d.name for d in dirs], "size": cfg.ensemble}  # size: for --resume's check
        write_atomic(out / ENSEMBLE, (json.dumps(listed) + "\n").encode())
    write_atomic(out / RESULTS, (json.dumps(results, indent=2) + "\n").encode())
    return results


def _check_ensemble_size(out: Path, given: int) -> None:
    """A resumed run must keep its ensemble size: ``ensemble.json`` holds it (a run made
    before it did, or one killed before its first list, is taken at its word), and a single
    run keeps its files in ``out`` itself."""
    if checkpoint.saved_run(out):
        saved: int | str | None = 1
    elif checkpoint.saved_run(out / "member0"):
        saved = _read_json(out / ENSEMBLE, "members").get("size") if (out / ENSEMBLE).is_file() else None
        if saved is None and given == 1:
            saved = "an ensemble (member0, ...)"
    else:
        return  # nothing saved: check_out says so
    if saved is not None and saved != given:
        raise ValueError(f"resume must use the settings the run in {str(out)!r} was started with, got "
                         f"ensemble: saved {saved!r}, given {given!r}")


def _fit_member(cfg: ClassifyConfig, i: int, run_dir: Path, data: tuple, *, resume: bool,
                overwrite: bool) -> tuple[SequenceClassifier, FitResult]:
    """Build member ``i`` (its own seed, the same data split) and fit it in ``run_dir``; on
    resume, from its saved run where it has one."""
    full, vocab, train_set, val_set = data
    train_cfg = dataclasses.replace(cfg.train, seed=cfg.train.seed + 1000 * i)
    seed_everything(train_cfg.seed)  # the initial weights too, as fit seeds dropout
    model = SequenceClassifier(_model_config(cfg.model, full, vocab))
    if vocab is None:
        model.fit_standardization(train_set.inputs, train_set.lengths_N)  # training split only
    config = {**architecture_config(model), "task": "classify", "data": _config.to_dict(cfg.data)}
    going_on = resume and bool(checkpoint.saved_run(run_dir))
    train = _loader(train_set, cfg.data.batch_size, train_cfg.seed)
    val = None if val_set is None else _loader(val_set, cfg.data.batch_size, shuffle=False)
    if going_on:
        check_resumed_config(run_dir, config, train_cfg, data=train, val=val)
    result = fit(model, train, train_cfg, val=val,
                 metrics={"accuracy": accuracy}, run_dir=run_dir, overwrite=overwrite, resume=going_on,
                 config=config)
    return model, result


def predict(run_dir: str | Path, data_path: str | Path, *, labels: bool = True,
            header: bool | None = None) -> list[dict[str, Any]]:
    """Class probabilities for every sequence in ``data_path`` (same format as training).
    The file's labels are not used: any string will do, a class the model never saw too.

    Arguments:
        labels: False: a file without labels: for a run on CSV series, a CSV of values only;
            for a text run, one text per line (``read_texts``). A ``.ts`` file says so itself,
            with ``@classLabel false``.
        header: whether a CSV (series or texts) or a file of texts starts with a header row;
            None: the run's ``data.header`` (which None guesses, see ``rnnkit.data.tables``).

    Returns:
        one row per sequence: ``{"id": n, "label": predicted class name, "given": the file's
        label or None, "probabilities": {class name: p}}``; ids count from 0 in file order.

    Raises:
        DataError: a file that cannot be read, or whose series have another number of
            dimensions than the training data's.
        ValueError: ``labels=False`` for a run trained on a .ts file.
    """
    run_dir = Path(run_dir)
    dirs = [run_dir / name for name in _read_json(run_dir / ENSEMBLE, "members")["members"]] \
        if (run_dir / ENSEMBLE).is_file() else [run_dir]
    models = [load_model(d) for d in dirs]
    saved = read_config(dirs[0])
    trained = _read_json(dirs[0] / LABELS, "classes", "format")
    data = _config.from_dict(DataSection, saved.get("data") or {})
    vocab = (read_run_file(dirs[0] / TOKENIZER, Vocab.from_json, what="the text classifier's vocabulary")
             if trained["format"] == "text" else None)
    dataset, given = read_unlabelled(trained["format"], Path(data_path), data, vocab, labelled=labels,
                                     header=data.header if header is None else header)
    if vocab is None:
        check_features(dataset, models[0].config.input_size, f"the training data of the run in {run_dir}")
    probs_NC = torch.stack([_probabilities(m, dataset) for m in models]).mean(dim=0)
    classes = trained["classes"]
    return [{"id": n, "label": classes[int(p_C.argmax())], "given": None if given is None else given[n],
             "probabilities": {c: float(p) for c, p in zip(classes, p_C, strict=True)}}
            for n, p_C in enumerate(probs_NC)]


def accuracy(logits_BC: Tensor, labels_B: Tensor) -> Tensor:
    """The fraction of rows whose largest logit is the label."""
    return (logits_BC.argmax(dim=-1) == labels_B).to(torch.float64).mean()


# -- pieces ------------------------------------------------------------------------------------


def _remove_old_run(out: Path) -> None:
    """Remove what an old run in ``out`` leaves that the new one may not rewrite: its
    results, the member list that ``predict`` would follow to the old members, and those
    members (``member<digits>`` directories)."""
    for name in (ENSEMBLE, RESULTS):  # the list first: a half-removed member is never listed
        (out / name).unlink(missing_ok=True)
    for path in out.glob("member*"):
        if re.fullmatch(r"member\d+", path.name) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)


def _model_config(section: ModelSection, data: Labelled, vocab: Vocab | None) -> ClassifierConfig:
    features = 1 if vocab is not None else data.inputs.shape[-1]
    return ClassifierConfig(num_classes=len(data.classes), input_size=features,
                            vocab_size=None if vocab is None else len(vocab), **dataclasses.asdict(section))


def _loader(data: Labelled, batch_size: int, seed: int = 0, *, shuffle: bool = True) -> TensorLoader:
    assert data.labels_N is not None
    return TensorLoader(data.inputs, data.labels_N, batch_size=min(batch_size, len(data)),
                        shuffle=shuffle, seed=seed, lengths=data.lengths_N)


def _write_labels(run_dir: Path, classes: tuple[str, ...], kind: str, vocab: Vocab | None) -> None:
    write_atomic(run_dir / LABELS, (json.dumps({"classes": list(classes), "format": kind}) + "\n").encode())
    if vocab is not None:
        write_atomic(run_dir / TOKENIZER, vocab.to_json().encode("utf-8"))


def _scores(probs: dict[str, Tensor | None], splits: dict[str, Labelled | None]) -> dict[str, float | None]:
    """Accuracy and loss (the mean negative log probability of the true class) of the class
    probabilities (N, C) on each split: ``train_accuracy``, ``val_loss``, ...; None where
    there is no such split."""
    scores: dict[str, float | None] = {}
    for name in ("train", "val", "test"):
        p_NC, data = probs[name], splits[name]
        if data is None:
            scores[f"{name}_accuracy"] = scores[f"{name}_loss"] = None
            continue
        p_N = p_NC.gather(1, data.labels_N[:, None]).squeeze(1)
        scores[f"{name}_accuracy"] = float((p_NC.argmax(-1) == data.labels_N).double().mean())
        scores[f"{name}_loss"] = float(-p_N.clamp_min(1e-30).log().mean())
    return scores


@torch.no_grad()
def _probabilities(model: SequenceClassifier, data: Labelled, batch_size: int = 256) -> Tensor:
    model.eval()
    weight = next(model.parameters())  # after fit, the model is on train.device
    inputs = data.inputs if data.inputs.dtype == torch.long else data.inputs.to(weight.dtype)
    parts = []
    for start in range(0, len(data), batch_size):
        lengths_B = data.lengths_N[start:start + batch_size]
        x = inputs[start:start + batch_size, : int(lengths_B.max())]
        logits_BC = model(x.to(weight.device), lengths_B.to(weight.device))
        parts.append(torch.softmax(logits_BC, dim=-1).cpu())
    return torch.cat(parts)


def _read_json(path: Path, *keys: str) -> dict[str, Any]:
    """A JSON object that train_classifier wrote, with ``keys``; a ValueError naming the file."""
    def parse(text: str) -> dict[str, Any]:
        found = json.loads(text)
        missing = [k for k in keys if not isinstance(found, dict) or k not in found]
        if missing:
            raise KeyError(", ".join(missing))
        return found
    return read_run_file(path, parse, what=f"the JSON object with {', '.join(keys)} that train_classifier "
                                           f"writes")
