"""``rnnkit tag``: tag the sentences of a file with a trained tagger (rnnkit.tasks.tag)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rnnkit._io import write_atomic
from rnnkit.cli._config import FilePath, new_file, not_input
from rnnkit.cli._task import require_task
from rnnkit.data.tagged import FORMATS, aligned_text
from rnnkit.tasks.tag import score_tagged, tag_file


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, type=FilePath(),
              help="Sentences to tag: CoNLL (the word in the run's data.word_column; the run's "
                   "data.tag_column, if the file has it, is the gold tag), word/tag lines, or plain "
                   "text, one sentence per line, tokens separated by spaces (detected by --format "
                   "auto, or --format text).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format. auto: word/tag if the first line's tokens all are; else CoNLL "
                   "if a line has a tab or -DOCSTART-, every line is one word, or lines of equally "
                   "many words come in blank-line-separated blocks; else plain text if lines differ "
                   "in word count or each line is its own block; else (lines of equally many words, "
                   "no tab, no blank line) an error asks for --format text or conll. "
                   "[default: the training run's data.format]")
@click.option("--out", type=FilePath(), callback=new_file,
              help="File to write. CoNLL input keeps its layout, one line per input line: "
                   "word<TAB>gold<TAB>predicted where it has gold tags (conlleval's order: "
                   "conlleval -d '\\t'), else word<TAB>predicted; -DOCSTART- lines get O in each "
                   "tag column, blank and comment lines are copied. Word/tag and plain text give "
                   "the same columns, a blank line after each sentence. Default: standard output.")
@click.option("--score", is_flag=True,
              help="Score the predictions against --data's gold tags: print JSON with token "
                   "accuracy and, for named-entity tags (O, B-X, I-X ...), conlleval's entity "
                   "precision, recall and F1, overall and per type. The tagged text is then "
                   "written only to --out.")
def tag(run_dir, data, fmt, out, score):
    """Tag every sentence in --data with the tagger in RUN_DIR (from rnnkit train tag), or with
    --score, score it on a labelled file."""
    require_task(run_dir, "tag")
    not_input(out, data)
    try:
        tags = tag_file(run_dir, data, format=fmt)
        scores = score_tagged(tags) if score else None
        text = aligned_text(tags.data, tags.predicted)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if out is not None:
        write_atomic(out, text.encode("utf-8"))
        click.echo(f"wrote {len(tags.data)} sentences ({tags.data.n_tokens} tokens) to {out}", err=True)
    if scores is not None:
        click.echo(json.dumps(scores, indent=2, ensure_ascii=False))
    elif out is None:
        click.echo(text, nl=False)
