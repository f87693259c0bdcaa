"""A trained model as an ONNX file, checked by onnxruntime against the model itself.

``export_onnx(model, path)`` writes the file with a dynamic batch size and length (the
recurrence is one ONNX ``Scan``: see ``rnnkit.kernels.reference``), then runs it at other
shapes than the one it was traced at and compares it with the eager model; only a file that
passes is moved into place. What the file computes:

- a ``LanguageModel``: ``(ids, h[, c]) -> (logits, h_out[, c_out])``, the state explicit, as
  a streaming caller keeps it (feed ``h_out``/``c_out`` back with the next ids; zeros to
  start). ``ids``: (B, T) int64; ``h``/``c``: (layers, B, hidden) in the model's dtype
  (float32 for a trained run).
- a ``SequenceClassifier``: ``(x, lengths) -> logits``; ``x`` (B, T) int64 token ids or
  (B, T, features) float32 without NaN (``rnnkit predict`` fills missing values first, with
  ``rnnkit.data.series.fill_missing``), ``lengths`` (B,) int64; softmax gives the class
  probabilities, in the order of the run's labels.json.
- a ``Forecaster``: ``x -> quantiles``; ``x`` (B, T, features) raw values in the model's
  dtype, T >= ``config.window`` (the last ``window`` steps are read), the target first;
  ``quantiles`` (B, horizon, Q) in data units, what ``Forecaster.forecast`` gives for the
  levels the result lists: 0.1, 0.5, 0.9 (Gaussian output), the trained levels (quantile
  output) or the median (point output). Intervals include the run's calibration
  (``interval_scale_H``). A log-transformed target must be positive (the file gives NaN
  where the model refuses). An autoregressive Gaussian forecaster draws sample paths and is
  not exported.
- a ``Tagger``: ``(x, lengths) -> (tags, emissions)``; ``x`` (B, T, F) int64 rows of
  ``TagVocab.features`` (word id, shape id, the word's characters; F may differ from batch
  to batch), zero-padded; ``tags`` (B, T) int64, the Viterbi path with a CRF, else the argmax
  (0 on padding), as ``Tagger.decode`` gives them; ``emissions`` (B, T, tags) the scores.
- a ``Seq2Seq`` translator: two files in the directory ``path``, as the model's ``encode`` and
  ``decode`` split the work, so that a caller runs any search (greedy, beam) over the steps:
  ``encoder.onnx``: ``(source, source_lengths) -> (h, [c,] h_tilde, memory[, keys])``, the
  decoder's first state and the attention's memory; ``decoder.onnx``:
  ``(y, h, [c,] h_tilde, memory, [keys,] source_lengths) -> (logits, h_out, [c_out,]
  h_tilde_out)``, the decoder run over the given target ids ``y`` (B, T) from that state
  (T = 1 to step; BOS first). ``source`` (B, S) and ``y`` int64 ids of the run's source and
  target tokenizers; ``h``/``c`` (layers, B, hidden); ``h_tilde`` (B, hidden), Luong's
  attentional state, fed to the next step; ``memory`` (B, S, hidden) the encoder's outputs;
  ``keys`` the attention's source-only part (general and additive scores only);
  ``logits`` (B, T, target vocabulary). ``examples/onnx_translate.py`` runs rnnkit's beam
  search on the two files.

Needs the ``onnx`` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit._io import names_directory, write_atomic
from rnnkit.kernels.reference import loop
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.forecaster import Forecaster
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.seq2seq import DecoderState, Memory, Seq2Seq
from rnnkit.models.tagger import SHAPES, Tagger

LARGEST = {"B": 1 << 16, "T": 1 << 20, "S": 1 << 20, "F": 1 << 10}  # the dynamic dimensions' ranges
TRANSLATOR_FILES = ("encoder", "decoder")  # a translator's files in its directory: encoder.onnx, ...
TOLERANCE = 1e-4  # float32, after a few steps of the recurrence; relative beyond 1 (data units)
INTERVAL = (0.1, 0.5, 0.9)  # a Gaussian forecaster's levels, as rnnkit forecast gives them


class _ForecastQuantiles(nn.Module):
    """The forecaster's quantiles in data units, at fixed levels."""

    def __init__(self, model: Forecaster, levels: tuple[float, ...]):
        super().__init__()
        self.model, self.levels = model, levels

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forecast(x, quantiles=self.levels)


class _TaggerOutputs(nn.Module):
    """The tagger's decoded tags (argmax or Viterbi; padding 0) and its emission scores."""

    def __init__(self, model: Tagger):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        emissions = self.model(x, lengths)
        return self.model.decode(emissions, lengths), emissions


class _LanguageModelStep(nn.Module):
    """The language model with its state as plain tensors in and out."""

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model
        self.lstm = model.config.cell == "lstm"

    def forward(self, ids: Tensor, h: Tensor, c: Tensor | None = None):
        logits, state = self.model(ids, (h, c) if self.lstm else h)
        return (logits, *state) if self.lstm else (logits, state)


class _TranslatorEncoder(nn.Module):
    """The source read once: the decoder's first state, stacked per field, and the memory."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, source: Tensor, source_lengths: Tensor) -> tuple[Tensor, ...]:
        state, memory = self.model.encode(source, source_lengths)
        keys = (memory.keys_BSA,) if _has_keys(self.model) else ()
        return (*_stacked(state), memory.memory_BSH, *keys)


class _TranslatorDecoder(nn.Module):
    """``Seq2Seq.decode`` over the given target ids, from a state given as plain tensors."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, y: Tensor, h: Tensor, h_tilde: Tensor, memory: Tensor, source_lengths: Tensor,
                c: Tensor | None = None, keys: Tensor | None = None) -> tuple[Tensor, ...]:
        model = self.model
        mask_BS = torch.arange(memory.shape[1], device=memory.device) < source_lengths[:, None]
        fixed = Memory(memory, memory if keys is None else keys, mask_BS)
        fields = (h,) if c is None else (h, c)

        def step(carry: tuple[Tensor, ...], xs: tuple[Tensor]) -> tuple[tuple[Tensor, ...], Tensor]:
            *layers, ht_BH = carry  # each (L, B, H), then h̃ (B, H)
            cells = tuple(model._state_cls(*(f[k] for f in layers)) for k in range(len(model.cells)))
            new = model.decode(xs[0], DecoderState(cells, ht_BH), fixed)
            return _stacked(new), new.ht_BH.clone()  # scan's output may not alias its carry

        final, ht_TBH = loop(step, (*fields, h_tilde), (model.target_embed(y).transpose(0, 1),))
        return model.W_s(ht_TBH.transpose(0, 1)), *final


def _stacked(state: DecoderState) -> tuple[Tensor, ...]:
    """(h, [c,] h̃): each field of the layers' cell states stacked to (L, B, H), then h̃."""
    return (*(torch.stack(field) for field in zip(*state.cells, strict=True)), state.ht_BH)


def _has_keys(model: Seq2Seq) -> bool:
    """Whether the attention's keys differ from the memory (general and additive scores)."""
    return model.config.attention in ("general", "additive")


@dataclass(frozen=True)
class _Signature:
    """What the file takes and gives: input shapes with "B" and "T" where they are dynamic."""

    module: nn.Module
    inputs: dict[str, list[int | str]]
    outputs: list[str]
    sample: Callable[[int, int, int], tuple[Tensor, ...]]  # (batch, time, seed) -> inputs
    smallest: dict[str, int] = field(default_factory=dict)  # a dimension's least size, if not 1
    about: dict[str, Any] = field(default_factory=dict)  # more for the result (the forecast's levels)


def export_onnx(model: nn.Module, path: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Write ``model`` (a ``LanguageModel``, ``SequenceClassifier``, ``Forecaster`` or
    ``Tagger``) to the file ``path`` as ONNX, or a ``Seq2Seq`` translator to the directory
    ``path`` as ``encoder.onnx`` and ``decoder.onnx`` (made if missing, with its parents).

    The files do not check their inputs as the model does: a forecaster's file given fewer
    than ``min_time`` steps, or a classifier's or tagger's given lengths outside [1, T],
    returns numbers where the model raises an error. Check them before calling a session.

    Arguments:
        check: run the file in onnxruntime at two other batch sizes and lengths (one step at
            batch 1 among them) and compare it with the model; a file that differs by more
            than ``TOLERANCE`` (relative beyond 1) is not written.

    Returns:
        ``{"path", "model", "inputs": {name: shape with "B" and "T"}, "outputs": [names],
        "checked": [{"batch", "time", "max_abs_diff"}] or None}``, and for a forecaster
        ``"quantiles"`` (the levels of the output's last axis) and ``"min_time"``. For a
        translator ``{"path", "model", "encoder": {"path", "inputs", "outputs", "checked"},
        "decoder": {...}, "bos_id", "eos_id"}``, sizes named "B", "S" (source) and "T".

    Raises:
        TypeError: another kind of model. ImportError: the onnx extra is missing.
        ValueError: a model neither float32 nor float64, or int8; the exporter failed; the file does
            not give the model's numbers (nothing is written); a translator's ``path`` is a
            file, or another model's a directory.
    """
    translator = isinstance(model, Seq2Seq)
    problem = out_problem(path, translator)
    if problem:
        raise ValueError(f"path {problem}")
    path = Path(path)
    sigs = _translator_signatures(model) if translator else {"": _signature(model)}
    dtype = next(model.parameters()).dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"model must be float32 or float64 to export (onnxruntime's CPU kernels), got "
                         f"{dtype}: export a copy, copy.deepcopy(model).float()")
    if any(getattr(m, "int8", False) for m in model.modules()):
        raise ValueError("model must not be int8 (rnnkit.quantize_dynamic) to export: its int8 step is a "
                         "compiled call that torch.export cannot trace; export the float model (onnxruntime "
                         "quantizes files itself: onnxruntime.quantization.quantize_dynamic)")
    _require("onnxscript", *(("onnxruntime",) if check else ()))
    modes = {m: m.training for m in model.modules()}  # each module's, restored after
    model.eval()
    try:
        done = {name: _export(type(model).__name__, sig, check) for name, sig in sigs.items()}
    finally:
        for module, training in modes.items():
            module.train(training)
    if not translator:
        data, checked = done[""]
        write_atomic(path, data)
        return {"path": str(path), "model": type(model).__name__, "inputs": sigs[""].inputs,
                "outputs": sigs[""].outputs, **sigs[""].about, "checked": checked}
    path.mkdir(parents=True, exist_ok=True)
    _write_together({path / f"{name}.onnx": data for name, (data, _) in done.items()})
    result: dict[str, Any] = {"path": str(path), "model": type(model).__name__}
    for name, (_, checked) in done.items():
        result[name] = {"path": str(path / f"{name}.onnx"), "inputs": sigs[name].inputs,
                        "outputs": sigs[name].outputs, "checked": checked}
    return {**result, "bos_id": model.config.bos_id, "eos_id": model.config.eos_id}


def out_problem(path: str | os.PathLike, translator: bool) -> str | None:
    """What is wrong with ``path`` as the place to export to, or None: a translator's is a
    directory (not named like a file), another model's a file (not named like a directory,
    as ``out/`` is)."""
    name, path = str(path), Path(path)
    if translator and (path.is_file() or path.suffix == ".onnx"):
        return (f"must be a directory for a translator's encoder.onnx and decoder.onnx, got "
                f"{'the file' if path.is_file() else 'a file name'} {name!r}")
    if not translator and (path.is_dir() or names_directory(name)):
        return f"must be a file, got {'the directory' if path.is_dir() else 'a directory name'} {name!r}"
    return None


def _write_together(files: dict[Path, bytes]) -> None:
    """Each file written whole beside its place, then all moved into place, so that a failed
    write leaves none of them changed (the renames themselves do not fail on one disk)."""
    staged: dict[Path, Path] = {}
    try:
        for final, data in files.items():
            staged[final] = final.with_name(f".{final.name}.staged")
            write_atomic(staged[final], data)
        for final, tmp in staged.items():
            os.replace(tmp, final)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def _export(model_name: str, sig: _Signature, check: bool) -> tuple[bytes, list[dict[str, Any]] | None]:
    """The ONNX file's bytes, and what its check found."""
    dynamic = {d: torch.export.Dim(d, min=sig.smallest.get(d, 1), max=most) for d, most in LARGEST.items()}
    dims = {name: {i: dynamic[d] for i, d in enumerate(shape) if isinstance(d, str)}
            for name, shape in sig.inputs.items()}
    try:
        # no_grad: scan's autograd would otherwise trace sizes into a translator's decoder steps
        traced = dict(zip(sig.inputs, sig.sample(3, 5, 0), strict=True))
        with quiet_exporter(), _distinct_sizes(), torch.no_grad():
            program = torch.onnx.export(sig.module, (), kwargs=traced,
                                        dynamo=True, dynamic_shapes=dims, input_names=list(sig.inputs),
                                        output_names=sig.outputs, verbose=False)
    except Exception as err:  # torch.export's and the converter's errors run to pages
        raise ValueError(f"the {model_name} could not be exported to ONNX: {_cause(err)} "
                         f"({type(err).__name__})") from err
    data = program.model_proto.SerializeToString()
    return data, _check(sig, data) if check else None


def _cause(err: Exception) -> str:
    """The line of an exporter's error that says what failed: torch.onnx's first lines are a
    coloured banner ("This is step 1/3 ..."), its summary comes after "## Exception summary"."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    if "## Exception summary" in lines:
        lines = lines[lines.index("## Exception summary") + 1:]
    return next((line for line in lines if line and not line.startswith("#")), type(err).__name__)


def _signature(model: nn.Module) -> _Signature:
    weight = next(model.parameters())
    if isinstance(model, LanguageModel):
        cfg = model.config
        if cfg.cell not in ("rnn", "lstm", "gru"):
            raise TypeError(f"model: a {cfg.cell} language model cannot be exported with its state yet; "
                            f"rnn, lstm and gru ones can")
        state = ["h", "c"] if cfg.cell == "lstm" else ["h"]
        state_shape: list[int | str] = [cfg.num_layers, "B", cfg.hidden_size]

        def sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
            g = torch.Generator().manual_seed(seed)
            ids = torch.randint(0, cfg.vocab_size, (batch, time), generator=g)
            return ids, *(torch.randn(cfg.num_layers, batch, cfg.hidden_size, generator=g, dtype=weight.dtype)
                          for _ in state)

        return _Signature(_LanguageModelStep(model), {"ids": ["B", "T"], **dict.fromkeys(state, state_shape)},
                          ["logits", *(f"{n}_out" for n in state)], sample)
    if isinstance(model, SequenceClassifier):
        cfg = model.config

        def sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
            g = torch.Generator().manual_seed(seed)
            x = (torch.randint(0, cfg.vocab_size, (batch, time), generator=g) if cfg.vocab_size
                 else torch.randn(batch, time, cfg.input_size, generator=g, dtype=weight.dtype))
            lengths = torch.randint(1, time + 1, (batch,), generator=g)
            lengths[0] = time  # the longest row is the input's length, as in a padded batch
            return x, lengths

        x_shape: list[int | str] = ["B", "T"] if cfg.vocab_size else ["B", "T", cfg.input_size]
        return _Signature(model, {"x": x_shape, "lengths": ["B"]}, ["logits"], sample)
    if isinstance(model, Forecaster):
        return _forecaster_signature(model)
    if isinstance(model, Tagger):
        return _tagger_signature(model)
    raise TypeError(f"model must be a LanguageModel, SequenceClassifier, Forecaster, Tagger or Seq2Seq "
                    f"(rnnkit train lm, classify, forecast, tag or seq2seq), got {type(model).__name__}")


def _forecaster_signature(model: Forecaster) -> _Signature:
    cfg = model.config
    if cfg.decoder == "autoregressive" and cfg.output == "gaussian":
        raise TypeError("model: an autoregressive Gaussian forecaster draws random sample paths, which the "
                        "file cannot; direct forecasters and autoregressive point ones can be exported")
    levels = {"gaussian": INTERVAL, "quantile": cfg.quantiles, "point": (0.5,)}[cfg.output]

    def sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
        # raw values about the training part's scale (time counts from the window)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(batch, cfg.window + time - 1, cfg.input_size, generator=g, dtype=model.mean_F.dtype)
        x = model.mean_F + model.std_F * z
        if cfg.log_transform:
            x[..., 0] = x[..., 0].exp()
        return (x,)

    return _Signature(_ForecastQuantiles(model, levels), {"x": ["B", "T", cfg.input_size]}, ["quantiles"],
                      sample, smallest={"T": cfg.window},
                      about={"quantiles": list(levels), "min_time": cfg.window})


def _tagger_signature(model: Tagger) -> _Signature:
    cfg = model.config
    chars = cfg.char_encoder != "none"

    def sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
        # TagVocab.features' rows: word id, shape id, chars (0 padding), padding tokens all 0
        g = torch.Generator().manual_seed(seed)
        width = 2 + batch if chars else 0  # F changes between the traced and checked inputs
        words = torch.randint(1, cfg.vocab_size, (batch, time, 1), generator=g)
        shapes = torch.randint(1, len(SHAPES), (batch, time, 1), generator=g)
        letters = torch.randint(1, max(cfg.num_chars, 2), (batch, time, width), generator=g)
        letters *= torch.arange(width) < torch.randint(1, max(width, 1) + 1, (batch, time, 1), generator=g)
        lengths = torch.randint(1, time + 1, (batch,), generator=g)
        lengths[0] = time
        real = (torch.arange(time) < lengths[:, None])[..., None]
        return torch.cat([words, shapes, letters], dim=-1) * real, lengths

    return _Signature(_TaggerOutputs(model), {"x": ["B", "T", "F"], "lengths": ["B"]}, ["tags", "emissions"],
                      sample, smallest={"F": 3 if chars else 2})


def _translator_signatures(model: Seq2Seq) -> dict[str, _Signature]:
    cfg = model.config
    L, H = cfg.num_layers, cfg.hidden_size
    dtype = next(model.parameters()).dtype
    fields = ["h", "c"] if cfg.cell == "lstm" else ["h"]
    keys = ["keys"] if _has_keys(model) else []
    A = cfg.attention_size if cfg.attention == "additive" else H

    def source(batch: int, time: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        lengths = torch.randint(1, time + 1, (batch,), generator=g)
        lengths[0] = time  # the longest row is the input's length, as in a padded batch
        return torch.randint(0, cfg.source_vocab_size, (batch, time), generator=g), lengths

    def encoder_sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
        return source(batch, time, torch.Generator().manual_seed(seed))

    def decoder_sample(batch: int, time: int, seed: int) -> tuple[Tensor, ...]:
        # a state and memory of the encoder's ranges: h, c and h̃ in (-1, 1); S != T
        g = torch.Generator().manual_seed(seed)
        _, lengths = source(batch, time + 2, g)
        y = torch.randint(0, cfg.target_vocab_size, (batch, time), generator=g)
        state = [torch.rand(L, batch, H, generator=g, dtype=dtype) * 2 - 1 for _ in fields]
        h_tilde = torch.rand(batch, H, generator=g, dtype=dtype) * 2 - 1
        memory = torch.rand(batch, time + 2, H, generator=g, dtype=dtype) * 2 - 1
        extra = [torch.randn(batch, time + 2, A, generator=g, dtype=dtype) for _ in keys]
        return y, *state, h_tilde, memory, *extra, lengths

    layers: list[int | str] = [L, "B", H]
    return {"encoder": _Signature(_TranslatorEncoder(model), {"source": ["B", "S"], "source_lengths": ["B"]},
                                  [*fields, "h_tilde", "memory", *keys], encoder_sample),
            "decoder": _Signature(_TranslatorDecoder(model),
                                  {"y": ["B", "T"], **dict.fromkeys(fields, layers), "h_tilde": ["B", H],
                                   "memory": ["B", "S", H], **dict.fromkeys(keys, ["B", "S", A]),
                                   "source_lengths": ["B"]},
                                  ["logits", *(f"{n}_out" for n in (*fields, "h_tilde"))], decoder_sample)}


def _check(sig: _Signature, data: bytes) -> list[dict[str, Any]]:
    import onnxruntime as ort

    checked, session = [], None
    for batch, steps in ((1, 1), (4, 9)):  # a streaming step, and a batch longer than traced
        args = sig.sample(batch, steps, 1 + batch)
        feed = dict(zip(sig.inputs, args, strict=True))
        try:  # e.g. an op onnxruntime has no float64 kernel for (Softplus)
            session = session or ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            got = session.run(None, {n: a.numpy() for n, a in feed.items()})
        except Exception as err:  # onnxruntime's own exception types
            dtype = next(sig.module.parameters()).dtype
            raise ValueError(f"onnxruntime could not run the exported file ({dtype} model): {err}; "
                             f"nothing was written") from err
        with torch.no_grad():
            want = sig.module(**feed)
        want = (want,) if isinstance(want, Tensor) else want
        pairs = [(g, w.numpy()) for g, w in zip(got, want, strict=True)]
        diff = max(float(np.abs(g - w).max()) for g, w in pairs)
        over = max(float((np.abs(g - w) / np.maximum(np.abs(w), 1.0)).max()) for g, w in pairs)
        time = args[0].shape[1]  # every signature's first input is (B, T or S, ...)
        if not over <= TOLERANCE:
            raise ValueError(f"the ONNX file differs from the model by {diff:.3g} (more than {TOLERANCE:g}, "
                             f"relative beyond 1) at batch {batch}, length {time}; nothing was written")
        checked.append({"batch": batch, "time": time, "max_abs_diff": diff})
    return checked


def _require(*packages: str) -> None:
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ImportError(f"exporting to ONNX needs {', '.join(missing)}: pip install 'rnnkit[onnx]'")


@contextlib.contextmanager
def _distinct_sizes() -> Iterator[None]:
    """Tracing without "duck shaping": by default torch.export gives sizes that happen to be
    equal in the traced inputs one symbol, so a model size equal to the traced length (the
    CRF's tag count inside its Viterbi scan) fixed the length."""
    try:
        from torch.fx.experimental import _config
    except ImportError:  # a torch without the switch: duck shaping stays
        yield
        return
    with _config.patch(use_duck_shape=False):
        yield


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter's warnings, and its and onnxscript's log lines on what they skip."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
