"""The ``k50core`` command line."""
from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .errors import ConfigError

try:  # typer vendors its own click from 0.2x on; before, it raised click's own exceptions
    from typer._click.exceptions import ClickException as _ClickError, UsageError
except ImportError:  # pragma: no cover - older typer
    from click.exceptions import ClickException as _ClickError, UsageError  # type: ignore[assignment]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's


class _OneLineErrors(TyperGroup):
    """Every usage mistake is one line on stderr, ``k50core COMMAND: what is wrong``, and exit status 2
    (click and typer would print the usage and a framed box); a command's own exit status passes."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        given = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(given, prog_name, complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
        except _ClickError as exc:
            command = next((a for a in given if a in self.commands), None)  # the first name that is a command
            typer.echo(f"k50core{' ' + command if command else ''}: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(cls=_OneLineErrors, add_completion=False, no_args_is_help=True,
                  help="k50core: call tracking with a compiled core.")


def _version(value: bool) -> None:
    if value:
        from . import IMPLEMENTATION, __version__

        typer.echo(f"k50core {__version__} ({IMPLEMENTATION} build)")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and the active build, and exit")) -> None:
    """k50core: call tracking with a compiled core."""


def _bad(option: str, message: str) -> Exception:
    """A usage mistake in ``option``: printed as one line, exit status 2."""
    return typer.BadParameter(message, param_hint=f"'{option}'")


def _choice(value: str, allowed: Sequence[str]) -> str:
    """An option's value among ``allowed`` (any case)."""
    if value.lower() not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
    return value.lower()


def _at_least(low: int, high: int | None = None, what: str = "") -> Any:
    """A callback that refuses a whole number outside [low, high] naming the value and the range."""
    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            span = f"{low} to {high}" if high is not None else f"at least {low}"
            raise typer.BadParameter(f"{value}: {what + ' is ' if what else 'expected '}{span}")
        return value
    return check


def _service_stack() -> Any:
    """uvicorn, once the service's dependencies are known to be installed: the SDK installs without
    them (``pip install k50core``), the service is the ``service`` extra."""
    missing = []
    for name in ("starlette", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        typer.echo(f"k50core serve: the HTTP service needs {' and '.join(missing)}, not installed: "
                   "pip install 'k50core[service]' (in a checkout: pip install '.[service]')", err=True)
        raise typer.Exit(2)
    import uvicorn

    return uvicorn


def _redacted(url: str) -> str:
    """A store URL as it may be printed: without its password."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password:
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        pass
    return url


def _check_store(value: str, must_exist: bool = False) -> str:
    """A ``--store`` value, checked before anything opens it: a PostgreSQL URL needs psycopg, a file must
    be a SQLite database (or, unless ``must_exist``, not exist yet in a directory that does)."""
    if value.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise _bad("--store", f"{_redacted(value)}: PostgreSQL needs psycopg 3, which is not installed "
                                  "(pip install 'k50core[postgres]')") from None
        return value
    path = value[len("sqlite:///"):] if value.startswith("sqlite:///") else value
    if "://" in path:
        raise _bad("--store", f"{_redacted(value)}: expected a SQLite file or postgresql://...")
    if path == ":memory:" and not must_exist:
        return value
    file = Path(path)
    if file.is_dir():
        raise _bad("--store", f"{value} is a directory, not a SQLite file")
    if file.exists():
        try:
            with file.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise _bad("--store", f"{value}: {exc.strerror}") from None
        if head and head != b"SQLite format 3\x00":
            raise _bad("--store", f"{value} is not a SQLite database (a store is a SQLite file or postgresql://...)")
    elif must_exist:
        raise _bad("--store", f"{value}: no such file (the store the service or engine kept its calls in)")
    elif not file.resolve().parent.is_dir():
        raise _bad("--store", f"{value}: directory {file.resolve().parent} does not exist")
    return value


def _store_errors() -> tuple:
    """What opening a store can raise besides a ConfigError: a file or database that cannot be used."""
    import sqlite3

    errors: list = [sqlite3.Error, OSError, RuntimeError]
    try:
        import psycopg
        errors.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(errors)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

DEMO_VISITS: list[dict[str, Any]] = [
    {"visitor_id": "v1", "ip": "5.101.68.156",
     "url": "https://shop.example.ru/catalog/sofas?utm_source=yandex&utm_medium=organic",
     "referrer": "https://yandex.ru/search/?text=sofa",
     "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/120.0 Safari/537.36"},
    {"visitor_id": "v2", "ip": "5.16.252.86", "url": "https://shop.example.ru/", "referrer": "https://www.google.ru/",
     "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/17.0 Mobile/15E148 Safari/604.1"},
    {"visitor_id": "v3", "ip": "5.128.166.172",
     "url": "https://shop.example.ru/sale?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale&yclid=123",
     "user_agent": "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                   "Version/16.0 Mobile/15E148 Safari/604.1"},
    {"visitor_id": "v4", "ip": "203.0.113.7", "url": "https://shop.example.ru/",
     "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"},
    {"visitor_id": "v5", "ip": "31.181.63.3", "url": "https://shop.example.ru/catalog/tables/oak",
     "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15"},
    {"visitor_id": "v6", "ip": "66.249.66.1", "url": "https://shop.example.ru/",
     "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    {"visitor_id": "v7", "ip": "not-an-ip", "url": "http://[broken", "user_agent": None, "cookies": "a=1; b"},
]


def demo_config_path() -> Path:
    return Path(str(resources.files("k50core") / "examples" / "demo.yaml"))


def _fail(exc: ConfigError, source: str) -> None:
    typer.echo(f"{source}: {len(exc.problems)} problem(s)", err=True)
    for place, message in exc.problems:
        typer.echo(f"  {place}: {message}" if place else f"  {message}", err=True)
    raise typer.Exit(1)


@app.command()
def check(file: Path = typer.Argument(..., help="config file (.yaml, .yml, .json, .toml)")) -> None:
    """Validate a config: print every problem with its place, or a summary."""
    from .engine import Engine

    try:
        engine = Engine.from_config(file)
    except ConfigError as exc:
        _fail(exc, str(file))
        return
    cfg = engine.config
    by_type = {t: sum(1 for p in cfg.pools.values() if p.type == t) for t in ("dynamic", "static", "offline")}
    numbers = sum(len(p.numbers) for p in cfg.pools.values())
    typer.echo(f"{file}: ok")
    typer.echo(f"  rules: {len(cfg.rules)} (+ bot exclusion)" if cfg.exclude_bots else f"  rules: {len(cfg.rules)}")
    typer.echo(f"  pools: {len(cfg.pools)} ({by_type['dynamic']} dynamic, {by_type['static']} static, "
               f"{by_type['offline']} offline), {numbers} numbers")
    typer.echo(f"  lists: {len(cfg.lists)}; default number: {cfg.default_number or '-'}")
    typer.echo(f"  build: {engine.implementation}")


@app.command()
def schema() -> None:
    """Print the config's JSON Schema (for editors; src/k50core/config/schema.json is the same)."""
    from .config.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@app.command()
def demo(config: Path | None = typer.Option(None, help="config file (default: the bundled demo config)"),
         store: str = typer.Option("k50core-demo.db", help="where leases and calls are kept (SQLite file)"),
         as_json: bool = typer.Option(False, "--json", help="print JSON lines")) -> None:
    """Load a config, give a few sample visits their numbers and attribute a call to one of them."""
    from .engine import Engine

    source = config or demo_config_path()
    try:
        engine = Engine.from_config(source, store=store)
    except ConfigError as exc:
        _fail(exc, str(source))
        return
    typer.echo(f"k50core demo ({engine.implementation} build), config {source}\n", err=as_json)
    now = float(int(time.time()))
    called = None
    for visit in DEMO_VISITS:
        attrs = engine.attributes(visit, now=now)
        decision = engine.match(attrs)
        shown = engine.assign(visit, now=now)
        row = {
            "visitor": visit["visitor_id"], "region": attrs.get("geo", {}).get("region"),
            "source": attrs.get("source"), "traffic_type": attrs.get("traffic_type"),
            "device": attrs["device"]["type"], "rule": decision.rule, "kind": decision.kind, "pool": decision.pool,
            "number": shown.display, "shared": shown.shared,
        }
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))
        if shown.token and not called:
            called = {"call_id": f"demo-{int(now)}-{visit['visitor_id']}", "number": shown.number,
                      "caller": "+79161234567", "started_at": now + 120, "duration_seconds": 95, "answered": True}
    if called:
        got = engine.attribute(called, now=now + 240)
        row = {"call": called["call_id"], "number": called["number"], "status": got.status,
               "visitor": got.visitor_id, "rule": got.rule, "likelihood": got.likelihood,
               "source": got.attributes.get("source"), "utm": got.attributes.get("utm")}
        typer.echo(json.dumps(row, ensure_ascii=False) if as_json else
                   "\n" + "  ".join(f"{k}={v}" for k, v in row.items()), err=False)
    engine.close()
    typer.echo(f"\nleases and calls are in {store}", err=as_json)


@app.command()
def size(visits_per_day: float = typer.Option(..., help="visits a day that take a dynamic number"),
         avg_visit_min: float = typer.Option(..., help="average visit length, minutes"),
         code: str = typer.Option("495", help="the numbers' area code (495, 812, 800, ...)"),
         target: float = typer.Option(0.95, help="target attribution accuracy, 0-1"),
         hold_seconds: int = typer.Option(900, help="lease hold after the last activity"),
         cooldown_seconds: int = typer.Option(300, help="pause before a number is handed out again"),
         minutes: int | None = typer.Option(None, callback=_at_least(0, what="a count of minutes"),
                                               help="forwarded call minutes a month "
                                                    "(default: 5% of visits call, 3 minutes each)"),
         plans: Path | None = typer.Option(None, help="a plan config (default: the bundled plans.yaml)"),
         intent_share: float = typer.Option(0.0, help="share of calls a tap or copy of the number precedes, 0-1 "
                                                      "(the snippet reports them; default 0: none counted)"),
         store: str | None = typer.Option(None, help="measure the intent share from this deployment's store "
                                                        "(a SQLite file or postgresql://...)")) -> None:
    """How many numbers a pool needs for the target accuracy, and what each plan costs a month."""
    from .pricing import compare_plans, load_plans
    from .sizing import recommend

    if store is not None:
        from .intent.measure import intent_share as measured
        from .store import open_store

        _check_store(store, must_exist=True)
        try:
            with open_store(store) as db:
                found = measured(db)
        except _store_errors() as exc:
            typer.echo(f"k50core size: --store {_redacted(store)}: {_first_line(exc)}", err=True)
            raise typer.Exit(2) from None
        intent_share = found.share
        typer.echo(f"calls preceded by a tap or copy: {found.share:.1%} ({found.with_intent:,} of {found.calls:,} "
                   f"calls to dynamic numbers in {_redacted(store)})")
    try:
        rec = recommend(visits_per_day, avg_visit_min, target, hold_seconds=hold_seconds,
                        cooldown_seconds=cooldown_seconds, intent_share=intent_share)
        config = load_plans(plans)
        month = round(visits_per_day * 30 * 0.05 * 3) if minutes is None else minutes
        invoices = compare_plans(rec.numbers, code, month, config=config)
    except ValueError as exc:  # ConfigError and UnreachableTarget are ValueErrors naming what is wrong
        typer.echo(f"k50core size: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in rec.explain():
        typer.echo(line)
    typer.echo(f"\nmonthly cost for {rec.numbers} numbers with code {code}, {month:,} forwarded minutes"
               + (" (assumed: 5% of visits call, 3 minutes each)" if minutes is None else "") + ":")
    for invoice in invoices:
        typer.echo(f"  {invoice.label:<32} {invoice.total:>12,.2f} {invoice.currency}")


@app.command()
def invoice(store: str = typer.Option(..., help="the store the calls were recorded in: a SQLite file "
                                      "or postgresql://..."),
            numbers: int = typer.Option(..., help="tracking numbers on the plan"),
            month: str | None = typer.Option(None, help="YYYY-MM (UTC); default: every recorded call"),
            code: str = typer.Option("495", help="the numbers' area code"),
            plan: str = typer.Option("provider", help="provider, own or code"),
            plans: Path | None = typer.Option(None, help="a plan config (default: the bundled plans.yaml)")) -> None:
    """A month's invoice estimate from the calls recorded in a store (forwarded minutes)."""
    from .pricing import estimate, load_plans, monthly_usage
    from .store import open_store

    _check_store(store, must_exist=True)  # a typo must not bill an empty new store
    try:
        with open_store(store) as db:
            usage = monthly_usage(db.calls(), month)
        bill = estimate(numbers, code, usage, plan=plan, config=load_plans(plans))
    except _store_errors() as exc:
        typer.echo(f"k50core invoice: --store {_redacted(store)}: {_first_line(exc)}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        typer.echo(f"k50core invoice: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{bill.label}: {usage.calls} calls, {usage.phone_minutes} forwarded minutes"
               + (f", {usage.sip_minutes} SIP minutes" if usage.sip_minutes else ""))
    for line in bill.lines:
        typer.echo(f"  {line.description:<44} {line.quantity!s:>8} x {line.unit_price:>10,.2f} = {line.amount:>12,.2f}")
    typer.echo(f"  {'total':<44} {'':>8}   {'':>10}   {bill.total:>12,.2f} {bill.currency}")


@app.command()
def simulate(visits_per_day: float = typer.Option(3000, help="human visits a day (they take a dynamic number)"),
             avg_visit_min: float = typer.Option(4.0, help="average visit length, minutes"),
             numbers: int | None = typer.Option(None, help="numbers in the pool (default: k50core size's answer)"),
             days: float = typer.Option(1, help="simulated days"),
             seed: int = typer.Option(0, help="random seed (a seed always gives the same run)"),
             call_share: float = typer.Option(0.05, help="share of human visits that call"),
             hold_seconds: int = typer.Option(900, help="lease hold after the last activity"),
             cooldown_seconds: int = typer.Option(300, help="pause before a number is handed out again"),
             config: Path | None = typer.Option(None, help="a config to simulate (default: one dynamic pool)"),
             sweep: str | None = typer.Option(None, help="pool sizes lo:hi:step, e.g. 40:160:10"),
             svg: Path | None = typer.Option(None, help="with --sweep: write accuracy vs pool size here (SVG)"),
             target: float = typer.Option(0.95, help="target accuracy drawn on the chart"),
             progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
             intent_share: float | None = typer.Option(
                 None, help="share of calls a tap or copy of the number precedes (0-1); with it, visitors spread "
                            "over four regions and 15% of callers ring from a landline")) -> None:
    """Simulate visits and calls through the engine: accuracy, statuses, utilisation, exhaustion."""
    from . import simulate as sim

    sizes = _sweep_sizes(sweep) if sweep is not None else None
    if svg is not None:  # checked before a sweep that may run for minutes
        if sizes is None:
            raise _bad("--svg", "the chart draws a sweep: give --sweep lo:hi[:step] too")
        _check_writable(svg, "--svg")
    kw: dict[str, Any] = dict(visits_per_day=visits_per_day, avg_visit_minutes=avg_visit_min, days=days, seed=seed,
                              call_share=call_share, hold_seconds=hold_seconds, cooldown_seconds=cooldown_seconds,
                              progress=progress and sys.stdout.isatty())
    try:
        if intent_share is not None:
            from .simulate_callers import REGIONS
            kw["callers"] = sim.CallerModel.with_intent_share(intent_share, noise_share=0.02, landline_share=0.15,
                                                              regions=REGIONS)
        source = None
        if config is not None:
            from .config import read_config
            source = read_config(config)
        if sizes is None:
            report = sim.simulate(source, numbers=numbers, **kw)
            for line in report.summary():
                typer.echo(line)
            return
        points = sim.sweep(sizes, config=source, **kw)
    except ConfigError as exc:
        _fail(exc, str(config))
        return
    except ValueError as exc:
        typer.echo(f"k50core simulate: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{'numbers':>8} {'accuracy':>9} {'peak':>8} {'matched':>8} {'late':>7} {'ambig.':>7} "
               f"{'unmatch.':>8} {'util.':>6} {'exhausted':>9}")
    for n, r in points:
        typer.echo(f"{n:>8} {r.accuracy:>9.2%} {r.peak_accuracy:>8.2%} {r.shares['matched']:>8.2%} "
                   f"{r.shares['late']:>7.2%} {r.shares['ambiguous']:>7.2%} {r.shares['unmatched']:>8.2%} "
                   f"{r.utilisation_mean:>6.1%} {r.exhaustion_events:>9,}")
    if svg is not None:
        sim.chart_svg(points, svg, target=target)
        typer.echo(f"chart: {svg}")


def _sweep_sizes(sweep: str) -> list[int]:
    """``lo:hi[:step]`` -> the pool sizes it names; a usage mistake when it is not that."""
    parts = sweep.split(":")
    if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
        raise _bad("--sweep", f"expected lo:hi[:step] in whole numbers, e.g. 40:160:10; got {sweep!r}")
    lo, hi, step = int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 1
    if lo < 1 or hi < lo or step < 1:
        raise _bad("--sweep", f"expected 1 <= lo <= hi and a step of at least 1; got {sweep!r}")
    return list(range(lo, hi + 1, step))


def _check_writable(path: Path, option: str) -> None:
    """A file the command will write: its directory exists and is writable, and it is not a directory."""
    folder = path.resolve().parent
    if path.is_dir():
        raise _bad(option, f"{path} is a directory")
    if not folder.is_dir():
        raise _bad(option, f"cannot write {path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise _bad(option, f"cannot write {path}: directory {folder} is not writable")


def demo_instructions(base: str, made_key: str | None, call_id: str) -> list[str]:
    """What ``serve --demo`` prints: the page to open and the request telephony would send for a call to
    the number it shows (the README shows the same, and the answer)."""
    key = made_key or "KEY"
    return [
        f"demo site: {base}/?utm_campaign=spring_sale (open it: the page shows a tracking number)",
        (f"demo API key, made for this run (--api-key KEY sets one): {made_key}" if made_key else
         "the private endpoints take the --api-key you gave (KEY below)"),
        "post a call to the number the page shows, as telephony would (put it in place of NUMBER):",
        f"  curl -s {base}/v1/calls -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
        f"-d '{{\"call_id\": \"{call_id}\", \"number\": \"NUMBER\", \"caller\": \"+79161234567\", "
        f"\"started_at\": '$(date +%s)'}}'",
        "the answer is the call's attribution: status matched, the visit's visitor_id, rule spring-campaign, "
        "its source and utm tags",
    ]


def _secure_cookie(public_url: str | None) -> bool | None:
    """An https public URL (a TLS proxy in front, whose requests reach us over plain http): the
    visitor cookie is Secure. Otherwise the request's own scheme decides."""
    return True if public_url and public_url.lower().startswith("https://") else None


@app.command()
def serve(config: Path | None = typer.Option(None, help="config file (.yaml, .yml, .json, .toml)"),
          demo: bool = typer.Option(False, "--demo", help="the demo page at / and, without --config, the bundled "
                                    "demo config and store k50core-demo.db"),
          host: str = typer.Option("127.0.0.1", help="address to listen on"),
          port: int = typer.Option(8050, callback=_at_least(1, 65535, "a port"), help="port to listen on"),
          store: str | None = typer.Option(None, help="a SQLite file or postgresql://... "
                                              "(default: k50core-demo.db with --demo alone, else in memory: "
                                              "nothing kept)"),
          api_key: list[str] = typer.Option([], "--api-key", help="a key for the private endpoints (repeatable; "
                                            "also K50CORE_API_KEYS, comma-separated)"),
          cors_origin: list[str] = typer.Option([], "--cors-origin", help="a site allowed to call /v1/visit and "
                                                "/v1/heartbeat from browsers (repeatable)"),
          trusted_proxy: list[str] = typer.Option([], "--trusted-proxy", help="a proxy (address or CIDR) whose "
                                                  "X-Forwarded-For is believed (repeatable)"),
          webhook_secret: list[str] = typer.Option([], "--webhook-secret", help="a secret telephony signs calls "
                                                   "with (HMAC-SHA256; repeatable; also K50CORE_WEBHOOK_SECRETS)"),
          twilio_auth_token: str | None = typer.Option(None, help="check X-Twilio-Signature with this token "
                                                          "(also K50CORE_TWILIO_AUTH_TOKEN)"),
          public_url: str | None = typer.Option(None, help="the service's address as Twilio calls it, e.g. "
                                                   "https://track.example.ru behind a proxy: Twilio signs that "
                                                   "URL, not the one the proxy forwards to"),
          cdr_timezone: str = typer.Option("UTC", help="the time zone of Asterisk/FreePBX CDR times "
                                           "(\"YYYY-MM-DD HH:MM:SS\"), e.g. Europe/Moscow: a call read in the "
                                           "wrong zone is recorded unmatched, once"),
          workers: int = typer.Option(1, callback=_at_least(1, what="a worker count"),
                                      help="worker processes; they share one pool segment and store "
                                           "(needs --store: a SQLite file, or PostgreSQL with --state-path)"),
          state_path: str | None = typer.Option(None, help="the shared pool segment (default: beside a "
                                                   "SQLite file store, e.g. /dev/shm/k50.pools for PostgreSQL)"),
          state_url: str | None = typer.Option(None, help="keep the number pools in Redis, shared by every "
                                                  "host naming it: redis://host:6379/0, rediss://..., "
                                                  "redis+cluster://h1:p1,h2:p2 (with a PostgreSQL --store)"),
          rate_limits: bool = typer.Option(True, "--rate-limits/--no-rate-limits",
                                           help="limit visits per IP and per visitor (off: load tests)"),
          log_level: str = typer.Option("info", callback=lambda v: _choice(v, LOG_LEVELS),
                                        help="uvicorn log level: " + ", ".join(LOG_LEVELS))) -> None:
    """Run the HTTP service: visits get numbers, telephony posts calls, reports export them."""
    uvicorn = _service_stack()
    from .bindings.service import create_app
    from .bindings.service.server import JsonErrorsHTTPProtocol
    from .bindings.telephony.payloads import zone
    from .engine import Engine

    if config is None and not demo:
        raise UsageError("give --config FILE or --demo")
    source = config or demo_config_path()
    target = store or ("k50core-demo.db" if demo and config is None else None)
    if target is not None:
        _check_store(target)
    try:
        zone(cdr_timezone)
    except ValueError:
        raise _bad("--cdr-timezone", f"{cdr_timezone!r} is not a time zone: an IANA name such as "
                                     "Europe/Moscow or UTC") from None
    if public_url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise _bad("--public-url", f"{public_url!r}: expected the service's base URL, e.g. "
                                       "https://track.example.ru")
    for proxy in trusted_proxy:
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise _bad("--trusted-proxy", f"{proxy!r} is not an IP address or CIDR network "
                                          "(e.g. 10.0.0.1 or 10.0.0.0/8)") from None
    keys = list(api_key) + [k.strip() for k in os.environ.get("K50CORE_API_KEYS", "").split(",") if k.strip()]
    if state_url is not None and state_path is not None:
        raise _bad("--state-url", "pools live either in Redis (--state-url) or in a segment (--state-path), not both")
    if workers > 1 and (target is None or (target.startswith(("postgresql://", "postgres://"))
                                           and not (state_path or state_url))):
        typer.echo("--workers > 1 needs a shared store and pool segment: --store FILE.db, or a PostgreSQL "
                   "--store with --state-path", err=True)
        raise typer.Exit(2)
    try:
        engine = Engine.from_config(source, store=target, state_path=state_path, state_url=state_url)
    except ConfigError as exc:
        _fail(exc, str(source))
        return
    except _store_errors() as exc:
        raise _bad("--store", f"{_redacted(target or ':memory:')}: {_first_line(exc)}") from None
    made_key = None
    if demo and not keys:  # the demo shows the whole flow, a call included: it needs a key to post one
        import secrets as _secrets

        made_key = _secrets.token_urlsafe(18)
        keys = [made_key]
    if not keys:
        typer.echo("no --api-key: the private endpoints (/v1/calls, /v1/pools) will answer 401", err=True)
    secrets = list(webhook_secret) + [k.strip() for k in os.environ.get("K50CORE_WEBHOOK_SECRETS", "").split(",")
                                      if k.strip()]
    limits: dict[str, Any] = {} if rate_limits else {"rate_limits": None}
    application = create_app(engine, api_keys=keys, cors_origins=cors_origin, trusted_proxies=trusted_proxy,
                             demo=demo, webhook_secrets=secrets, freeze_gc=True, public_url=public_url,
                             cdr_timezone=cdr_timezone, secure_cookie=_secure_cookie(public_url),
                             twilio_auth_token=twilio_auth_token or os.environ.get("K50CORE_TWILIO_AUTH_TOKEN"),
                             **limits)
    kept = _redacted(target) if target is not None else \
        "in memory (nothing is kept when it stops; --store FILE.db keeps leases and calls)"
    typer.echo(f"k50core serve ({engine.implementation} build): config {source}, store {kept}, "
               f"http://{host}:{port}", err=True)
    if demo:  # the demo config swaps numbers for campaign and search traffic, not a bare direct visit
        for line in demo_instructions(f"http://{host}:{port}", made_key, f"demo-{int(time.time())}"):
            typer.echo(line, err=True)
    # a line a request only where it is shown: uvicorn formats it (client, quoted path) regardless
    access_log = log_level.lower() in ("trace", "debug", "info")
    if workers > 1:  # each worker builds its own app from the same settings (see from_environment)
        engine.close()
        os.environ["K50CORE_SERVE"] = json.dumps({
            "config": str(source), "store": target, "state_path": state_path, "state_url": state_url, "api_keys": keys,
            "cors_origins": list(cors_origin), "trusted_proxies": list(trusted_proxy), "demo": demo,
            "webhook_secrets": secrets, "freeze_gc": True,
            "public_url": public_url, "cdr_timezone": cdr_timezone,
            "twilio_auth_token": twilio_auth_token or os.environ.get("K50CORE_TWILIO_AUTH_TOKEN"),
            **({} if rate_limits else {"rate_limits": None})})
        uvicorn.run(f"{create_app.__module__}:from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level=log_level, proxy_headers=False, access_log=access_log,
                    http=JsonErrorsHTTPProtocol)  # an unparsable request gets a JSON 400 too
        return
    try:
        uvicorn.run(application, host=host, port=port, workers=1, log_level=log_level, access_log=access_log,
                    proxy_headers=False,  # the app reads X-Forwarded-For itself, from trusted proxies only
                    http=JsonErrorsHTTPProtocol)  # an unparsable request gets a JSON 400 too
    finally:
        engine.close()


from .cli_reports import register as _register_reports  # noqa: E402 (report, import-deals)

_register_reports(app)


def main(argv: list[str] | None = None) -> None:
    app(args=argv)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
