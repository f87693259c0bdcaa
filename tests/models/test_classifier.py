"""SequenceClassifier: pooling over valid steps only, attention weights, standardisation, saving."""

import dataclasses
import json

import pytest
import torch

from rnnkit import config
from rnnkit.models import MODELS, architecture_config, load_model
from rnnkit.models.classifier import AttentionPooling, ClassifierConfig, SequenceClassifier
from rnnkit.train import save_weights
from rnnkit.train.checkpoint import save_config

LENGTHS = torch.tensor([5, 1, 3])  # includes 1 and T


def make(**kw):
    return SequenceClassifier(ClassifierConfig(num_classes=3, input_size=2, hidden_size=6, **kw)).eval()


def assert_padding_invisible(model):
    """Whatever the padding holds, the logits stay; each row alone, unpadded, gives the same."""
    x = torch.randn(3, 5, 2)
    pad = torch.arange(5)[None, :] >= LENGTHS[:, None]
    other = torch.where(pad[..., None], 100 * torch.randn(3, 5, 2), x)
    torch.testing.assert_close(model(x, LENGTHS), model(other, LENGTHS))
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(model(x[b:b + 1, :n])[0], model(x, LENGTHS)[b])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_padding_content_does_not_change_logits(cell, pooling, bidirectional):
    model = make(cell=cell, pooling=pooling, bidirectional=bidirectional, num_layers=2)
    assert_padding_invisible(model)


@pytest.mark.parametrize("cell,pooling,bidirectional", [("lstm", "mean", True), ("gru", "last", False)])
def test_conv_branch_keeps_padding_invisible(cell, pooling, bidirectional):
    model = make(cell=cell, pooling=pooling, bidirectional=bidirectional,
                 conv_channels=(4, 5), conv_kernels=(4, 3))
    for block in model.conv.blocks:  # evaluation-mode batch norm that is not the identity
        block.norm.running_mean.normal_()
        block.norm.running_var.uniform_(0.5, 2.0)
    assert_padding_invisible(model)


def test_conv_features_join_the_recurrent_ones_before_the_head():
    model = make(bidirectional=True, pooling="mean", conv_channels=(4, 5), conv_kernels=(4, 3))
    assert model.head.in_features == 2 * 6 + 5
    x = torch.randn(3, 5, 2)
    x_BTI = (x - model.feature_mean_I) / model.feature_std_I
    recurrent_BF = model.pool(model.encoder(x_BTI, lengths=LENGTHS)[0], LENGTHS)
    conv_BC = model.conv(x_BTI, LENGTHS)
    torch.testing.assert_close(model(x, LENGTHS), model.head(torch.cat([recurrent_BF, conv_BC], dim=-1)))
    assert make().conv is None and make().head.in_features == 6  # the default: no conv branch


def test_bidirectional_last_reads_backward_state_at_step_0():
    model = make(bidirectional=True, pooling="last")
    x = torch.randn(3, 5, 2)
    out, (h_n, _) = model.encoder((x - model.feature_mean_I) / model.feature_std_I, lengths=LENGTHS)
    pooled = model.pool(out, LENGTHS)
    # torch.nn's h_n layout: [forward, backward] of the last layer = the final states
    torch.testing.assert_close(pooled, torch.cat([h_n[0], h_n[1]], dim=-1))


def test_attention_weights_sum_to_one_over_valid_steps():
    pool = AttentionPooling(4, 3)
    out = torch.randn(3, 5, 4)
    alpha = pool.weights(out, LENGTHS)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    pad = torch.arange(5)[None, :] >= LENGTHS[:, None]
    assert alpha[pad].abs().max() == 0 and (alpha[~pad] > 0).all()
    assert alpha[1, 0] == 1.0  # a length-1 row attends to its only step
    torch.testing.assert_close(pool(out, LENGTHS), (alpha[..., None] * out).sum(1))


def test_mean_pooling_is_the_mean_over_valid_steps():
    model = make(pooling="mean")
    out = torch.randn(3, 5, 6)
    expected = torch.stack([out[b, :n].mean(0) for b, n in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(model.pool(out, LENGTHS), expected)


def test_standardisation_uses_valid_steps_and_is_applied():
    model = make()
    x = torch.randn(3, 5, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([10.0, -2.0])
    x[1, 1:] = 1e6  # padding must not count
    model.fit_standardization(x, LENGTHS)
    valid = torch.cat([x[b, :n] for b, n in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(model.feature_mean_I, valid.mean(0))
    torch.testing.assert_close(model.feature_std_I, valid.std(0, correction=0))
    raw = make()
    raw.load_state_dict({**model.state_dict(), "feature_mean_I": torch.zeros(2),
                         "feature_std_I": torch.ones(2)})
    scaled = (x - valid.mean(0)) / valid.std(0, correction=0)
    torch.testing.assert_close(model(x, LENGTHS), raw(scaled, LENGTHS))


def test_input_noise_perturbs_training_only():
    model, quiet = make(input_noise=0.5), make()
    quiet.load_state_dict(model.state_dict())
    x = torch.randn(3, 5, 2)
    evaluated = model(x, LENGTHS)
    torch.testing.assert_close(evaluated, quiet(x, LENGTHS))  # no noise in evaluation
    assert not torch.allclose(model.train()(x, LENGTHS), evaluated)


def test_token_input_through_embedding():
    model = SequenceClassifier(ClassifierConfig(num_classes=2, vocab_size=10, embed_size=4, hidden_size=5,
                                                pooling="attention")).eval()
    ids = torch.randint(2, 10, (3, 5))
    assert model(ids, LENGTHS).shape == (3, 2)
    assert "feature_mean_I" not in model.state_dict()
    with pytest.raises(ValueError, match="x must be \\(B, T\\) int64 token ids"):
        model(ids.double(), LENGTHS)


@pytest.mark.parametrize("conv", [{}, {"conv_channels": (4, 3), "conv_kernels": (3, 2)}], ids=["rnn", "fcn"])
def test_save_load_round_trip(tmp_path, conv):
    model = make(bidirectional=True, pooling="attention", cell="gru", **conv)
    model.fit_standardization(torch.randn(4, 5, 2) + 3, None)
    model.train()(torch.randn(4, 5, 2), LENGTHS[[0, 1, 2, 0]])  # batch norm's running statistics move
    model.eval()
    save_config(tmp_path, architecture_config(model))
    save_weights(tmp_path / "model.safetensors", model)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, SequenceClassifier) and loaded.config == model.config
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(loaded(x, LENGTHS), model(x, LENGTHS))
    assert MODELS["sequence_classifier"] == (SequenceClassifier, ClassifierConfig)


def test_config_round_trips_and_checks():
    cfg = ClassifierConfig(num_classes=4, vocab_size=50, cell="gru", pooling="mean", bidirectional=True,
                           conv_channels=(16, 8), conv_kernels=(5, 3))
    assert config.from_dict(ClassifierConfig, config.to_dict(cfg)) == cfg
    assert config.from_dict(ClassifierConfig, json.loads(json.dumps(config.to_dict(cfg)))) == cfg
    for bad, message in (({"num_classes": 1}, "num_classes must be >= 2"),
                         ({"pooling": "max"}, "pooling must be one of"),
                         ({"cell": "mingru"}, "cell must be one of"),
                         ({"dropout": 1.0}, "dropout must be in"),
                         ({"input_noise": -0.5}, "input_noise must be a finite float >= 0"),
                         ({"conv_channels": (8, 0, 8)},
                          r"conv_channels must be a tuple of ints >= 1, got \(8, 0, 8\)"),
                         ({"conv_channels": [8, 8, 8]},
                          r"conv_channels must be a tuple of ints >= 1, got \[8, 8, 8\]"),
                         ({"conv_kernels": (8, True)}, "conv_kernels must be a tuple of ints >= 1"),
                         ({"conv_channels": (8, 8)}, r"conv_kernels must give one kernel size per conv block "
                                                     r"\(conv_channels has 2\), got \[8, 5, 3\]")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(ClassifierConfig(num_classes=2), **bad)


def test_bad_input_is_reported():
    model = make()
    with pytest.raises(ValueError, match=r"x must be \(B, T, 2\) float, got shape \(3, 5, 4\)"):
        model(torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 5\] .*got min 0 and max 5"):
        model(torch.randn(3, 5, 2), torch.tensor([5, 0, 2]))
