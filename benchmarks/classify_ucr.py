"""UCR/UEA classification with rnnkit's SequenceClassifier, next to published baselines.

    python benchmarks/classify_ucr.py [--datasets GunPoint ItalyPowerDemand] [--seeds 5]

The .ts files come from the aeon 1.6.0 wheel (BSD-3), fetched once with
``pip download --no-deps aeon==1.6.0`` into ~/.cache/rnnkit/wheels and read with zipfile
(aeon itself is never installed). For each data set a few candidate settings (CANDIDATES)
are first compared on stratified validation splits of TRAIN only; the winner is then trained
on all of TRAIN (no validation split, a fixed number of epochs) and scored on TEST once per
seed (--no-select skips the search and uses the first candidate); the mean and spread
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
# per data set: a handful of candidate --set lists (model and budget); the first is the
# untuned default. With --select (the default) each candidate is scored on stratified
# validation splits of TRAIN only (data.val_fraction of each class held out, --val-repeats
# different splits); the best mean validation accuracy wins (ties: the earlier candidate),
# and only the winner is then trained on all of TRAIN and scored on TEST. TEST never
# informs the choice.
_BASE = {
    "GunPoint": ["model.cell=gru", "model.hidden_size=64", "model.bidirectional=true",
                 "model.pooling=attention", "train.epochs=150", "data.batch_size=10", "train.lr=3e-3"],
    "ItalyPowerDemand": ["model.cell=lstm", "model.hidden_size=32", "model.bidirectional=true",
                         "model.pooling=mean", "train.epochs=150", "data.batch_size=8", "train.lr=3e-3"],
    "JapaneseVowels": ["model.cell=lstm", "model.hidden_size=64", "model.bidirectional=true",
                       "model.pooling=mean", "train.epochs=60", "data.batch_size=16", "train.lr=3e-3"],
}
_COSINE = ["train.schedule=cosine", "train.warmup_steps=20"]
# LSTM-FCN (Karim et al. 2017): Wang et al.'s FCN branch beside the recurrent one, added 2026-11-28
_FCN = ["model.conv_channels=128,256,128", "model.conv_kernels=8,5,3"]
# the paper's recurrent branch: 8 unidirectional LSTM cells, final state, dropout 0.8
_PAPER_LSTM = ["model.cell=lstm", "model.hidden_size=8", "model.bidirectional=false", "model.pooling=last",
               "model.dropout=0.8"]
CANDIDATES: dict[str, dict[str, list[str]]] = {
    "GunPoint": {
        "base": _BASE["GunPoint"],
        "base+cosine": [*_BASE["GunPoint"], *_COSINE],
        "lstm64-mean+cosine": [*_BASE["GunPoint"], "model.cell=lstm", "model.pooling=mean", *_COSINE],
    },
    "ItalyPowerDemand": {
        "base": _BASE["ItalyPowerDemand"],
        "base+cosine": [*_BASE["ItalyPowerDemand"], *_COSINE],
        "gru64+cosine": [*_BASE["ItalyPowerDemand"], "model.cell=gru", "model.hidden_size=64", *_COSINE],
        "lstm64-attention+cosine+dropout0.2": [*_BASE["ItalyPowerDemand"], "model.hidden_size=64",
                                               "model.pooling=attention", "model.dropout=0.2", *_COSINE],
        # input noise (jitter) on the standardised series, added 2026-11-28
        **{f"gru64+cosine+noise{n}": [*_BASE["ItalyPowerDemand"], "model.cell=gru", "model.hidden_size=64",
                                      *_COSINE, f"model.input_noise={n}"] for n in (0.1, 0.3)},
        "lstm32-fcn+cosine": [*_BASE["ItalyPowerDemand"], *_COSINE, *_FCN],
        "gru64-fcn+cosine": [*_BASE["ItalyPowerDemand"], "model.cell=gru", "model.hidden_size=64", *_COSINE,
                             *_FCN],
        "lstm8-fcn+cosine+dropout0.8": [*_BASE["ItalyPowerDemand"], *_PAPER_LSTM, *_COSINE, *_FCN],
        # second round (after the three above lost validation to gru64+cosine): the paper's
        # learning rate with a longer budget, and an average of 5 members
        "lstm8-fcn+cosine+dropout0.8+300ep+lr1e-3": [*_BASE["ItalyPowerDemand"], *_PAPER_LSTM, *_COSINE,
                                                     *_FCN, "train.epochs=300", "train.lr=1e-3"],
        "lstm8-fcn+cosine+dropout0.8+ensemble5": [*_BASE["ItalyPowerDemand"], *_PAPER_LSTM, *_COSINE, *_FCN,
                                                  "ensemble=5"],
    },
    "JapaneseVowels": {
        "base": _BASE["JapaneseVowels"],
        "base+cosine": [*_BASE["JapaneseVowels"], *_COSINE],
        "gru64+cosine": [*_BASE["JapaneseVowels"], "model.cell=gru", *_COSINE],
        "lstm128+cosine+dropout0.2+100ep": [*_BASE["JapaneseVowels"], "model.hidden_size=128",
                                            "model.dropout=0.2", "train.epochs=100", *_COSINE],
        **{f"lstm128+cosine+dropout0.2+100ep+noise{n}": [
            *_BASE["JapaneseVowels"], "model.hidden_size=128", "model.dropout=0.2", "train.epochs=100",
            *_COSINE, f"model.input_noise={n}"] for n in (0.1, 0.3)},
        "lstm64-fcn+cosine": [*_BASE["JapaneseVowels"], *_COSINE, *_FCN],
        "lstm128-fcn+cosine+dropout0.2+100ep": [*_BASE["JapaneseVowels"], "model.hidden_size=128",
                                                "model.dropout=0.2", "train.epochs=100", *_COSINE, *_FCN],
        "lstm8-fcn+cosine+dropout0.8+100ep": [*_BASE["JapaneseVowels"], *_PAPER_LSTM, "train.epochs=100",
                                              *_COSINE, *_FCN],
    },
}
SETTINGS = {name: next(iter(c.values())) for name, c in CANDIDATES.items()}


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


def run_one(name: str, seed: int, extra: list[str], settings: list[str] | None = None,
            val_fraction: float = 0.0) -> dict:
    """One training run; ``val_fraction`` > 0 holds out a stratified part of TRAIN (the
    split is drawn from ``seed``) and reports its accuracy as ``val_accuracy``."""
    sets = [f"data.path={extract(name)}", f"data.val_fraction={val_fraction}", f"train.seed={seed}",
            "train.progress=false", *(SETTINGS[name] if settings is None else settings), *extra]
    cfg = config.load(ClassifyConfig, None, sets)
    with tempfile.TemporaryDirectory() as out:
        results = train_classifier(cfg, out)
    if val_fraction > 0:
        return {"seed": seed, "val_accuracy": results["val_accuracy"], "val_loss": results["val_loss"],
                "n_val": results["n_val"],
                "train_accuracy": results["train_accuracy"], "seconds": results["seconds"]}
    return {"seed": seed, "test_accuracy": results["test_accuracy"],
            "train_accuracy": results["train_accuracy"],
            "seconds": results["seconds"], "steps": results["steps"], "n_train": results["n_train"],
            "n_test": results["n_test"]}


def select(name: str, extra: list[str], repeats: int, fraction: float, log: dict) -> str:
    """The candidate with the best mean validation accuracy on splits of TRAIN (ties: the
    earlier one); fills ``log`` as it goes so that a cut-short run keeps what it finished."""
    log.update({"method": f"stratified hold-out of {fraction:.0%} of each TRAIN class, {repeats} "
                          f"splits (split and init seed = 100+r), trained on the rest; TEST unused",
                "candidates": []})
    best, best_acc = None, -1.0
    for label, settings in CANDIDATES[name].items():
        runs = [run_one(name, 100 + r, extra, settings, fraction) for r in range(repeats)]
        accs = [100 * r["val_accuracy"] for r in runs]
        log["candidates"].append({"name": label, "settings": settings, "val_mean": statistics.fmean(accs),
                                  "val_accuracies": accs, "n_val": runs[0]["n_val"],
                                  "seconds": [r["seconds"] for r in runs]})
        print(f"{name} {label}: val {statistics.fmean(accs):.2f}% {[round(a, 1) for a in accs]}", flush=True)
        if statistics.fmean(accs) > best_acc + 1e-9:
            best, best_acc = label, statistics.fmean(accs)
        yield_report()
    log["chosen"] = best
    return best


def yield_report() -> None:
    if _REPORT:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(_REPORT, indent=2) + "\n")


_REPORT: dict = {}


def summary(name: str, runs: list[dict]) -> dict:
    accs = [100 * r["test_accuracy"] for r in runs]
    dtw, esn, bar = PUBLISHED[name]
    chosen = _REPORT.get("selection", {}).get(name, {}).get("chosen")
    return {"dataset": name, "chosen_candidate": chosen or "first (no search)",
            "seeds_run": len(runs), "mean": statistics.fmean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else None, "min": min(accs), "max": max(accs),
            "one_nn_dtw": dtw, "echo_state_rnn": esn, "bar": bar, "meets_bar": statistics.fmean(accs) >= bar,
            "settings": SETTINGS[name], "runs": runs}


def main() -> None:
    global RESULTS  # --out redirects yield_report
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-select", dest="select", action="store_false",
                        help="skip the validation search; use each data set's first candidate")
    parser.add_argument("--reuse-selection", type=Path, metavar="JSON",
                        help="take each data set's chosen candidate from an earlier run's JSON "
                             "instead of searching again (its selection is copied into the report)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write")
    parser.add_argument("--val-repeats", type=int, default=3)
    parser.add_argument("--val-fraction", type=float, default=0.3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = _REPORT
    report.update({"device": "cpu", "threads": args.threads, "torch": torch.__version__,
                   "started": time.strftime("%Y-%m-%d %H:%M:%S"), "extra_sets": args.sets,
                   "selection": {}, "datasets": []})
    RESULTS = args.out
    earlier = json.loads(args.reuse_selection.read_text())["selection"] if args.reuse_selection else {}
    for name in args.datasets:
        if name in earlier:
            report["selection"][name] = {**earlier[name], "reused_from": str(args.reuse_selection)}
            SETTINGS[name] = CANDIDATES[name][earlier[name]["chosen"]]
        elif args.select:
            report["selection"][name] = {}
            chosen = select(name, args.sets, args.val_repeats, args.val_fraction, report["selection"][name])
            SETTINGS[name] = CANDIDATES[name][chosen]
        runs: list[dict] = []
        for seed in range(args.seeds):
            runs.append(run_one(name, seed, args.sets))
            print(f"{name} seed {seed}: test {100 * runs[-1]['test_accuracy']:.2f}% "
                  f"({runs[-1]['seconds']:.0f} s)", flush=True)
            done = [d for d in report["datasets"] if d["dataset"] != name]
            report["datasets"] = [*done, summary(name, runs)]
            yield_report()
    print(f"\n{'data set':<18}{'rnnkit (mean ± sd, n)':<26}{'1-NN DTW':>9}{'ESN':>7}{'bar':>7}")
    for d in report["datasets"]:
        sd = "-" if d["std"] is None else f"{d['std']:.2f}"
        dtw = "-" if d["one_nn_dtw"] is None else f"{d['one_nn_dtw']:.1f}"
        print(f"{d['dataset']:<18}{d['mean']:6.2f} ± {sd:<5} (n={d['seeds_run']})      "
              f"{dtw:>9}{d['echo_state_rnn']:>7.1f}{d['bar']:>7.1f}")


if __name__ == "__main__":
    main()
