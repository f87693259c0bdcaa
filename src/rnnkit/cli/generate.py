"""``rnnkit generate``: text from a trained language model, printed as it is produced."""

import click

from rnnkit.cli._config import config_options, resolve_config
from rnnkit.cli._task import require_task
from rnnkit.config import to_dict
from rnnkit.tasks import lm as _lm

# the options each strategy does not read
_UNUSED = {"greedy": ("temperature", "top_k", "top_p", "beam_width", "seed"),
           "beam": ("temperature", "top_k", "top_p", "seed"), "sample": ("beam_width",)}


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--prompt", help="Text to continue.  [default: a newline]")
@click.option("--max-new-tokens", type=int,
              help="Tokens to generate after the prompt (its own tokens do not count).  [default: 200]")
@click.option("--strategy", type=click.Choice(["greedy", "sample", "beam"]), help="[default: sample]")
@click.option("--temperature", type=float, help="Sampling temperature > 0.  [default: 1.0]")
@click.option("--top-k", type=int, help="Sample from the k most probable tokens only.")
@click.option("--top-p", type=float, help="Sample from the smallest set of tokens with this mass (nucleus).")
@click.option("--beam-width", "--beam", "beam_width", type=int,
              help="Beams for --strategy beam.  [default: 5]")
@click.option("--seed", type=int, help="Seed of the sampler's own generator.  [default: 0]")
@config_options(example="temperature=0.8")
def generate(run_dir, prompt, max_new_tokens, strategy, temperature, top_k, top_p, beam_width, seed,
             config, sets):
    """Continue --prompt with the language model in RUN_DIR (from `rnnkit train lm`), printing
    tokens as they come; beam search prints its best continuation at the end."""
    cfg = resolve_config(_lm.GenerateConfig, config, sets, prompt=prompt, max_new_tokens=max_new_tokens,
                         strategy=strategy, temperature=temperature, top_k=top_k, top_p=top_p,
                         beam_width=beam_width, seed=seed)
    require_task(run_dir, "lm")
    given = dict(temperature=temperature, top_k=top_k, top_p=top_p, beam_width=beam_width, seed=seed)
    unused = [f"--{name.replace('_', '-')}" for name in _UNUSED[cfg.strategy] if given[name] is not None]
    if unused:  # as transformers' generate warns of sampling options without sampling
        click.echo(f"warning: {', '.join(unused)} {'has' if len(unused) == 1 else 'have'} no effect with "
                   f"--strategy {cfg.strategy}", err=True)
    try:
        pieces = _lm.generate(run_dir, **to_dict(cfg))
    except (OSError, ValueError) as err:  # CheckpointError is a ValueError
        raise click.ClickException(str(err)) from err
    click.echo(cfg.prompt, nl=False)
    for piece in pieces:
        click.echo(piece, nl=False)  # click.echo flushes: the text appears as it comes
    click.echo()
