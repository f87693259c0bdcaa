"""rnnkit.config: TOML in, JSON out, --set overrides, and an error for every way in."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from typing import Literal

import click
import pytest
from click.testing import CliRunner

from rnnkit.cli._config import config_options, resolve_config
from rnnkit.config import from_dict, load, load_json, save_json, to_dict, to_toml


@dataclass(frozen=True, kw_only=True)
class Model:
    cell: Literal["lstm", "gru"] = "lstm"
    hidden_size: int = 8
    dropout: float = 0.0
    layer_sizes: tuple[int, ...] = (4, 4)

    def __post_init__(self):
        if self.hidden_size <= 0:
            raise ValueError(f"hidden_size must be > 0, got {self.hidden_size}")


@dataclass(frozen=True, kw_only=True)
class Train:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    max_steps: int | None = None
    amp: bool = False


@dataclass(frozen=True, kw_only=True)
class Run:
    name: str
    seed: int = 0
    tags: tuple[str, ...] = ()
    # the parent's default differs from Model's own: a [model] table must start from it
    model: Model = field(default_factory=lambda: Model(hidden_size=64))
    train: Train = field(default_factory=Train)


TOML = """
name = "char-lm"
tags = ["kjv", "small"]

[model]
cell = "gru"
dropout = 1          # an int where a float is expected is fine

[train]
lr = 3e-4
betas = [0.8, 0.99]
max_steps = 500
"""

EXPECTED = Run(name="char-lm", tags=("kjv", "small"),
               model=Model(cell="gru", hidden_size=64, dropout=1.0),
               train=Train(lr=3e-4, betas=(0.8, 0.99), max_steps=500))


@pytest.fixture
def toml_path(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(TOML)
    return path


# -- round trips ---------------------------------------------------------------------------


def test_toml_to_object_to_json_to_object(toml_path, tmp_path):
    cfg = load(Run, toml_path)
    assert cfg == EXPECTED
    assert isinstance(cfg.model.dropout, float) and isinstance(cfg.tags, tuple)
    save_json(cfg, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["tags"] == ["kjv", "small"]
    assert load_json(Run, tmp_path / "config.json") == cfg
    assert from_dict(Run, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_to_toml_reads_back():
    cfg = dataclasses.replace(EXPECTED, name='quote " backslash \\ newline \n del \x7f é')
    text = to_toml(cfg)
    assert "# max_steps = none" not in text and "[model]" in text and "[train]" in text
    assert from_dict(Run, tomllib.loads(text)) == cfg


def test_to_toml_writes_none_as_a_comment():
    text = to_toml(Run(name="x"))
    assert "# max_steps = none" in text
    assert from_dict(Run, tomllib.loads(text)) == Run(name="x")


def test_configs_are_frozen():
    cfg = from_dict(Run, {"name": "x"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.hidden_size = 1
    hash(cfg)  # tuples, not lists: the whole config is hashable


# -- overrides -------------------------------------------------------------------------------


@pytest.mark.parametrize("item, path, value", [
    ("seed=7", ("seed",), 7),
    ("name=a=b", ("name",), "a=b"),  # only the first '=' splits
    ("tags=x, y", ("tags",), ("x", "y")),
    ("tags=", ("tags",), ()),
    ("model.cell=gru", ("model", "cell"), "gru"),
    ("model.dropout=0.25", ("model", "dropout"), 0.25),
    ("model.layer_sizes=1,2,3", ("model", "layer_sizes"), (1, 2, 3)),
    ("train.lr=3e-4", ("train", "lr"), 3e-4),
    ("train.betas=0.5,0.6", ("train", "betas"), (0.5, 0.6)),
    ("train.max_steps=100", ("train", "max_steps"), 100),
    ("train.max_steps=None", ("train", "max_steps"), None),
    ("train.max_steps=null", ("train", "max_steps"), None),
    *[(f"train.amp={raw}", ("train", "amp"), True) for raw in ("true", "1", "yes", "TRUE")],
    *[(f"train.amp={raw}", ("train", "amp"), False) for raw in ("false", "0", "no", "No")],
])
def test_override_parses_against_the_annotation(item, path, value):
    cfg = load(Run, None, ["name=x", item])
    for part in path:
        cfg = getattr(cfg, part)
    assert cfg == value and type(cfg) is type(value)


def test_precedence_defaults_then_file_then_overrides(toml_path):
    cfg = load(Run, toml_path, ["train.lr=0.1"], defaults={"seed": 5, "train.lr": 0.5, "name": "cli"})
    assert (cfg.name, cfg.seed, cfg.train.lr) == ("char-lm", 5, 0.1)


def test_a_section_starts_from_the_parents_default():
    assert load(Run, None, ["name=x", "model.cell=gru"]).model == Model(cell="gru", hidden_size=64)
    assert from_dict(Run, {"name": "x", "model": {}}).model.hidden_size == 64


def test_nested_instances_are_accepted_as_values():
    cfg = from_dict(Run, {"name": "x", "model": Model(hidden_size=3)})
    assert cfg.model == Model(hidden_size=3)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "sede": 1}, r"unknown Run field\(s\) \['sede'\]; allowed: \['model', 'name', 'seed'"),
    ({"name": "x", "model": {"hiden": 1}}, r"unknown Model field\(s\) \['model.hiden'\]; allowed"),
    ({"name": 3}, r"name must be str, got 3"),
    ({"name": "x", "seed": True}, r"seed must be int, got True"),
    ({"name": "x", "seed": 1.0}, r"seed must be int, got 1.0"),
    ({"name": "x", "train": {"lr": "fast"}}, r"train.lr must be float, got 'fast'"),
    ({"name": "x", "train": {"amp": 1}}, r"train.amp must be a bool .*, got 1"),
    ({"name": "x", "model": {"cell": "rnn"}}, r"model.cell must be one of \['lstm', 'gru'\], got 'rnn'"),
    ({"name": "x", "train": {"max_steps": "10"}}, r"train.max_steps must be int or None, got '10'"),
    ({"name": "x", "train": {"betas": [0.9]}}, r"train.betas must be a list \[float, float\], got \[0.9\]"),
    ({"name": "x", "tags": "kjv"}, r"tags must be a list of str, got 'kjv'"),
    ({"name": "x", "model": {"layer_sizes": [1, "2"]}}, r"model.layer_sizes\[1\] must be int, got '2'"),
    ({"name": "x", "model": 3}, r"model must be a table of Model fields, got 3"),
    ({}, r"Run is missing required field\(s\) \['name'\]"),
    ({"name": "x", "model": {"hidden_size": 0}}, r"model: hidden_size must be > 0, got 0"),
])
def test_from_dict_errors_name_key_expectation_and_value(data, message):
    with pytest.raises(ValueError, match=message):
        from_dict(Run, data)


@pytest.mark.parametrize("item, message", [
    ("seed", r"override must be KEY=VALUE .*, got 'seed'"),
    ("=3", r"override must be KEY=VALUE .*, got '=3'"),
    ("sede=3", r"unknown key 'sede': Run has no field 'sede'; allowed: \['model', 'name'"),
    ("model.hiden=3", r"unknown key 'model.hiden': Model has no field 'hiden'"),
    ("seed.x=3", r"unknown key 'seed.x': seed is int, not a section"),
    ("model=big", r"model is a section of Model fields; set one of them as model.NAME=VALUE"),
    ("seed=1.5", r"seed must be int, got '1.5'"),
    ("train.lr=fast", r"train.lr must be float, got 'fast'"),
    ("train.amp=maybe", r"train.amp must be a bool \(true/false/1/0/yes/no\), got 'maybe'"),
    ("train.max_steps=lots", r"train.max_steps must be int or None, got 'lots'"),
    ("model.cell=rnn", r"model.cell must be one of \['lstm', 'gru'\], got 'rnn'"),
    ("train.betas=0.9", r"train.betas must be a list \[float, float\] \(comma-separated\), got '0.9'"),
    ("model.hidden_size=-4", r"model: hidden_size must be > 0, got -4"),
])
def test_override_errors(item, message):
    with pytest.raises(ValueError, match=message):
        load(Run, None, ["name=x", item])


@pytest.mark.parametrize("content, message", [
    (None, r"config file must be an existing file, got '.*missing.toml'"),
    (b"name = \xff\n", r"config file .*bad.toml must be UTF-8 text, got an undecodable byte at offset 7"),
    (b"name = \n", r"config file .*bad.toml must be valid TOML, got an error: .*line 1"),
    (b"name = 'x'\nseed = 'one'\n", r"config file .*bad.toml: seed must be int, got 'one'"),
    (b"name = 'x'\n[modle]\n", r"config file .*bad.toml: unknown Run field\(s\) \['modle'\]"),
])
def test_toml_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / ("missing.toml" if content is None else "bad.toml")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load(Run, path)


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ValueError, match="config file must be an existing file"):
        load(Run, tmp_path)


def test_json_file_errors_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"config file .*config.json must be valid JSON"):
        load_json(Run, path)
    path.write_text('{"name": "x", "seed": "1"}')
    with pytest.raises(ValueError, match=r"config file .*config.json: seed must be int, got '1'"):
        load_json(Run, path)


def test_programming_errors_are_type_errors():
    @dataclass(frozen=True, kw_only=True)
    class Odd:
        weights: dict = field(default_factory=dict)

    with pytest.raises(TypeError, match="cannot check the annotation"):
        from_dict(Odd, {"weights": {}})
    with pytest.raises(TypeError, match="cls must be a dataclass type, got Run"):
        from_dict(Run(name="x"), {})


# -- the Click options --------------------------------------------------------------------


@click.command()
@click.option("--seed", type=int)
@config_options
def command(config, sets, seed):
    cfg = resolve_config(Run, config, sets, seed=seed, name="cli")
    click.echo(repr(cfg))


def test_cli_options_resolve_in_order(toml_path):
    result = CliRunner().invoke(command, ["--seed", "3", "--config", str(toml_path),
                                          "--set", "train.lr=0.1", "--set", "model.cell=lstm"])
    assert result.exit_code == 0, result.output
    # the command's options (seed, name) win over the file; --set wins over both
    assert result.output.strip() == repr(dataclasses.replace(
        EXPECTED, seed=3, name="cli", train=dataclasses.replace(EXPECTED.train, lr=0.1),
        model=dataclasses.replace(EXPECTED.model, cell="lstm")))


def test_cli_none_means_not_given():
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == repr(Run(name="cli"))


def test_cli_print_config_prints_toml_and_exits(toml_path):
    result = CliRunner().invoke(command, ["--print-config", "--config", str(toml_path)])
    assert result.exit_code == 0, result.output
    assert "Run(" not in result.output  # the command body never ran
    assert from_dict(Run, tomllib.loads(result.output)) == dataclasses.replace(EXPECTED, name="cli")


def test_cli_errors_are_click_exceptions(tmp_path):
    result = CliRunner().invoke(command, ["--set", "seed=abc"])
    assert result.exit_code == 1
    assert "Error: seed must be int, got 'abc'" in result.output
    result = CliRunner().invoke(command, ["--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "config file must be an existing file" in result.output


def test_cli_help_lists_the_options():
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert result.output.index("--config") < result.output.index("--set") < result.output.index(
        "--print-config")
