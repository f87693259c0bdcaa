"""The ``export`` suite: exported models run by onnxruntime, rnnkit's file against torch.nn's.

Both sides are exported with ``torch.onnx.export(dynamo=True)`` with a dynamic batch and
length, and run by onnxruntime on the CPU with the benchmark's threads, forward only (what an
exported model is for), at BENCH.md's reference shape:

- ``lstm onnx`` / ``gru onnx``: anchor ``torch.nn.LSTM``/``GRU`` (ONNX's LSTM/GRU op),
  candidate the drop-in with the same weights (one ONNX ``Scan`` over the cell's ops, which
  keeps the length dynamic). Checked first: both files give the same numbers.
- ``lstm layer_norm onnx``: the candidate with layer norm, a model torch.nn cannot export,
  against the plain anchor (no equal-numbers check; the file is checked against the eager
  layer).

Needs the ``onnx`` extra (onnx, onnxscript, onnxruntime); without it each case reports so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit.bench import DTYPE, EquivalenceError, checked_comparison, run_each
from rnnkit.bench.layers import MODELS, REFERENCE
from rnnkit.bench.layers import NamedCase as Case
from rnnkit.export import quiet_exporter

SEED = 0
CASES: dict[str, tuple[str, dict]] = {  # case -> (cell, rnnkit keyword arguments)
    "lstm onnx": ("lstm", {}),
    "gru onnx": ("gru", {}),
    "lstm layer_norm onnx": ("lstm", dict(layer_norm=True)),
}


def cases(*, quick: bool = False) -> list[Case]:
    return [Case(name, REFERENCE) for name in (list(CASES)[:1] if quick else CASES)]


class _Output(nn.Module):
    """The layer's output alone (one graph output on each side)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


def _session(model: nn.Module, x: torch.Tensor, path: Path):
    """``model`` exported to ``path`` and loaded: a function of x returning a numpy array."""
    import onnxruntime as ort

    dims = ({0: torch.export.Dim("B", min=1, max=4096), 1: torch.export.Dim("T", min=2, max=1 << 16)},)
    with quiet_exporter():
        torch.onnx.export(_Output(model), (x,), path, dynamo=True, dynamic_shapes=dims, verbose=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # torch.nn's file declares the exported T as its output's length and runs at any other
    # (ONNX's LSTM op); onnxruntime warns of that at each check
    options.log_severity_level = 3
    # both sessions live side by side: a pool spinning after its call would take the cores
    # from the other side's call
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed_name = session.get_inputs()[0].name
    return lambda x_np: session.run(None, {feed_name: x_np})[0]


def _steps(case: Case, workdir: Path) -> tuple[Callable, Callable, Callable[[], None]]:
    cell, kwargs = CASES[case.name]
    theirs, ours = MODELS[cell]
    s = case.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        anchor = theirs(s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE).eval()
        candidate = ours(s.input_size, s.hidden_size, batch_first=True, dtype=DTYPE, **kwargs).eval()
    if not kwargs:
        candidate.load_state_dict(anchor.state_dict())
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(s.batch, s.time, s.input_size, generator=g, dtype=DTYPE)
    run_anchor = _session(anchor, x, workdir / "anchor.onnx")
    run_candidate = _session(candidate, x, workdir / "candidate.onnx")
    x_np = x.numpy()

    def check() -> None:
        # at 16 steps, not the timed T (the files take any length): over 128 steps float32's
        # rounding alone moves the layer-norm LSTM by up to 5e-3, in the eager layer as well
        x_short = x[:, :16]
        got = run_candidate(x_short.numpy())
        with torch.no_grad():
            wanted = [("the eager layer", candidate(x_short)[0].numpy())]
        if not kwargs:  # the same weights: the same numbers as torch.nn's file
            wanted.append(("torch.nn's file", run_anchor(x_short.numpy())))
        for what, want in wanted:
            if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                raise EquivalenceError(f"{case.name}: rnnkit's file and {what} differ by "
                                       f"{np.abs(got - want).max():.3g}")

    return lambda: run_anchor(x_np), lambda: run_candidate(x_np), check


def measure(case: Case, repeats: int) -> dict:
    result = {"suite": "export", "case": case.name, "shape": str(case.shape), "runtime": "onnxruntime"}
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        missing = f"{e.name} is not installed: pip install 'rnnkit[onnx]'"
        return result | {"status": "skipped", "error": missing}
    with tempfile.TemporaryDirectory() as workdir:
        return checked_comparison(result, _steps(case, Path(workdir)), repeats)


def run(*, quick: bool = False, repeats: int = 9,
        on_result: Callable[[dict], object] | None = None) -> list[dict]:
    return run_each(cases(quick=quick), measure, repeats, on_result)
