"""Seq2Seq: padding is invisible on both sides, forward equals stepping the decoder,
scheduled sampling at p = 0 feeds the model's own tokens, the bridge reads both directions'
final states, and the config round-trips and checks itself."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from rnnkit import config
from rnnkit.models import MODELS, architecture_config, load_model
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig, Seq2SeqInputs
from rnnkit.train import save_weights
from rnnkit.train.checkpoint import save_config

V_SRC, V_TGT = 11, 9  # the target's BOS = 7, EOS = 8
SOURCE_LENGTHS, TARGET_LENGTHS = torch.tensor([5, 1, 3]), torch.tensor([2, 4, 1])  # include 1 and max


def make(**kw):
    kw = {"embed_size": 5, "hidden_size": 6, "attention_size": 4, **kw}
    return Seq2Seq(Seq2SeqConfig(source_vocab_size=V_SRC, target_vocab_size=V_TGT, **kw)).eval()


def batch():
    """Random ids; the padding holds random ids too, so that it is not invisible by luck."""
    source_BS = torch.randint(0, V_SRC, (3, 5))
    target_BT = torch.randint(0, V_TGT - 2, (3, 4))
    target_BT[:, 0] = 7  # BOS
    return Seq2SeqInputs(source_BS, SOURCE_LENGTHS, target_BT)


ALL = [{"attention": a} for a in ("dot", "general", "additive", "none")] + [
    {"cell": "gru"}, {"num_layers": 2}, {"input_feeding": False}]


@pytest.mark.parametrize("kw", ALL, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_each_row_alone_equals_the_padded_batch(kw):
    model, inputs = make(**kw), batch()
    logits_BTV = model(inputs)
    assert logits_BTV.shape == (3, 4, V_TGT)
    for b in range(3):
        S, T = int(SOURCE_LENGTHS[b]), int(TARGET_LENGTHS[b])
        alone = model(Seq2SeqInputs(inputs.source_BS[b:b + 1, :S], SOURCE_LENGTHS[b:b + 1],
                                    inputs.target_BT[b:b + 1, :T]))
        torch.testing.assert_close(alone[0], logits_BTV[b, :T])


@pytest.mark.parametrize("kw", ALL, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_forward_equals_stepping_the_decoder(kw):
    """Teacher forcing 1.0: the true tokens, embedded at once, equal ``step`` one at a time."""
    model, inputs = make(**kw), batch()
    state, memory = model.encode(inputs.source_BS, inputs.source_lengths_B)
    stepped = []
    for t in range(inputs.target_BT.shape[1]):
        logits_BV, state = model.step(inputs.target_BT[:, t], state, memory)
        stepped.append(logits_BV)
    torch.testing.assert_close(model(inputs, teacher_forcing=1.0), torch.stack(stepped, dim=1))


def test_teacher_forcing_zero_feeds_the_models_own_argmax():
    model, inputs = make(sampled_input="argmax"), batch()
    state, memory = model.encode(inputs.source_BS, inputs.source_lengths_B)
    y_B, greedy = inputs.target_BT[:, 0], []
    for _ in range(4):
        logits_BV, state = model.step(y_B, state, memory)
        greedy.append(logits_BV)
        y_B = logits_BV.argmax(dim=-1)
    torch.testing.assert_close(model(inputs, teacher_forcing=0.0), torch.stack(greedy, dim=1))


def test_scheduled_sampling_draws_from_its_generator():
    model, inputs = make(), batch()
    inputs = inputs._replace(target_BT=torch.randint(0, 7, (3, 12)))
    one = model(inputs, teacher_forcing=0.5, generator=torch.Generator().manual_seed(1))
    again = model(inputs, teacher_forcing=0.5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(one, again)
    assert not torch.allclose(one, model(inputs))  # some rows fed their own tokens
    assert torch.equal(one[:, 0], model(inputs)[:, 0])  # the first input is always BOS


@pytest.mark.parametrize("kw", ALL, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_every_parameter_gets_a_gradient(kw):
    model, inputs = make(**kw).train(), batch()
    gold_BT = torch.randint(0, V_TGT, (3, 4))
    F.cross_entropy(model(inputs, teacher_forcing=0.5).flatten(0, 1), gold_BT.flatten()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # BOS-only rows never embed every target id; the embedding of an unused id has no gradient
    assert missing in ([], ["target_embed.weight"]), missing


def test_bridge_reads_both_directions_final_states():
    model, inputs = make(), batch()
    x_BSE = model.source_embed(inputs.source_BS)
    _, (h_n, c_n) = model.encoder(x_BSE, lengths=SOURCE_LENGTHS)
    state, _ = model.encode(inputs.source_BS, SOURCE_LENGTHS)
    torch.testing.assert_close(state.cells[0].h, torch.tanh(model.bridge[0](torch.cat([h_n[0], h_n[1]], -1))))
    torch.testing.assert_close(state.cells[0].c, torch.tanh(model.bridge[1](torch.cat([c_n[0], c_n[1]], -1))))


def test_config_round_trips_and_checks():
    cfg = Seq2SeqConfig(source_vocab_size=V_SRC, target_vocab_size=V_TGT, attention="additive", cell="gru")
    assert config.from_dict(Seq2SeqConfig, config.to_dict(cfg)) == cfg
    assert (cfg.bos_id, cfg.eos_id) == (7, 8)
    for kw, message in (({"hidden_size": 7}, "hidden_size must be even"),
                        ({"attention": "concat"}, "attention must be one of"),
                        ({"target_vocab_size": 2}, "target_vocab_size must be an int >= 3, got 2"),
                        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(cfg, **kw)


def test_saved_and_loaded_through_the_registry(tmp_path):
    model = make(attention="dot")
    assert MODELS["seq2seq"] == (Seq2Seq, Seq2SeqConfig)
    save_config(tmp_path, architecture_config(model))
    save_weights(tmp_path / "model.safetensors", model)
    inputs = batch()
    torch.testing.assert_close(load_model(tmp_path)(inputs), model(inputs))


def test_bad_inputs_name_the_argument():
    model, inputs = make(), batch()
    with pytest.raises(TypeError, match="inputs must be Seq2SeqInputs"):
        model(tuple(inputs))
    with pytest.raises(ValueError, match=r"source_lengths_B must be in \[1, 5\], got \[0, 5\]"):
        model(inputs._replace(source_lengths_B=torch.tensor([5, 0, 3])))
    with pytest.raises(ValueError, match=r"target_BT ids must be in \[0, 9\), got \[0, 9\]"):
        model(inputs._replace(target_BT=torch.tensor([[0, 9]] * 3)))
    with pytest.raises(ValueError, match=r"teacher_forcing must be a probability in \[0, 1\], got 1.5"):
        model(inputs, teacher_forcing=1.5)
    with pytest.raises(ValueError, match="must have B=3 rows"):
        model(inputs._replace(target_BT=inputs.target_BT[:2]))
