"""ONNX export (torch.onnx.export, dynamo=True: torch's default) run back by onnxruntime at
another batch size and another length than the ones exported, with explicit state in and out
and with lengths. Under export the layers take ops that exporters translate (the recurrence
as ONNX's Scan; see tests/test_compile.py), so the file must give the eager layer's numbers:
float32, within 1e-5."""

import warnings

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
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


def _x(b, t):
    return torch.randn(b, t, 4)


def _lengths(b, t):  # lengths t and 1 among them
    return torch.cat([torch.tensor([t, 1]), torch.randint(1, t + 1, (b - 2,))])


X = {0: BATCH, 1: TIME}
LSTM_DIMS = {"x": X, "h": {1: BATCH}, "c": {1: BATCH}}
GRU_DIMS = {"x": X, "h": {1: BATCH}}
RAGGED = (X, {0: BATCH})
CASES = {
    # name: (module, its inputs at a batch size and length, their dynamic dims)
    "lstm-2-layers-state": (lambda: WithState(rnnkit.LSTM(4, 6, num_layers=2, batch_first=True)),
                            lambda b, t: (_x(b, t), *_state(2, b, 2)), LSTM_DIMS),
    "gru-state": (lambda: WithState(rnnkit.GRU(4, 6, batch_first=True)),
                  lambda b, t: (_x(b, t), *_state(1, b, 1)), GRU_DIMS),
    "gru-bidirectional-lengths": (
        lambda: WithLengths(rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True)),
        lambda b, t: (_x(b, t), _lengths(b, t)), RAGGED),
    "lstm-layer-norm-state": (lambda: WithState(rnnkit.LSTM(4, 6, batch_first=True, layer_norm=True)),
                              lambda b, t: (_x(b, t), *_state(1, b, 2)), LSTM_DIMS),
    "lstm-peephole-zoneout-lengths": (
        lambda: WithLengths(rnnkit.LSTM(4, 6, batch_first=True, peephole=True, zoneout=0.2)),
        lambda b, t: (_x(b, t), _lengths(b, t)), RAGGED),
    "gru-reset-before-state": (lambda: WithState(rnnkit.GRU(4, 6, batch_first=True, reset_after=False)),
                               lambda b, t: (_x(b, t), *_state(1, b, 1)), GRU_DIMS),
    "rnn-relu-lengths": (lambda: WithLengths(rnnkit.RNN(4, 6, nonlinearity="relu", batch_first=True)),
                         lambda b, t: (_x(b, t), _lengths(b, t)), RAGGED),
    "mingru-state": (lambda: WithState(rnnkit.MinGRU(4, 6, batch_first=True)),
                     lambda b, t: (_x(b, t), *_state(1, b, 1)), GRU_DIMS),
    "classifier-lengths": (
        lambda: SequenceClassifier(ClassifierConfig(num_classes=3, input_size=4, hidden_size=6,
                                                    bidirectional=True, pooling="attention")),
        lambda b, t: (_x(b, t), _lengths(b, t)), RAGGED),
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
        torch.onnx.export(model, inputs(3, 5), path, dynamo=True, dynamic_shapes=dims, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    args = inputs(4, 9)  # another batch size and length
    got = session.run(None, {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)})
    with torch.no_grad():
        want = model(*args)
    want = (want,) if isinstance(want, torch.Tensor) else want
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", [rnnkit.MinGRU, rnnkit.MinLSTM], ids=["mingru", "minlstm"])
def test_min_cells_stay_right_over_long_sequences(make, tmp_path):
    """Exported, minGRU/minLSTM run h = a h + b as one Scan. Their log-space form exported
    as onnxscript writes logcumsumexp (one maximum over the whole sequence) was wrong from
    about T = 300 on, from the first step."""
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(0)
    model = WithLengths(make(4, 6, batch_first=True)).eval()
    path = tmp_path / "min.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (_x(3, 5), _lengths(3, 5)), path, dynamo=True, dynamic_shapes=RAGGED)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, lengths = _x(2, 2000), torch.tensor([2000, 1500])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {names[0]: x.numpy(), names[1]: lengths.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got[0], model(x, lengths).numpy(), atol=1e-4, rtol=1e-4)
