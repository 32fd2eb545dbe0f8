"""Errors raised by k50core."""
from __future__ import annotations

from typing import Iterable, List, Tuple, Union

Problem = Tuple[str, str]


class ConfigError(ValueError):
    """A configuration (or condition) that cannot be loaded.

    ``problems`` lists every fault found as ``(place, message)`` pairs, where
    the place is a config path such as ``rules[3].when.geo.region``; ``str()``
    prints one ``place: message`` line per problem.
    """

    def __init__(self, problems: Union[str, Iterable[Problem]], place: str = "") -> None:
        if isinstance(problems, str):
            problems = [(place, problems)]
        self.problems: List[Problem] = list(problems)
        super().__init__("\n".join(_line(p, m) for p, m in self.problems))


def _line(place: str, message: str) -> str:
    return f"{place}: {message}" if place else message
