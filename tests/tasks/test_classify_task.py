"""train_classifier and predict end to end, on tiny files that follow an easy rule."""

import dataclasses
import json
import math

import pytest
import torch

from rnnkit import config
from rnnkit.data.series import DataError
from rnnkit.tasks.classify import ClassifyConfig, predict, train_classifier
from tests.harness import assert_same_weights, interrupt_after


def write_trend_ts(path, n, seed):
    """Class "up" rises, "down" falls; lengths 4-9, noise 0.2, values offset by 5 (the
    model's standardisation must remove it), some values missing ('?')."""
    g = torch.Generator().manual_seed(seed)
    lines = ["@problemName Trend", "@univariate true", "@equalLength false",
             "@classLabel true up down", "@data"]
    for i in range(n):
        label = ("up", "down")[i % 2]
        T = int(torch.randint(4, 10, (1,), generator=g))
        slope = 1.0 if label == "up" else -1.0
        values = [f"{5 + slope * t / T + 0.2 * float(torch.randn(1, generator=g)):.4f}" for t in range(T)]
        if i % 7 == 3:
            values[1] = "?"
        lines.append(",".join(values) + ":" + label)
    path.write_text("\n".join(lines) + "\n")
    return path


def cfg_for(path, *sets):
    return config.load(ClassifyConfig, None, [f"data.path={path}", "model.hidden_size=8", "train.epochs=12",
                                              "train.lr=0.01", "train.progress=false", *sets])


@pytest.fixture
def trend(tmp_path):
    train = write_trend_ts(tmp_path / "Trend_TRAIN.ts", 48, seed=1)
    test = write_trend_ts(tmp_path / "Trend_TEST.ts", 24, seed=2)
    return train, test


def test_learns_the_trend_rule_and_predicts_the_test_file(tmp_path, trend):
    train, test = trend
    out = tmp_path / "run"
    results = train_classifier(cfg_for(train, "model.pooling=attention", "model.bidirectional=true"), out)
    assert results["n_train"] + results["n_val"] == 48 and results["n_val"] == 4  # 10% of each class
    assert results["test_path"] == str(test) and results["n_test"] == 24
    assert results["test_accuracy"] >= 0.9 and results["val_accuracy"] is not None
    assert json.loads((out / "results.json").read_text()) == results
    assert json.loads((out / "labels.json").read_text()) == {"classes": ["up", "down"], "format": "ts"}
    rows = predict(out, test)
    assert [r["id"] for r in rows] == list(range(24))
    for r in rows:
        assert set(r["probabilities"]) == {"up", "down"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    hits = sum(r["label"] == ("up", "down")[r["id"] % 2] for r in rows)
    assert hits / 24 == pytest.approx(results["test_accuracy"])
    # the loss is the mean -log p(true class) of the same predictions
    truth = [r["probabilities"][("up", "down")[r["id"] % 2]] for r in rows]
    assert results["test_loss"] == pytest.approx(-sum(math.log(p) for p in truth) / 24, rel=1e-5)
    assert results["val_loss"] > 0 and results["train_loss"] > 0


def test_lstm_fcn_trains_saves_and_predicts(tmp_path, trend):
    train, test = trend
    out = tmp_path / "fcn"
    results = train_classifier(cfg_for(train, "model.conv_channels=8,16,8", "model.conv_kernels=4,3,2",
                                       "model.pooling=mean"), out)
    saved = json.loads((out / "config.json").read_text())["model"]
    assert saved["conv_channels"] == [8, 16, 8] and saved["conv_kernels"] == [4, 3, 2]
    assert results["test_accuracy"] >= 0.9
    # predict rebuilds the conv branch, batch norm statistics included, from the run directory
    rows = predict(out, test)
    hits = sum(r["label"] == ("up", "down")[r["id"] % 2] for r in rows)
    assert hits / 24 == pytest.approx(results["test_accuracy"])
    truth = [r["probabilities"][("up", "down")[r["id"] % 2]] for r in rows]
    assert results["test_loss"] == pytest.approx(-sum(math.log(p) for p in truth) / 24, rel=1e-5)


def test_no_validation_split_and_no_test_file(tmp_path):
    train = write_trend_ts(tmp_path / "alone.ts", 16, seed=3)
    results = train_classifier(cfg_for(train, "data.val_fraction=0", "train.epochs=1"), tmp_path / "run")
    assert results["val_accuracy"] is None and results["test_accuracy"] is None
    assert results["n_train"] == 16 and results["n_val"] == 0


def test_a_val_fraction_that_holds_out_nothing_is_an_error(tmp_path):
    """4 examples a class at 0.1: round(0.4) = 0 of each. It used to train without validation,
    silently; as scikit-learn's stratified split, it is an error, before anything is written."""
    train = write_trend_ts(tmp_path / "few.ts", 8, seed=4)
    with pytest.raises(ValueError, match=r"data.val_fraction=0.1 .* none for these classes: "
                                         r"\{'up': 4, 'down': 4\}"):
        train_classifier(cfg_for(train, "data.val_fraction=0.1", "train.epochs=1"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    results = train_classifier(cfg_for(train, "data.val_fraction=0.2", "train.epochs=1"), tmp_path / "run")
    assert results["n_val"] == 2 and results["n_train"] == 6  # round(0.8) = 1 of each class


def test_data_header_reads_a_header_of_numbers(tmp_path):
    """pandas writes ``label,0,1,2``: a label column's name then numbers, a header by the
    guess; data.header=false makes it data. predict follows the run's data.header unless
    told otherwise (it used to guess for its own file, and kept a header the run skipped)."""
    g = torch.Generator().manual_seed(5)
    rows = [f"{c},{','.join(f'{float(v):.3f}' for v in torch.randn(3, generator=g) + 2 * i)}"
            for c, i in [("lo", 0), ("hi", 1)] * 6]
    path = tmp_path / "series.csv"
    path.write_text("label,0,1,2\n" + "\n".join(rows) + "\n")
    sets = ("data.val_fraction=0", "train.epochs=1")
    results = train_classifier(cfg_for(path, "data.header=true", *sets), tmp_path / "a")
    assert results["n_train"] == 12 and results["classes"] == ["hi", "lo"]
    guessed = train_classifier(cfg_for(path, *sets), tmp_path / "b")
    assert guessed["n_train"] == 12 and guessed["classes"] == ["hi", "lo"]
    as_data = train_classifier(cfg_for(path, "data.header=false", *sets), tmp_path / "c")
    assert as_data["n_train"] == 13 and "label" in as_data["classes"]
    (tmp_path / "new.csv").write_text("\n".join(rows[:3]) + "\n")
    assert len(predict(tmp_path / "a", tmp_path / "new.csv")) == 2  # the run's header=true
    assert len(predict(tmp_path / "a", tmp_path / "new.csv", header=False)) == 3
    assert len(predict(tmp_path / "b", tmp_path / "new.csv")) == 3  # guessed: numbers are data
    assert len(predict(tmp_path / "b", path)) == 12
    assert len(predict(tmp_path / "c", path)) == 13


def test_same_seed_same_run_whatever_ran_before(tmp_path, trend):
    train, _ = trend
    first = train_classifier(cfg_for(train, "train.epochs=2"), tmp_path / "a")
    torch.randn(7)  # disturb the global RNG between the runs
    second = train_classifier(cfg_for(train, "train.epochs=2"), tmp_path / "b")
    assert first["test_loss"] == second["test_loss"]


def test_text_classification(tmp_path):
    good, bad = ["great", "fine", "lovely"], ["awful", "poor", "dull"]
    g = torch.Generator().manual_seed(0)
    rows = ["label,text"]
    for i in range(40):
        label, words = ("pos", good) if i % 2 else ("neg", bad)
        filler = ["the", "film", "was", "a", "plot"]
        text = [filler[int(j)] for j in torch.randint(0, 5, (3,), generator=g)] + [words[i % 3]]
        rows.append(f"{label},{' '.join(text)}")
    (tmp_path / "reviews_train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "reviews_test.csv").write_text("pos,the plot was lovely\nneg,a dull film\n")
    out = tmp_path / "run"
    results = train_classifier(cfg_for(tmp_path / "reviews_train.csv", "data.format=text",
                                       "data.val_fraction=0", "model.pooling=mean", "train.epochs=15"), out)
    assert results["test_accuracy"] == 1.0
    assert (out / "tokenizer.json").is_file()
    assert [r["label"] for r in predict(out, tmp_path / "reviews_test.csv")] == ["pos", "neg"]


def test_unknown_test_label_names_the_line(tmp_path, trend):
    train, test = trend
    test.write_text(test.read_text().replace(":down\n", ":sideways\n", 1))
    expected = r"Trend_TEST.ts:7: expected a label in \['up', 'down'\], got 'sideways'"
    with pytest.raises(DataError, match=expected):
        train_classifier(cfg_for(train, "train.epochs=1"), tmp_path / "run")


def test_config_checks(tmp_path):
    with pytest.raises(ValueError, match="data.val_fraction must be in"):
        config.load(ClassifyConfig, None, ["data.val_fraction=1.5"])
    with pytest.raises(ValueError, match="pooling must be one of"):
        config.load(ClassifyConfig, None, ["model.pooling=max"])
    with pytest.raises(ValueError, match="data.path must name the training file"):
        train_classifier(ClassifyConfig(), "unused")
    with pytest.raises(ValueError, match=r"conv_kernels must give one kernel size per conv block"):
        config.load(ClassifyConfig, None, ["model.conv_channels=8,8"])
    with pytest.raises(ValueError, match=r"model.conv_channels must be int, got 'x'"):
        config.load(ClassifyConfig, None, ["model.conv_channels=8,x"])
    cfg = config.load(ClassifyConfig, None, ["data.path=x.ts", "model.cell=gru", "train.epochs=3",
                                             "model.conv_channels=128,256,128"])
    assert cfg.model.conv_channels == (128, 256, 128) and cfg.model.conv_kernels == (8, 5, 3)
    assert config.from_dict(ClassifyConfig, config.to_dict(cfg)) == cfg
    toml = tmp_path / "run.toml"
    toml.write_text(config.to_toml(cfg))
    assert config.load(ClassifyConfig, toml) == cfg


def test_ensemble_averages_its_members_probabilities(tmp_path, trend):
    train, test = trend
    out = tmp_path / "ens"
    results = train_classifier(cfg_for(train, "ensemble=2", "train.epochs=3", "data.val_fraction=0"), out)
    assert json.loads((out / "ensemble.json").read_text()) == {"members": ["member0", "member1"], "size": 2}
    assert len(results["members"]) == 2
    # each member is an ordinary run, trained from its own seed (the split would follow the seed too)
    alone = train_classifier(cfg_for(train, "train.epochs=3", "train.seed=1000", "data.val_fraction=0"),
                             tmp_path / "alone")
    assert results["members"][1]["test_loss"] == pytest.approx(alone["test_loss"])
    # predict on the ensemble directory averages the members' probabilities
    rows = predict(out, test)
    one, two = predict(out / "member0", test), predict(out / "member1", test)
    for r, a, b in zip(rows, one, two, strict=True):
        for c in ("up", "down"):
            assert r["probabilities"][c] == pytest.approx((a["probabilities"][c] + b["probabilities"][c]) / 2)
    hits = sum(r["label"] == ("up", "down")[r["id"] % 2] for r in rows)
    assert hits / 24 == pytest.approx(results["test_accuracy"])
    with pytest.raises(FileExistsError, match="ensemble"):
        train_classifier(cfg_for(train, "ensemble=2", "train.epochs=3"), out)
    with pytest.raises(ValueError, match="ensemble must be an int >= 1"):
        cfg_for(train, "ensemble=0")


def test_an_interrupted_ensemble_resumes_to_the_straight_ensemble(tmp_path, trend, monkeypatch):
    cfg = cfg_for(trend[0], "ensemble=2", "train.epochs=2", "data.val_fraction=0")
    straight = train_classifier(cfg, tmp_path / "straight")
    out = tmp_path / "ens"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2, "SIGTERM")
        stopped = train_classifier(cfg, out)
    # the first member stopped at step 2, and the second never started
    assert (stopped["stopped"], stopped["steps"], len(stopped["members"])) == ("SIGTERM", 2, 1)
    assert json.loads((out / "ensemble.json").read_text()) == {"members": ["member0"], "size": 2}
    assert not (out / "member1").exists()
    with pytest.raises(FileExistsError, match="resume=True"):
        train_classifier(cfg, out)
    resumed = train_classifier(cfg, out, resume=True)
    assert (resumed["stopped"], resumed["steps"]) == (straight["stopped"], straight["steps"])
    for member in ("member0", "member1"):
        assert_same_weights(tmp_path / "straight" / member, out / member)
    assert resumed["test_loss"] == straight["test_loss"]
    # resuming the finished ensemble reloads each member and changes nothing
    assert train_classifier(cfg, out, resume=True)["test_loss"] == straight["test_loss"]
    with pytest.raises(ValueError, match="resume=True and overwrite=True"):
        train_classifier(cfg, out, resume=True, overwrite=True)
    with pytest.raises(FileNotFoundError, match="resume needs a saved run in out, got .*member0'"):
        train_classifier(cfg, tmp_path / "none", resume=True)
    # another size would grow or shrink the ensemble silently; ensemble.json keeps it
    for size, other, saved in ((3, out, "2"), (1, out, "2"), (2, tmp_path / "straight" / "member0", "1")):
        with pytest.raises(ValueError, match=f"ensemble: saved {saved}, given {size}"):
            train_classifier(dataclasses.replace(cfg, ensemble=size), other, resume=True)
    # a run listed before the size was kept resumes at any size but 1
    old_list = json.dumps({"members": ["member0", "member1"]})
    (out / "ensemble.json").write_text(old_list)
    assert train_classifier(cfg, out, resume=True)["test_loss"] == straight["test_loss"]
    (out / "ensemble.json").write_text(old_list)  # the resume wrote the size
    with pytest.raises(ValueError, match=r"ensemble: saved 'an ensemble \(member0, ...\)', given 1"):
        train_classifier(dataclasses.replace(cfg, ensemble=1), out, resume=True)


def test_predict_does_not_use_the_files_labels(tmp_path, trend):
    train, test = trend
    out = tmp_path / "run"
    train_classifier(cfg_for(train, "train.epochs=2", "data.val_fraction=0"), out)
    expected = [r["probabilities"] for r in predict(out, test)]
    # a label the model never saw, and one the file's own @classLabel does not declare
    unseen = tmp_path / "unseen.ts"
    unseen.write_text(test.read_text().replace(":down\n", ":sideways\n", 1))
    rows = predict(out, unseen)
    assert [r["probabilities"] for r in rows] == expected
    assert [r["given"] for r in rows[:3]] == ["up", "sideways", "up"]
    # no labels at all: @classLabel false and no label field on the rows
    bare = tmp_path / "bare.ts"
    lines = test.read_text().replace("@classLabel true up down", "@classLabel false").splitlines()
    bare.write_text("\n".join(line.rsplit(":", 1)[0] for line in lines) + "\n")
    rows = predict(out, bare)
    assert [r["probabilities"] for r in rows] == expected and {r["given"] for r in rows} == {None}
    with pytest.raises(ValueError, match=r"^--no-labels \(labels=False\) is for runs on CSV series or "
                                         r"texts; .* format 'ts'$"):
        predict(out, bare, labels=False)


def test_overwrite_replaces_an_ensemble(tmp_path, trend):
    """A run over an ensemble with overwrite leaves nothing of the old one for predict to find."""
    train, test = trend
    out = tmp_path / "ens"
    train_classifier(cfg_for(train, "ensemble=3", "train.epochs=1", "data.val_fraction=0"), out)
    (out / "member_notes").mkdir()  # not a member: kept
    one = cfg_for(train, "train.epochs=1", "data.val_fraction=0")
    with pytest.raises(FileExistsError, match=r"ensemble's run \(.*ensemble.json\)"):
        train_classifier(one, out)
    two = cfg_for(train, "ensemble=2", "train.epochs=1", "data.val_fraction=0")
    train_classifier(two, out, overwrite=True)
    assert json.loads((out / "ensemble.json").read_text()) == {"members": ["member0", "member1"], "size": 2}
    assert not (out / "member2").exists()
    results = train_classifier(one, out, overwrite=True)
    assert not (out / "ensemble.json").exists() and "members" not in results
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["member_notes"]
    alone = tmp_path / "alone"
    assert train_classifier(one, alone)["test_loss"] == results["test_loss"]
    assert predict(out, test) == predict(alone, test)


@pytest.mark.parametrize("text", ["{}", "[1]", "{"])
def test_predict_names_a_labels_file_it_cannot_use(tmp_path, trend, text):
    out = tmp_path / "run"
    train_classifier(cfg_for(trend[0], "train.epochs=1", "data.val_fraction=0"), out)
    (out / "labels.json").write_text(text)
    with pytest.raises(ValueError, match=r"labels.json must hold the JSON object with classes, format"):
        predict(out, trend[1])
