"""``rnnkit train tag`` and ``rnnkit tag`` through CliRunner, in isolated directories."""

import json

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from tests.harness import assert_same_weights, interrupt_after

TRAIN = "".join(f"the/at {n}/nn ran/vbd ./.\nA/at {n}/nn saw/vbd it/ppo ./.\n"
                for n in ["dog", "cat", "man", "boy", "girl", "fox"])
FAST = ["--set", "train.epochs=2", "--set", "model.hidden_size=6", "--set", "model.embed_size=6",
        "--set", "model.char_features=4", "--set", "train.progress=false", "--set", "data.batch_size=4"]


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "test.conll").write_text("the\tat\nfox\tnn\nsaw\tvbd\n\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "tag", "--data", str(tmp_path / "train.txt"), "--test",
                                      str(tmp_path / "test.conll"), "--crf", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert results == json.loads((out / "results.json").read_text())
    assert results["crf"] is True and results["test"]["tokens"] == 3 and results["tagset_size"] == 5
    return out


def test_tags_a_file_to_conll(tmp_path, run_dir):
    (tmp_path / "new.txt").write_text("the dog ran .\nit saw\n")
    out = tmp_path / "tagged.conll"
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "new.txt"),
                                      "--format", "text", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == f"wrote 2 sentences (6 tokens) to {out}\n"
    blocks = out.read_text().split("\n\n")
    assert [[line.split("\t")[0] for line in b.splitlines()] for b in blocks if b] == \
        [["the", "dog", "ran", "."], ["it", "saw"]]
    assert all(line.split("\t")[1] in ("at", "nn", "vbd", ".", "ppo") for line in out.read_text().splitlines()
               if line)
    # CoNLL input (its tag column ignored), to standard output
    (tmp_path / "gold.conll").write_text("the\tXX\ndog\tYY\n")
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "gold.conll")])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines() if line] == ["the", "dog"]
    assert result.stderr == ""  # the data alone on stdout


def test_tags_every_word_of_plain_text_by_default(tmp_path, run_dir):
    (tmp_path / "s.txt").write_text("the dog runs .\n\nZürich café sees a cat\n")
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "s.txt")])
    assert result.exit_code == 0, result.output
    blocks = [b.splitlines() for b in result.output.split("\n\n") if b]
    assert [[line.split("\t")[0] for line in b] for b in blocks] == \
        [["the", "dog", "runs", "."], ["Zürich", "café", "sees", "a", "cat"]]
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "s.txt"),
                                      "--format", "conll"])
    assert result.exit_code == 1
    assert "s.txt:1: expected one word per line (CoNLL), got 4 words" in result.output
    assert "--format text" in result.output


def test_tag_out_directory_checked_before_work(tmp_path, run_dir):
    (tmp_path / "s.txt").write_text("the dog\n")
    out = tmp_path / "missing" / "x.conll"
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "s.txt"),
                                      "--out", str(out)])
    assert result.exit_code == 2 and "Invalid value for '--out': its directory must exist" in result.output
    assert str(tmp_path / "missing") in result.output and "Traceback" not in result.output


def test_tag_bad_input(tmp_path, run_dir):
    runner = CliRunner()
    (tmp_path / "empty.txt").write_text("")
    out = tmp_path / "o.conll"
    result = runner.invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "empty.txt"),
                                 "--out", str(out)])
    assert result.exit_code == 1 and "empty.txt: expected data, got an empty file" in result.output
    (tmp_path / "bad.txt").write_bytes(b"the dog\n\xc3\x28 ran\n")
    result = runner.invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "bad.txt"), "--format", "text",
                                 "--out", str(out)])
    assert result.exit_code == 1 and "bad.txt:2: expected UTF-8 text" in result.output
    result = runner.invoke(cli, ["tag", str(tmp_path), "--data", str(tmp_path / "bad.txt"),
                                 "--out", str(out)])
    assert result.exit_code == 1 and "not a run directory" in result.output
    assert not out.exists()


def test_train_bad_input(tmp_path):
    runner = CliRunner()
    (tmp_path / "ragged.conll").write_text("the\tat\ndog\n")
    out = tmp_path / "r"
    result = runner.invoke(cli, ["train", "tag", "--data", str(tmp_path / "ragged.conll"), "--out", str(out)])
    assert result.exit_code == 1
    assert "ragged.conll:2: expected 2 columns like line 1 (word ... tag), got 1: 'dog'" in result.output
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "test.conll").write_text("the\tat\ndog\tNOUN\n")
    result = runner.invoke(cli, ["train", "tag", "--data", str(tmp_path / "train.txt"), "--test",
                                 str(tmp_path / "test.conll"), "--out", str(out), *FAST])
    assert result.exit_code == 1 and "test.conll:2: expected one of the 5 tags" in result.output
    assert "unknown tag 'NOUN'" in result.output and not out.exists()
    result = runner.invoke(cli, ["train", "tag", "--data", str(tmp_path / "none.conll"), "--out", str(out)])
    assert result.exit_code == 1 and "none.conll: file not found" in result.output
    result = runner.invoke(cli, ["train", "tag", "--data", "x", "--out", str(out),
                                 "--set", "model.crf=maybe"])
    assert result.exit_code == 1 and "model.crf" in result.output


def test_print_config_merges_toml_options_and_set(tmp_path):
    (tmp_path / "run.toml").write_text('[model]\nchar_encoder = "lstm"\n[data]\nbatch_size = 4\n')
    result = CliRunner().invoke(cli, ["train", "tag", "--data", "x.conll", "--crf",
                                      "--out", str(tmp_path / "r"),
                                      "--config", str(tmp_path / "run.toml"), "--set", "data.batch_size=8",
                                      "--print-config"])
    assert result.exit_code == 0, result.output
    for line in ('path = "x.conll"', 'char_encoder = "lstm"', "batch_size = 8", "crf = true"):
        assert line in result.output


def test_interrupted_training_exits_130_and_resumes_to_the_straight_run(tmp_path, monkeypatch):
    (tmp_path / "train.txt").write_text(TRAIN)
    train = ["train", "tag", "--data", str(tmp_path / "train.txt"), *FAST]
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert CliRunner().invoke(cli, [*train, "--out", str(straight)]).exit_code == 0
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        result = CliRunner().invoke(cli, [*train, "--out", str(out)])
    assert result.exit_code == 130 and "interrupted (SIGINT) after 2 steps" in result.stderr
    resumed = CliRunner().invoke(cli, [*train, "--out", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["steps"] == json.loads((straight / "results.json").read_text())["steps"]
    assert_same_weights(straight, out)


def test_tag_keeps_the_input_layout_with_gold_and_predicted(tmp_path, run_dir):
    """One output line per input line (conlleval's word, gold, predicted): -DOCSTART- and blank
    lines are no longer dropped, so the output lines up with the input."""
    text = "-DOCSTART- -X- O\n\nthe DT at\nfox NN nn\n\n\nsaw VB vbd\n"
    (tmp_path / "gold.conll").write_text(text)
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "gold.conll")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(text.splitlines()) and lines[0] == "-DOCSTART-\tO\tO"
    assert [line == "" for line in lines] == [line == "" for line in text.splitlines()]
    rows = [line.split("\t") for line in lines[2:] if line]
    assert [r[:2] for r in rows] == [["the", "at"], ["fox", "nn"], ["saw", "vbd"]]
    assert all(len(r) == 3 and r[2] in ("at", "nn", "vbd", ".", "ppo") for r in rows)


def test_tag_score_prints_accuracy_as_json(tmp_path, run_dir):
    test = tmp_path / "test.conll"
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(test), "--score"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    expected = json.loads((run_dir / "results.json").read_text())["test"]
    assert scores == {"path": str(test), "tokens": 3, "unknown_tag_tokens": 0,
                      "accuracy": expected["accuracy"], "entities": None}
    out = tmp_path / "tagged.conll"
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(test), "--score", "--out", str(out)])
    assert result.exit_code == 0 and json.loads(result.stdout) == scores
    assert [line.split("\t")[:2] for line in out.read_text().splitlines() if line] == \
        [["the", "at"], ["fox", "nn"], ["saw", "vbd"]]
    (tmp_path / "words.txt").write_text("the dog ran .\nit saw\n")
    result = CliRunner().invoke(cli, ["tag", str(run_dir), "--data", str(tmp_path / "words.txt"), "--score"])
    assert result.exit_code == 1 and "words.txt: expected gold tags to score against" in result.output


PEOPLE = [("John", "Smith", "Paris"), ("Mary", "Jones", "Rome"), ("Ann", "Lee", "Oslo")]
NER = "".join(f"{a}\tB-PER\n{b}\tI-PER\nwent\tO\nto\tO\n{c}\tB-LOC\n\n" for a, b, c in PEOPLE * 4)


def test_named_entity_training_prints_entity_scores_and_score_agrees(tmp_path):
    (tmp_path / "ner.conll").write_text(NER)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "tag", "--data", str(tmp_path / "ner.conll"), "--test",
                                      str(tmp_path / "ner.conll"), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    entities = json.loads(result.stdout)["test"]["entities"]
    assert entities["gold"] == 24 and set(entities["per_type"]) <= {"PER", "LOC"}
    result = CliRunner().invoke(cli, ["tag", str(out), "--data", str(tmp_path / "ner.conll"), "--score"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entities"] == {k: v for k, v in entities.items()
                                                     if not k.startswith("baseline")}
