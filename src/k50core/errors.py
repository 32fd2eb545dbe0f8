"""Errors raised by k50core."""
from __future__ import annotations

from collections.abc import Iterable

Problem = tuple[str, str]


class Error(Exception):
    """The base of every error k50core raises for a caller's input: ``except k50core.Error``
    catches them all. Each also derives from the built-in error it is a kind of (ValueError for
    bad input, RuntimeError for a state the process cannot use), so older ``except`` clauses hold."""


class ConfigError(Error, ValueError):
    """A configuration (or condition) that cannot be loaded.

    ``problems`` lists every fault found as ``(place, message)`` pairs, where
    the place is a config path such as ``rules[3].when.geo.region``; ``str()``
    prints one ``place: message`` line per problem.
    """

    def __init__(self, problems: str | Iterable[Problem], place: str = "") -> None:
        if isinstance(problems, str):
            problems = [(place, problems)]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(_line(p, m) for p, m in self.problems))


class SegmentError(Error, RuntimeError):
    """A shared pool segment that this build cannot use (not one, truncated, another layout)."""


class StoreError(Error, RuntimeError):
    """A store this build cannot use: a schema newer than it knows, a driver not installed."""


def _line(place: str, message: str) -> str:
    return f"{place}: {message}" if place else message
