"""Tagger: padding is invisible, losses are what the docstring says, save/load, config checks."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from rnnkit import config
from rnnkit.models import MODELS, architecture_config, load_model
from rnnkit.models.tagger import CharBiLSTM, CharCNN, Tagger, TaggerConfig
from rnnkit.train import IGNORE, TrainConfig, fit, save_weights
from rnnkit.train.checkpoint import save_config
from rnnkit.train.data import TensorLoader

LENGTHS = torch.tensor([5, 1, 3])  # includes 1 and T


def make(**kw):
    cfg = dict(vocab_size=12, num_tags=4, num_chars=9, embed_size=5, shape_size=3, char_embed_size=4,
               char_features=6, hidden_size=7, dropout=0.0, word_dropout=0.0)
    return Tagger(TaggerConfig(**{**cfg, **kw})).eval()


def inputs(B=3, T=5, W=4, lengths=LENGTHS):
    """Random features; padding tokens all 0, words of 1..W chars."""
    words = torch.randint(1, 12, (B, T))
    shapes = torch.randint(1, 7, (B, T))
    n_chars = torch.randint(1, W + 1, (B, T))
    chars = torch.randint(1, 9, (B, T, W)) * (torch.arange(W) < n_chars[..., None])
    x = torch.cat([words[..., None], shapes[..., None], chars], dim=-1)
    pad = torch.arange(T)[None, :] >= lengths[:, None]
    return x.masked_fill(pad[..., None], 0)


@pytest.mark.parametrize("char_encoder", ["none", "cnn", "lstm"])
@pytest.mark.parametrize("crf", [False, True], ids=["softmax", "crf"])
def test_padded_batch_equals_each_row_alone(char_encoder, crf):
    model = make(char_encoder=char_encoder, crf=crf, num_layers=2)
    x = inputs()
    emissions = model(x, LENGTHS)
    tags = model.decode(emissions, LENGTHS)
    for b, n in enumerate(LENGTHS.tolist()):
        alone = x[b:b + 1, :n]
        alone = alone[..., : 2 + max(int((alone[..., 2:] != 0).sum(-1).max()), 1)]  # its own W
        torch.testing.assert_close(model(alone)[0], emissions[b, :n])
        assert model.decode(model(alone), torch.tensor([n]))[0].tolist() == tags[b, :n].tolist()
    assert (tags[1, 1:] == 0).all()  # padding decodes to 0 (docstring)


@pytest.mark.parametrize("encoder", [CharCNN(9, 4, 6, 0.0), CharBiLSTM(9, 4, 6)], ids=["cnn", "lstm"])
def test_char_features_ignore_char_padding(encoder):
    chars = torch.tensor([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0], [2, 8, 1, 6, 3]])
    out = encoder(chars)
    for n, word in enumerate(chars):
        real = word[word != 0][None]
        torch.testing.assert_close(encoder(real)[0], out[n])
    torch.testing.assert_close(encoder(chars[:2, :3]), out[:2])


def test_loss_is_mean_per_token():
    x = inputs()
    y = torch.randint(0, 4, (3, 5)).masked_fill(torch.arange(5)[None, :] >= LENGTHS[:, None], IGNORE)
    soft = make()
    e = soft(x, LENGTHS)
    mask = y != IGNORE
    torch.testing.assert_close(soft.loss(e, y), F.cross_entropy(e[mask], y[mask]))
    crf = make(crf=True)
    e = crf(x, LENGTHS)
    nll = crf.crf.nll(e, y.clamp(min=0), LENGTHS)
    torch.testing.assert_close(crf.loss(e, y), nll.sum() / LENGTHS.sum())
    accuracy = (crf.decode(e, LENGTHS)[mask] == y[mask]).double().mean()
    torch.testing.assert_close(crf.accuracy(e, y), accuracy)


def test_ignore_inside_a_sentence():
    """Softmax skips it; the CRF, which scores whole sequences, refuses it."""
    x = inputs()
    y = torch.randint(0, 4, (3, 5)).masked_fill(torch.arange(5)[None, :] >= LENGTHS[:, None], IGNORE)
    y[0, 2] = IGNORE
    soft = make()
    e = soft(x, LENGTHS)
    mask = y != IGNORE
    torch.testing.assert_close(soft.loss(e, y), F.cross_entropy(e[mask], y[mask]))
    accuracy = (soft.decode(e, LENGTHS)[mask] == y[mask]).double().mean()
    torch.testing.assert_close(soft.accuracy(e, y), accuracy)
    crf = make(crf=True)
    with pytest.raises(ValueError, match="may hold IGNORE \\(-100\\) only as padding .* inside row 0"):
        crf.loss(crf(x, LENGTHS), y)


def test_word_dropout_only_in_training():
    model = make(word_dropout=0.5)
    x = inputs()
    torch.testing.assert_close(model(x, LENGTHS), model(x, LENGTHS))  # eval: no dropout
    torch.manual_seed(1)
    dropped = model.train()(x, LENGTHS)
    torch.manual_seed(1)  # the same draw, made by hand: real words -> UNK (1), padding stays 0
    drop_BT = (torch.rand(x.shape[:2]) < 0.5) & (x[..., 0] > 0)
    assert drop_BT.any() and (~drop_BT & (x[..., 0] > 0)).any()
    x_unk = x.clone()
    x_unk[..., 0] = torch.where(drop_BT, 1, x[..., 0])
    torch.testing.assert_close(dropped, model.eval()(x_unk, LENGTHS))


def test_learns_a_tag_that_depends_on_the_next_word():
    """Tag = the next word's id parity: a forward-only or reversed-wrong encoder cannot learn it."""
    g = torch.Generator().manual_seed(0)
    words = torch.randint(2, 12, (64, 6), generator=g)
    y = torch.cat([words[:, 1:] % 2, torch.full((64, 1), 2)], dim=1)  # the last token: tag 2
    x = torch.stack([words, torch.ones_like(words)], dim=-1)
    model = make(char_encoder="none", shape_size=0, hidden_size=16, crf=True).train()
    fit(model, TensorLoader(x, y, batch_size=16, lengths=torch.full((64,), 6)),
        TrainConfig(epochs=40, lr=0.03, progress=False), loss_fn=model.loss)
    model.eval()
    assert float(model.accuracy(model(x), y)) == 1.0


def test_save_load_round_trip(tmp_path):
    model = make(char_encoder="cnn", crf=True)
    save_config(tmp_path, architecture_config(model))
    save_weights(tmp_path / "model.safetensors", model)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, Tagger) and loaded.config == model.config
    x = inputs()
    torch.testing.assert_close(loaded(x, LENGTHS), model(x, LENGTHS))
    assert MODELS["tagger"] == (Tagger, TaggerConfig)


def test_config_round_trips_and_checks():
    cfg = TaggerConfig(vocab_size=50, num_tags=9, num_chars=20, char_encoder="lstm", crf=True)
    assert config.from_dict(TaggerConfig, config.to_dict(cfg)) == cfg
    base = TaggerConfig(vocab_size=5, num_tags=3, num_chars=4)
    for bad, message in (({"vocab_size": 1}, "vocab_size must be >= 2"),
                         ({"char_encoder": "rnn"}, "char_encoder must be one of"),
                         ({"num_chars": 0}, "num_chars must be >= 2"),
                         ({"char_encoder": "lstm", "char_features": 5}, "char_features must be even"),
                         ({"dropout": 1.0}, "dropout must be in"),
                         ({"hidden_size": 0}, "hidden_size must be an int >= 1")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(base, **bad)
    assert dataclasses.replace(base, char_encoder="none", num_chars=0).num_chars == 0


def test_bad_input_is_reported():
    model = make()
    with pytest.raises(ValueError, match=r"x_BTF must be int64 \(B, T, F\) with F >= 3"):
        model(torch.zeros(3, 5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 5\] .*got min 0 and max 5"):
        model(inputs(), torch.tensor([5, 0, 2]))
