"""Config: read a dict or file, validate it, report every fault with its place."""
from __future__ import annotations

from ..errors import ConfigError
from .files import Source, read_config
from .model import Config, Pool, Rule, parse

__all__ = ["Config", "Pool", "Rule", "load_config", "parse", "read_config", "Source"]


def load_config(source: Source) -> Config:
    """A validated Config; ConfigError listing every problem otherwise."""
    config, problems = parse(read_config(source))
    if problems:
        raise ConfigError(problems)
    return config
