"""``rnnkit train seq2seq``: an attentional encoder-decoder on a TSV of sentence pairs."""

import click

from rnnkit.cli._config import DirPath, config_options, resolve_config
from rnnkit.cli._run import echo_results, exit_if_interrupted, run_options, training
from rnnkit.tasks.seq2seq import Seq2SeqTaskConfig, train_seq2seq


@click.command("seq2seq")
@click.option("--data", help="UTF-8 TSV, one pair per line: source<TAB>target, or source<TAB>target<TAB>"
                             "group to hold out whole groups (data.val_groups, data.test_groups). "
                             "[data.path]")
@click.option("--out", type=DirPath(), help="The run directory to write (required).")
@run_options
@config_options
def seq2seq(data, out, overwrite, resume, config, sets):
    """Train a translation model (bidirectional encoder, attentional decoder with input feeding)
    and report chrF and BLEU on the held-out pairs next to copying the source. --out gets
    config.json, model.safetensors, the two tokenizers, metrics.csv, the held-out translations
    and results.json; `rnnkit translate RUN_DIR TEXT` uses it."""
    cfg = resolve_config(Seq2SeqTaskConfig, config, sets, **{"data.path": data})
    if out is None or not cfg.data.path:
        raise click.ClickException(f"--out and --data (or data.path) are required, got --out={out!r}, "
                                   f"--data={cfg.data.path!r}")
    with training(out, resume=resume, also=(ImportError,)):  # no sacrebleu
        results = train_seq2seq(cfg, out, overwrite=overwrite, resume=resume)
    echo_results(results)
    exit_if_interrupted(results["train"], out)
