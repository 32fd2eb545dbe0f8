"""Config: read a dict or file, validate it, report every fault with its place."""
from __future__ import annotations

from typing import Any, Mapping, Tuple, List

from ..errors import ConfigError, Problem
from .files import Source, read_config
from .model import Config, Pool, Rule, parse

__all__ = ["Config", "Pool", "Rule", "load_config", "read_config", "Source"]


def load_config(source: Source) -> Config:
    """A validated Config; ConfigError listing every problem otherwise."""
    config, problems = parse(read_config(source))
    if problems:
        raise ConfigError(problems)
    return config
