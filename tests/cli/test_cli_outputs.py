"""What the commands do with their output paths and with a run that goes wrong: a path that
cannot be written is refused before any work, an output that is the input is refused, a
diverging run ends in one line, and --overwrite leaves no report of the old model."""

import json

import pytest
from click.testing import CliRunner

from rnnkit._io import write_atomic
from rnnkit.cli import cli
from tests.cli.test_forecast_commands import FAST

UNWRITABLE = "/proc/rnnkit-test/x.csv"  # a directory that exists nowhere
READ_ONLY_FS = "/proc/x.csv"  # /proc takes no new files, even as root


def train_forecast(out, *extra):
    return CliRunner().invoke(cli, ["train", "forecast", "--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("forecast") / "run"
    result = train_forecast(out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("args", [
    ["forecast", "{run}", "--out", READ_ONLY_FS],
    ["forecast", "{run}", "--plot", "/proc/x.png"],
    ["plot", "{run}", "--out", "/proc/x.png"],
    ["bench", "--quick", "layers", "--json", READ_ONLY_FS],
    ["diagnose", "gradients", "--json", READ_ONLY_FS],
], ids=["forecast-out", "forecast-plot", "plot", "bench-json", "diagnose-json"])
def test_an_output_that_cannot_be_written_is_refused_first(run, args, tmp_path):
    result = CliRunner().invoke(cli, [a.format(run=run) for a in args])
    assert result.exit_code == 2, result.output
    assert "cannot create a file in '/proc'" in result.output and "Traceback" not in result.output
    assert ".tmp" not in result.output


def test_atomic_writes_name_the_file_asked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*/missing/x.csv'$"):
        write_atomic(tmp_path / "missing" / "x.csv", b"1")
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_the_input_is_refused(run, tmp_path):
    """rnnkit forecast reads the run's training file when --data is not given."""
    series = json.loads((run / "results.json").read_text())["path"]
    copy = tmp_path / "series.csv"
    copy.write_bytes(open(series, "rb").read())
    before = copy.read_bytes()
    result = CliRunner().invoke(cli, ["forecast", str(run), "--data", str(copy), "--out", str(copy)])
    assert result.exit_code == 2 and "must not be the series file" in result.output, result.output
    assert copy.read_bytes() == before


def test_a_diverging_run_ends_in_one_line_and_overwrite_drops_old_reports(run, tmp_path):
    out = tmp_path / "run"
    assert train_forecast(out).exit_code == 0
    (out / "curves.png").write_bytes(b"an old plot")
    result = train_forecast(out, "--overwrite", "--set", "train.optimizer=sgd", "--set", "train.lr=1e300",
                            "--set", "train.clip_norm=1e30")
    assert result.exit_code == 1 and result.output.startswith("Error: loss is ")
    assert "Traceback" not in result.output and "Lower the learning rate" in result.output
    assert not (out / "results.json").exists() and not (out / "curves.png").exists()
    assert not (out / "model.safetensors").exists()


def test_train_forecast_prints_results_json_but_the_per_origin_forecasts(run):
    saved = json.loads((run / "results.json").read_text())
    result = train_forecast(run.parent / "again")
    shown = json.loads(result.output)
    assert set(saved) - set(shown) == {"forecast_BHQ", "naive_BH", "actual_BH"}
    assert "interval_scale" in shown and "n_windows" in shown


def test_bench_json_under_a_file_is_refused_first(tmp_path):
    (tmp_path / "a_file").write_text("x")
    json_path = tmp_path / "a_file" / "r.json"
    result = CliRunner().invoke(cli, ["bench", "--quick", "scan", "--json", str(json_path)])
    assert result.exit_code == 2 and "its directories cannot be made" in result.output


def test_fit_keeps_a_users_report_where_no_run_was_replaced(tmp_path):
    """Only an old run's reports go with it (--overwrite); a new directory's files stay."""
    import torch

    from rnnkit.models import LanguageModel, LMConfig
    from rnnkit.train import StreamLoader, TrainConfig, fit

    (tmp_path / "results.json").write_text("{}")
    model = LanguageModel(LMConfig(vocab_size=8, embed_size=4, hidden_size=4, num_layers=1))
    ids = torch.randint(0, 8, (100,), generator=torch.Generator().manual_seed(0))
    fit(model, StreamLoader(ids, batch_size=2, bptt=4), TrainConfig(max_steps=1, progress=False),
        run_dir=tmp_path)
    assert (tmp_path / "results.json").read_text() == "{}"
