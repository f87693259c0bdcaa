"""What every ``rnnkit train`` command shares about its run directory: ``--overwrite`` and
``--resume``, the results it prints, and the exit status of a run that a signal interrupted.

    @click.command()
    @run_options
    def lm(out, overwrite, resume, ...):
        with training(out, resume=resume):
            results = train_lm(cfg, out, overwrite=overwrite, resume=resume)
        echo_results(results)
        exit_if_interrupted(results["lm"], out)
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from rnnkit.train import checkpoint

F = TypeVar("F", bound=Callable[..., Any])

_OTHER = {"overwrite": "resume", "resume": "overwrite"}


def run_options(command: F) -> F:
    """Add ``--overwrite`` and ``--resume`` (one or the other) to a Click command."""
    command = click.option("--resume", is_flag=True, callback=_one_of_two,
                           help="Continue the interrupted run in --out (same data and settings; "
                                "the length of training and train.device may change).")(command)
    return click.option("--overwrite", is_flag=True, callback=_one_of_two,
                        help="Replace a run already in --out.")(command)


def echo_results(results: Mapping[str, Any]) -> None:
    """The results on stdout as indented JSON, as results.json holds them, so that every
    train command's output reads the same and pipes into ``jq``; status lines go to stderr."""
    click.echo(json.dumps(results, indent=2, ensure_ascii=False))


@contextmanager
def training(out: str | Path, *, resume: bool, also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Around a train command's task: ``interrupts``, and the errors a user's files, settings
    or run can raise, as Click's one line (``Error: ...``, status 1) instead of a traceback:
    OSError, ValueError (DataError and CheckpointError among them), a loss that diverged
    (FloatingPointError), and ``also``."""
    with interrupts(out, resume=resume):
        try:
            yield
        except (OSError, ValueError, FloatingPointError, *also) as err:
            raise click.ClickException(str(err)) from err


class _Terminated(BaseException):
    """SIGTERM outside training; a BaseException, so that no ``except Exception`` takes it."""


@contextmanager
def interrupts(out: str | Path, *, resume: bool) -> Iterator[None]:
    """Around a train command's task: SIGINT and SIGTERM outside training (reading the data,
    decoding and scoring after it; ``fit`` handles them while it trains) end the command as
    an interrupted training does, with 130 or 143 and a line on stderr, not Click's
    "Aborted!" (status 1) or a silent death."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    started = time.time()
    try:
        yield
    except KeyboardInterrupt:
        _exit_signalled("SIGINT", out, None if resume else started)
    except _Terminated:
        _exit_signalled("SIGTERM", out, None if resume else started)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def _exit_signalled(name: str, out: str | Path, since: float | None) -> None:
    """``since``: a new run's start, so that an old run it was to overwrite is not offered;
    None when resuming, where the run in ``out`` is the one to go on with."""
    saved = any(since is None or p.stat().st_mtime >= since for p in Path(out).glob(f"**/{checkpoint.STATE}"))
    click.echo(f"rnnkit: interrupted ({name}) before the results were written; " +
               (f"the run in {out} is saved: add --resume to finish it" if saved else "nothing was saved"),
               err=True)
    click.get_current_context().exit(128 + signal.Signals[name].value)


def exit_if_interrupted(train: Mapping[str, Any], out: str | Path) -> None:
    """After the results are printed: a run that SIGINT or SIGTERM stopped (``train``'s
    "stopped", with its "steps") exits as a shell reports a command that signal killed
    (128 + its number: 130, 143), so that a script does not take it for a finished run."""
    stopped = train.get("stopped")
    if stopped not in ("SIGINT", "SIGTERM"):
        return
    steps = train["steps"]
    click.echo(f"rnnkit: training was interrupted ({stopped}) after {steps} step{'s' * (steps != 1)}; "
               f"the run in {out} is saved: add --resume to continue", err=True)
    click.get_current_context().exit(128 + signal.Signals[stopped].value)


def _one_of_two(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    # Click reads the given options in command-line order: the second one sees the first
    if value and ctx.params.get(_OTHER[param.name]):
        raise click.UsageError("--resume continues the run in --out and --overwrite replaces it: "
                               "give one, got both")
    return value
