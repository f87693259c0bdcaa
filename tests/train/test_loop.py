"""The fit loop: truncated BPTT, clipping, non-finite errors, schedules, early stopping,
teacher forcing, mixed precision, seeding, and any module with the forward contract."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnnkit
from rnnkit.train import Batch, StreamLoader, TensorLoader, TrainConfig, detach_state, fit, read_metrics


class Tagger(nn.Module):
    """(B, T, I) -> (B, T, C) with rnnkit.LSTM; carries state."""

    def __init__(self, inputs=3, hidden=6, classes=4):
        super().__init__()
        self.rnn = rnnkit.LSTM(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x_BTI, state=None, *, lengths=None):
        out_BTH, state = self.rnn(x_BTI, state, lengths=lengths)
        return self.head(out_BTH), state


class CharModel(nn.Module):
    def __init__(self, vocab=11, hidden=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = rnnkit.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids_BT, state=None):
        out_BTH, state = self.rnn(self.embed(ids_BT), state)
        return self.head(out_BTH), state


def _sgd(**kw):
    return TrainConfig(optimizer="sgd", lr=0.5, progress=False, **kw)


def _data(n=8, T=12):
    return torch.randn(n, T, 3), torch.randint(0, 4, (n, T))


def test_tbptt_with_k_equal_T_is_full_bptt():
    x, y = _data()
    full, truncated = Tagger(), None
    truncated = copy.deepcopy(full)
    fit(full, TensorLoader(x, y, batch_size=8, shuffle=False), _sgd(max_steps=1))
    fit(truncated, TensorLoader(x, y, batch_size=8, shuffle=False), _sgd(max_steps=1, bptt=12))
    for a, b in zip(full.parameters(), truncated.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_tbptt_steps_once_per_chunk_with_the_state_carried_and_detached():
    x, y = _data(T=12)
    model = Tagger()
    by_hand = copy.deepcopy(model)
    result = fit(model, TensorLoader(x, y, batch_size=8, shuffle=False), _sgd(bptt=5))
    assert result.steps == 3  # chunks of 5, 5, 2
    optimizer, state = torch.optim.SGD(by_hand.parameters(), lr=0.5), None
    for start in (0, 5, 10):  # min-char-rnn: carry hprev, cut the graph, step per chunk
        state = detach_state(state)
        logits, state = by_hand(x[:, start:start + 5], state)
        loss = F.cross_entropy(logits.flatten(0, 1), y[:, start:start + 5].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for a, b in zip(model.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_streams_carry_state_between_batches():
    ids = torch.randint(0, 11, (200,))
    model = CharModel()
    stateless = copy.deepcopy(model)
    fit(model, StreamLoader(ids, batch_size=3, bptt=6), _sgd(max_steps=4))
    by_hand, state = copy.deepcopy(stateless), None
    optimizer = torch.optim.SGD(by_hand.parameters(), lr=0.5)
    for batch in list(StreamLoader(ids, batch_size=3, bptt=6).batches(0))[:4]:
        logits, state = by_hand(batch.inputs, detach_state(state))
        loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for a, b in zip(model.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_grad_norm_is_logged_before_clipping(tmp_path):
    x, y = _data()
    model = Tagger()
    by_hand = copy.deepcopy(model)
    fit(model, TensorLoader(x, y, batch_size=8, shuffle=False),
        _sgd(max_steps=1, clip_norm=1e-3, log_every=1), run_dir=tmp_path)
    logits, _ = by_hand(x)
    F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in by_hand.parameters()]))
    logged = read_metrics(tmp_path)[0]
    assert logged["grad_norm"] == pytest.approx(float(norm), rel=1e-9)
    assert norm > 1e-2  # so the clip to 1e-3 did act: each weight moved by lr * 1e-3 / norm
    with torch.no_grad():
        for p in by_hand.parameters():
            p -= 0.5 * p.grad * (1e-3 / (float(norm) + 1e-6))
    for a, b in zip(model.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_clip_value_bounds_every_gradient():
    x, y = _data()
    model = Tagger()
    before = copy.deepcopy(model)
    fit(model, TensorLoader(x, y, batch_size=8), _sgd(max_steps=1, clip_value=1e-4))
    for a, b in zip(model.parameters(), before.parameters(), strict=True):
        assert (a - b).abs().max() <= 0.5 * 1e-4 + 1e-12


def test_non_finite_loss_stops_with_the_step_number(tmp_path):
    x, y = torch.randn(8, 5, 3), torch.randn(8, 5, 4)
    x[5, 2, 0] = float("nan")  # in the second batch of 4
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 2 \(epoch 1, batch 2\)"):
        fit(Tagger(), TensorLoader(x, y, batch_size=4, shuffle=False), _sgd(checkpoint_every=1),
            run_dir=tmp_path)
    # the checkpoint of step 1 is intact and can be resumed
    assert torch.load(tmp_path / "training_state.pt", weights_only=True)["step"] == 1


def test_exploding_gradients_are_reported():
    x, y = _data()
    model = Tagger()
    with torch.no_grad():
        model.head.weight.fill_(1e308)
    with pytest.raises(FloatingPointError, match="at step 1"):
        fit(model, TensorLoader(x, y, batch_size=8), _sgd(max_steps=1))


def test_early_stopping_and_plateau():
    x, y = _data(n=16)
    val = TensorLoader(x[:8], torch.randint(0, 4, (8, 12)), batch_size=8)
    cfg = TrainConfig(optimizer="sgd", lr=5.0, epochs=50, patience=2, schedule="plateau",
                      plateau_patience=0, progress=False)
    result = fit(Tagger(), TensorLoader(x, y, batch_size=8), cfg, val=val)
    assert result.stopped == "early_stopping" and result.steps < 100
    assert len(result.epochs) == result.steps // 2
    assert result.best == min(e["val_loss"] for e in result.epochs)


def test_metrics_and_epoch_means():
    x, y = _data(n=16)
    accuracy = lambda out, t: (out.argmax(-1) == t).double().mean()
    result = fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(epochs=2),
                 val=TensorLoader(x, y, batch_size=16), metrics={"acc": accuracy})
    assert [sorted(e) for e in result.epochs] == [["acc", "epoch", "loss", "val_acc", "val_loss"]] * 2
    assert 0 <= result.epochs[1]["val_acc"] <= 1


def test_teacher_forcing_ratio_reaches_the_model():
    seen = []

    class Decoder(Tagger):
        def forward(self, x, state=None, *, teacher_forcing):
            seen.append(teacher_forcing)
            return super().forward(x, state)

    x, y = _data()
    fit(Decoder(), TensorLoader(x, y, batch_size=2), _sgd(teacher_forcing="linear",
                                                        teacher_forcing_end=0.5, teacher_forcing_steps=2))
    assert seen == [1.0, 0.75, 0.5, 0.5]


def test_same_seed_same_run_and_torch_modules_fit():
    x, y = torch.randn(12, 7, 3), torch.randn(12, 7, 5)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = nn.LSTM(3, 5, batch_first=True, dropout=0.3, num_layers=2)  # torch's own module
        fit(model, TensorLoader(x, y, batch_size=4), TrainConfig(epochs=2, seed=5, progress=False))
        runs.append(model.state_dict())
    for name in runs[0]:
        assert torch.equal(runs[0][name], runs[1][name])


def test_bf16_autocast_on_cpu_trains():
    ids = torch.arange(600) % 11
    torch.set_default_dtype(torch.float32)
    model = CharModel()
    result = fit(model, StreamLoader(ids, batch_size=4, bptt=10), TrainConfig(epochs=3, lr=1e-2, amp="bf16",
                                                                              progress=False))
    assert result.epochs[-1]["loss"] < 0.5 * result.epochs[0]["loss"]


def test_lr_schedule_reaches_the_optimizer(tmp_path):
    x, y = _data(n=16)
    cfg = TrainConfig(epochs=4, lr=0.1, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1,
                      log_every=1, progress=False)
    fit(Tagger(), TensorLoader(x, y, batch_size=4), cfg, run_dir=tmp_path)
    lrs = [row["lr"] for row in read_metrics(tmp_path) if row["split"] == "train"]
    assert lrs[:3] == pytest.approx([0.05, 0.1, 0.1])  # the decay starts where the warm-up ends
    # step s (0-based) of 16 decays with progress (s - 2) / 14, as Hugging Face's
    # get_cosine_schedule_with_warmup: the last step's rate is above the floor
    assert lrs[8] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 6 / 14)))
    assert lrs[-1] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 13 / 14)))
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False))


def test_fit_refuses_to_overwrite_a_checkpoint(tmp_path):
    x, y = _data()
    fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(), run_dir=tmp_path)
    saved = (tmp_path / "training_state.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"already holds a run \(config.json, model.safetensors, "
                                              r"training_state.pt\); pass resume=True"):
        fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(), run_dir=tmp_path)
    assert (tmp_path / "training_state.pt").read_bytes() == saved
    (tmp_path / "training_state.pt").unlink()  # a shipped model keeps only its weights
    with pytest.raises(FileExistsError, match=r"already holds a run \(config.json, model.safetensors\)"):
        fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(), run_dir=tmp_path)
    # overwrite=True clears the old run before the new one writes anything
    fit(Tagger(hidden=7), TensorLoader(x, y, batch_size=8), _sgd(max_steps=1, log_every=1), run_dir=tmp_path,
        overwrite=True)
    assert len(read_metrics(tmp_path)) == 1


@pytest.mark.parametrize("stop, steps", [({"epochs": 3}, [5, 10, 12]), ({"epochs": 1}, [4]),
                                         ({"max_steps": 7, "epochs": 9}, [5, 7])])
def test_the_last_steps_get_a_log_row_when_training_ends(tmp_path, stop, steps):
    """A run that ends between two rows logs the steps since the last one: a run shorter than
    log_every logged nothing (and `rnnkit plot` had no values to draw)."""
    x, y = _data()
    result = fit(Tagger(), TensorLoader(x, y, batch_size=2), _sgd(log_every=5, **stop), run_dir=tmp_path)
    rows = [r for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert [r["step"] for r in rows] == steps and result.steps == steps[-1]
    assert result.last_train["loss"] == rows[-1]["loss"]


def test_a_run_that_failed_before_its_first_save_is_no_run_to_protect(tmp_path):
    x, y = _data()
    nan = torch.full_like(x, float("nan"))
    with pytest.raises(FloatingPointError):
        fit(Tagger(), TensorLoader(nan, y, batch_size=8), _sgd(), run_dir=tmp_path)
    assert (tmp_path / "config.json").exists() and not (tmp_path / "model.safetensors").exists()
    fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(log_every=1), run_dir=tmp_path)  # no overwrite=True
    assert (tmp_path / "model.safetensors").exists() and [r["step"] for r in read_metrics(tmp_path)] == [1]


def test_resume_from_another_architecture_changes_nothing(tmp_path):
    x, y = _data()
    fit(Tagger(hidden=6), TensorLoader(x, y, batch_size=8), _sgd(), run_dir=tmp_path)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="different architecture"):
        fit(Tagger(hidden=7), TensorLoader(x, y, batch_size=8), _sgd(epochs=2), run_dir=tmp_path,
            resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    x, y = _data()
    fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(), run_dir=tmp_path)
    path = tmp_path / "training_state.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(ValueError, match="training_state.pt could not be read .* truncated or corrupt"):
        fit(Tagger(), TensorLoader(x, y, batch_size=8), _sgd(epochs=2), run_dir=tmp_path, resume=True)


def test_loader_bad_input():
    x, y = _data()
    with pytest.raises(ValueError, match=r"one row per input sample \(8\), got shape \(7, 12\)"):
        TensorLoader(x, y[:7], batch_size=2)
    with pytest.raises(ValueError, match=r"inputs must hold at least one sample, got shape \(0, 12, 3\)"):
        TensorLoader(x[:0], y[:0], batch_size=2)
    with pytest.raises(ValueError, match=r"batch_size \(9\) is larger than the data \(8 samples\)"):
        TensorLoader(x, y, batch_size=9)
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 12\], got \[0, 5\]"):
        TensorLoader(x, y, batch_size=2, lengths=torch.tensor([0, 5, 5, 5, 5, 5, 5, 5]))
    with pytest.raises(ValueError, match="resume=True needs the run_dir"):
        fit(Tagger(), TensorLoader(x, y, batch_size=2), _sgd(), resume=True)
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['epoch'\]"):
        fit(Tagger(), TensorLoader(x, y, batch_size=2), {"epoch": 2})
    with pytest.raises(TypeError, match="cfg must be a TrainConfig or a mapping of its fields, got int"):
        fit(Tagger(), TensorLoader(x, y, batch_size=2), 3)
    with pytest.raises(ValueError, match="device must be a torch device name such as .* got 'gpu'"):
        _sgd(device="gpu")
    with pytest.raises(ValueError, match=r"train.device must be a device this machine has, got 'cuda:99' \("):
        fit(Tagger(), TensorLoader(x, y, batch_size=2), _sgd(device="cuda:99"))
    y[3, 5], y[6, 1] = 4, -1  # the Tagger has 4 classes
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 4\) .* or -100 "
                                         r"\(ignored\), got 2 outside, e.g. \[4, -1\]"):
        fit(Tagger(), TensorLoader(x, y, batch_size=8, shuffle=False), _sgd())


def test_cfg_as_a_mapping_is_the_same_run():
    x, y = _data()
    a, b = Tagger(), None
    b = copy.deepcopy(a)
    fit(a, TensorLoader(x, y, batch_size=4, shuffle=False), _sgd(max_steps=3))
    fit(b, TensorLoader(x, y, batch_size=4, shuffle=False),
        {"optimizer": "sgd", "lr": 0.5, "progress": False, "max_steps": 3})
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_tensor_loader_shuffles_per_epoch_and_trims_to_lengths():
    x, y = torch.randn(6, 9, 2), torch.randint(0, 3, (6, 9))
    lengths = torch.tensor([9, 3, 4, 2, 5, 6])
    loader = TensorLoader(x, y, batch_size=3, lengths=lengths, seed=1)
    a, b = list(loader.batches(0)), list(loader.batches(1))
    assert [t.lengths_B.tolist() for t in a] == [t.lengths_B.tolist() for t in loader.batches(0)]
    assert sorted(sum((t.lengths_B.tolist() for t in a), [])) == sorted(lengths.tolist())
    assert [t.lengths_B.tolist() for t in a] != [t.lengths_B.tolist() for t in b]
    for t in a:
        assert t.inputs.shape[1] == int(t.lengths_B.max()) == t.targets.shape[1]
    halves = [list(loader.shard(r, 3).batches(0)) for r in range(3)]
    torch.testing.assert_close(torch.cat([h[0].lengths_B for h in halves]), a[0].lengths_B)


def test_batch_items_count_tokens_or_samples():
    assert Batch(torch.zeros(2, 3), torch.tensor([[1, -100, 2], [3, 4, -100]])).items == 4
    assert Batch(torch.zeros(5, 3), torch.randn(5, 1)).items == 5
    assert Batch(torch.zeros(5, 3), torch.tensor([2, 0, 1, 1, 0])).items == 5  # class ids
    targets = torch.randn(3, 4)
    targets[0, 2:] = targets[2, 1:] = float("nan")  # padding: the default loss leaves it out
    assert Batch(torch.zeros(3, 4), targets).items == 12 - 2 - 3


def test_float_targets_weigh_by_their_finite_values_in_evaluate_and_skip_when_none():
    """NaN marks padding of float targets: the mean over every finite target, whatever the
    batch size (rows weighed the batches before), and a TBPTT chunk of only padding is
    skipped as one of only ignored tokens is (it raised 'loss is nan')."""
    from rnnkit.train import evaluate

    torch.manual_seed(0)
    x, y = torch.randn(6, 8, 3), torch.randn(6, 8, 1)
    lengths = torch.tensor([8, 2, 7, 3, 1, 8])
    for row, n in enumerate(lengths):
        y[row, n:] = float("nan")
    model = Tagger(classes=1)
    with torch.no_grad():
        out, _ = model(x)
    keep = y.isfinite()
    want = float(((out[keep] - y[keep]) ** 2).mean())
    for batch_size in (1, 3, 6):
        got = evaluate(model, TensorLoader(x, y, batch_size=batch_size, shuffle=False))["loss"]
        assert got == pytest.approx(want, rel=1e-6), batch_size
    y[:, 4:] = float("nan")  # the second chunk of bptt=4 has no target at all
    result = fit(Tagger(classes=1), TensorLoader(x, y, batch_size=6), _sgd(bptt=4, epochs=2))
    assert result.steps == 4 and result.stopped == "epochs"


@pytest.mark.parametrize("budget", [{"epochs": 2}, {"epochs": 50, "max_minutes": 0.002}])
def test_progress_bar_counts_steps_or_budget_seconds(budget, capsys):
    ids = torch.arange(300) % 11
    result = fit(CharModel(), StreamLoader(ids, batch_size=2, bptt=10),
                 TrainConfig(progress=True, log_every=1, **budget))
    err = capsys.readouterr().err
    assert "train:" in err and "tokens/s=" in err and "loss=" in err
    assert result.stopped == ("epochs" if "max_minutes" not in budget else "max_minutes")


def test_each_steps_pre_clip_norm_reaches_the_log_row(tmp_path):
    x, y = _data(n=12)
    norms = []
    fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(log_every=3, clip_norm=1e-3), run_dir=tmp_path,
        on_step=lambda step, values: norms.append(values["grad_norm"]))
    row = read_metrics(tmp_path)[0]
    assert len(norms) == 3 and min(norms) > 1e-3  # every step was clipped
    assert row["grad_norm"] == pytest.approx(sum(norms) / 3) and row["grad_norm_max"] == max(norms)


def test_bf16_carries_an_lstm_state_across_chunks():
    torch.set_default_dtype(torch.float32)
    from rnnkit.models import LanguageModel, LMConfig
    model = LanguageModel(LMConfig(vocab_size=11, embed_size=8, hidden_size=8, num_layers=2))
    result = fit(model, StreamLoader(torch.arange(400) % 11, batch_size=4, bptt=8),
                 TrainConfig(epochs=2, amp="bf16", progress=False), val=StreamLoader(torch.arange(100) % 11,
                                                                                     batch_size=2, bptt=8))
    assert result.state[0].dtype == torch.float32 and math.isfinite(result.last_eval["loss"])


def test_a_chunk_with_every_target_ignored_is_skipped():
    x, y = _data(n=4, T=8)
    y[:, :4] = -100  # loss on the second half only: the first chunk has nothing to learn from
    model = Tagger()
    before = copy.deepcopy(model)
    steps = []
    result = fit(model, TensorLoader(x, y, batch_size=4), _sgd(bptt=4, max_steps=1),
                 on_step=lambda step, values: steps.append(values))
    assert result.steps == 1 and steps[0]["loss"] == 0.0
    for a, b in zip(model.parameters(), before.parameters(), strict=True):
        assert torch.equal(a, b)  # no update from a chunk without targets


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    x, y = _data()
    for cfg, stopped in ((_sgd(epochs=5, max_steps=3), ("max_steps", 3)), (_sgd(epochs=2), ("epochs", 4))):
        fit(Tagger(), TensorLoader(x, y, batch_size=4), cfg, run_dir=tmp_path, overwrite=True)
        files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        result = fit(Tagger(), TensorLoader(x, y, batch_size=4), cfg, run_dir=tmp_path, resume=True)
        assert (result.stopped, result.steps) == stopped
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


def test_checks_before_training():
    x, y = _data()
    train = TensorLoader(x, y, batch_size=4)
    with pytest.raises(ValueError, match="patience=2 and schedule='constant' watch a validation value"):
        fit(Tagger(), train, _sgd(patience=2))
    with pytest.raises(ValueError, match=r"monitor must be one of the validation values \['val_loss'\], "
                                         r"got 'val_acc'"):
        fit(Tagger(), train, _sgd(patience=2, monitor="val_acc"), val=train)
    # every evaluation tracks it, with or without patience
    with pytest.raises(ValueError, match=r"monitor must be one of .*got 'val_acc'"):
        fit(Tagger(), train, _sgd(monitor="val_acc"), val=train)
    with pytest.raises(ValueError, match=r"regression output and targets must have the same shape"):
        fit(Tagger(), TensorLoader(x, torch.randn(8, 12), batch_size=4), _sgd())
    with pytest.raises(ValueError, match=r"outputs \(4, 12, 4\) and targets \(4, 10\) do not match"):
        fit(Tagger(), TensorLoader(x, y[:, :10], batch_size=4), _sgd())
    with pytest.raises(ValueError, match="bptt=4 needs per-step targets"):
        fit(Tagger(), TensorLoader(x, y[:, 0], batch_size=4), _sgd(bptt=4))


def test_plateau_schedule_warms_up_first(tmp_path):
    x, y = _data()
    cfg = TrainConfig(lr=0.1, schedule="plateau", warmup_steps=4, log_every=1, progress=False, epochs=2)
    val = TensorLoader(x, y, batch_size=8)
    fit(Tagger(), TensorLoader(x, y, batch_size=2), cfg, val=val, run_dir=tmp_path)
    lrs = [row["lr"] for row in read_metrics(tmp_path) if row["split"] == "train"]
    assert lrs[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])


def test_ctrl_c_without_a_run_dir_interrupts():
    import os
    import signal
    x, y = _data()
    # a background job (nohup ... &, as CI may run) starts with SIGINT ignored: restore Python's
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(Tagger(), TensorLoader(x, y, batch_size=2), _sgd(epochs=3),
                on_step=lambda step, values: os.kill(os.getpid(), signal.SIGINT))
    finally:
        signal.signal(signal.SIGINT, previous)


def test_teacher_forcing_needs_a_model_that_takes_it():
    x, y = _data()
    with pytest.raises(TypeError, match="takes no teacher_forcing"):
        fit(Tagger(), TensorLoader(x, y, batch_size=4),
            _sgd(teacher_forcing="linear", teacher_forcing_end=0.5))


def test_the_last_row_does_not_depend_on_the_step_estimate():
    """With lengths and bptt the loader's step estimate counts chunks of the padded T, more
    than the batches cut to their longest row make: the end of training was missed."""
    x, y = _data(n=8, T=10)
    lengths = torch.tensor([4, 3, 2, 4, 1, 3, 4, 2])
    loader = TensorLoader(x, y, batch_size=4, lengths=lengths)
    result = fit(Tagger(), loader, _sgd(log_every=100, bptt=4))
    assert result.steps == 2 and result.last_train["loss"] > 0


def test_the_schedule_ends_where_training_ends_with_lengths_and_bptt():
    """The cosine schedule ends with the last step: the step count is exact when each
    shuffled batch is cut to its own longest row (it counted chunks of the padded T)."""
    x, y = _data(n=8, T=12)
    lengths = torch.tensor([4, 3, 2, 4, 1, 9, 4, 2])
    loader = TensorLoader(x, y, batch_size=4, lengths=lengths, seed=3)
    # by hand: each epoch's two batches, ceil(longest / 4) chunks each
    want = sum(math.ceil(int(lengths[rows].max()) / 4) for e in range(3) for rows in loader._order(e))
    assert loader.total_steps(3, 4) == want < 3 * 2 * 3  # 18 with the padded T
    model = Tagger()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    rates = []
    result = fit(model, loader, _sgd(epochs=3, bptt=4, schedule="cosine", min_lr_ratio=0.1),
                 optimizer=optimizer, on_step=lambda step, v: rates.append(optimizer.param_groups[0]["lr"]))
    assert result.steps == want == len(rates)
    # the last step is step want - 1 of want: progress (want - 1) / want, just above the floor
    last = 0.05 + 0.45 * 0.5 * (1 + math.cos(math.pi * (want - 1) / want))
    assert rates[0] == pytest.approx(0.5) and rates[-1] == pytest.approx(last)


@pytest.mark.parametrize("name", ["loss", "items", "steps", "seconds", "lr", "grad_norm", ""])
def test_a_metric_may_not_take_a_name_of_the_row(name):
    x, y = _data()
    with pytest.raises(ValueError, match=f"metrics names .* got {name!r}"):
        fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(max_steps=1),
            metrics={name: lambda o, t: o.sum()})


def test_the_step_count_stays_cheap_for_long_budgets():
    """An "until the budget runs out" run (epochs=10**6 with max_steps or max_minutes) must not
    reorder the rows 10**6 times before its first step."""
    x, y = _data(n=8, T=12)
    loader = TensorLoader(x, y, batch_size=4, lengths=torch.tensor([4, 3, 2, 4, 1, 9, 4, 2]))
    assert loader.total_steps(10**6, 4, limit=5) < 20  # stops counting past max_steps
    counted = loader.total_steps(50_000, 4)  # 100,000 batches of 2 an epoch: counted one by one
    assert loader.total_steps(10**6, 4) == round(counted / 50_000 * 10**6)  # the rest at their mean


def test_on_step_may_stop_training(tmp_path):
    x, y = _data()
    result = fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(epochs=5, log_every=100),
                 on_step=lambda step, values: step == 3, run_dir=tmp_path)
    assert (result.stopped, result.steps) == ("on_step", 3)
    assert result.last_train["loss"] > 0  # the steps since the last row were logged
    assert fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(epochs=5), run_dir=tmp_path,
               resume=True).steps == 10  # and saved: a resume goes on


def test_tbptt_keeps_nan_padding_out_of_the_gradients():
    """A row that ended before a chunk runs one padded step there (layers take lengths >= 1):
    its input is zeroed, as Recurrent zeroes padding, so NaN padding trains as with full BPTT."""
    torch.manual_seed(0)
    x, y = torch.randn(4, 6, 3), torch.randint(0, 4, (4, 6))
    lengths = torch.tensor([6, 2, 6, 5])
    x[1, 2:], x[3, 5:] = float("nan"), float("inf")
    for bptt in (None, 3, 2):
        torch.manual_seed(0)
        result = fit(Tagger(), TensorLoader(x, y, batch_size=4, shuffle=False, lengths=lengths),
                     _sgd(epochs=2, bptt=bptt))
        assert math.isfinite(result.last_train["loss"])


def test_a_stream_cut_again_by_bptt_counts_every_chunk_for_the_schedule(tmp_path):
    """StreamLoader's chunks of 10 steps cut into 5 by TrainConfig.bptt: 2 steps each, and
    the cosine schedule spreads over all of them (it reached its floor halfway)."""
    ids = torch.randint(0, 11, (201,), generator=torch.Generator().manual_seed(0))
    loader = StreamLoader(ids, batch_size=4, bptt=10)
    assert loader.total_steps(1, 5) == 2 * len(loader) and loader.total_steps(1, 10) == len(loader)
    result = fit(CharModel(), loader, TrainConfig(epochs=1, bptt=5, schedule="cosine", lr=1.0, log_every=1,
                                                  progress=False), run_dir=tmp_path)
    assert result.steps == 2 * len(loader)
    rates = [row["lr"] for row in read_metrics(tmp_path) if "lr" in row]
    assert len(rates) == result.steps and all(r > 0 for r in rates[:-1])  # the floor at the last step only


def test_resume_refuses_another_learning_rate(tmp_path):
    """The optimizer's saved state would bring its old rate back: a resume that changes it
    (or any field but the run's length, cadence and device) is refused by name."""
    x, y = _data()
    fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(epochs=1), run_dir=tmp_path)
    with pytest.raises(ValueError, match=r"resume must use the TrainConfig .* got 1 different: "
                                         r"lr: saved 0.5, given 0.1"):
        fit(Tagger(), TensorLoader(x, y, batch_size=4), TrainConfig(optimizer="sgd", lr=0.1, epochs=2,
                                                                   progress=False),
            run_dir=tmp_path, resume=True)
    assert fit(Tagger(), TensorLoader(x, y, batch_size=4), _sgd(epochs=2, log_every=1), run_dir=tmp_path,
               resume=True).steps == 4
