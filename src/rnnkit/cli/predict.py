"""``rnnkit predict``: class probabilities from a trained classifier (rnnkit.tasks.classify)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, new_file, not_input
from rnnkit.cli._task import require_task
from rnnkit.tasks.classify import predict as predict_rows


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, type=FilePath(),
              help="File to classify, in the training file's format; its labels are not used "
                   "(any value will do).")
@click.option("--no-labels", is_flag=True,
              help="--data holds no labels. For a run on CSV series: a CSV of values only, every "
                   "column a value. For a text run: one text per line, the whole line, commas "
                   "included (a line that is one double-quoted field is read as that field; a first "
                   "line 'text' is a header). A .ts file says so itself, with @classLabel false.")
@click.option("--header/--no-header", default=None,
              help="Whether --data (a CSV of series or texts, or a file of texts) starts with a header "
                   "row [default: the run's data.header; where that is unset, guessed as in training].")
@click.option("--out", required=True, type=FilePath(), callback=new_file,
              help="CSV to write: id, label, then one probability column per class.")
def predict(run_dir, data, no_labels, header, out):
    """Classify every sequence in --data with the model in RUN_DIR (from rnnkit train classify)."""
    require_task(run_dir, "classify")
    not_input(out, data)
    try:
        rows = predict_rows(run_dir, data, labels=not no_labels, header=header)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    classes = list(rows[0]["probabilities"])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", "label", *(f"p_{c}" for c in classes)])
    writer.writerows([r["id"], r["label"], *(f"{r['probabilities'][c]:.6f}" for c in classes)] for r in rows)
    write_atomic(out, text.getvalue().encode("utf-8"))
    click.echo(f"wrote {len(rows)} prediction{'s' * (len(rows) != 1)} to {out}", err=True)
