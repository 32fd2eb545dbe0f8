"""Sizing with call intents: recommend() counts a shared number's calls after a tap or copy as
right, and ``k50core size --store`` measures the share from a deployment's own store."""
import re

import pytest
from typer.testing import CliRunner

from k50core.cli import app
from k50core.intent.measure import intent_share
from k50core.simulate import CallerModel, simulate
from k50core.sizing import INTENT_RESOLVES, erlang_b, recommend
from k50core.store import open_store


def test_intents_need_fewer_numbers_for_the_same_target():
    plain, tapped = recommend(3000, 4, 0.95), recommend(3000, 4, 0.95, intent_share=0.35)
    assert tapped.numbers < plain.numbers and tapped.expected_accuracy >= 0.95
    kept = 0.35 * INTENT_RESOLVES            # one number fewer would miss the target
    fewer = 1 - erlang_b(tapped.numbers - 1, tapped.offered_load_erlangs) * (1 - kept)
    assert fewer * tapped.max_accuracy < 0.95
    assert recommend(3000, 4, 0.95, intent_share=1.0).numbers < tapped.numbers


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_a_bad_intent_share_is_named(share):
    with pytest.raises(ValueError, match="intent_share"):
        recommend(3000, 4, 0.95, intent_share=share)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A SQLite store filled by half a day of simulated traffic in which 35% of the calls follow a tap or copy."""
    path = str(tmp_path_factory.mktemp("sized") / "k50.db")
    report = simulate(visits_per_day=2000, days=0.5, numbers=40, call_share=0.4, seed=5, store=path,
                      callers=CallerModel.with_intent_share(0.35))
    return path, report


def test_the_intent_share_is_measured_from_the_store(deployment):
    path, report = deployment
    with open_store(path) as db:
        found = intent_share(db)
    assert found.calls == report.calls - round(report.shares["unmatched"] * report.calls)
    assert 0.28 <= found.share <= 0.42 and found.with_intent == round(found.share * found.calls)


def test_size_with_a_store_measures_and_uses_the_share(deployment):
    path, _ = deployment
    measured = CliRunner().invoke(app, ["size", "--visits-per-day", "3000", "--avg-visit-min", "4", "--store", path])
    assert measured.exit_code == 0, measured.output
    share = float(re.search(r"calls preceded by a tap or copy: ([\d.]+)%", measured.output).group(1)) / 100
    plain = CliRunner().invoke(app, ["size", "--visits-per-day", "3000", "--avg-visit-min", "4"])
    given = CliRunner().invoke(app, ["size", "--visits-per-day", "3000", "--avg-visit-min", "4",
                                     "--intent-share", str(share)])
    numbers = [int(re.search(r"numbers: (\d+)", r.output).group(1)) for r in (measured, plain, given)]
    assert numbers[0] == numbers[2] < numbers[1]


def test_size_with_a_missing_store_is_refused(tmp_path):
    r = CliRunner().invoke(app, ["size", "--visits-per-day", "3000", "--avg-visit-min", "4",
                                 "--store", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "--store" in r.output


@pytest.mark.parametrize("share", [0.0, 0.35, 0.8, 0.95, 1.0])
def test_a_caller_model_gives_the_intent_share_asked(share):
    assert CallerModel.with_intent_share(share).intent_share == pytest.approx(share)


def test_simulate_from_the_cli_with_intents():
    r = CliRunner().invoke(app, ["simulate", "--visits-per-day", "600", "--numbers", "8", "--call-share", "0.5",
                                 "--intent-share", "0.35", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "accuracy:" in r.output
    bad = CliRunner().invoke(app, ["simulate", "--numbers", "8", "--intent-share", "1.5", "--no-progress"])
    assert bad.exit_code == 2 and "intent share" in bad.output
