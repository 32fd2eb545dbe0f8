"""The simulator: determinism, roomy and tiny pools, bots, the chart, the CLI and sizing (the
likelihoods' calibration: tests/test_calibration.py).

Every run has a fixed seed, so these tests are not flaky; each can fail (the
thresholds are the product's promises, not the values the runs happen to give).
"""
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from k50core.cli import app
from k50core.simulate import chart_svg, counts_as_right, peak_hours, simulate, smallest_pool, sweep
from k50core.sizing import DEFAULT_DAILY_PROFILE, recommend

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def roomy():
    return simulate(visits_per_day=3000, avg_visit_minutes=4, numbers=160, call_share=0.3, seed=1)


@pytest.fixture(scope="module")
def tiny():
    return simulate(visits_per_day=3000, avg_visit_minutes=4, numbers=15, call_share=0.3, seed=2)


def test_a_seed_gives_the_same_run():
    kw = dict(visits_per_day=600, numbers=12, call_share=0.5, seed=7)
    a, b = simulate(**kw), simulate(**kw)
    a.wall_seconds = b.wall_seconds = 0.0
    assert a == b and a.calls > 100
    c = simulate(**dict(kw, seed=8))
    assert (c.visits, c.calls) != (a.visits, a.calls)


def test_the_reference_build_runs_the_same_traffic():
    kw = dict(visits_per_day=600, numbers=12, call_share=0.5, seed=7)
    a, b = simulate(**kw), simulate(implementation="reference", **kw)
    assert b.implementation == "reference" and (a.visits, a.calls, a.right) == (b.visits, b.calls, b.right)


def test_a_roomy_pool_matches_nearly_every_call(roomy):
    assert roomy.calls > 700
    assert roomy.accuracy >= 0.97 and roomy.peak_accuracy >= 0.97
    assert roomy.exhaustion_events == 0 and roomy.shares["ambiguous"] == 0
    assert roomy.shares["matched"] + roomy.shares["late"] >= 0.97
    assert 0 < roomy.utilisation_mean < roomy.utilisation_peak < 1


def test_a_tiny_pool_exhausts(roomy, tiny):
    assert tiny.exhausted_shared > 1000 and tiny.exhaustion_events == tiny.exhausted_shared
    assert tiny.shares["ambiguous"] > 0.3
    assert tiny.accuracy < roomy.accuracy - 0.05 and tiny.strict_accuracy < 0.7
    assert tiny.utilisation_peak == 1.0


def test_bots_never_get_numbers_or_call(roomy, tiny):
    for r in (roomy, tiny):
        assert r.bot_visits > 100 and r.bot_numbers == 0
        assert r.visits == r.human_visits + r.bot_visits
        assert r.returning_visits > 0.1 * r.human_visits


def test_shares_add_up(roomy, tiny):
    for r in (roomy, tiny):
        assert sum(r.shares.values()) == pytest.approx(1.0)
        assert sum(b.calls for b in r.calibration) == r.calls
        assert r.right == sum(r.right_by_status.values())
        assert 0 <= r.strict_accuracy <= r.accuracy <= 1


def test_peak_hours_of_the_default_profile():
    assert peak_hours(DEFAULT_DAILY_PROFILE) == tuple(range(10, 16))
    with pytest.raises(ValueError):
        peak_hours([0] * 24)


def test_the_svg_has_one_point_per_size(tmp_path):
    points = sweep([8, 12, 20], visits_per_day=600, call_share=0.5, seed=3)
    path = tmp_path / "acc.svg"
    text = chart_svg(points, path, target=0.95)
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg" and text == path.read_text()
    dots = root.findall(f".//{SVG}circle[@class='point']")
    assert [int(d.get("data-numbers")) for d in dots] == [8, 12, 20]
    assert [float(d.get("data-accuracy")) for d in dots] == [pytest.approx(r.accuracy, abs=1e-4) for _, r in points]
    assert root.findall(f".//{SVG}line[@class='target']")
    assert points[0][1].exhaustion_events > points[-1][1].exhaustion_events


def test_the_cli_prints_a_summary_and_a_sweep(tmp_path):
    runner = CliRunner()
    got = runner.invoke(app, ["simulate", "--visits-per-day", "600", "--avg-visit-min", "4", "--numbers", "20",
                              "--no-progress"])
    assert got.exit_code == 0, got.output
    assert "accuracy:" in got.output and "exhaustion events:" in got.output
    svg = tmp_path / "s.svg"
    got = runner.invoke(app, ["simulate", "--visits-per-day", "600", "--sweep", "10:20:5", "--svg", str(svg),
                              "--no-progress"])
    assert got.exit_code == 0, got.output
    assert len(ET.parse(svg).getroot().findall(f".//{SVG}circle")) == 3 and str(svg) in got.output
    bad = runner.invoke(app, ["simulate", "--sweep", "20:10", "--no-progress"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("visits, minutes, lo, hi", [(3000, 4, 74, 110), (1500, 6, 40, 70)])
def test_recommend_is_within_ten_percent_of_the_simulated_smallest_pool(visits, minutes, lo, hi):
    """recommend() sizes for the busiest hour with ambiguous calls counted wrong and calls after
    hold + cooldown lost; smallest_pool measures exactly that (its defaults), one simulated day
    with every human visit calling (~1,200 peak-hour calls: about +-0.6% of accuracy)."""
    want = recommend(visits, minutes, 0.95).numbers
    found, report = smallest_pool(0.95, lo, hi, visits_per_day=visits, avg_visit_minutes=minutes, days=1)
    assert report.peak_strict_accuracy >= 0.95 and report.peak_calls > 500
    assert abs(want - found) <= 0.1 * found, (want, found)


def test_a_call_to_a_shared_number_is_right_only_when_its_top_candidate_called(build):
    """One number shared by v1 (its first holder) and v2 (who joined later and was seen last): both an
    ambiguous call and a late one after the shared lease rank v2 first. The late call's visitor_id is
    still the lease's holder, v1; a call from v1 is counted wrong all the same, since the engine's
    best guess is v2."""
    from k50core import Engine

    t = 1_800_000_000.0
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"], "hold_seconds": 900,
                           "cooldown_seconds": 300, "on_exhausted": "share"}}, "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, now=t, implementation=build) as engine:
        first = engine.assign({"visitor_id": "v1"}, now=t)
        joined = engine.assign({"visitor_id": "v2"}, now=t + 100)
        assert joined.shared and joined.number == first.number
        during = engine.attribute({"call_id": "c1", "number": first.number, "started_at": t + 500}, now=t + 1200)
        late = engine.attribute({"call_id": "c2", "number": first.number, "started_at": t + 1100}, now=t + 1200)
    assert (during.status, late.status, late.visitor_id) == ("ambiguous", "late", "v1")
    for made in (during, late):
        assert [c.visitor_id for c in made.candidates][:2] == ["v2", "v1"]
        assert counts_as_right(made, "v2") and not counts_as_right(made, "v1")


def test_the_report_says_how_a_shared_number_counts(tiny):
    text = "\n".join(tiny.summary())
    assert "a call to a shared number counts only when its top candidate made it" in text
    assert "counting calls to shared numbers as wrong" in text
    assert tiny.right == sum(tiny.right_by_status.values()) and tiny.strict_accuracy < tiny.accuracy


def test_the_chart_ticks_round_pool_sizes_that_were_swept():
    """A sweep of 40:160:10: the x axis marks swept sizes only, at a round step (1, 2, 5 x 10^k), and at
    most nine of them; the accuracy axis is marked at round percentages."""
    sizes = list(range(40, 161, 10))
    root = ET.fromstring(chart_svg([(n, 0.80 + n / 1000) for n in sizes], target=0.95))
    xs = [int(t.get("data-value")) for t in root.findall(f".//{SVG}text[@class='x-tick']")]
    assert xs == [40, 60, 80, 100, 120, 140, 160] and all(x in sizes for x in xs)
    assert [t.text for t in root.findall(f".//{SVG}text[@class='x-tick']")] == [str(x) for x in xs]
    ys = [float(t.get("data-value")) for t in root.findall(f".//{SVG}text[@class='y-tick']")]
    assert len(ys) >= 3 and all(abs(y * 100 - round(y * 100)) < 1e-6 for y in ys)       # whole percentages
    small = ET.fromstring(chart_svg([(8, 0.7), (12, 0.8), (20, 0.9)]))
    assert [t.text for t in small.findall(f".//{SVG}text[@class='x-tick']")] == ["8", "12", "20"]
