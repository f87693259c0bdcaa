"""Every ``rnnkit train`` task against every command that reads a run: each train command
prints its results.json as JSON on stdout, and each command that uses a run refuses another
task's run with one error naming RUN_DIR, the run it expects and the run it got."""

import json
import random
import shutil

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.demo.corpus import load_text

# the words the random pairs, sentences and tags are drawn from
NOUNS, VERBS = ["dog", "cat", "man", "fox", "girl", "boy"], ["ran", "saw", "ate", "sat"]
TRAIN = {
    "lm": ["--set", "train.max_steps=3", "--set", "train.bptt=16", "--set", "data.batch_size=4",
           "--set", "model.hidden_size=8", "--set", "model.embed_size=8", "--set", "data.val_fraction=0.1"],
    "seq2seq": ["--set", "data.tokenizer=char", "--set", "model.hidden_size=8", "--set", "model.embed_size=8",
                "--set", "data.batch_size=4", "--set", "train.max_steps=2", "--set", "train.progress=false",
                "--set", "decode.beam_width=2", "--set", "decode.max_len=5", "--set", "data.test_groups=C"],
    "tag": ["--set", "train.epochs=1", "--set", "model.hidden_size=6", "--set", "model.embed_size=6",
            "--set", "model.char_features=4", "--set", "train.progress=false", "--set", "data.batch_size=4"],
    "classify": ["--set", "train.epochs=1", "--set", "model.hidden_size=4", "--set", "data.val_fraction=0",
                 "--set", "train.progress=false"],
    "forecast": ["--horizon", "3", "--set", "train.epochs=1", "--set", "model.hidden_size=4",
                 "--set", "train.progress=false"],
}
# what each command expects, and how the error names each task's run
EXPECTS = {"generate": "lm", "translate": "seq2seq", "tag": "tag", "predict": "classify",
           "forecast": "forecast"}
RUN_OF = {"lm": ("a language-model run", "generate"), "seq2seq": ("a seq2seq (translation) run", "translate"),
          "tag": ("a tagging run", "tag"), "classify": ("a classification run", "predict"),
          "forecast": ("a forecasting run", "forecast")}


def write_data(tmp, rng: random.Random) -> dict:
    """Random inputs for every task (the LM gets real text), and a file for each command."""
    tmp.joinpath("lm.txt").write_text("".join(load_text().splitlines(keepends=True)[:40]), encoding="utf-8")
    pairs = [(f"{rng.choice(NOUNS)} {rng.choice(VERBS)}", f"{rng.choice(VERBS)} {rng.choice(NOUNS)}")
             for _ in range(18)]
    tmp.joinpath("pairs.tsv").write_text("".join(f"{s}\t{t}\t{'ABC'[i % 3]}\n"
                                                 for i, (s, t) in enumerate(pairs)))
    tmp.joinpath("tagged.txt").write_text("".join(f"the/at {rng.choice(NOUNS)}/nn {rng.choice(VERBS)}/vbd "
                                                  f"./.\n" for _ in range(12)))
    tmp.joinpath("plain.txt").write_text(f"the {rng.choice(NOUNS)} {rng.choice(VERBS)} .\n")
    rows = [(y, [rng.gauss(0 if y == "lo" else 3, 1) for _ in range(4)]) for y in ["lo", "hi"] * 6]
    tmp.joinpath("series.csv").write_text("".join(f"{y},{','.join(f'{v:.4f}' for v in x)}\n"
                                                  for y, x in rows))
    return {"lm": ["--data", tmp / "lm.txt"], "seq2seq": ["--data", tmp / "pairs.tsv"],
            "tag": ["--data", tmp / "tagged.txt"], "classify": ["--data", tmp / "series.csv"], "forecast": []}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each task, trained through the CLI; and what each train command printed."""
    tmp = tmp_path_factory.mktemp("runs")
    data = write_data(tmp, random.Random(0))
    printed = {}
    for task, options in TRAIN.items():
        result = invoke("train", task, *data[task], "--out", tmp / task, *options)
        assert result.exit_code == 0, result.output
        printed[task] = result
    return tmp, printed


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def use(command, run_dir, tmp):
    """``command`` on ``run_dir``, with the inputs it needs; files go to ``tmp/out.*``."""
    args = {"generate": ["--max-new-tokens", 3, "--strategy", "greedy"],
            "translate": ["the dog"],
            "tag": ["--data", tmp / "plain.txt", "--format", "text", "--out", tmp / "out.conll"],
            "predict": ["--data", tmp / "series.csv", "--out", tmp / "out.csv"],
            "forecast": ["--out", tmp / "out.csv"]}[command]
    for path in (tmp / "out.conll", tmp / "out.csv"):
        path.unlink(missing_ok=True)
    return invoke(command, run_dir, *args)


@pytest.mark.parametrize("task", list(TRAIN))
def test_every_train_command_prints_its_results_as_json(runs, task):
    tmp, printed = runs
    saved = json.loads((tmp / task / "results.json").read_text(encoding="utf-8"))
    shown = json.loads(printed[task].stdout)  # stdout alone: one JSON document
    if task == "forecast":  # the per-origin forecasts stay in the file
        assert {"forecast_BHQ", "naive_BH", "actual_BH"} <= set(saved) - set(shown)
        saved = {k: saved[k] for k in shown}
    assert shown == saved and printed[task].stdout.startswith("{\n  \"")
    assert printed[task].stderr == ""


@pytest.mark.parametrize("task", list(TRAIN))
@pytest.mark.parametrize("command", list(EXPECTS))
def test_commands_take_their_own_task_and_name_any_other(runs, command, task):
    tmp, _ = runs
    result = use(command, tmp / task, tmp)
    if task == EXPECTS[command]:
        assert result.exit_code == 0, result.output
        return
    expected, trains = RUN_OF[EXPECTS[command]][0], f"rnnkit train {EXPECTS[command]}"
    got, uses = RUN_OF[task]
    assert result.exit_code == 1
    assert result.output == (f"Error: RUN_DIR must hold {expected} (from `{trains}`), got '{tmp / task}': "
                             f"{got} (its config.json names task '{task}'), which `rnnkit {uses}` uses\n")
    assert not (tmp / "out.conll").exists() and not (tmp / "out.csv").exists()


def test_a_run_that_names_only_its_architecture(runs, tmp_path):
    """The demo's language model has no "task" in its config.json: its architecture decides."""
    tmp, _ = runs
    demo = tmp_path / "demo"
    shutil.copytree(tmp / "lm", demo)
    config = json.loads((demo / "config.json").read_text())
    del config["task"]
    (demo / "config.json").write_text(json.dumps({**config, "demo": {}}))
    assert use("generate", demo, tmp).exit_code == 0
    result = use("translate", demo, tmp)
    assert result.exit_code == 1
    assert (f"got '{demo}': a language-model run (its config.json names architecture 'language_model' "
            f"and no task), which `rnnkit generate` uses") in result.output


def test_a_classifier_ensemble(runs, tmp_path):
    """An ensemble's top level holds ensemble.json and its members, no config.json of its own."""
    tmp, _ = runs
    out = tmp_path / "ensemble"
    result = invoke("train", "classify", "--data", tmp / "series.csv", "--out", out, *TRAIN["classify"],
                    "--set", "ensemble=2")
    assert result.exit_code == 0, result.output
    assert use("predict", out, tmp).exit_code == 0
    result = use("generate", out, tmp)
    assert result.exit_code == 1
    assert (f"RUN_DIR must hold a language-model run (from `rnnkit train lm`), got '{out}': a classification "
            f"run (its ensemble.json lists classifier members), which `rnnkit predict` uses") in result.output


def test_a_directory_without_a_run_is_left_to_the_command(tmp_path):
    result = invoke("generate", tmp_path)
    assert result.exit_code == 1 and f"run directory {tmp_path} has no config.json" in result.output
