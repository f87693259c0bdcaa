"""rnnkit.train.metrics: JSONL + long CSV (+ TensorBoard), flushed per call, truncated on resume."""

import csv
import json
import math
import sys
import time

import pytest
import torch

from rnnkit.train.metrics import MetricsLog, read_metrics


def log_run(run_dir, steps, **kwargs):
    """A small run: train every 10 steps, val every 25; values differ per step and metric."""
    with MetricsLog(run_dir, **kwargs) as log:
        for step in steps:
            if step % 10 == 0:
                log.log(step, "train", {"loss": 4.0 / (1 + step), "lr": 1e-3 * (1 - step / 100)})
            if step % 25 == 0:
                log.log(step, "val", {"loss": 5.0 / (1 + step), "bpc": 7.0 / (1 + step)})


def without_time(rows):
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def csv_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.reader(f))


EXPECTED_0_TO_30 = [
    {"step": 0, "split": "train", "loss": 4.0, "lr": 1e-3},
    {"step": 0, "split": "val", "loss": 5.0, "bpc": 7.0},
    {"step": 10, "split": "train", "loss": 4.0 / 11, "lr": 1e-3 * 0.9},
    {"step": 20, "split": "train", "loss": 4.0 / 21, "lr": 1e-3 * 0.8},
    {"step": 25, "split": "val", "loss": 5.0 / 26, "bpc": 7.0 / 26},
    {"step": 30, "split": "train", "loss": 4.0 / 31, "lr": 1e-3 * 0.7},
]


def test_writes_jsonl_and_long_csv_and_reads_them_back(tmp_path):
    before = time.time()
    log_run(tmp_path / "run", range(31))
    rows = read_metrics(tmp_path / "run")
    assert without_time(rows) == EXPECTED_0_TO_30
    assert all(before <= row["time"] <= time.time() for row in rows)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[1]).keys() == {"step", "split", "time", "loss", "bpc"}
    table = csv_rows(tmp_path / "run")
    assert table[0] == ["step", "split", "name", "value"]
    assert table[1:5] == [["0", "train", "loss", "4.0"], ["0", "train", "lr", "0.001"],
                          ["0", "val", "loss", "5.0"], ["0", "val", "bpc", "7.0"]]
    assert len(table) == 1 + 2 * len(EXPECTED_0_TO_30)


def test_csv_alone_reads_back_the_same_rows(tmp_path):
    log_run(tmp_path, range(31))
    (tmp_path / "metrics.jsonl").unlink()
    assert read_metrics(tmp_path) == without_time(EXPECTED_0_TO_30)


def test_each_call_is_flushed(tmp_path):
    log = MetricsLog(tmp_path)
    log.log(3, "train", {"loss": torch.tensor(1.5)})  # a 0-dim tensor is a number too
    # read while the log is still open, as after a kill
    assert without_time(read_metrics(tmp_path)) == [{"step": 3, "split": "train", "loss": 1.5}]
    assert csv_rows(tmp_path)[1] == ["3", "train", "loss", "1.5"]
    log.close()
    log.close()  # twice is fine


def test_non_finite_values(tmp_path):
    with MetricsLog(tmp_path) as log:
        log.log(1, "train", {"loss": math.nan, "grad_norm": math.inf, "x": -math.inf})
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert (row["loss"], row["grad_norm"], row["x"]) == (None, None, None)  # strict JSON
    assert [r[3] for r in csv_rows(tmp_path)[1:]] == ["nan", "inf", "-inf"]
    back = read_metrics(tmp_path)[0]
    assert math.isnan(back["loss"]) and math.isnan(back["grad_norm"])
    (tmp_path / "metrics.jsonl").unlink()
    back = read_metrics(tmp_path)[0]
    assert math.isnan(back["loss"]) and back["grad_norm"] == math.inf and back["x"] == -math.inf


def test_resume_drops_rows_after_the_checkpoint_then_appends(tmp_path):
    log_run(tmp_path, range(51))  # the first run got to step 50, its checkpoint was at 20
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 50, "spl')  # and it was killed mid-write
    log_run(tmp_path, range(21, 31), resume_step=20)
    assert without_time(read_metrics(tmp_path)) == EXPECTED_0_TO_30
    table = csv_rows(tmp_path)
    assert table.count(["step", "split", "name", "value"]) == 1
    assert [int(r[0]) for r in table[1:]] == [0, 0, 0, 0, 10, 10, 20, 20, 25, 25, 30, 30]
    (tmp_path / "metrics.jsonl").unlink()
    assert read_metrics(tmp_path) == without_time(EXPECTED_0_TO_30)


def test_without_resume_step_appends(tmp_path):
    log_run(tmp_path, range(21))
    log_run(tmp_path, range(21, 31))
    assert without_time(read_metrics(tmp_path)) == EXPECTED_0_TO_30


def test_torn_last_line_is_skipped_on_read(tmp_path):
    log_run(tmp_path, range(31))
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 40, "split": "tr')
    assert without_time(read_metrics(tmp_path)) == EXPECTED_0_TO_30


def test_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_run(tmp_path, range(31), tensorboard=True)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["train/loss", "train/lr", "val/bpc", "val/loss"]
    assert [(e.step, e.value) for e in acc.Scalars("val/bpc")] == [
        (0, pytest.approx(7.0)), (25, pytest.approx(7.0 / 26))]


def test_tensorboard_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[tensorboard\]'"):
        MetricsLog(tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()


def test_disabled_writes_nothing(tmp_path):
    log_run(tmp_path / "run", range(31), enabled=False, tensorboard=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("step, split, values, message", [
    (-1, "train", {"loss": 1.0}, r"step must be an int >= 0, got -1"),
    (1.0, "train", {"loss": 1.0}, r"step must be an int >= 0, got 1.0"),
    (True, "train", {"loss": 1.0}, r"step must be an int >= 0, got True"),
    (1, "", {"loss": 1.0}, r"split must be a non-empty string .*, got ''"),
    (1, "train", {"step": 1.0}, r"metric names must be non-empty strings other than .*, got 'step'"),
    (1, "train", {"time": 1.0}, r"other than .*, got 'time'"),
    (1, "train", {"loss": "low"}, r"metric 'loss' must be a number, got 'low'"),
    (1, "train", {"loss": None}, r"metric 'loss' must be a number, got None"),
])
def test_log_errors(tmp_path, step, split, values, message):
    with MetricsLog(tmp_path) as log, pytest.raises(ValueError, match=message):
        log.log(step, split, values)


def test_other_errors(tmp_path):
    with pytest.raises(ValueError, match=r"resume_step must be an int >= 0 or None, got -1"):
        MetricsLog(tmp_path, resume_step=-1)
    log = MetricsLog(tmp_path)
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.log(1, "train", {"loss": 1.0})
    with pytest.raises(FileNotFoundError, match="run_dir must hold metrics.jsonl or metrics.csv"):
        read_metrics(tmp_path / "nowhere")
    (tmp_path / "ensemble" / "member0").mkdir(parents=True)
    (tmp_path / "ensemble" / "member0" / "metrics.csv").write_text("step,split,name,value\n")
    with pytest.raises(FileNotFoundError, match=r"an ensemble's top level: .*, e.g. .*member0\)"):
        read_metrics(tmp_path / "ensemble")


@pytest.mark.parametrize("line", ['{"step": 1, "split": "train", "loss": 1.0}\nnot json\n',
                                  '[1, 2]\n', '{"step": "1", "split": "train"}\n',
                                  '{"step": 1, "split": "train", "loss": "x"}\n'])
def test_corrupt_jsonl_is_an_error(tmp_path, line):
    (tmp_path / "metrics.jsonl").write_text(line)
    with pytest.raises(ValueError, match=r"metrics.jsonl line \d must be a JSON object"):
        read_metrics(tmp_path)


def test_corrupt_csv_is_an_error(tmp_path):
    (tmp_path / "metrics.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="must start with the header step,split,name,value"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.csv").write_text("step,split,name,value\n1,train,loss\n")
    with pytest.raises(ValueError, match="line 2 must be step,split,name,value"):
        read_metrics(tmp_path)


def test_tensorboard_resume_hides_the_dropped_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_run(tmp_path, range(51), tensorboard=True)
    log_run(tmp_path, range(21, 31), tensorboard=True, resume_step=20)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [0, 10, 20, 30]
    assert [e.step for e in acc.Scalars("val/loss")] == [0, 25]
