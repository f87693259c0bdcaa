"""Every task trained with ``train.device`` set to an accelerator, then used from its saved run.

``fit`` leaves the model on ``train.device``, so whatever a task does after training (scoring
the held-out part, calibrating intervals) must bring its data there. On a CPU-only machine
there is no second device to catch a slip, so this module runs where CUDA is (or on the
device named by ``RNNKIT_TEST_DEVICE``) and is skipped elsewhere; ``benchmarks/gpu.py`` is
the rest of the GPU check.
"""

import os

import pytest
import torch

from rnnkit.tasks.classify import predict, train_classifier
from rnnkit.tasks.forecast import forecast, train_forecaster
from rnnkit.tasks.lm import generate, train_lm
from rnnkit.tasks.seq2seq import train_seq2seq, translate
from rnnkit.tasks.tag import predict_tags, train_tagger
from tests.tasks import test_classify_task, test_forecast_task, test_lm_task, test_seq2seq_task, test_tag_task

DEVICE = os.environ.get("RNNKIT_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no accelerator (set RNNKIT_TEST_DEVICE to force one)")
ON = f"train.device={DEVICE}"


def test_forecast(tmp_path):
    data = test_forecast_task.write_seasonal_csv(tmp_path / "s.csv")
    cfg = test_forecast_task.cfg_for(data, ON, "data.test_size=24", "data.val_size=20")  # calibrates
    results = train_forecaster(cfg, tmp_path / "run")
    assert results["interval_scale"] is not None and 0 <= results["coverage_80"] <= 1
    assert forecast(tmp_path / "run")["forecast_HQ"].shape == (12, 3)


def test_classify_and_predict(tmp_path):
    train = test_classify_task.write_trend_ts(tmp_path / "Trend_TRAIN.ts", 48, seed=1)
    test_classify_task.write_trend_ts(tmp_path / "Trend_TEST.ts", 24, seed=2)
    results = train_classifier(test_classify_task.cfg_for(train, ON, "train.epochs=2", "ensemble=2"),
                               tmp_path / "run")
    assert 0 <= results["test_accuracy"] <= 1
    assert len(predict(tmp_path / "run", tmp_path / "Trend_TEST.ts")) == 24


def test_lm_and_generate(tmp_path):
    cfg = test_lm_task.tiny(ngram=2, device=DEVICE)
    results = train_lm(cfg, tmp_path / "run", text=test_lm_task.TEXT)
    assert results["lm"]["val_bpc"] > 0
    assert "".join(generate(tmp_path / "run", prompt="In the", max_new_tokens=5))


def test_seq2seq_and_translate(tmp_path):
    path = test_seq2seq_task.pairs_file(tmp_path)
    results = train_seq2seq(test_seq2seq_task.load(path, ON, "data.val_groups=B", "data.test_groups=C"),
                            tmp_path / "run")
    assert 0 <= results["test"]["chrf"] <= 100
    assert len(translate(tmp_path / "run", ["sol luna"], beam_width=2)) == 1


def test_tag(tmp_path):
    files = tmp_path
    (files / "train.conll").write_text(test_tag_task.toy(60, 0))
    (files / "test.conll").write_text(test_tag_task.toy(10, 1))
    results = train_tagger(test_tag_task.make_cfg(files, ON, "model.crf=true"), files / "run")
    assert 0 <= results["test"]["accuracy"] <= 1
    (files / "new.txt").write_text("the cat run\n")
    assert len(predict_tags(files / "run", files / "new.txt", format="text").tags) == 1

