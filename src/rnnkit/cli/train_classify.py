"""``rnnkit train classify``: a sequence classifier on a .ts or CSV file (rnnkit.tasks.classify)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.cli._config import DirPath, FilePath, config_options, require_out, resolve_config
from rnnkit.cli._run import echo_results, exit_if_interrupted, run_options, training
from rnnkit.tasks.classify import ClassifyConfig, train_classifier


@click.command("classify")
@click.option("--data", type=FilePath(),
              help="Training file: X_TRAIN.ts (X_TEST.ts beside it is the test set), label,v1,... CSV, "
                   "X_TRAIN.tsv (the UCR 2018 archive: tab-separated, NaN-padded; X_TEST.tsv beside it) "
                   "or, with --set data.format=text, label,text CSV. A first row that looks like a "
                   "header is one; --set data.header=true/false says so. [data.path]")
@click.option("--out", type=DirPath(path_type=Path), help="Run directory (required).")
@run_options
@config_options
def classify(data, out, overwrite, resume, config, sets):
    """Train a recurrent classifier, validate on a split of the training file, test on the
    test file; writes the run and results.json (accuracies) to --out."""
    cfg = resolve_config(ClassifyConfig, config, sets, **{"data.path": None if data is None else str(data)})
    require_out(out)  # after --print-config, which needs no run directory
    with training(out, resume=resume):
        results = train_classifier(cfg, out, overwrite=overwrite, resume=resume)
    echo_results(results)
    exit_if_interrupted(results, out)
