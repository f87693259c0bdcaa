"""Frozen, keyword-only dataclass configs: TOML in, JSON out, ``--set`` overrides on top.

One set of functions serves every config class, so no class writes its own parser:

- ``from_dict(cls, data)`` / ``to_dict(cfg)``: nested mappings <-> (nested) dataclasses.
- ``load(cls, "run.toml", ["model.hidden_size=512"])``: a TOML file, whose ``[sections]`` are
  the nested dataclass fields, then nanoGPT-style ``KEY=VALUE`` overrides (dotted keys reach
  into sections), each value parsed against the field's annotation.
- ``save_json`` / ``load_json`` for the copy a run keeps, and ``to_toml`` for ``--print-config``.

Every value is checked against its annotation: ``int`` (a bool is not one), ``float`` (an int is
converted), ``str``, ``bool``, ``Literal[...]``, ``X | None``, ``tuple[X, ...]`` and
``tuple[X, Y]`` (from lists, or comma-separated in overrides) and nested dataclasses. User
errors are ``ValueError``s naming the key, what it must be and the value given.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from rnnkit._io import write_atomic

C = TypeVar("C")

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_NONE = ("none", "null")


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build the dataclass ``cls`` from ``data``; nested dataclass fields take sub-mappings.

    Raises:
        ValueError: on an unknown key, a value of the wrong type, a missing required field, or
            whatever ``cls.__post_init__`` rejects.
    """
    return _construct(cls, _check_table(cls, data, prefix=""), prefix="")


def to_dict(cfg: Any) -> dict[str, Any]:
    """The fields of the dataclass ``cfg`` as plain JSON-able values: sections become dicts,
    tuples become lists. ``from_dict(type(cfg), to_dict(cfg)) == cfg``."""
    return {name: _plain(value) for name, value in _fields_of(cfg).items()}


def save_json(cfg: Any, path: str | Path) -> None:
    """Write ``to_dict(cfg)`` to ``path`` as indented JSON, atomically."""
    write_atomic(Path(path), (json.dumps(to_dict(cfg), indent=2) + "\n").encode())


def load_json(cls: type[C], path: str | Path) -> C:
    """Read a config written by ``save_json``."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"config file {path} must be valid JSON, got an error: {err}") from None
    return _with_file(path, from_dict, cls, data)


def load(cls: type[C], path: str | Path | None = None, overrides: Sequence[str] = (), *,
         defaults: Mapping[str, Any] | None = None, values: Mapping[str, Any] | None = None) -> C:
    """Build ``cls`` from, in rising precedence: its own defaults, ``defaults`` (typed values,
    keys may be dotted), the TOML file at ``path``, ``values`` (typed, e.g. a command's
    explicit options) and ``KEY=VALUE`` strings in ``overrides``.

    Example::

        cfg = load(RunConfig, "run.toml", ["train.lr=3e-4", "model.cell=gru"])

    Raises:
        ValueError: naming the file or key, what was expected and what was given.
    """
    data: dict[str, Any] = {}
    for key, value in (defaults or {}).items():
        _set_path(data, cls, key, lambda hint, key, v=value: _check_value(v, hint, key))
    if path is not None:
        path = Path(path)
        try:
            table = tomllib.loads(_read_text(path))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path} must be valid TOML, got an error: {err}") from None
        _merge(data, _with_file(path, _check_table, cls, table, prefix=""))
    for key, value in (values or {}).items():
        _set_path(data, cls, key, lambda hint, key, v=value: _check_value(v, hint, key))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override must be KEY=VALUE (e.g. model.hidden_size=512), got {item!r}")
        _set_path(data, cls, key.strip(), lambda hint, key, raw=raw: _parse(raw.strip(), hint, key))
    return _construct(cls, data, prefix="")


def to_toml(cfg: Any) -> str:
    """``cfg`` as a TOML document that ``load`` reads back. TOML has no null, so a ``None``
    field is written as a comment (leave it unset, or ``--set KEY=none``)."""
    lines: list[str] = []
    _toml_table(cfg, "", lines)
    return "\n".join(lines).strip() + "\n"


# -- checking: mappings in, checked plain values out ----------------------------------------


def _check_table(cls: type, data: Any, prefix: str) -> dict[str, Any]:
    """Check ``data`` against the fields of ``cls``, recursively; sections stay dicts."""
    hints = _init_hints(cls)
    if isinstance(data, cls):
        data = _fields_of(data)
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix.rstrip('.') or cls.__name__} must be a table of "
                         f"{cls.__name__} fields, got {data!r}")
    unknown = sorted(str(k) for k in data if k not in hints)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {[prefix + k for k in unknown]}; "
                         f"allowed: {sorted(hints)}")
    return {k: _check_value(v, hints[k], prefix + k) for k, v in data.items()}


def _check_value(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _check_table(hint, value, prefix=key + ".")
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        section = _section_class(hint)
        if section is not None and isinstance(value, Mapping | section):
            return _check_table(section, value, prefix=key + ".")  # its own, sharper errors
        for option in (a for a in args if a is not type(None)):
            try:
                return _check_value(value, option, key)
            except ValueError:
                continue
    elif origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif origin is tuple:
        if isinstance(value, list | tuple):
            items = args[:1] * len(value) if args[1:] == (...,) else args
            if len(items) == len(value):
                return tuple(_check_value(v, h, f"{key}[{i}]")
                             for i, (v, h) in enumerate(zip(value, items, strict=True)))
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    else:
        raise TypeError(f"rnnkit.config cannot check the annotation {hint!r} of {key}")
    raise ValueError(f"{key} must be {_describe(hint)}, got {value!r}")


def _parse(raw: str, hint: Any, key: str) -> Any:
    """Parse the override string ``raw`` as ``hint``; the result still goes through the checks."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        raise ValueError(f"{key} is a section of {hint.__name__} fields; "
                         f"set one of them as {key}.NAME=VALUE, got {key}={raw}")
    if origin in (types.UnionType, typing.Union):
        if type(None) in args and raw.lower() in _NONE:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _parse(raw, option, key)
            except ValueError:
                continue
    elif origin is Literal:
        for allowed in args:
            try:
                if _parse(raw, type(allowed), key) == allowed:
                    return allowed
            except ValueError:
                continue
    elif origin is tuple:
        parts = [p.strip() for p in raw.split(",")] if raw else []
        items = args[:1] * len(parts) if args[1:] == (...,) else args
        if len(items) == len(parts):
            return tuple(_parse(p, h, key) for p, h in zip(parts, items, strict=True))
    elif hint is bool and raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    elif hint is str:
        return raw
    elif hint in (int, float):
        try:
            return hint(raw)
        except ValueError:
            pass
    listed = " (comma-separated)" if origin is tuple else ""
    raise ValueError(f"{key} must be {_describe(hint)}{listed}, got {raw!r}")


def _describe(hint: Any) -> str:
    """What a value of ``hint`` must be, in words for an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return "None"
    if dataclasses.is_dataclass(hint):
        return f"a table of {hint.__name__} fields"
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return f"one of {list(args)!r}"
    if origin is tuple and args[1:] == (...,):
        return f"a list of {_describe(args[0])}"
    if origin is tuple:
        return f"a list [{', '.join(_describe(a) for a in args)}]"
    if hint is bool:
        return "a bool (true/false/1/0/yes/no)"
    return getattr(hint, "__name__", str(hint))


# -- building: checked dicts in, frozen dataclasses out -------------------------------------


def _construct(cls: type[C], data: Mapping[str, Any], prefix: str, base: Any = None) -> C:
    """Build ``cls`` from checked ``data``; fields it lacks come from ``base`` if given (the
    parent's default for this section, which may differ from the section's own defaults)."""
    hints = _init_hints(cls)
    values = {} if base is None else _fields_of(base)
    for key, value in data.items():
        if isinstance(value, Mapping):
            section, default = _section_class(hints[key]), getattr(base, key, _default(cls, key))
            inner = default if isinstance(default, section) else None
            value = _construct(section, value, prefix + key + ".", base=inner)
        values[key] = value
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{cls.__name__} is missing required field(s) {[prefix + m for m in missing]}")
    try:
        return cls(**values)
    except ValueError as err:
        if not prefix or str(err).startswith(prefix):  # the check names its section itself
            raise
        # a section's own check names its field but not where the section sits
        raise ValueError(f"{prefix.rstrip('.')}: {err}") from err


def _default(cls: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _set_path(data: dict[str, Any], cls: type, key: str, convert) -> None:
    """Set ``data[a][b][c] = convert(hint, key)`` for the dotted ``key`` "a.b.c" of ``cls``."""
    *sections, name = key.split(".")
    for depth, part in enumerate([*sections, name]):
        hints = _init_hints(cls)
        if part not in hints:
            raise ValueError(f"unknown key {key!r}: {cls.__name__} has no field {part!r}; "
                             f"allowed: {sorted(hints)}")
        if depth < len(sections):
            cls = _section_class(hints[part])
            if cls is None:
                raise ValueError(f"unknown key {key!r}: {'.'.join(sections[:depth + 1])} is "
                                 f"{_describe(hints[part])}, not a section")
            if not isinstance(data.get(part), dict):
                data[part] = {}
            data = data[part]
    data[name] = convert(hints[name], key)


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


# -- small helpers ----------------------------------------------------------------------------


def _init_hints(cls: type) -> dict[str, Any]:
    """Annotations of the fields a constructor takes (``get_type_hints`` resolves the strings
    that ``from __future__ import annotations`` leaves)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"cls must be a dataclass type, got {cls!r}")
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _section_class(hint: Any) -> type | None:
    """The dataclass in ``hint`` (``Section`` or ``Section | None``), else None."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)
    return next((t for t in options if dataclasses.is_dataclass(t)), None)


def _fields_of(cfg: Any) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.init}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ValueError(f"config file must be an existing file, got {str(path)!r}")
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad's) is no TOML
    except UnicodeDecodeError as err:
        raise ValueError(f"config file {path} must be UTF-8 text, got an undecodable byte at "
                         f"offset {err.start}") from None


def _with_file(path: Path, fn, *args, **kwargs):
    """Call ``fn``, prefixing any ValueError with the file it came from."""
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise ValueError(f"config file {path}: {err}") from err


def _toml_table(cfg: Any, prefix: str, lines: list[str]) -> None:
    if prefix:
        lines += ["", f"[{prefix}]"]
    sections = []
    for name, value in _fields_of(cfg).items():
        if dataclasses.is_dataclass(value):
            sections.append((name, value))
        elif value is None:
            lines.append(f"# {name} = none  (TOML has no null)")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    # TOML needs a table's own keys before its sub-tables
    for name, value in sections:
        _toml_table(value, f"{prefix}.{name}" if prefix else name, lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # JSON's string escapes are a subset of TOML basic strings', which also escape DEL
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
