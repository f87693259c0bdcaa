"""rnnkit.diagnostics: the probe against hand-unrolled loops, the tasks, the experiments, the CLI."""

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import rnnkit
from rnnkit.cli import cli
from rnnkit.diagnostics import (
    ClippingConfig,
    GradientConfig,
    GradProbe,
    adding_problem,
    clipping_experiment,
    copy_problem,
    gradient_profile,
    hidden_grad_norms,
    plot_clipping,
    plot_gradient_profile,
)
from rnnkit.diagnostics.experiment import build_net, train
from rnnkit.diagnostics.tasks import TASKS

B, T, I, H = 3, 7, 4, 5
TORCH_CELLS = {rnnkit.RNN: nn.RNNCell, rnnkit.LSTM: nn.LSTMCell, rnnkit.GRU: nn.GRUCell}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _loss(output, w_BTO):
    """A loss that reads every step of the output, nonlinearly."""
    out_BTO = output[0]
    return (torch.tanh(out_BTO) * w_BTO).sum() + out_BTO[:, -1].pow(2).sum()


def _torch_cell(dropin, suffix: str):
    """torch.nn's own cell, holding the drop-in's weights for one layer and direction."""
    cell = TORCH_CELLS[type(dropin)](dropin.input_size if suffix.startswith("_l0") else
                                     dropin.hidden_size * (1 + dropin.bidirectional),
                                     dropin.hidden_size)
    cell.load_state_dict({name: getattr(dropin, name + suffix) for name in
                          ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
    return cell


def _run_cell(cell, x_TI, hs):
    """Step ``cell`` over one unbatched sequence; keep every h_t (and its .grad) in ``hs``."""
    state = None
    for x_I in x_TI:
        state = cell(x_I[None], state)
        h_1H = state[0] if isinstance(state, tuple) else state
        h_1H.retain_grad()
        hs.append(h_1H)
    return torch.cat(hs)


def _hand_unrolled_norms(dropin, x_BTI, lengths_B, w_BTO):
    """‖dL/dh_t‖ per layer and direction from a loop over rows and steps with torch.nn cells
    and retain_grad: independent of rnnkit's executors, wrappers and masking."""
    D = 2 if dropin.bidirectional else 1
    suffixes = [f"_l{k}" + ("_reverse" if d else "") for k in range(dropin.num_layers)
                for d in range(D)]
    cells = [_torch_cell(dropin, s) for s in suffixes]
    hs = [[[] for _ in suffixes] for _ in range(len(x_BTI))]  # row -> run -> [h_t]
    outs = []
    for b, (x_TI, n) in enumerate(zip(x_BTI, lengths_B.tolist(), strict=True)):
        layer_in = x_TI[:n]
        for k in range(dropin.num_layers):
            runs = [_run_cell(cells[k * D], layer_in, hs[b][k * D])]
            if D == 2:
                runs.append(_run_cell(cells[k * D + 1], layer_in.flip(0), hs[b][k * D + 1]).flip(0))
            layer_in = torch.cat(runs, dim=-1)
        outs.append(nn.functional.pad(layer_in, (0, 0, 0, x_BTI.shape[1] - n)))
    _loss((torch.stack(outs),), w_BTO).backward()
    norms_LT = torch.zeros(len(suffixes), x_BTI.shape[1])
    for b, n in enumerate(lengths_B.tolist()):
        for r in range(len(suffixes)):
            g_TH = torch.cat([h.grad for h in hs[b][r]])
            if r % D:  # computed back to front
                g_TH = g_TH.flip(0)
            norms_LT[r, :n] += g_TH.pow(2).sum(-1)
    return norms_LT.sqrt()


CASES = {
    "rnn": (rnnkit.RNN, dict(), False),
    "lstm-2-layers": (rnnkit.LSTM, dict(num_layers=2), False),
    "gru-2-layers": (rnnkit.GRU, dict(num_layers=2), False),
    "gru-bidirectional-ragged": (rnnkit.GRU, dict(bidirectional=True), True),
    "lstm-bidirectional-ragged": (rnnkit.LSTM, dict(bidirectional=True), True),
}


@pytest.mark.parametrize("case", CASES)
def test_probe_matches_hand_unrolled_loop(case):
    cls, kwargs, ragged = CASES[case]
    g = torch.Generator().manual_seed(1)
    model = cls(I, H, batch_first=True, **kwargs)
    x_BTI = torch.randn(B, T, I, generator=g)
    lengths_B = torch.tensor([T, 1, 4]) if ragged else torch.full((B,), T)
    w_BTO = torch.randn(B, T, H * (1 + model.bidirectional), generator=g)
    got = hidden_grad_norms(model, x_BTI, w_BTO, _loss, lengths=lengths_B if ragged else None)
    want = _hand_unrolled_norms(model, x_BTI, lengths_B, w_BTO)
    torch.testing.assert_close(got, want)
    assert (got > 0).all()  # row 0 runs the full length


def test_probe_leaves_the_model_as_it_was():
    g = torch.Generator().manual_seed(2)
    model = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
    x_BTI, w_BTO = torch.randn(B, T, I, generator=g), torch.randn(B, T, 2 * H, generator=g)
    modules = [(name, id(m)) for name, m in model.named_modules()]
    layers = [(id(r.cell), r.executor) for r in model.modules() if isinstance(r, rnnkit.Recurrent)]
    fused, before = model._fused_kind, model(x_BTI)[0]
    hidden_grad_norms(model, x_BTI, w_BTO, _loss)
    with pytest.raises(ZeroDivisionError):  # restored on the way out of an error too
        hidden_grad_norms(model, x_BTI, w_BTO, lambda out, w: 1 / 0)
    assert [(name, id(m)) for name, m in model.named_modules()] == modules
    assert not any(isinstance(m, GradProbe) for m in model.modules())
    assert [(id(r.cell), r.executor) for r in model.modules()
            if isinstance(r, rnnkit.Recurrent)] == layers
    assert model._fused_kind == fused is not None
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model(x_BTI)[0], before)


def test_probe_works_on_any_module_built_from_rnnkit_layers():
    g = torch.Generator().manual_seed(3)
    model = nn.Sequential(rnnkit.Recurrent(rnnkit.Zoneout(rnnkit.GRUCell(I, H), h=0.3)))
    model.eval()
    x_BTI, w_BTO = torch.randn(B, T, I, generator=g), torch.randn(B, T, H, generator=g)
    norms_LT = hidden_grad_norms(model, x_BTI, w_BTO, _loss)
    assert norms_LT.shape == (1, T) and (norms_LT > 0).all()


class _Stepper(nn.Module):
    """Runs its layer's cell one step at a time, as a decoder does."""

    def __init__(self, layer, spare=None):
        super().__init__()
        self.layer, self.spare = layer, spare

    def forward(self, x_BTI):
        state = self.layer.cell.init_state(x_BTI.shape[0])
        outs = []
        for x_BI in x_BTI.unbind(1):
            state = self.layer.cell(x_BI, state)
            outs.append(state.h)
        return torch.stack(outs, dim=1), state


def test_probe_counts_lone_steps_as_passes_of_one_step():
    g = torch.Generator().manual_seed(5)
    layer = rnnkit.Recurrent(rnnkit.LSTMCell(I, H))
    x_BTI, w_BTO = torch.randn(B, T, I, generator=g), torch.randn(B, T, H, generator=g)
    torch.testing.assert_close(hidden_grad_norms(_Stepper(layer), x_BTI, w_BTO, _loss),
                               hidden_grad_norms(layer, x_BTI, w_BTO, _loss))
    unused = rnnkit.Recurrent(rnnkit.GRUCell(I, H))
    with pytest.raises(ValueError, match=r"same number of steps.*got \[7, 0\]"):
        hidden_grad_norms(_Stepper(layer, unused), x_BTI, w_BTO, _loss)


def test_grad_probe_alone_adds_a_zero_it_records():
    cell = rnnkit.ElmanCell(I, H)
    probe = GradProbe(cell)
    x_BI = torch.randn(B, I, generator=torch.Generator().manual_seed(4))
    state = cell.init_state(B)
    assert torch.equal(probe(x_BI, state).h, cell(x_BI, state).h)
    (taps, lengths), = probe.passes
    assert len(taps) == 1 and taps[0].requires_grad and lengths is None


@pytest.mark.parametrize("model", [nn.LSTM(I, H), nn.Linear(I, H)], ids=["torch-lstm", "linear"])
def test_probe_needs_an_rnnkit_recurrent_layer(model):
    with pytest.raises(TypeError, match=f"rnnkit recurrent layer.*got {type(model).__name__}"):
        hidden_grad_norms(model, torch.randn(T, B, I), None, lambda out, y: out[0].sum())


def test_probe_needs_a_scalar_loss():
    model = rnnkit.GRU(I, H, batch_first=True)
    with pytest.raises(ValueError, match=r"scalar tensor, got \(3, 7, 5\)"):
        hidden_grad_norms(model, torch.randn(B, T, I), None, lambda out, y: out[0])


def test_adding_problem_marks_two_values_one_in_each_half_and_sums_them():
    x_BTI, y_B = adding_problem(64, 10, generator=torch.Generator().manual_seed(0))
    values_BT, marks_BT = x_BTI.unbind(-1)
    assert x_BTI.shape == (64, 10, 2) and y_B.shape == (64,)
    assert ((values_BT >= 0) & (values_BT < 1)).all() and values_BT.std() > 0.2
    assert set(marks_BT.unique().tolist()) == {0.0, 1.0}
    assert (marks_BT[:, :5].sum(1) == 1).all() and (marks_BT[:, 5:].sum(1) == 1).all()
    first, second = marks_BT.argmax(1), 5 + marks_BT[:, 5:].argmax(1)
    rows = torch.arange(64)
    torch.testing.assert_close(y_B, values_BT[rows, first] + values_BT[rows, second])
    assert len(set(first.tolist())) > 1 and len(set(second.tolist())) > 1


def test_copy_problem_layout():
    tokens_BT, targets_BT = copy_problem(16, 25, generator=torch.Generator().manual_seed(0))
    assert tokens_BT.shape == targets_BT.shape == (16, 25) and tokens_BT.dtype == torch.long
    data_BC = tokens_BT[:, :10]
    assert ((data_BC >= 1) & (data_BC <= 8)).all() and len(data_BC.unique()) == 8
    assert (tokens_BT[:, 14] == 9).all()  # delimiter 10 + 1 steps before the end
    assert (tokens_BT[:, 10:14] == 0).all() and (tokens_BT[:, 15:] == 0).all()
    assert (targets_BT[:, :15] == 0).all() and torch.equal(targets_BT[:, 15:], data_BC)


@pytest.mark.parametrize("make", [adding_problem, copy_problem])
def test_tasks_are_seeded_and_leave_the_global_rng_alone(make):
    rng = torch.random.get_rng_state()
    first = make(4, 30, generator=torch.Generator().manual_seed(7))
    again = make(4, 30, generator=torch.Generator().manual_seed(7))
    other = make(4, 30, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    assert torch.equal(torch.random.get_rng_state(), rng)


@pytest.mark.parametrize("make, seq_len, match", [
    (adding_problem, 1, "seq_len must be an int >= 2, got 1"),
    (copy_problem, 20, "seq_len must be an int >= 21, got 20"),
])
def test_tasks_reject_short_sequences(make, seq_len, match):
    with pytest.raises(ValueError, match=match):
        make(2, seq_len, generator=torch.Generator())


def test_gradient_profile_tiny_run_and_plot(tmp_path):
    threads = torch.get_num_threads()
    config = GradientConfig(task="copy", seq_len=22, hidden_size=6, batch_size=4, batches=2,
                            train_steps=3)
    profile = gradient_profile(config)
    assert torch.get_num_threads() == threads
    assert set(profile.init) == set(profile.trained) == set(profile.losses) == {"rnn", "lstm", "gru"}
    for norms in (*profile.init.values(), *profile.trained.values()):
        assert len(norms) == 22 and all(0 < v < float("inf") for v in norms)
    assert all(len(losses) == 3 for losses in profile.losses.values())
    assert profile.ratio("gru") == profile.init["gru"][0] / profile.init["gru"][-1]
    assert "copy problem, T=22" in profile.summary()
    json.dumps(profile.to_dict())
    plot_gradient_profile(profile, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temporary file left


def test_clipping_experiment_tiny_run_and_plot(tmp_path):
    config = ClippingConfig(seq_len=8, hidden_size=6, batch_size=4, steps=4, probe_batches=1,
                            spectral_radius=2.0)
    result = clipping_experiment(config)
    assert [r.label for r in result.runs] == ["ρ=2, no clipping", "ρ=2, clip at 1",
                                              "ρ=0.9, no clipping"]
    assert result.runs[0].init_grad_norms == result.runs[1].init_grad_norms
    for run in result.runs:
        assert len(run.losses) == len(run.grad_norms) == 4 and run.diverged_at is None
    plot_clipping(result, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_train_stops_at_the_first_non_finite_step():
    task = TASKS["adding"]
    net = build_net("rnn", task, 6, seed=0)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e6)
    losses, norms, diverged = train(net, task, optimizer, steps=50, batch_size=4, seq_len=6,
                                    generator=torch.Generator().manual_seed(0), clip=None)
    assert diverged is not None and len(losses) == len(norms) == diverged
    assert all(v < float("inf") for v in losses + norms)


@pytest.mark.parametrize("kwargs, match", [
    (dict(seq_len=1), "seq_len must be an int >= 2 for the adding task, got 1"),
    (dict(task="sort"), "task must be one of"),
    (dict(cells=("rnn", "tcn")), "cells must be a non-empty tuple"),
    (dict(lr=0.0), "lr must be a finite number > 0, got 0.0"),
    (dict(train_steps=-1), "train_steps must be an int >= 0, got -1"),
])
def test_gradient_config_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradientConfig(**kwargs)


@pytest.mark.parametrize("config", [GradientConfig(task="copy", seq_len=40, cells=("gru", "rnn")),
                                    ClippingConfig(spectral_radius=2.5, clip=0.5)],
                         ids=lambda c: type(c).__name__)
def test_configs_round_trip_through_json(config):
    saved = json.loads(json.dumps(dataclasses.asdict(config)))
    assert type(config)(**saved) == config


def test_cli_gradients_writes_png_and_json(tmp_path):
    args = ["diagnose", "gradients", "--seq-len", "12", "--hidden-size", "6", "--train-steps",
            "2", "--out", str(tmp_path / "g.png"), "--json", str(tmp_path / "g.json")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "adding problem, T=12" in result.output and "wrote" in result.output
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["config"]["seq_len"] == 12 and len(saved["init"]["lstm"]) == 12


def test_cli_clipping_runs(tmp_path):
    args = ["diagnose", "clipping", "--seq-len", "6", "--steps", "2", "--out",
            str(tmp_path / "c.png")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "ρ=1.5, clip at 1" in result.output and (tmp_path / "c.png").exists()


@pytest.mark.parametrize("args, message", [
    (["gradients", "--task", "copy", "--seq-len", "10"], "seq_len must be an int >= 21"),
    (["clipping", "--lr", "-1"], "lr must be a finite number > 0, got -1.0"),
    (["gradients", "--out", "missing/g.png"], "its directory must exist, got 'missing'"),  # before any work
    (["clipping", "--out", "c.jpg"], "must end in .png, .pdf or .svg"),  # it wrote PNG bytes under any name
])
def test_cli_rejects_bad_input(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["diagnose", *args])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []
