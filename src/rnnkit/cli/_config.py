"""``--config``, ``--set`` and ``--print-config``: the same three options on every command
that builds a config, resolved by ``rnnkit.config.load``; and the checks of the paths those
commands write (``require_out``, ``new_file``).

    @click.command()
    @click.option("--steps", type=int)
    @config_options
    def train(config, sets, steps):
        cfg = resolve_config(TrainConfig, config, sets, max_steps=steps)
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from rnnkit._io import names_directory
from rnnkit.config import load, to_toml

C = TypeVar("C")
F = TypeVar("F", bound=Callable[..., Any])

_PRINT = "rnnkit.print_config"


def config_options(command: F | None = None, *, example: str = "model.hidden_size=512"):
    """Add ``--config PATH``, repeatable ``--set KEY=VALUE`` and ``--print-config`` to a Click
    command, as ``@config_options`` or ``@config_options(example="hidden_size=128")`` where
    the command's config has no ``model`` section. The command receives ``config`` and
    ``sets`` and hands them to ``resolve_config``, which also does the printing (only it
    knows the config class)."""
    if command is None:
        return lambda command: config_options(command, example=example)
    options = [
        click.option("--config", type=FilePath(),
                     help="TOML config file; its [sections] set nested fields."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help=f"Set one field, e.g. --set {example} (repeatable; wins over --config)."),
        click.option("--print-config", is_flag=True, expose_value=False, callback=_remember,
                     help="Print the resolved config as TOML and exit."),
    ]
    for option in reversed(options):  # so that --help lists them in this order
        command = option(command)
    return command


def resolve_config(cls: type[C], config: Path | None, sets: Sequence[str], **options: Any) -> C:
    """``rnnkit.config.load(cls, config, sets)`` on top of the command's own options.

    Args:
        cls: the config dataclass.
        config: the ``--config`` TOML file, or None.
        sets: the ``--set`` strings.
        **options: values of the command's own options, by field name (dotted names
            reach into sections). Options given on the command line win over the TOML file
            and lose to ``--set``; give the options a default of None ("not given") so that
            the file is not overridden by a default the user never typed.

    Raises:
        click.ClickException: for any error in the file, the overrides or the values.
    """
    given = {key: value for key, value in options.items() if value is not None}
    try:
        cfg = load(cls, config, sets, values=given)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    ctx = click.get_current_context()
    if ctx.meta.get(_PRINT):
        click.echo(to_toml(cfg), nl=False)
        ctx.exit(0)
    return cfg


def require_out(out: Path | None) -> None:
    """--out is required to train, not to --print-config: checked after resolve_config."""
    if out is None:
        raise click.UsageError("Missing option '--out' (the run directory to write).")


class FilePath(click.Path):
    """``click.Path(dir_okay=False, path_type=Path)`` that also refuses a name ending in a path
    separator: ``Path("out/")`` is ``out``, so ``--out out/`` would write a file named out."""

    def __init__(self, **kwargs: Any):
        super().__init__(dir_okay=False, path_type=Path, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and names_directory(value):
            self.fail(f"must name a file, got the directory name {value!r}", param, ctx)
        return super().convert(value, param, ctx)


class DirPath(click.Path):
    """``click.Path(file_okay=False)`` that refuses an empty name: ``--out ""`` (an unset
    variable in a script) would otherwise write the run into the current directory."""

    def __init__(self, **kwargs: Any):
        super().__init__(file_okay=False, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"must name a directory, got {value!r}", param, ctx)
        return super().convert(value, param, ctx)


def new_file(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """Callback of an option naming a file to write: its directory must exist and take a new
    file, checked when the command line is read, before any work or output (a benchmark's
    results would otherwise be lost at the end)."""
    if value is None:
        return None
    value = Path(value)
    if not value.parent.is_dir():
        raise click.BadParameter(f"its directory must exist, got {str(value.parent)!r}")
    return _writable(value, value.parent)


def new_file_in_new_dirs(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """``new_file`` for an option whose missing directories the command makes: the nearest
    one that exists must take them."""
    if value is None:
        return None
    value = Path(value).absolute()
    nearest = next(p for p in value.parents if p.exists())
    if not nearest.is_dir():
        raise click.BadParameter(f"its directories cannot be made: {str(nearest)!r} is a file")
    return _writable(value, nearest)


def new_file_or_directory(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``new_file``, or a directory that takes new files (an option whose output may be
    several files, as a translator's ONNX export). ``value`` stays the string given (with
    ``type=click.Path()``), so that a trailing separator still says "a directory"."""
    if value is None:
        return None
    if Path(value).is_dir():
        _writable(Path(value), Path(value), directory_ok=True)
    elif names_directory(value):
        new_file_in_new_dirs(_ctx, _param, Path(value))
    else:
        new_file(_ctx, _param, Path(value))
    return value


def _writable(value: Path, directory: Path, *, directory_ok: bool = False) -> Path:
    if value.is_dir() and not directory_ok:
        raise click.BadParameter(f"must be a file to write, got the directory {str(value)!r}")
    try:  # the one sure test: write there (permissions, read-only or virtual file systems)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        why = err.strerror or err
        raise click.BadParameter(f"cannot create a file in {str(directory)!r} ({why})") from None
    return value


def not_input(out: Path | None, data: str | Path | None, *, data_name: str = "--data",
              option: str = "--out") -> None:
    """Refuse an output file (``option``) that is the input file: writing it would destroy the data."""
    if out is not None and data is not None and Path(out).resolve() == Path(data).resolve():
        raise click.BadParameter(f"must not be the {data_name} file, which it would replace, got "
                                 f"{str(out)!r}", param_hint=f"'{option}'")


def image_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``new_file``, for an image: its suffix (.png, .pdf or .svg) names the format."""
    from rnnkit.plot import image_format  # matplotlib only for the commands that draw

    value = new_file(ctx, param, value)
    if value is not None:
        try:
            image_format(value, name="the file")
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return value


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[_PRINT] = True
    return value
