"""The check that RUN_DIR holds the kind of run a command uses, made before any work so that
`rnnkit generate` on a forecasting run says so instead of failing on a missing tokenizer.

A run's config.json names its task (``"task": "lm"``, written by ``rnnkit.tasks``); the
demo's language model names only its architecture, and a classifier ensemble keeps its
members' config.json files in subdirectories next to ``ensemble.json``.

    require_task(run_dir, "lm")  # click.ClickException for any other task's run
"""

from __future__ import annotations

from pathlib import Path

import click

from rnnkit.tasks.classify import ENSEMBLE
from rnnkit.train.checkpoint import CheckpointError, read_config

# task: (what a run of it is called, the command that trains it, the command that uses it)
TASKS = {
    "lm": ("a language-model run", "rnnkit train lm", "rnnkit generate"),
    "seq2seq": ("a seq2seq (translation) run", "rnnkit train seq2seq", "rnnkit translate"),
    "tag": ("a tagging run", "rnnkit train tag", "rnnkit tag"),
    "classify": ("a classification run", "rnnkit train classify", "rnnkit predict"),
    "forecast": ("a forecasting run", "rnnkit train forecast", "rnnkit forecast"),
}
# runs whose config.json names no task (the demo's): the model registry's names
_BY_ARCHITECTURE = {"language_model": "lm", "seq2seq": "seq2seq", "tagger": "tag",
                    "sequence_classifier": "classify", "forecaster": "forecast"}


def require_task(run_dir: str | Path, task: str) -> None:
    """Raise a ClickException naming RUN_DIR, the run it expects and the run it holds, when
    ``run_dir`` holds another task's run. A directory without a readable config.json passes:
    the command's own loading reports it (as "not a run directory", or the corrupt file)."""
    assert task in TASKS, task
    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE).is_file():
        found, named = "classify", f"its {ENSEMBLE} lists classifier members"
    else:
        try:
            saved = read_config(run_dir)
        except CheckpointError:
            return
        found = saved.get("task") or _BY_ARCHITECTURE.get(saved.get("architecture"))
        named = (f"its config.json names task {saved['task']!r}" if "task" in saved
                 else f"its config.json names architecture {saved.get('architecture')!r} and no task")
    if found == task:
        return
    what, trains, _ = TASKS[task]
    got = (f"{TASKS[found][0]} ({named}), which `{TASKS[found][2]}` uses" if found in TASKS
           else f"no known task's run ({named})")
    raise click.ClickException(f"RUN_DIR must hold {what} (from `{trains}`), got {str(run_dir)!r}: {got}")
