"""UCR/UEA classification with rnnkit's SequenceClassifier, next to published baselines.

    python benchmarks/classify_ucr.py [--datasets GunPoint ItalyPowerDemand] [--seeds 5]

The .ts files come from the aeon 1.6.0 wheel (BSD-3), fetched once with
``pip download --no-deps aeon==1.6.0`` into ~/.cache/rnnkit/wheels and read with zipfile
(aeon itself is never installed). Each data set is trained on its default TRAIN split with
no validation split and a fixed number of epochs, then scored on TEST; the mean and spread
over seeds go next to the 1-NN DTW and echo-state RNN columns of /work/shared/DATA.md
(UCR 2018 DataSummary.csv; hfawaz/dl-4-tsc). Results go to benchmarks/results/classify_ucr.json,
rewritten after every run so that a cut-short run keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

from rnnkit import config
from rnnkit.tasks.classify import ClassifyConfig, train_classifier

CACHE = Path.home() / ".cache" / "rnnkit"
WHEEL = "aeon-1.6.0-py3-none-any.whl"
RESULTS = Path(__file__).parent / "results" / "classify_ucr.json"

# published accuracy % (DATA.md): 1-NN DTW, echo-state RNN; the bar this benchmark aims at
PUBLISHED = {"GunPoint": (90.7, 96.1, 97.0), "ItalyPowerDemand": (95.0, 88.0, 96.0),
             "JapaneseVowels": (None, 96.5, 98.0)}
# per data set: --set overrides (model and budget), the first settings tried; not tuned on TEST
SETTINGS = {
    "GunPoint": ["model.cell=gru", "model.hidden_size=64", "model.bidirectional=true",
                 "model.pooling=attention", "train.epochs=150", "data.batch_size=10", "train.lr=3e-3"],
    "ItalyPowerDemand": ["model.cell=lstm", "model.hidden_size=32", "model.bidirectional=true",
                         "model.pooling=mean", "train.epochs=150", "data.batch_size=8", "train.lr=3e-3"],
    "JapaneseVowels": ["model.cell=lstm", "model.hidden_size=64", "model.bidirectional=true",
                       "model.pooling=mean", "train.epochs=60", "data.batch_size=16", "train.lr=3e-3"],
}


def extract(name: str) -> Path:
    """``<cache>/ucr/<name>/<name>_TRAIN.ts`` (and _TEST), unpacked from the aeon wheel."""
    target = CACHE / "ucr" / name
    if not (target / f"{name}_TEST.ts").is_file():
        wheel = CACHE / "wheels" / WHEEL
        if not wheel.is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "aeon==1.6.0",
                            "-d", str(wheel.parent)], check=True)
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for split in ("TRAIN", "TEST"):
                member = f"aeon/datasets/data/{name}/{name}_{split}.ts"
                (target / f"{name}_{split}.ts").write_bytes(zf.read(member))
    return target / f"{name}_TRAIN.ts"


def run_one(name: str, seed: int, extra: list[str]) -> dict:
    sets = [f"data.path={extract(name)}", "data.val_fraction=0", f"train.seed={seed}",
            "train.progress=false", *SETTINGS[name], *extra]
    cfg = config.load(ClassifyConfig, None, sets)
    with tempfile.TemporaryDirectory() as out:
        results = train_classifier(cfg, out)
    return {"seed": seed, "test_accuracy": results["test_accuracy"],
            "train_accuracy": results["train_accuracy"],
            "seconds": results["seconds"], "steps": results["steps"], "n_train": results["n_train"],
            "n_test": results["n_test"]}


def summary(name: str, runs: list[dict]) -> dict:
    accs = [100 * r["test_accuracy"] for r in runs]
    dtw, esn, bar = PUBLISHED[name]
    return {"dataset": name, "seeds_run": len(runs), "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else None, "min": min(accs), "max": max(accs),
            "one_nn_dtw": dtw, "echo_state_rnn": esn, "bar": bar, "meets_bar": statistics.fmean(accs) >= bar,
            "settings": SETTINGS[name], "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"device": "cpu", "threads": args.threads, "torch": torch.__version__,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "extra_sets": args.sets, "datasets": []}
    for name in args.datasets:
        runs: list[dict] = []
        for seed in range(args.seeds):
            runs.append(run_one(name, seed, args.sets))
            print(f"{name} seed {seed}: test {100 * runs[-1]['test_accuracy']:.2f}% "
                  f"({runs[-1]['seconds']:.0f} s)", flush=True)
            done = [d for d in report["datasets"] if d["dataset"] != name]
            report["datasets"] = [*done, summary(name, runs)]
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'data set':<18}{'rnnkit (mean ± sd, n)':<26}{'1-NN DTW':>9}{'ESN':>7}{'bar':>7}")
    for d in report["datasets"]:
        sd = "-" if d["std"] is None else f"{d['std']:.2f}"
        dtw = "-" if d["one_nn_dtw"] is None else f"{d['one_nn_dtw']:.1f}"
        print(f"{d['dataset']:<18}{d['mean']:6.2f} ± {sd:<5} (n={d['seeds_run']})      "
              f"{dtw:>9}{d['echo_state_rnn']:>7.1f}{d['bar']:>7.1f}")


if __name__ == "__main__":
    main()
