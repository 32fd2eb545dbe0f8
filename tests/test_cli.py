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


def test_demo_prints_decisions():
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {r["visitor"]: r["rule"] for r in rows}["v1"] == "msk-search"
    assert len(rows) == 7


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
