"""Batches whose inputs are a NamedTuple of tensors (a seq2seq model's source, lengths and
decoder inputs): moved as a whole, never cut into TBPTT chunks, and trained by ``fit``,
which resumes them exactly (``PairLoader`` is a pure function of the epoch)."""

import pytest
import torch
from safetensors.torch import load_file

from rnnkit.data.pairs import PairLoader
from rnnkit.models import architecture_config
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig, Seq2SeqInputs
from rnnkit.train import Batch, TrainConfig, fit, tbptt_chunks


def loader(batch_size=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    sources = [torch.randint(0, 7, (int(n),), generator=g) for n in torch.randint(1, 6, (11,), generator=g)]
    return PairLoader(sources, [s.flip(0) for s in sources], bos_id=7, eos_id=8, batch_size=batch_size)


def model():
    torch.manual_seed(0)
    return Seq2Seq(Seq2SeqConfig(source_vocab_size=7, target_vocab_size=9, embed_size=4, hidden_size=6,
                                 dropout=0.1))


def test_batch_moves_and_counts_tuple_inputs():
    batch = next(loader().batches(0))
    moved = batch.to("cpu")
    assert isinstance(moved.inputs, Seq2SeqInputs) and moved.rows == batch.rows == 3
    assert Batch(torch.zeros(4, 2), torch.zeros(4)).rows == 4
    assert list(tbptt_chunks(batch, None)) == [batch]
    with pytest.raises(ValueError, match="bptt must be None for a batch whose inputs are several tensors"):
        list(tbptt_chunks(batch, 2))


def test_fit_trains_and_resumes_exactly(tmp_path):
    cfg = TrainConfig(epochs=3, max_steps=8, lr=1e-2, clip_norm=1.0, log_every=2, progress=False,
                      teacher_forcing="linear", teacher_forcing_end=0.5, teacher_forcing_steps=8)
    straight = fit(model(), loader(), cfg, val=loader(5), run_dir=tmp_path / "a",
                   config=architecture_config(model()))
    assert straight.steps == 8 and straight.last_train["teacher_forcing"] < 1.0
    half = TrainConfig(**{**cfg.__dict__, "max_steps": 5})
    fit(model(), loader(), half, val=loader(5), run_dir=tmp_path / "b", config=architecture_config(model()))
    fit(model(), loader(), cfg, val=loader(5), run_dir=tmp_path / "b", resume=True)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
