"""``k50core report`` and ``k50core import-deals`` (registered on the CLI's app by cli.py)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

FORMATS = ("table", "csv", "json")


def _when(value: str | None, option: str) -> float | None:
    from .cli import _bad
    from .crm.deals import parse_time

    if value is None:
        return None
    found = parse_time(value)
    if found is None:
        raise _bad(option, f"{value!r}: expected a date (2026-12-01), an ISO 8601 time or unix seconds")
    return found


def _config(path: Path | None) -> Any:
    from .config import Config, parse, read_config
    from .errors import ConfigError

    if path is None:
        return Config()
    try:
        config, problems = parse(read_config(path))
    except ConfigError as exc:
        problems = exc.problems
    except OSError as exc:
        typer.echo(f"{path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    if problems:
        typer.echo(f"{path}: {len(problems)} problem(s)", err=True)
        for place, message in problems:
            typer.echo(f"  {place}: {message}" if place else f"  {message}", err=True)
        raise typer.Exit(1)
    return config


def report(store: str = typer.Option(..., help="the store: a SQLite file or postgresql://..."),
           by: str = typer.Option("source", help="comma-separated dimensions, e.g. source,query.utm_campaign"),
           since: str | None = typer.Option(None, help="from this date / time (UTC) or unix seconds"),
           until: str | None = typer.Option(None, help="before this date / time (UTC) or unix seconds"),
           format: str = typer.Option("table", "--format", help="table, csv or json"),
           config: Path | None = typer.Option(None, help="the site's config (its numbers and plan give the "
                                                            "cost; default: the plan's minimum)")) -> None:
    """Visits, calls, deals, revenue and cost by source, campaign, page, ... (most calls first)."""
    from .cli import _bad, _check_store, _first_line, _redacted, _store_errors
    from .report import COLUMNS, ReportError, query
    from .store import open_store

    if format not in FORMATS:
        raise _bad("--format", f"expected one of {', '.join(FORMATS)}")
    _check_store(store, must_exist=True)
    low, high = _when(since, "--since"), _when(until, "--until")
    cfg = _config(config)
    try:
        with open_store(store) as db:
            rows = query.report(db, cfg, by, low, high, settings=cfg.reports)
    except ReportError as exc:
        raise _bad("--by" if str(exc).startswith("by") else "--since", str(exc)) from None
    except _store_errors() as exc:
        typer.echo(f"k50core report: --store {_redacted(store)}: {_first_line(exc)}", err=True)
        raise typer.Exit(2) from None
    dims = [d.strip() for d in by.split(",") if d.strip()]
    if format == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if format == "csv":
        from .report.export import report_csv
        typer.echo(report_csv(rows, dims), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"k50core report by {', '.join(dims)}")
    for name in dims + list(COLUMNS):
        table.add_column(name, justify="left" if name in dims else "right")
    for r in rows:
        keys = ["(unmatched)" if r["unmatched"] else ("-" if r[d] is None else str(r[d])) for d in dims]
        table.add_row(*keys, *("-" if r[c] is None else f"{r[c]:,.2f}" if isinstance(r[c], float) else f"{r[c]:,}"
                               for c in COLUMNS))
    Console(width=max(100, 14 * (len(dims) + len(COLUMNS)))).print(table)


def import_deals(file: Path = typer.Argument(..., help="deals: a .csv (header row) or .json (array) file"),
                 store: str = typer.Option(..., help="the store the calls are in: a SQLite file or postgresql://..."),
                 config: Path | None = typer.Option(None, help="the site's config (its region reads the phones, "
                                                                  "crm.match_days bounds the match)")) -> None:
    """Import CRM deals, each matched to the caller's latest call before it; a refused row is
    printed with its line, and the exit status is then 1 (the others are imported)."""
    from .cli import _check_store, _first_line, _redacted, _store_errors
    from .crm import DealFileError, import_deals as run, read_deal_file
    from .store import open_store

    _check_store(store, must_exist=True)
    cfg = _config(config)
    try:
        found = read_deal_file(file)
    except DealFileError as exc:
        typer.echo(f"k50core import-deals: {exc}", err=True)
        raise typer.Exit(2) from None
    rows = [row for _, row in found]
    places = [place for place, _ in found]
    try:
        with open_store(store) as db:
            result = run(db, rows, region=cfg.region, match_days=cfg.crm["match_days"], now=time.time(),
                         origin=file.suffix.lower().lstrip("."))
    except _store_errors() as exc:
        typer.echo(f"k50core import-deals: --store {_redacted(store)}: {_first_line(exc)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(result.imported)} imported, {len(result.updated)} updated "
               f"({len(result.unattributed)} with no call from their phone), {len(result.refused)} refused")
    for r in result.refused:
        typer.echo(f"{file}, {places[r['row']]}: {r['reason'] if isinstance(rows[r['row']], dict) else rows[r['row']]}",
                   err=True)
    if result.refused:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command("import-deals")(import_deals)
