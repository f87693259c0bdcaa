"""``rnnkit export``: a trained run's model as an ONNX file (rnnkit.export)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnkit.cli._config import new_file_or_directory


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
# a string, not a Path: Path("out/") drops the separator that says "a directory"
@click.option("--out", required=True, type=click.Path(), callback=new_file_or_directory,
              help="ONNX file to write (replaced whole, only once it passed the check); for a translator, "
                   "a directory (made if missing) for encoder.onnx and decoder.onnx.")
@click.option("--check/--no-check", default=True, show_default=True,
              help="Run the file in onnxruntime at other batch sizes and lengths, one streaming step "
                   "among them, and compare it with the model before writing it.")
def export(run_dir, out, check):
    """Export the model in RUN_DIR (from rnnkit train lm, classify, forecast, tag or seq2seq) to ONNX,
    with a dynamic batch size and length, and print what the file takes and gives as JSON. A
    language model takes (ids, h[, c]) and gives (logits, h_out[, c_out]): its state is
    explicit, for streaming. A classifier takes (x, lengths) and gives logits. A forecaster
    takes x, the raw values of at least min_time steps, and gives the forecast's quantiles
    (B, horizon, levels). A tagger takes (x, lengths), the run's token features, and gives
    (tags, emissions). A translator (rnnkit train seq2seq) is two files, for a search outside
    them: encoder.onnx takes (source, source_lengths) and gives the decoder's first state and
    the attention's memory; decoder.onnx takes target ids, that state and the memory, and
    gives the next-token logits and the new state. Needs the onnx extra: pip install
    'rnnkit[onnx]'."""
    from rnnkit.export import export_onnx, out_problem
    from rnnkit.models import Seq2Seq, load_model
    from rnnkit.tasks.classify import ENSEMBLE

    if (run_dir / ENSEMBLE).is_file():
        raise click.ClickException(f"RUN_DIR {run_dir} holds an ensemble of classifiers: export each "
                                   f"member directory it lists, and average their softmax outputs")
    try:
        model = load_model(run_dir)
        problem = out_problem(out, isinstance(model, Seq2Seq))
        if problem:
            raise click.BadParameter(problem, param_hint="'--out'")
        result = export_onnx(model, out, check=check)
    except (ImportError, OSError, TypeError, ValueError) as err:  # CheckpointError is a ValueError
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(result, indent=2))
