"""ONNX export (torch.onnx.export, dynamo=True: torch's default) run back by onnxruntime at
another batch size than the one exported, with explicit state in and out and with lengths.
Under export the layers take ops that exporters translate (see tests/test_compile.py), so
the file must give the eager layer's numbers: float32, within 1e-5."""

import warnings

import numpy as np
import pytest
import torch

import rnnkit
from tests.harness import WithLengths

pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

BATCH = torch.export.Dim("B", min=1, max=64)
TIME = torch.export.Dim("T", min=2, max=512)


class WithState(torch.nn.Module):
    """(x, h[, c]) -> (out, h_n[, c_n]): the state explicit, as a streaming caller keeps it."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, h, c=None):
        out, final = self.layer(x, h if c is None else (h, c))
        return (out, final) if c is None else (out, *final)


def _state(layers, batch, n):
    return tuple(torch.randn(layers, batch, 6) for _ in range(n))


LSTM_DIMS = {"x": {0: BATCH}, "h": {1: BATCH}, "c": {1: BATCH}}
CASES = {
    # name: (module, its inputs at a batch size, their dynamic dims)
    "lstm-2-layers-state": (lambda: WithState(rnnkit.LSTM(4, 6, num_layers=2, batch_first=True)),
                            lambda b: (torch.randn(b, 5, 4), *_state(2, b, 2)), LSTM_DIMS),
    "gru-state": (lambda: WithState(rnnkit.GRU(4, 6, batch_first=True)),
                  lambda b: (torch.randn(b, 5, 4), *_state(1, b, 1)), {"x": {0: BATCH}, "h": {1: BATCH}}),
    "gru-bidirectional-lengths": (
        lambda: WithLengths(rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True)),
        lambda b: (torch.randn(b, 5, 4), torch.randint(1, 6, (b,))), ({0: BATCH}, {0: BATCH})),
    "lstm-layer-norm-state": (lambda: WithState(rnnkit.LSTM(4, 6, batch_first=True, layer_norm=True)),
                              lambda b: (torch.randn(b, 5, 4), *_state(1, b, 2)), LSTM_DIMS),
    "mingru-any-length": (lambda: WithState(rnnkit.MinGRU(4, 6, batch_first=True)),  # T = 3 + B
                          lambda b: (torch.randn(b, 3 + b, 4), *_state(1, b, 1)),
                          {"x": {0: BATCH, 1: TIME}, "h": {1: BATCH}}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_gives_the_layers_numbers(name, tmp_path):
    torch.set_default_dtype(torch.float32)
    make, inputs, dims = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    path = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own passes
        torch.onnx.export(model, inputs(3), path, dynamo=True, dynamic_shapes=dims, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    args = inputs(5)
    if "lengths" in name:
        args = (args[0], torch.tensor([1, 5, 4, 2, 5]))
    got = session.run(None, {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)})
    with torch.no_grad():
        want = model(*args)
    want = (want,) if isinstance(want, torch.Tensor) else want
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5, rtol=1e-5)
