"""``rnnkit train lm``: a recurrent language model on any UTF-8 text file."""

import click

from rnnkit.cli._config import DirPath, config_options, resolve_config
from rnnkit.cli._run import echo_results, exit_if_interrupted, run_options, training
from rnnkit.data.text import read_text
from rnnkit.tasks.lm import LMTaskConfig, train_lm


@click.command("lm")
@click.option("--data", help="UTF-8 text file (data.path); its last data.val_fraction of lines are held out.")
@click.option("--out", type=DirPath(), help="The run directory to write (required).")
@click.option("--tokenizer", type=click.Choice(["char", "bpe"]),
              help="Characters, or byte-level BPE of data.bpe_vocab_size tokens (data.tokenizer).  "
                   "[default: char]")
@run_options
@config_options
def lm(data, out, tokenizer, overwrite, resume, config, sets):
    """Train a language model on a text file and report held-out bits per character (with
    --set ngram_max_order=6, next to Kneser-Ney n-grams of orders 1-6 on the same split).
    --out gets config.json, model.safetensors, tokenizer.json, metrics.csv and results.json;
    `rnnkit generate RUN_DIR` samples from it."""
    cfg = resolve_config(LMTaskConfig, config, sets, **{"data.path": data, "data.tokenizer": tokenizer})
    if out is None or cfg.data.path is None:
        raise click.ClickException(f"--out and --data (or data.path) are required, got --out={out!r}, "
                                   f"--data={cfg.data.path!r}")
    with training(out, resume=resume):
        text = read_text(cfg.data.path, name="--data" if data else "data.path")
        results = train_lm(cfg, out, text=text, overwrite=overwrite, resume=resume)
    echo_results(results)
    exit_if_interrupted(results["lm"], out)
