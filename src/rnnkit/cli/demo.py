"""`rnnkit demo`: a few minutes of character-level LSTM training, next to an n-gram baseline."""

import click

from rnnkit.demo import DemoConfig, check_inputs, format_report, run_demo

D = DemoConfig()


@click.command()
@click.option("--minutes", type=click.FloatRange(0, 1e6, min_open=True), default=D.minutes,
              show_default=True, help="Training time budget.")
@click.option("--steps", type=click.IntRange(min=1), help="Also stop after this many steps.")
@click.option("--out", type=click.Path(file_okay=False), default=D.out, show_default=True,
              help="Directory for model.pt, config.json, vocab.json, metrics.json.")
@click.option("--seed", type=int, default=D.seed, show_default=True)
@click.option("--prompt", default=D.prompt, show_default=True, help="Start of the sample.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Set any DemoConfig field, e.g. --set hidden_size=128 (repeatable).")
def demo(minutes, steps, out, seed, prompt, overrides):
    """Train a character-level LSTM on KJV Genesis+Exodus (embedded) and report held-out
    bits per character next to Kneser-Ney n-gram baselines fitted on the same training
    text; then sample from a prompt and save the run to --out."""
    try:
        cfg = DemoConfig.from_overrides(overrides, minutes=minutes, steps=steps, out=out,
                                        seed=seed, prompt=prompt)
        check_inputs(cfg)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    click.echo(format_report(run_demo(cfg)))
