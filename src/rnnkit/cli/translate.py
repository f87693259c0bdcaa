"""``rnnkit translate``: text through a trained seq2seq model (rnnkit.tasks.seq2seq)."""


import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, config_options, new_file, not_input, resolve_config
from rnnkit.cli._task import require_task
from rnnkit.data.pairs import read_sources
from rnnkit.tasks._translation import TranslateOptions
from rnnkit.tasks.seq2seq import translate as translate_texts


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("text", required=False)
@click.option("--data", type=FilePath(),
              help="Translate every line of this UTF-8 file instead (the text before a tab, so a pairs TSV "
                   "gives its sources); one translation per line, blank lines kept.")
@click.option("--out", type=FilePath(), callback=new_file,
              help="Write the translations to this file instead of printing them.")
@click.option("--beam-width", "--beam", "beam_width", type=int,
              help="Beam width; 1 with --alpha 0 is greedy decoding.  [default: the run's, 5]")
@click.option("--alpha", type=float,
              help="Length penalty exponent (GNMT); 0: none.  [default: the run's, 0.6]")
@click.option("--max-len", type=int,
              help="Longest translation, in target tokens (the whole translation); at most "
                   "--length-ratio x source tokens + 10 in any case.  [default: the run's, 200]")
@click.option("--length-ratio", type=float,
              help="Target tokens allowed per source token.  [default: the run's, measured on its "
                   "training pairs]")
@config_options(example="alpha=0.6")
def translate(run_dir, text, data, out, beam_width, alpha, max_len, length_ratio, config, sets):
    """Translate TEXT, or each line of --data, with the model in RUN_DIR (from `rnnkit train
    seq2seq`), by beam search with a length penalty."""
    options = resolve_config(TranslateOptions, config, sets, beam_width=beam_width, alpha=alpha,
                             max_len=max_len, length_ratio=length_ratio)
    if (text is None) == (data is None):
        raise click.ClickException("give TEXT or --data FILE (one of them), got "
                                   + ("both" if text is not None else "neither"))
    require_task(run_dir, "seq2seq")
    not_input(out, data)
    try:
        texts = [text] if data is None else read_sources(data)
        translations = translate_texts(run_dir, texts, **options.given())
    except (OSError, ValueError) as err:  # DataError and CheckpointError are ValueErrors
        raise click.ClickException(str(err)) from err
    if out is None:
        click.echo("".join(f"{t}\n" for t in translations), nl=False)
    else:
        write_atomic(out, "".join(f"{t}\n" for t in translations).encode("utf-8"))
        click.echo(f"wrote {len(translations)} translations to {out}", err=True)
