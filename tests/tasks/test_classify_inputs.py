"""train_classifier and predict on the inputs a reviewer found mishandled: text headers,
test and prediction files with other dimensions, the UCR 2018 .tsv layout, texts to
classify without labels."""

import json

import pytest

from rnnkit import config
from rnnkit.data.series import DataError
from rnnkit.tasks.classify import ClassifyConfig, predict, train_classifier

TINY = ("model.hidden_size=4", "model.embed_size=4", "train.epochs=1", "data.batch_size=8",
        "train.progress=false", "data.val_fraction=0")
GOOD, BAD = ["great film", "lovely plot", "fine acting"], ["awful film", "dull plot", "poor acting"]
REVIEWS = "".join(f"pos,{g}\nneg,{b}\n" for g, b in zip(GOOD, BAD, strict=True)) * 2


def cfg_for(path, *sets):
    return config.load(ClassifyConfig, None, [f"data.path={path}", *TINY, *sets])


def ts(dims, rows=8):
    segment = ":".join(f"{d},{d + 1},{d + 2}" for d in range(dims))
    return ("@problemName T\n@univariate false\n@classLabel true a b\n@data\n"
            + "".join(f"{segment}:{'ab'[i % 2]}\n" for i in range(rows)))


def test_text_header_is_guessed_and_data_header_is_honoured(tmp_path):
    """A text CSV's header other than label,text was a training row and a fake class, and
    data.header was ignored for text."""
    train = tmp_path / "r_train.csv"
    train.write_text("sentiment,review\n" + REVIEWS)
    (tmp_path / "r_test.csv").write_text("sentiment,review\npos,great plot\nneg,dull film\n")
    results = train_classifier(cfg_for(train, "data.format=text"), tmp_path / "a")
    assert results["classes"] == ["neg", "pos"] and results["n_train"] == 12 and results["n_test"] == 2
    results = train_classifier(cfg_for(train, "data.format=text", "data.header=false"), tmp_path / "b")
    assert results["classes"] == ["neg", "pos", "sentiment"] and results["n_train"] == 13
    assert results["n_test"] == 3  # the test file's header too
    plain = tmp_path / "plain.csv"
    plain.write_text(REVIEWS)
    results = train_classifier(cfg_for(plain, "data.format=text", "data.header=true"), tmp_path / "c")
    assert results["n_train"] == 11


def test_predict_on_texts_follows_the_runs_header(tmp_path):
    train = tmp_path / "t.csv"
    train.write_text("y,text column\n" + REVIEWS)
    train_classifier(cfg_for(train, "data.format=text", "data.header=true"), tmp_path / "run")
    new = tmp_path / "new.csv"
    new.write_text("?,great plot\n?,dull film\n?,fine\n")
    assert [r["given"] for r in predict(tmp_path / "run", new)] == ["?", "?"]  # the run's header=true
    assert len(predict(tmp_path / "run", new, header=False)) == 3


def test_predict_texts_without_labels(tmp_path):
    """labels=False (--no-labels) reads one text per line; it was refused for text runs."""
    train = tmp_path / "t.csv"
    train.write_text(REVIEWS)
    train_classifier(cfg_for(train, "data.format=text"), tmp_path / "run")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text('?,great plot\n?,"dull, poor film"\n')
    bare = tmp_path / "bare.txt"
    bare.write_text('text\ngreat plot\ndull, poor film\n')
    rows = predict(tmp_path / "run", bare, labels=False)
    assert [r["id"] for r in rows] == [0, 1] and {r["given"] for r in rows} == {None}
    expected = [r["probabilities"] for r in predict(tmp_path / "run", labelled)]
    assert [r["probabilities"] for r in rows] == expected


def test_a_test_file_with_other_dimensions_fails_before_training(tmp_path):
    """It used to fail after the whole training, without naming the file, and left a run
    with a model but no results.json."""
    (tmp_path / "M_TRAIN.ts").write_text(ts(2))
    (tmp_path / "M_TEST.ts").write_text(ts(1))
    with pytest.raises(DataError, match=r"M_TEST.ts: expected 2 dimension\(s\) per step like the training "
                                        r"file .*M_TRAIN.ts, got 1$"):
        train_classifier(cfg_for(tmp_path / "M_TRAIN.ts"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_predict_names_a_file_with_other_dimensions(tmp_path):
    (tmp_path / "two.ts").write_text(ts(2))
    (tmp_path / "three.ts").write_text(ts(3))
    train_classifier(cfg_for(tmp_path / "two.ts"), tmp_path / "run")
    with pytest.raises(DataError, match=r"three.ts: expected 2 dimension\(s\) per step like the training "
                                        r"data of the run in .*run, got 3$"):
        predict(tmp_path / "run", tmp_path / "three.ts")
    assert len(predict(tmp_path / "run", tmp_path / "two.ts")) == 8


def test_ucr_2018_tsv_with_its_test_file(tmp_path):
    rows = "".join(f"1\t{i}\t{i + 1}\t{i + 2}\tNaN\n-1\t{9 - i}\t{8 - i}\tNaN\t{6 - i}\n" for i in range(4))
    (tmp_path / "U_TRAIN.tsv").write_text(rows)
    (tmp_path / "U_TEST.tsv").write_text(rows[: rows.index("\n", rows.index("\n") + 1) + 1])
    results = train_classifier(cfg_for(tmp_path / "U_TRAIN.tsv"), tmp_path / "run")
    assert results["classes"] == ["-1", "1"] and results["n_train"] == 8 and results["n_test"] == 2
    assert results["test_path"] == str(tmp_path / "U_TEST.tsv")
    assert json.loads((tmp_path / "run" / "labels.json").read_text())["format"] == "csv"
    assert [r["given"] for r in predict(tmp_path / "run", tmp_path / "U_TEST.tsv")] == ["1", "-1"]
