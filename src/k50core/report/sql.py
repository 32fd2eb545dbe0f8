"""A report's dimensions as SQL expressions over calls (c) and their attributions (a), in each
backend's spelling of JSON and time functions, so calls and deals are grouped in the database
(100,000 calls are not 100,000 rows read into Python). They read what ``from_summary`` reads."""
from __future__ import annotations

from typing import Dict, Tuple

from .dimensions import _SUMMARY

_PATHS: Dict[str, Tuple[str, ...]] = {k: v for k, v in _SUMMARY.items()}


def _json(backend: str, *keys: str) -> str:
    if backend == "postgresql":
        path = "->".join([""] + [f"'{k}'" for k in keys[:-1]])
        return f"(CAST(a.attributes AS json){path}->>'{keys[-1]}')"
    return f"json_extract(a.attributes, '$.{'.'.join(keys)}')"


def _landing(backend: str, part: str) -> str:
    text = _json(backend, "landing")
    find = f"strpos({text}, '/')" if backend == "postgresql" else f"instr({text}, '/')"
    if part == "path":
        return f"(CASE WHEN {find} > 0 THEN substr({text}, {find}) END)"
    return f"(CASE WHEN {find} > 1 THEN substr({text}, 1, {find} - 1) WHEN {find} = 0 THEN {text} END)"


def time_key(backend: str, column: str, name: str) -> str:
    if backend == "postgresql":
        fmt = "YYYY-MM-DD" if name == "day" else 'YYYY-MM-DD"T"HH24:00"Z"'
        return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', '{fmt}')"
    fmt = "%Y-%m-%d" if name == "day" else "%Y-%m-%dT%H:00Z"
    return f"strftime('{fmt}', {column}, 'unixepoch')"


def floor(backend: str, expr: str) -> str:
    """floor() of a non-negative number (SQLite's CAST truncates; PostgreSQL's rounds)."""
    return f"floor({expr})" if backend == "postgresql" else f"CAST({expr} AS INTEGER)"


def dimension(backend: str, name: str, time_column: str = "c.started_at") -> str:
    """The SQL of one dimension of a call."""
    if name in ("day", "hour"):
        return time_key(backend, time_column, name)
    if name == "status":
        return "a.status"
    if name == "number":
        return "c.number"
    if name in ("pool", "rule"):
        return f"a.{name}"
    if name.startswith("query."):
        return _json(backend, "utm", name[6:])
    if name == "landing.path":
        return _landing(backend, "path")
    if name == "landing.host":
        return _landing(backend, "host")
    return _json(backend, _PATHS[name][0])


def billed_minutes(backend: str) -> str:
    """Each answered call's forwarded minutes, rounded up (a started minute is billed)."""
    whole = floor(backend, "c.duration_seconds / 60")
    return (f"(CASE WHEN c.answered AND c.duration_seconds > 0 THEN {whole} + "
            f"(CASE WHEN {whole} * 60 < c.duration_seconds THEN 1 ELSE 0 END) ELSE 0 END)")
