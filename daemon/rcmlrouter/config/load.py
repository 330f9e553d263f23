"""Loading: the TOML file, then ``RCMLROUTER_<SECTION>_<KEY>`` environment overrides (which win;
lists take the comma-separated form), coerced to the dataclasses' types; every problem collected
and raised together as one :class:`~rcmlrouter.errors.ConfigError`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from rcmlrouter.config.checks import validate
from rcmlrouter.config.model import (
    ENV_PREFIX,
    Config,
    TrunkConfig,
)
from rcmlrouter.errors import ConfigError

_SECTIONS: dict[str, Any] = {
    name: cls for name, cls in get_type_hints(Config).items() if name != "trunks"
}


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (TOML; None means defaults only), apply environment overrides, validate."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    env = os.environ if environ is None else environ
    sections: dict[str, Any] = {}
    for name in raw:
        if name not in _SECTIONS and name != "trunks":
            problems.append(f"unknown section [{name}]")
    sections["trunks"] = _build_trunks(raw.get("trunks", []), env, problems)
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            problems.append(f"[{name}] must be a table")
            values = {}
        sections[name] = _build_section(name, cls, values, env, problems)
    config = Config(**sections)  # keys that failed to parse keep their defaults here
    validate(config, problems)
    if problems:
        raise ConfigError(problems)
    return config


def _build_section(
    name: str,
    cls: type[Any],
    values: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
    label: str | None = None,
) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    label = label or name
    for key in values:
        if key not in hints:
            problems.append(f"unknown key {label}.{key}")
    for key, typ in hints.items():
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            raw_value: Any = env[env_name]
            source = f"${env_name}"
        elif key in values:
            raw_value = values[key]
            source = f"{label}.{key}"
        else:
            continue
        try:
            kwargs[key] = _coerce(raw_value, typ, from_env=source.startswith("$"))
        except (TypeError, ValueError) as exc:
            problems.append(f"{source}: {exc}")
    return cls(**kwargs)


def _build_trunks(raw: Any, env: Mapping[str, str], problems: list[str]) -> tuple[TrunkConfig, ...]:
    """``[[trunks]]``; ``RCMLROUTER_TRUNKS_<NAME>_<KEY>`` overrides a key of the trunk NAME
    (upper case, other characters than letters and digits as ``_``), e.g. its password; a
    ``RCMLROUTER_TRUNKS_<NAME>_URI`` for a name the file lacks defines the trunk ``<name>``."""
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append("trunks: expected [[trunks]] tables")
        return ()
    raw = list(raw)
    known = {_env_key(str(item.get("name", ""))) for item in raw}
    for variable in sorted(env):
        found = re.fullmatch(rf"{ENV_PREFIX}TRUNKS_(\w+)_URI", variable)
        if found and found.group(1) not in known:
            raw.append({"name": found.group(1).lower()})
    trunks = []
    for index, values in enumerate(raw):
        name = values.get("name")
        label = f"trunks.{name}" if isinstance(name, str) and name else f"trunks[{index}]"
        prefix = f"trunks_{_env_key(str(name or index))}"
        trunks.append(_build_section(prefix, TrunkConfig, values, env, problems, label))
    return tuple(trunks)


def _env_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _coerce(value: Any, typ: Any, *, from_env: bool) -> Any:
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"expected true or false, got {value!r}")
    if typ is int or typ is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, int | float) or (from_env and isinstance(value, str)):
            try:
                return typ(value)
            except ValueError:
                pass
        raise ValueError(f"expected {'an integer' if typ is int else 'a number'}, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")
    # tuple[str, ...]
    if isinstance(value, str) and from_env:
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")
