"""End to end, with a reduced budget: ``train_seq2seq`` on the embedded verse pairs (Mark
and John to train on, 2-3 John to validate) translates the held-out letter 1 John better
than copying the English source, in chrF. Fixed steps and seed, so the run repeats; about
two minutes on one thread."""

import pytest
import torch

from rnnkit import config
from rnnkit.data.bible_pairs import EXCERPT
from rnnkit.tasks.seq2seq import Seq2SeqTaskConfig, train_seq2seq


@pytest.mark.slow
def test_attention_model_beats_copying_the_source(tmp_path):
    pytest.importorskip("sacrebleu")
    torch.set_default_dtype(torch.float32)
    cfg = config.load(Seq2SeqTaskConfig, None, [
        f"data.path={EXCERPT}", "data.val_groups=2John,3John", "data.test_groups=1John",
        "data.source_vocab_size=1000", "data.target_vocab_size=1000", "data.batch_size=32",
        "model.embed_size=96", "model.hidden_size=128", "model.attention=general", "model.dropout=0.3",
        "train.epochs=100", "train.max_steps=700", "train.lr=0.005", "train.schedule=cosine",
        "train.min_lr_ratio=0.1", "train.clip_norm=1.0", "train.eval_every=350", "train.progress=false",
        "train.seed=0", "decode.beam_width=3", "decode.alpha=0.6"])
    test = train_seq2seq(cfg, tmp_path / "run")["test"]
    assert test["chrf"] > test["copy_chrf"], f"chrF {test['chrf']:.2f}, copying {test['copy_chrf']:.2f}"
