"""torch.compile(fullgraph=True) on rnnkit layers and task models: no graph breaks, and the
compiled forward and backward give the eager numbers. ``aot_eager`` traces exactly what
inductor would (Dynamo + AOT autograd) without generating C++, which keeps this fast; one
inductor run is in the slow set."""

import warnings

import pytest
import torch

import rnnkit
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.language_model import LanguageModel, LMConfig
from tests.harness import WithLengths, assert_all_close, grads, random_loss

B, T, I = 3, 6, 4
LAYERS = {
    "lstm-2-bi": lambda: rnnkit.LSTM(I, 5, num_layers=2, bidirectional=True, batch_first=True),
    "lstm-proj": lambda: rnnkit.LSTM(I, 5, proj_size=3, batch_first=True),
    "lstm-dropout": lambda: rnnkit.LSTM(I, 5, num_layers=2, dropout=0.5, batch_first=True),  # eval
    "gru": lambda: rnnkit.GRU(I, 5, batch_first=True),
    "rnn-relu": lambda: rnnkit.RNN(I, 5, nonlinearity="relu", batch_first=True),
    "lstm-layernorm": lambda: rnnkit.LSTM(I, 5, layer_norm=True, batch_first=True),
    "lstm-peephole": lambda: rnnkit.LSTM(I, 5, peephole=True, batch_first=True),
    "gru-zoneout": lambda: rnnkit.GRU(I, 5, zoneout=0.2, batch_first=True),
    "mingru": lambda: rnnkit.MinGRU(I, 5, num_layers=2, batch_first=True),
    "minlstm": lambda: rnnkit.MinLSTM(I, 5, bidirectional=True, batch_first=True),
}


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()  # every case compiles its own graph; none hits the recompile limit
    yield
    torch._dynamo.reset()


def compare(model, *args, train=False, **kwargs):
    model.train(train)
    params = list(model.parameters())
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    results = []
    for run in (model, compiled):
        torch.manual_seed(3)  # the same dropout masks on both sides
        for p in params:
            p.grad = None
        out = run(*args, **kwargs)
        random_loss(out).backward()
        results.append((out, grads(params)))
    (want, want_grads), (got, got_grads) = results
    assert_all_close(got, want)
    assert_all_close(got_grads, want_grads)


@pytest.mark.parametrize("ragged", [False, True], ids=["dense", "lengths"])
@pytest.mark.parametrize("name", LAYERS)
def test_layers_compile_whole_and_match_eager(name, ragged):
    lengths = torch.tensor([T, 2, 4]) if ragged else None
    compare(LAYERS[name](), torch.randn(B, T, I), lengths=lengths)


def test_dropout_between_layers_compiles_and_trains():
    """Compiled, the stack runs layer by layer (its dropout masks are drawn differently from
    torch's fused multi-layer op, so the numbers are compared in eval mode only)."""
    model = LAYERS["lstm-dropout"]().train()
    x, lengths = torch.randn(B, T, I), torch.tensor([T, 2, 4])
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out, _ = compiled(x, lengths=lengths)
    random_loss(out).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    model.eval()
    assert not torch.allclose(out, compiled(x, lengths=lengths)[0])  # the masks were applied
    assert_all_close(compiled(x, lengths=lengths), model(x, lengths=lengths))


def test_task_models_compile_whole_and_match_eager():
    classifier = SequenceClassifier(ClassifierConfig(num_classes=3, input_size=I, hidden_size=5,
                                                     bidirectional=True, pooling="attention"))
    compare(classifier, torch.randn(B, T, I), torch.tensor([T, 1, 3]))
    lm = LanguageModel(LMConfig(vocab_size=11, embed_size=6, hidden_size=6, num_layers=2,
                                tie_weights=True, dropout=0.2, weight_drop=0.3))
    compare(lm, torch.randint(0, 11, (B, T)))
    forecaster = Forecaster(ForecasterConfig(horizon=2, context=T, hidden_size=5))
    compare(forecaster, torch.rand(B, T, 1) + 1)


@pytest.mark.slow
def test_inductor_compiles_a_classifier_and_matches_eager():
    model = SequenceClassifier(ClassifierConfig(num_classes=3, input_size=I, hidden_size=5, cell="gru"))
    x, lengths = torch.randn(B, T, I), torch.tensor([T, 1, 3])
    compiled = torch.compile(model.eval(), fullgraph=True)
    torch.testing.assert_close(compiled(x, lengths), model(x, lengths))


BATCH, TIME = torch.export.Dim("B", min=1, max=64), torch.export.Dim("T", min=2, max=512)


def rnnkit_ops(program) -> set[str]:
    """The graph's calls into rnnkit's custom ops, which no exporter translates."""
    targets = (str(n.target) for n in program.graph.nodes if n.op == "call_function")
    return {t for t in targets if "rnnkit" in t}


@pytest.mark.parametrize("name", LAYERS)
def test_torch_export_keeps_batch_and_time_dynamic(name):
    """torch.onnx.export (dynamo=True, torch's default) converts a torch.export graph. The
    custom ops (native_rnn, min_scan, rnn_loop) have no ONNX translation, so export takes the
    log-space scan or the reference loop as one ``scan``: the program then runs at any batch
    size and length. torch.nn.LSTM cannot do this (torch.export specialises T at its fused
    op, which unrolls the sequence)."""
    torch.set_default_dtype(torch.float32)
    model = LAYERS[name]().eval()
    program = torch.export.export(model, (torch.randn(3, 5, I),), dynamic_shapes=({0: BATCH, 1: TIME},))
    assert not rnnkit_ops(program)
    other = torch.randn(2, 9, I)
    torch.testing.assert_close(program.module()(other), model(other))


def test_torch_nn_lstm_cannot_keep_time_dynamic():
    """Why the test above matters: if torch.nn.LSTM's export ever keeps T, say so in the README."""
    with pytest.raises(Exception, match="specialized"):
        torch.export.export(torch.nn.LSTM(I, 5, batch_first=True).eval(), (torch.randn(3, 5, I),),
                            dynamic_shapes=({0: BATCH, 1: TIME},))


def test_exported_in_training_mode_the_loop_is_unrolled():
    """In training mode the masks are drawn per sequence in the reference loop's order, so
    the loop is not a scan and the program holds T copies of the cell (T fixed). A plain
    layer keeps torch's fused op, as torch.nn.LSTM does (T fixed too)."""
    model = rnnkit.LSTM(I, 5, recurrent_dropout=0.3, batch_first=True).train()
    program = torch.export.export(model, (torch.randn(3, 5, I),), dynamic_shapes=({0: BATCH},))
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert not any("scan" in t for t in targets) and not rnnkit_ops(program) and len(targets) > 50
    plain = torch.export.export(rnnkit.LSTM(I, 5, num_layers=2, batch_first=True).train(),
                                (torch.randn(3, 5, I),), dynamic_shapes=({0: BATCH},))
    targets = [str(n.target) for n in plain.graph.nodes if n.op == "call_function"]
    assert "aten.lstm.input" in targets and len(targets) < 20


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 6, batch_first=True),
    lambda: rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True),
    lambda: rnnkit.LSTM(4, 6, batch_first=True, layer_norm=True),
    lambda: rnnkit.MinGRU(4, 6, batch_first=True),
], ids=["lstm", "gru-bi", "lstm-layer-norm", "mingru"])
def test_traced_lengths_stay_an_input(make):
    """torch.jit.trace (and so torch.onnx.export(dynamo=False)) records ops on tensors; the
    fast executors cut the rows by length in Python, which a trace bakes in: the traced
    model then ignored other lengths (0.36 off). Traced, lengths run the reference loop."""
    model = WithLengths(make()).eval()
    x = torch.randn(3, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the lengths checks' bools
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit, still what ONNX's legacy path runs
        traced = torch.jit.trace(model, (x, torch.tensor([5, 2, 3])))
    for lengths in (torch.tensor([1, 5, 4]), torch.tensor([5, 5, 5])):
        assert_all_close(traced(x, lengths), model(x, lengths))


@pytest.mark.parametrize("make", [
    lambda: rnnkit.LSTM(4, 6, batch_first=True),
    lambda: rnnkit.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True),
    lambda: rnnkit.LSTM(4, 6, batch_first=True, layer_norm=True, zoneout=0.2),
    lambda: rnnkit.MinGRU(4, 6, batch_first=True),
], ids=["lstm", "gru-bi", "lstm-layer-norm-zoneout", "mingru"])
def test_torch_export_keeps_lengths_an_input(make):
    """With lengths the native layers' fast call is the rnnkit::native_rnn custom op, which
    no exporter translates (ONNX export failed); exported, they run the reference loop as a
    scan, and finished rows keep their state at any length."""
    torch.set_default_dtype(torch.float32)
    model = WithLengths(make()).eval()
    program = torch.export.export(model, (torch.randn(3, 5, 4), torch.tensor([5, 2, 3])),
                                  dynamic_shapes=({0: BATCH, 1: TIME}, {0: BATCH}))
    assert not rnnkit_ops(program)
    x, lengths = torch.randn(4, 8, 4), torch.tensor([1, 8, 4, 2])
    torch.testing.assert_close(program.module()(x, lengths), model(x, lengths))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_an_input_lowered_by_autocast_compiles(name):
    """Autocast may hand the layer a bf16 input, which eager mode takes; inside the compiled
    native op autocast does not apply, and torch's op refused bf16 against float32 weights."""
    torch.set_default_dtype(torch.float32)
    proj, layer = torch.nn.Linear(5, 6), getattr(rnnkit, name)(6, 7, batch_first=True)

    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return layer(proj(x))[0]

    x = torch.randn(3, 4, 5)
    got = torch.compile(run, fullgraph=True, backend="aot_eager")(x)
    torch.testing.assert_close(got.float(), run(x).float(), atol=0.02, rtol=0.02)


def test_the_loops_constant_mark_is_the_one_dynamo_reads():
    """kernels/loop.py marks _cpu_built as torch.compiler.assume_constant_result would, without
    importing torch._dynamo when rnnkit is imported (1.2 s off every CLI command)."""
    from rnnkit.kernels import loop

    marked = torch.compiler.assume_constant_result(lambda: None)
    assert vars(marked) == vars(loop._constant_for_dynamo(lambda: None)) == {"_dynamo_marked_constant": True}


def test_importing_the_cli_loads_neither_dynamo_nor_matplotlib():
    import subprocess
    import sys

    code = ("import sys, rnnkit.cli; "
            "print(sorted(m for m in ('torch._dynamo', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
