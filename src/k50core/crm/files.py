"""Deal files for ``k50core import-deals``: CSV (a header row naming the fields) or JSON (an array
of objects, or ``{"deals": [...]}``), each row with the line it came from for error messages."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import Error

MAX_FILE = 200 * 1024 * 1024
FIELDS = ("deal_id", "phone", "created_at", "amount", "status", "currency", "title")


class DealFileError(Error, ValueError):
    """A deal file that cannot be read at all; the message names the file and line."""


def read_deal_file(path: str | Path) -> list[tuple[str, Any]]:
    """(place, row) for every deal in the file ("line 12", or "item 3" inside an object); a row that
    is not a deal at all is a string saying why. DealFileError for a file that cannot be read."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise DealFileError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    if size > MAX_FILE:
        raise DealFileError(f"{p}: larger than {MAX_FILE // 2**20} MiB; split it")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[:exc.start].count(b"\n") + 1
        raise DealFileError(f"{p}, line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise DealFileError(f"{p}: cannot read it ({exc.strerror or exc})") from None
    suffix = p.suffix.lower()
    if suffix == ".json":
        return _json_rows(p, text)
    if suffix == ".csv":
        return _csv_rows(p, text)
    raise DealFileError(f"{p}: expected a .csv or .json file")


def _json_rows(p: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DealFileError(f"{p}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise DealFileError(f"{p}: nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("deals"), list):
        return [(f"item {i + 1}", row) for i, row in enumerate(data["deals"])]
    if not isinstance(data, list):
        raise DealFileError(f"{p}, line 1: expected an array of deals (or {{\"deals\": [...]}})")
    return list(zip(_item_lines(text), data))


def _item_lines(text: str) -> list[str]:
    """Where each item of a top-level array starts ("line N"), read item by item."""
    decode, at = json.JSONDecoder().raw_decode, text.index("[") + 1
    places: list[str] = []
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            return places
        places.append(f"line {text.count(chr(10), 0, at) + 1}")
        at = decode(text, at)[1]


def _csv_rows(p: Path, text: str) -> list[tuple[str, Any]]:
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)  # the header's separator: a comma, a semicolon (Excel in
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)  # Russian locales) or a tab
    try:
        header = next(reader)
    except StopIteration:
        raise DealFileError(f"{p}: empty file (expected a header row: {', '.join(FIELDS)})") from None
    except csv.Error as exc:
        raise DealFileError(f"{p}, line 1: {exc}") from None
    names = [h.strip().lower() for h in header]
    missing = [f for f in ("deal_id", "phone", "created_at", "status") if f not in names]
    if missing:
        raise DealFileError(f"{p}, line 1: the header lacks {', '.join(missing)} "
                            f"(expected columns: {', '.join(FIELDS)})")
    rows: list[tuple[str, Any]] = []
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DealFileError(f"{p}, line {line}: {exc}") from None
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(names):
            rows.append((f"line {line}", f"{len(values)} values for {len(names)} columns (a stray separator?)"))
            continue
        rows.append((f"line {line}", {n: v for n, v in zip(names, values) if n in FIELDS}))
    return rows
