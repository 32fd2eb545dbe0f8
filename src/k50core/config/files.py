"""Reading a config from a dict or a YAML / JSON / TOML file."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import yaml

from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before the standard library had it
    import tomli as tomllib

Source = Union[Mapping[str, Any], str, "os.PathLike[str]"]


def read_config(source: Source) -> dict[str, Any]:
    """The raw config mapping; ConfigError naming the file and the fault."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(os.fspath(source))
    place = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", place) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", place) from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(f"unknown config format {suffix!r} (use .yaml, .yml, .json or .toml)", place)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{place}:{mark.line + 1}:{mark.column + 1}" if mark else place
        raise ConfigError(f"bad YAML: {getattr(exc, 'problem', None) or exc}", where) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"bad JSON: {exc.msg}", f"{place}:{exc.lineno}:{exc.colno}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bad TOML: {exc}", place) from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping", place)
    return data
