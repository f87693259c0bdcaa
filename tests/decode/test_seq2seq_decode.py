"""Seq2seq decoding: beam width 1 is greedy, a hypothesis's log-probability is the model's
teacher-forced one (so the state and the repeated memory follow their beams), and the
beams are ranked by GNMT's length-penalised score."""

import math

import pytest
import torch

from rnnkit.decode import length_penalty
from rnnkit.decode.seq2seq import beam_translate, greedy_translate, max_new_tokens_for, strip_eos
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig, Seq2SeqInputs

V_SRC, V_TGT = 11, 6  # EOS = 5: a small vocabulary, so that hypotheses finish early


def make(**kw):
    cfg = Seq2SeqConfig(source_vocab_size=V_SRC, target_vocab_size=V_TGT, embed_size=5, hidden_size=6, **kw)
    return Seq2Seq(cfg).eval()


@torch.no_grad()
def teacher_forced_log_prob(model, source_S, ids_T):
    """Σ_t log p(ids_t | ids_<t, source) from ``forward``, for a hypothesis ``ids_T``."""
    target_T = torch.cat([torch.tensor([model.config.bos_id]), ids_T[:-1]])
    logits_1TV = model(Seq2SeqInputs(source_S[None], torch.tensor([len(source_S)]), target_T[None]))
    return float(logits_1TV[0].log_softmax(-1).gather(1, ids_T[:, None]).sum())


@pytest.mark.parametrize("attention", ["general", "none"])
def test_beam_width_1_is_greedy(attention):
    torch.manual_seed(3)
    model = make(attention=attention)
    sources = [torch.randint(0, V_SRC, (n,)) for n in (1, 4, 7)]
    lengths_B = torch.tensor([len(s) for s in sources])
    source_BS = torch.nn.utils.rnn.pad_sequence(sources, batch_first=True)
    greedy = greedy_translate(model, source_BS, lengths_B, max_new_tokens=12)
    for source_S, ids_T in zip(sources, greedy, strict=True):
        best = beam_translate(model, source_S, beam_width=1, max_new_tokens=12)[0]
        assert torch.equal(strip_eos(best, model.config.eos_id), ids_T)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_hypotheses_score_what_forward_scores(alpha):
    torch.manual_seed(4)
    model, source_S = make(), torch.randint(0, V_SRC, (5,))
    hyps = beam_translate(model, source_S, beam_width=4, max_new_tokens=8, alpha=alpha)
    assert len(hyps) == 4 and [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:
        assert 1 <= len(h.ids_T) <= 8
        assert math.isclose(h.log_prob, teacher_forced_log_prob(model, source_S, h.ids_T), rel_tol=1e-9)
        assert math.isclose(h.score, h.log_prob / length_penalty(len(h.ids_T), alpha), rel_tol=1e-12)
        assert h.finished == (int(h.ids_T[-1]) == model.config.eos_id)


def test_limits_and_checks():
    assert max_new_tokens_for(3, 200) == 16 and max_new_tokens_for(300, 200) == 200
    with pytest.raises(ValueError, match="source_ids_S must be a non-empty 1-D int64 tensor"):
        beam_translate(make(), torch.zeros(0, dtype=torch.long), beam_width=2, max_new_tokens=3)


@pytest.mark.parametrize("training", [False, True])
def test_beam_translate_leaves_the_model_in_its_mode(training):
    """Its wrapper module was made in training mode, which beam_search restored into an
    eval-mode model: later forwards then ran dropout."""
    model = make(dropout=0.5).train(training)
    beam_translate(model, torch.tensor([1, 2, 3]), beam_width=2, max_new_tokens=4)
    assert model.training is training and all(m.training is training for m in model.modules())
