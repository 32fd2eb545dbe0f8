"""Pool sizing: Erlang-B, the accuracy model and its monotonicity."""
import math

import pytest
from hypothesis import assume, given, settings, strategies as st

from k50core.sizing import DEFAULT_DAILY_PROFILE, CallDelay, UnreachableTarget, erlang_b, recommend, rule_of_thumb

# --- Erlang-B -------------------------------------------------------------------------

@pytest.mark.parametrize("servers, load, expected", [
    (0, 3.0, 1.0), (1, 1.0, 0.5), (2, 1.0, 0.2), (3, 1.0, 1 / 16), (10, 5.0, 0.018384570),
    (5, 0.0, 0.0), (100, 100.0, 0.075700),  # the last from published Erlang-B tables
])
def test_erlang_b_known_values(servers, load, expected):
    assert erlang_b(servers, load) == pytest.approx(expected, rel=1e-4, abs=1e-12)


def test_erlang_b_is_stable_where_factorials_overflow():
    value = erlang_b(5000, 4900.0)
    assert 0.0 < value < 0.05 and math.isfinite(value)


@given(st.integers(0, 300), st.floats(0.0, 400.0))
def test_erlang_b_is_a_probability_falling_with_servers(servers, load):
    b = erlang_b(servers, load)
    assert 0.0 <= b <= 1.0
    assert erlang_b(servers + 1, load) <= b


@pytest.mark.parametrize("servers, load, name", [(-1, 1.0, "servers"), (2.5, 1.0, "servers"),
                                                 (2, -1.0, "load"), (2, math.nan, "load")])
def test_erlang_b_bad_input(servers, load, name):
    with pytest.raises(ValueError, match=name):
        erlang_b(servers, load)


# --- the worked case ------------------------------------------------------------------

def test_3000_visits_of_4_minutes_need_far_fewer_numbers_than_the_rule_of_thumb():
    r = recommend(3000, 4, 0.95)
    assert rule_of_thumb(3000) == 150 == r.rule_of_thumb
    assert r.numbers < 0.7 * 150
    assert r.expected_accuracy >= 0.95
    # the smallest: one number fewer misses the target
    assert (1 - erlang_b(r.numbers - 1, r.offered_load_erlangs)) * r.max_accuracy < 0.95
    assert r.occupancy_seconds == 4 * 60 + 900 + 300
    assert r.peak_share == pytest.approx(0.07)
    assert r.offered_load_erlangs == pytest.approx(3000 * 0.07 / 3600 * 1440)
    assert r.daily_accuracy >= r.expected_accuracy  # sized for the peak, the day does better


def test_accuracy_is_sharing_times_call_timing():
    r = recommend(3000, 4, 0.95)
    assert r.expected_accuracy == pytest.approx((1 - r.sharing_probability) * (1 - r.lost_call_share))
    assert r.sharing_probability == pytest.approx(erlang_b(r.numbers, r.offered_load_erlangs))
    assert r.lost_call_share == pytest.approx(0.1 * math.exp(-1200 / 600))
    assert r.late_call_share == pytest.approx(0.1 * (math.exp(-900 / 600) - math.exp(-1200 / 600)))
    assert r.peak_utilisation == pytest.approx(r.offered_load_erlangs * (1 - r.sharing_probability) / r.numbers)


def test_peak_share_overrides_the_profile():
    flat = recommend(2400, 3, peak_share=1 / 24, daily_profile=[0] * 23 + [1])
    assert flat.peak_visits_per_hour == pytest.approx(100)
    assert flat.daily_accuracy is None


def test_a_custom_profile_sets_the_peak():
    night_shop = [10] + [1] * 23
    r = recommend(3300, 2, daily_profile=night_shop)
    assert r.peak_share == pytest.approx(10 / 33)
    assert r.peak_visits_per_hour == pytest.approx(1000)


def test_no_visits_still_needs_one_number():
    r = recommend(0, 4)
    assert r.numbers == 1 and r.sharing_probability == 0.0


def test_late_calls_alone_can_make_the_target_unreachable():
    with pytest.raises(UnreachableTarget, match="hold_seconds") as caught:
        recommend(1000, 3, 0.99)
    assert caught.value.max_accuracy == pytest.approx(1 - 0.1 * math.exp(-2))
    # a longer hold brings it back in reach, at the price of more numbers
    assert recommend(1000, 3, 0.99, hold_seconds=1800).numbers > recommend(1000, 3, 0.95).numbers


def test_call_delay_is_injectable():
    on_site_only = recommend(3000, 4, call_delay=CallDelay(during_visit_share=1.0))
    assert on_site_only.lost_call_share == 0.0 and on_site_only.max_accuracy == 1.0
    assert on_site_only.numbers <= recommend(3000, 4).numbers
    tail = recommend(3000, 4, call_delay=lambda t: 0.02 if t < 1000 else 0.01)
    assert tail.lost_call_share == 0.01 and tail.late_call_share == pytest.approx(0.01)


def test_default_profile_is_24_hours_of_percent():
    assert len(DEFAULT_DAILY_PROFILE) == 24
    assert sum(DEFAULT_DAILY_PROFILE) == pytest.approx(100)
    assert DEFAULT_DAILY_PROFILE.index(max(DEFAULT_DAILY_PROFILE)) in range(9, 18)


@pytest.mark.parametrize("kwargs, name", [
    ({"visits_per_day": -1}, "visits_per_day"), ({"visits_per_day": math.inf}, "visits_per_day"),
    ({"avg_visit_minutes": -0.5}, "avg_visit_minutes"), ({"target_accuracy": 0.0}, "target_accuracy"),
    ({"target_accuracy": 1.0}, "target_accuracy"), ({"target_accuracy": 95}, "target_accuracy"),
    ({"hold_seconds": -1}, "hold_seconds"), ({"cooldown_seconds": math.nan}, "cooldown_seconds"),
    ({"peak_share": 0}, "peak_share"), ({"peak_share": 1.5}, "peak_share"),
    ({"daily_profile": [1] * 23}, "daily_profile"), ({"daily_profile": [0] * 24}, "daily_profile"),
    ({"daily_profile": [-1] + [1] * 23}, "daily_profile"), ({"call_delay": lambda t: 2.0}, "call_delay"),
])
def test_bad_inputs_name_the_argument(kwargs, name):
    args = {"visits_per_day": 1000, "avg_visit_minutes": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        recommend(**args)


@pytest.mark.parametrize("kwargs, name", [({"during_visit_share": 1.2}, "during_visit_share"),
                                          ({"tail_mean_seconds": 0}, "tail_mean_seconds")])
def test_bad_call_delay_names_the_field(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CallDelay(**kwargs)


# --- monotonicity ---------------------------------------------------------------------

visits = st.floats(0, 50_000)
minutes = st.floats(0, 30)
targets = st.floats(0.5, 0.985)  # below the ceiling of ~98.6% with the default hold and cooldown
holds = st.sampled_from([300, 600, 900, 1800])


@settings(max_examples=150, deadline=None)
@given(visits, visits, minutes, targets, holds)
def test_more_visits_never_need_fewer_numbers(v1, v2, m, target, hold):
    assume(target <= 1 - CallDelay()(hold + 300))  # a short hold lowers the reachable ceiling
    low, high = sorted((v1, v2))
    assert recommend(low, m, target, hold_seconds=hold).numbers <= recommend(high, m, target, hold_seconds=hold).numbers


@settings(max_examples=150, deadline=None)
@given(visits, minutes, targets, targets)
def test_a_higher_target_never_needs_fewer_numbers(v, m, t1, t2):
    low, high = sorted((t1, t2))
    assert recommend(v, m, low).numbers <= recommend(v, m, high).numbers


@settings(max_examples=150, deadline=None)
@given(visits, minutes, minutes, targets)
def test_longer_visits_never_need_fewer_numbers(v, m1, m2, target):
    short, long_ = sorted((m1, m2))
    assert recommend(v, short, target).numbers <= recommend(v, long_, target).numbers


@settings(max_examples=150, deadline=None)
@given(visits, minutes, targets)
def test_the_recommendation_is_the_smallest_that_reaches_the_target(v, m, target):
    r = recommend(v, m, target)
    assume(r.numbers > 1)
    assert r.expected_accuracy >= target
    assert (1 - erlang_b(r.numbers - 1, r.offered_load_erlangs)) * r.max_accuracy < target
