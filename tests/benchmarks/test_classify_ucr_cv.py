"""The cross-validation pieces of benchmarks/classify_ucr.py: folds and the member-0 reuse."""

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).parents[2] / "benchmarks" / "classify_ucr.py"


@pytest.fixture(scope="module")
def ucr():
    spec = importlib.util.spec_from_file_location("classify_ucr", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["classify_ucr"] = module
    spec.loader.exec_module(module)
    return module


def test_folds_partition_and_stratify(ucr):
    # 7 rows of class a, 4 of b, in a shuffled order: 3 folds
    labels = list("abaabaabaab")
    lines = [f"{i}.0,{i}.5:{c}\n" for i, c in enumerate(labels)]
    folds = ucr.stratified_folds(lines, 3, seed=7)
    assert sorted(i for fold in folds for i in fold) == list(range(len(lines)))
    for c, total in (("a", 7), ("b", 4)):
        counts = [sum(labels[i] == c for i in fold) for fold in folds]
        assert sum(counts) == total and max(counts) - min(counts) <= 1
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert folds == ucr.stratified_folds(lines, 3, seed=7)
    assert folds != ucr.stratified_folds(lines, 3, seed=8)


def test_folds_reject_more_folds_than_the_smallest_class(ucr):
    lines = ["1.0:a\n", "2.0:a\n", "3.0:b\n"]
    with pytest.raises(ValueError, match="cv-folds"):
        ucr.stratified_folds(lines, 2, seed=0)


def test_single_model_is_the_ensembles_member_0(ucr, tmp_path, monkeypatch):
    # cv_select reads a single candidate's fold count from the ensemble's member 0
    rng = __import__("random").Random(0)
    rows = [",".join(f"{rng.gauss(c, 1.0):.4f}" for _ in range(6)) + f":{c}\n" for c in (0, 1) * 6]
    data = tmp_path / "Toy"
    data.mkdir()
    (data / "Toy_TRAIN.ts").write_text("@problemName Toy\n@classLabel true 0 1\n@data\n" + "".join(rows))
    monkeypatch.setattr(ucr, "extract", lambda name: data / "Toy_TRAIN.ts")
    settings = ["model.cell=gru", "model.hidden_size=4", "train.epochs=2", "data.batch_size=4"]
    single = ucr.run_fold("Toy", 3, [], settings, [0, 1, 2, 3])
    ensemble = ucr.run_fold("Toy", 3, [], [*settings, "ensemble=2"], [0, 1, 2, 3])
    assert single["n_heldout"] == 4 and len(ensemble["member_correct"]) == 2
    assert ensemble["member_correct"][0] == single["correct"]
    assert ensemble["member_loss"][0] == pytest.approx(single["member_loss"][0], rel=1e-12)
    assert ensemble["member_loss"][1] != pytest.approx(single["member_loss"][0], rel=1e-6)
