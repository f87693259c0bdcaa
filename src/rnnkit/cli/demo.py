"""`rnnkit demo`: a few minutes of character-level LSTM training, next to an n-gram baseline."""

import click

from rnnkit.cli._config import DirPath, config_options, resolve_config
from rnnkit.demo import DemoConfig, check_inputs, format_report, run_demo

D = DemoConfig()


@click.command()
@click.option("--minutes", type=click.FloatRange(0, 1e6, min_open=True),
              help=f"Training time limit.  [default: {D.minutes:g}]")
@click.option("--steps", type=click.IntRange(min=1),
              help=f"Training steps (training stops at --minutes if that comes first).  [default: {D.steps}]")
@click.option("--out", type=DirPath(),
              help=f"The model directory to write.  [default: {D.out}]")
@click.option("--seed", type=int, help=f"Seed of the weights, dropout and sample.  [default: {D.seed}]")
@click.option("--prompt", help=f"Start of the sample.  [default: {D.prompt}]")
@config_options(example="hidden_size=128")
def demo(minutes, steps, out, seed, prompt, config, sets):
    """Train a character-level LSTM on KJV Genesis+Exodus (embedded) and report held-out
    bits per character next to Kneser-Ney n-gram baselines fitted on the same training
    text; then sample from a prompt and save the model directory to --out (config.json,
    model.safetensors, tokenizer.json, metrics.csv, report.json; `rnnkit plot` draws it)."""
    cfg = resolve_config(DemoConfig, config, sets, minutes=minutes, steps=steps, out=out,
                         seed=seed, prompt=prompt)
    try:
        check_inputs(cfg)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    click.echo(format_report(run_demo(cfg)))
