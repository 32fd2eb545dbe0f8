"""The k50core command line."""
import json

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
    for run in range(2):                                  # a second run continues the first's pools and store
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
