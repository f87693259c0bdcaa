"""End to end, with a reduced budget: a character LSTM trained by ``train_lm`` on the
embedded Genesis+Exodus beats the Kneser-Ney n-grams of orders 1-4 fitted on the same
training text, on the same held-out lines. Fixed steps, so the run repeats in CI."""

import pytest
import torch

from rnnkit import config
from rnnkit.demo.corpus import load_text
from rnnkit.tasks.lm import LMTaskConfig, train_lm


@pytest.mark.slow
def test_char_lstm_beats_the_4gram(tmp_path):
    torch.set_default_dtype(torch.float32)
    cfg = config.load(LMTaskConfig, None, [
        "data.val_fraction=0.1", "model.embed_size=64", "model.hidden_size=192", "model.dropout=0.1",
        "train.epochs=100", "train.max_steps=2500", "train.bptt=64", "train.eval_every=100000",
        "ngram_max_order=4", "train.seed=0"])
    results = train_lm(cfg, tmp_path / "run", text=load_text())
    lstm, best = results["lm"]["val_bpc"], results["best_ngram_bpc"]
    assert lstm < best, f"LSTM {lstm:.3f} bits/char, best n-gram of orders 1-4 {best:.3f}"
