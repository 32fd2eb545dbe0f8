"""The k50core command line."""
import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from k50core.cli import app, demo_config_path

runner = CliRunner()


def test_check_ok():
    result = runner.invoke(app, ["check", str(demo_config_path())])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "15 numbers" in result.output


def test_check_reports_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('pools:\n  msk: {type: dynamic, numbers: ["+7495"]}\n'
                   'rules:\n  - {name: a, when: {geo.region: {$in: RU-MOW}}, pool: mks}\n')
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
    for line in ("pools.msk.numbers[0]: '+7495' is not a valid phone number",
                 "rules[0].pool: unknown pool 'mks'",
                 "rules[0].when.geo.region: $in expects a list"):
        assert line in result.output


def test_demo_prints_decisions_and_a_call(tmp_path):
    for _run in range(2):                                 # a second run continues the first's pools and store
        result = runner.invoke(app, ["demo", "--json", "--store", str(tmp_path / "demo.db")])
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        visits, (call,) = [r for r in rows if "visitor" in r and "call" not in r], [r for r in rows if "call" in r]
        assert {r["visitor"]: r["rule"] for r in visits}["v1"] == "msk-search" and len(visits) == 7
        assert (call["status"], call["visitor"], call["source"]) == ("matched", "v1", "yandex")


def test_size_prints_numbers_accuracy_and_plan_costs():
    result = CliRunner().invoke(app, ["size", "--visits-per-day", "3000", "--avg-visit-min", "4", "--code", "495"])
    assert result.exit_code == 0, result.output
    numbers = int(result.output.split("numbers: ")[1].split()[0])
    assert 0 < numbers < 150                                   # fewer than one number per 20 daily visits
    assert "expected accuracy at the peak hour" in result.output
    for plan in ("provider", "own", "code"):
        assert f"\n  {plan} " in result.output
    bad = CliRunner().invoke(app, ["size", "--visits-per-day", "-3", "--avg-visit-min", "4"])
    assert bad.exit_code == 2 and "visits_per_day" in bad.output


def test_invoice_from_recorded_calls(tmp_path):
    from k50core import Engine

    db = str(tmp_path / "k50.db")
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"]}}, "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, store=db) as engine:
        a = engine.assign({"visitor_id": "v1"}, now=1_793_400_000)             # 2026-10-30
        # 3,003 answered minutes (a call lasts at most a day): 1,440 + 1,440 + 121 + 2 started minutes
        for i, (seconds, answered) in enumerate([(1440 * 60, True), (1440 * 60, True), (121 * 60, True), (90, True),
                                                 (600, False)]):
            engine.attribute({"call_id": f"c{i}", "number": a.number, "started_at": 1_793_400_100 + i,
                              "duration_seconds": seconds, "answered": answered}, now=1_793_400_200)
    result = CliRunner().invoke(app, ["invoice", "--store", db, "--numbers", "4", "--month", "2026-10"])
    assert result.exit_code == 0, result.output
    assert "5 calls, 3003 forwarded minutes" in result.output                # per started minute, answered only
    assert "3.00" in result.output and "total" in result.output            # 3 minutes over the 3,000 package
    empty = CliRunner().invoke(app, ["invoice", "--store", db, "--numbers", "4", "--month", "2026-09"])
    assert "0 calls" in empty.output


# -- every usage mistake: one clear line on stderr, exit status 2, nothing done -----------------------------
def one_line_error(result, *needles):
    """A usage mistake as CliRunner saw it: exit 2, one line on stderr naming the command, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception          # not a traceback
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("k50core"), result.stderr
    assert result.stdout == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, code="from k50core.cli import main; main(sys.argv[1:])", timeout=60):
    """The installed CLI in a fresh interpreter (a mistake it misses would start a server: the timeout
    ends that as a failure, not a hung test)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    try:
        return subprocess.run([sys.executable, "-c", "import sys; " + code, *args], capture_output=True,
                              text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"k50core {' '.join(args)} did not stop: {exc.stderr}") from None


def one_line_from(got, *needles):
    """The same as one_line_error, for a CLI run in a subprocess."""
    assert got.returncode == 2 and "Traceback" not in got.stderr, (got.returncode, got.stderr)
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("k50core") and got.stdout == "", (got.stdout, got.stderr)
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("args, needles", [
    (["--port", "70000"], ["k50core serve:", "'--port'", "70000", "1 to 65535"]),
    (["--log-level", "loud"], ["'--log-level'", "'loud'", "warning"]),
    (["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "notanip"], ["'--trusted-proxy'", "'notanip'", "CIDR"]),
    (["--workers", "0"], ["'--workers'", "0", "at least 1"]),
    (["--store", "/missing/dir/k50.db"], ["'--store'", "/missing/dir does not exist"]),
    (["--cdr-timezone", "Moscow"], ["'--cdr-timezone'", "'Moscow'", "Europe/Moscow"]),
    (["--public-url", "track.example.ru"], ["'--public-url'", "https://"]),
])
def test_a_serve_mistake_is_one_line_and_status_2(args, needles, tmp_path):
    port = [] if "--port" in args else ["--port", str(free_port())]
    one_line_from(run_cli("serve", "--demo", "--store", str(tmp_path / "k50.db"), *port, *args), *needles)


@pytest.mark.parametrize("args, needles", [
    (["serve"], ["--config FILE or --demo"]),
    (["simulate", "--sweep", "abc", "--no-progress"], ["k50core simulate:", "'--sweep'", "'abc'", "lo:hi"]),
    (["simulate", "--sweep", "20:10", "--no-progress"], ["'--sweep'", "lo <= hi"]),
    (["simulate", "--svg", "x.svg", "--no-progress"], ["'--svg'", "--sweep"]),
    (["size", "--visits-per-day", "3000", "--avg-visit-min", "4", "--minutes", "-100"],
     ["k50core size:", "'--minutes'", "-100"]),
    (["invoice", "--numbers", "4"], ["k50core invoice:", "--store"]),
    (["nosuchcommand"], ["k50core:", "nosuchcommand"]),
])
def test_a_usage_mistake_is_one_line_and_status_2(args, needles):
    one_line_error(CliRunner().invoke(app, args), *needles)


def test_simulate_checks_the_svg_path_before_the_sweep_runs(tmp_path):
    """The chart is written after a sweep that may take minutes: a path it cannot be written to is refused
    before the sweep runs (nothing of the sweep's table is printed)."""
    sweep = ["simulate", "--visits-per-day", "300", "--sweep", "5:6", "--no-progress", "--svg"]
    line = one_line_error(CliRunner().invoke(app, sweep + [str(tmp_path / "missing" / "x.svg")]),
                          "'--svg'", "does not exist")
    assert str(tmp_path / "missing") in line
    one_line_error(CliRunner().invoke(app, sweep + [str(tmp_path)]), "'--svg'", "is a directory")


def test_invoice_refuses_what_is_not_a_store(tmp_path):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("pools: {}\n")
    one_line_error(CliRunner().invoke(app, ["invoice", "--store", str(cfg), "--numbers", "4"]),
                   "'--store'", "my.yaml is not a SQLite database")
    assert cfg.read_text() == "pools: {}\n"


def test_invoice_refuses_a_missing_store_instead_of_billing_zero_calls(tmp_path):
    typo = tmp_path / "typo.db"
    one_line_error(CliRunner().invoke(app, ["invoice", "--store", str(typo), "--numbers", "4"]),
                   "'--store'", "typo.db: no such file")
    assert not typo.exists()                                  # and nothing was created in its place


@pytest.mark.parametrize("command", [["serve", "--config", str(demo_config_path())], ["invoice", "--numbers", "4"]])
def test_a_postgresql_store_without_psycopg_is_one_line(command):
    """An install without the 'postgres' extra: ``sys.modules['psycopg'] = None`` is exactly what a
    missing module is to ``import``."""
    got = run_cli(*command, "--store", "postgresql://k50:secret@db.example.ru/k50",
                  code="sys.modules['psycopg'] = None; from k50core.cli import main; main(sys.argv[1:])")
    line = one_line_from(got, "'--store'", "psycopg", "pip install 'k50core[postgres]'")
    assert "secret" not in line and "db.example.ru" in line       # the URL without its password


def start_serve_cli(*args, cwd=None):
    """`python -m k50core.cli serve ARGS` on a free port until /healthz answers: (process, base URL).
    Its stderr is a file, read with ``stderr_of``."""
    import tempfile

    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "k50core.cli", "serve", "--port", str(port),
                             "--log-level", "warning", *args], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=err)
    proc.err = err
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {stderr_of(proc)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(proc)
    raise AssertionError(f"the service did not start: {stderr_of(proc)}")


def stderr_of(proc) -> str:
    proc.err.seek(0)
    return proc.err.read()


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def test_serve_demo_with_a_config_says_which_store_it_uses(tmp_path):
    """--demo alone keeps leases and calls in k50core-demo.db; --demo with --config has no store unless
    --store gives one: the start-up line says so, and where a file store is."""
    config = tmp_path / "x.yaml"
    config.write_text(demo_config_path().read_text())
    proc, base = start_serve_cli("--demo", "--config", str(config), cwd=tmp_path)
    stop(proc)
    said = stderr_of(proc)
    assert "store in memory (nothing is kept when it stops; --store FILE.db keeps leases and calls)" in said, said
    assert not list(tmp_path.glob("*.db*"))
    proc, base = start_serve_cli("--demo", cwd=tmp_path)
    stop(proc)
    assert "store k50core-demo.db," in stderr_of(proc) and (tmp_path / "k50core-demo.db").exists()


# -- serve exposes what create_app can do ------------------------------------------------------------------
CAMPAIGN = "https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def test_serve_reads_cdr_times_in_its_zone_and_checks_twilio_against_the_public_url(tmp_path):
    """--cdr-timezone: an Asterisk CDR's local "YYYY-MM-DD HH:MM:SS" is read in that zone (read as UTC, a
    Moscow call lands three hours off and is recorded unmatched, for good). --public-url: behind a proxy
    Twilio signs the public URL, not the one the service is reached at."""
    from datetime import datetime
    from urllib.parse import urlencode
    from zoneinfo import ZoneInfo

    from k50core import Engine
    from k50core.bindings.telephony.signing import twilio_signature

    db = str(tmp_path / "k50.db")
    now = time.time()
    with Engine.from_config(demo_config_path(), store=db) as engine:    # two visits, leases in the store
        shown = [engine.assign({"visitor_id": f"v{i}", "url": CAMPAIGN, "ip": "5.101.68.156", "user_agent": DESKTOP},
                               now=now - 120) for i in (1, 2)]
    assert all(a.token for a in shown) and shown[0].number != shown[1].number
    proc, base = start_serve_cli("--config", str(demo_config_path()), "--store", db, "--api-key", "k",
                                 "--cdr-timezone", "Europe/Moscow", "--twilio-auth-token", "tw-token",
                                 "--public-url", "https://track.example.ru/")
    try:
        moscow = datetime.fromtimestamp(now - 60, ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%d %H:%M:%S")
        cdr = {"uniqueid": "1733590000.17", "did": shown[0].number, "src": "+79161234567", "calldate": moscow,
               "duration": 50, "billsec": 40, "disposition": "ANSWERED"}
        got = httpx.post(f"{base}/v1/calls?format=asterisk", json=cdr, headers={"X-API-Key": "k"}, timeout=30)
        assert got.status_code == 200, got.text
        assert (got.json()["status"], got.json()["visitor_id"]) == ("matched", "v1")

        form = [("CallSid", "CA0123456789abcdef0123456789abcdef"), ("To", shown[1].number),
                ("From", "+79161234568"), ("CallStatus", "completed"), ("CallDuration", "40"),
                ("Timestamp", datetime.fromtimestamp(now - 20, ZoneInfo("UTC")).strftime("%a, %d %b %Y %H:%M:%S +0000"))]
        signature = twilio_signature("tw-token", "https://track.example.ru/v1/calls?format=twilio", form)
        got = httpx.post(f"{base}/v1/calls?format=twilio", content=urlencode(form), timeout=30,
                         headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
        assert got.status_code == 200, got.text
        assert (got.json()["status"], got.json()["visitor_id"]) == ("matched", "v2")

        # behind the TLS proxy the public URL names, the visitor cookie is Secure though we hear http
        got = httpx.post(f"{base}/v1/visit", json={"url": CAMPAIGN}, headers={"User-Agent": DESKTOP}, timeout=30)
        assert got.status_code == 200, got.text
        cookie = got.headers["set-cookie"]
        assert cookie.startswith("k50_vid=") and "; Secure" in cookie, cookie
    finally:
        stop(proc)
