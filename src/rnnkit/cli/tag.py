"""``rnnkit tag``: tag the sentences of a file with a trained tagger (rnnkit.tasks.tag)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, new_file, not_input
from rnnkit.cli._task import require_task
from rnnkit.data.tagged import FORMATS, conll_text
from rnnkit.tasks.tag import predict_tags


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, type=FilePath(),
              help="Sentences to tag: CoNLL (the first column is the word; other columns are "
                   "ignored), word/tag lines (tags ignored), or plain text, one sentence per line, "
                   "tokens separated by spaces (detected by --format auto, or --format text).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format. auto: word/tag if the first line's tokens all are; else CoNLL "
                   "if a line has a tab or -DOCSTART-, every line is one word, or lines of equally "
                   "many words come in blank-line-separated blocks; else plain text if lines differ "
                   "in word count or each line is its own block; else (lines of equally many words, "
                   "no tab, no blank line) an error asks for --format text or conll. "
                   "[default: the training run's data.format]")
@click.option("--out", type=FilePath(), callback=new_file,
              help="CoNLL file to write (word<TAB>tag, a blank line after each sentence). "
                   "Default: standard output.")
def tag(run_dir, data, fmt, out):
    """Tag every sentence in --data with the tagger in RUN_DIR (from rnnkit train tag)."""
    require_task(run_dir, "tag")
    not_input(out, data)
    try:
        tagged = predict_tags(run_dir, data, format=fmt)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    assert tagged.tags is not None
    text = conll_text(tagged.words, tagged.tags)
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, text.encode("utf-8"))
    click.echo(f"wrote {len(tagged)} sentences ({tagged.n_tokens} tokens) to {out}", err=True)
