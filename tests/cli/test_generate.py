"""``rnnkit generate``: greedy, seeded sampling and beam search from a tiny trained run, and
clear errors for a bad prompt, bad options and a directory that holds no run."""

import random

import pytest
from click.testing import CliRunner

from rnnkit.cli import cli
from rnnkit.demo.corpus import load_text
from rnnkit.tasks.lm import LMDataConfig, LMModelConfig, LMTaskConfig, train_lm
from rnnkit.train import TrainConfig


@pytest.fixture
def run(tmp_path):
    cfg = LMTaskConfig(data=LMDataConfig(val_fraction=0.1, batch_size=4),
                       model=LMModelConfig(embed_size=8, hidden_size=16),
                       train=TrainConfig(bptt=16, max_steps=6, lr=1e-2))
    train_lm(cfg, tmp_path / "run", text="".join(load_text().splitlines(keepends=True)[:40]))
    return tmp_path / "run"


def invoke(*args):
    return CliRunner().invoke(cli, ["generate", *map(str, args)])


def test_greedy_is_repeatable_and_starts_with_the_prompt(run):
    first = invoke(run, "--prompt", "And God", "--strategy", "greedy", "--max-new-tokens", 25)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("And God") and len(first.output) == len("And God") + 25 + 1
    assert invoke(run, "--prompt", "And God", "--strategy", "greedy", "--max-new-tokens", 25).output \
        == first.output


def test_sampling_follows_the_seed(run):
    args = (run, "--prompt", "In", "--max-new-tokens", 40, "--temperature", 0.8, "--top-p", 0.9)
    a, b, c = invoke(*args, "--seed", 1), invoke(*args, "--seed", 1), invoke(*args, "--seed", 2)
    assert a.exit_code == b.exit_code == c.exit_code == 0
    assert a.output == b.output != c.output


def test_options_the_strategy_does_not_read_are_named(run):
    greedy = invoke(run, "--prompt", "In", "--strategy", "greedy", "--max-new-tokens", 10)
    warned = invoke(run, "--prompt", "In", "--strategy", "greedy", "--max-new-tokens", 10,
                    "--temperature", 0.5, "--top-k", 3)
    assert warned.exit_code == 0 and warned.stdout == greedy.stdout
    assert warned.stderr == "warning: --temperature, --top-k have no effect with --strategy greedy\n"
    sampled = invoke(run, "--prompt", "In", "--max-new-tokens", 10, "--beam", 3)
    assert sampled.stderr == "warning: --beam-width has no effect with --strategy sample\n"
    assert greedy.stderr == ""


def test_beam_of_width_1_prints_the_greedy_text(run):
    beam = invoke(run, "--prompt", "And", "--strategy", "beam", "--beam-width", 1, "--max-new-tokens", 15)
    greedy = invoke(run, "--prompt", "And", "--strategy", "greedy", "--max-new-tokens", 15)
    assert beam.exit_code == 0 and beam.output == greedy.output


def test_beam_is_another_name_of_beam_width(run):
    """`translate` calls it --beam: both names set the one option, as in `translate`."""
    text = "".join(load_text().splitlines(keepends=True)[:40])
    rng = random.Random(0)
    for start in rng.sample(range(len(text) - 12), 3):
        prompt, width = text[start: start + rng.randint(1, 12)], rng.randint(2, 4)
        args = (run, "--prompt", prompt, "--strategy", "beam", "--max-new-tokens", 8)
        long = invoke(*args, "--beam-width", width)
        assert long.exit_code == 0, long.output
        assert invoke(*args, "--beam", width).output == long.output == \
            invoke(*args, "--set", f"beam_width={width}").output
    help_text = invoke("--help").output
    assert "--beam-width, --beam INTEGER" in help_text
    assert "Tokens to generate after the prompt (its own tokens do not count)" in " ".join(help_text.split())


def test_prompt_with_an_unknown_character(run):
    result = invoke(run, "--prompt", "And Gød")
    assert result.exit_code == 1
    assert "prompt must use only the" in result.output and "characters of the training text" in result.output
    assert "got 'ø' (U+00F8) at position 5" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--top-p", "2"], "top_p must be a number in (0, 1], got 2.0"),
    (["--temperature", "0"], "temperature must be a finite number > 0"),
    (["--seed", str(2**64)], "seed must be an int in [0, 2**64), got 18446744073709551616"),
    (["--beam-width", "0", "--strategy", "beam"], "beam_width must be an int >= 1, got 0"),
    (["--prompt", ""], "prompt must be a non-empty string"),
    (["--set", "topk=3"], "unknown key 'topk': GenerateConfig has no field 'topk'"),
])
def test_bad_options(run, args, message):
    result = invoke(run, *args)
    assert result.exit_code == 1
    assert message in result.output


def test_a_directory_without_a_run(tmp_path):
    result = invoke(tmp_path)
    assert result.exit_code == 1
    assert f"run directory {tmp_path} has no config.json" in result.output


def test_print_config(run):
    result = invoke(run, "--strategy", "beam", "--print-config")
    assert result.exit_code == 0 and 'strategy = "beam"' in result.output
