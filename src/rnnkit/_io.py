"""File writes that a crash cannot leave half done, and where rnnkit caches files."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def names_directory(path: str | os.PathLike) -> bool:
    """True where ``path`` ends in a separator, as ``out/`` does: pathlib drops it
    (``Path("out/")`` is ``out``), so the string given must be asked."""
    return str(path).endswith(("/", os.sep))


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rnnkit``, or ``~/.cache/rnnkit``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnkit"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``, so
    that a reader never sees a half-written file."""
    # not mkstemp: its files are 0600, and a run directory should follow the umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # named by the file asked for, not the temporary one
        tmp.unlink(missing_ok=True)
        raise type(err)(err.errno, err.strerror, str(path)) from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable: it lives in the directory's entry list."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_run_file(path: Path, parse, *, what: str):
    """``parse(text)`` of a run directory's UTF-8 file, or a ValueError naming the file: it
    is missing, unreadable, or not what ``parse`` takes (JSON, its keys, its values)."""
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path} must exist ({what}), got no such file: is this the right run "
                         f"directory?") from None
    except OSError as err:  # a directory in its place, no permission
        raise ValueError(f"{path} must be a readable file ({what}), got {err.strerror or err}") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} must hold {what}, got a corrupt file "
                         f"({type(err).__name__}: {err})") from None
