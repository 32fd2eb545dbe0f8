"""The cost calculator against the FAQ's pricing facts (default plan config)."""
import copy
import re
from decimal import Decimal
from importlib import resources

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from k50core.errors import ConfigError
from k50core.pricing import Usage, compare_plans, estimate, load_plans, monthly_usage, parse_plans

CONFIG = load_plans()
RAW = yaml.safe_load((resources.files("k50core") / "examples" / "plans.yaml").read_text(encoding="utf-8"))


def amount_of(invoice, words):
    return sum((line.amount for line in invoice.lines if words in line.description), Decimal(0))


# --- the FAQ's facts as worked examples -------------------------------------------------

def test_provider_plan_starts_at_3200_with_3000_minutes_included():
    invoice = estimate(1, "495", 3000, config=CONFIG)
    assert invoice.total == Decimal("3200.00")
    assert invoice.billed_at_month_end == 0


def test_phone_minutes_over_the_package_cost_1_rub_billed_at_month_end():
    invoice = estimate(4, "495", 3500, config=CONFIG)
    assert amount_of(invoice, "phone minutes over") == Decimal("500.00")
    assert invoice.billed_at_month_end == Decimal("500.00")
    assert invoice.prepaid == Decimal("3200.00")
    assert invoice.total == Decimal("3700.00")


def test_numbers_are_priced_by_code():
    totals = {code: estimate(10, code, config=CONFIG).total for code in ("495", "812", "800", "343")}
    assert totals == {"495": Decimal("8000.00"), "812": Decimal("7000.00"),
                      "800": Decimal("12000.00"), "343": Decimal("6000.00")}


def test_sip_forwarding_includes_10000_minutes_then_0_1_rub():
    invoice = estimate(4, "495", Usage(sip_minutes=12000), config=CONFIG)
    assert amount_of(invoice, "SIP minutes over") == Decimal("200.00")
    assert invoice.total == Decimal("3400.00")
    assert estimate(4, "495", Usage(sip_minutes=10000), config=CONFIG).total == Decimal("3200.00")


def test_own_numbers_minimum_2500_applies_to_10_numbers():
    invoice = estimate(10, plan="own", usage=50000, config=CONFIG)
    assert invoice.total == Decimal("2500.00")  # 10 x 150 = 1,500, topped up; minutes not billed
    assert any("own telephony provider" in n for n in invoice.notes)


def test_own_numbers_20_numbers_cost_3000():
    assert estimate(20, plan="own", config=CONFIG).total == Decimal("3000.00")


def test_code_tracker_is_free():
    assert estimate(0, plan="code", usage=99999, config=CONFIG).total == 0


def test_prepaid_package_replaces_the_included_minutes():
    invoice = estimate(4, "495", 12000, package="10k", config=CONFIG)
    assert amount_of(invoice, "prepaid package") == Decimal("5000.00")
    assert amount_of(invoice, "phone minutes over") == Decimal("2000.00")  # 12,000 - 10,000
    assert invoice.label == "provider + 10k package"


def test_agency_discount_by_turnover_tier():
    assert estimate(10, turnover_rub=99999, config=CONFIG).total == Decimal("8000.00")
    assert estimate(10, turnover_rub=100000, config=CONFIG).total == Decimal("7600.00")
    assert estimate(10, turnover_rub=300000, config=CONFIG).total == Decimal("7200.00")
    assert estimate(10, turnover_rub=5_000_000, config=CONFIG).total == Decimal("6800.00")


def test_agency_discount_keeps_the_prepaid_and_month_end_split():
    invoice = estimate(10, "495", 4000, turnover_rub=100000, config=CONFIG)  # 8,000 + 1,000 overage
    assert invoice.prepaid == Decimal("7600.00")
    assert invoice.billed_at_month_end == Decimal("950.00")
    assert invoice.total == Decimal("8550.00")


def test_compare_plans_gives_one_invoice_per_plan_and_package():
    labels = [i.label for i in compare_plans(10, "812", 3500, config=CONFIG)]
    assert labels == ["provider", "provider + 10k package", "provider + 30k package", "own", "code"]
    assert [i.label for i in compare_plans(10, "812", 3500, config=CONFIG, with_packages=False)] == \
        ["provider", "own", "code"]


def test_the_default_config_is_the_bundled_yaml():
    assert load_plans() == CONFIG
    assert CONFIG.provider.minutes_included == 3000
    assert CONFIG.provider.sip_overage_rub_per_minute == Decimal("0.1")


@pytest.mark.parametrize("kwargs, argument", [
    ({"numbers": -1}, "numbers"), ({"numbers": True}, "numbers"), ({"code": "abc"}, "code"),
    ({"plan": "gold"}, "plan"), ({"usage": -5}, "usage"), ({"usage": 2.5}, "usage"),
    ({"package": "99k"}, "package"), ({"package": "10k", "plan": "own"}, "package"),
    ({"turnover_rub": -1}, "turnover_rub"), ({"turnover_rub": "lots"}, "turnover_rub"),
    ({"turnover_rub": Decimal("NaN")}, "turnover_rub"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    args = {"numbers": 5, "config": CONFIG, **kwargs}
    with pytest.raises(ValueError, match=argument):
        estimate(**args)


# --- usage from recorded calls --------------------------------------------------------

MAY_1 = 1714521600.0  # 2024-05-01T00:00:00Z


def test_usage_bills_each_started_minute_and_skips_unanswered_calls():
    calls = [
        {"started_at": MAY_1 + 10, "duration_seconds": 61, "answered": True},     # 2 min
        {"started_at": MAY_1 + 20, "duration_seconds": 120.0, "answered": True},  # exactly 2 min
        {"started_at": MAY_1 + 30, "duration_seconds": 0.5, "answered": True},    # 1 min
        {"started_at": MAY_1 + 40, "duration_seconds": 300, "answered": False},   # not billed
        {"started_at": MAY_1 + 50, "duration_seconds": 90, "answered": True, "forwarded_seconds": 30},  # 1
        {"started_at": MAY_1 + 60, "duration_seconds": 601, "answered": True, "sip": True},  # 11 SIP
    ]
    assert monthly_usage(calls) == Usage(phone_minutes=6, sip_minutes=11, calls=6, answered_calls=5)


def test_usage_keeps_only_the_month_asked_for():
    calls = [
        {"started_at": MAY_1 - 1, "duration_seconds": 60, "answered": True},        # April 30
        {"started_at": MAY_1, "duration_seconds": 60, "answered": True},            # May
        {"started_at": MAY_1 + 31 * 86400, "duration_seconds": 60, "answered": True},  # June 1
    ]
    assert monthly_usage(calls, "2024-05").phone_minutes == 1
    assert monthly_usage(calls, "2024-04").phone_minutes == 1
    assert monthly_usage(calls).phone_minutes == 3
    with pytest.raises(ValueError, match="month"):
        monthly_usage(calls, "May 2024")


@pytest.mark.parametrize("call, place", [
    ({"duration_seconds": 60, "answered": True}, "calls[0].started_at"),
    ({"started_at": MAY_1, "duration_seconds": -1, "answered": True}, "calls[0].duration_seconds"),
    ({"started_at": MAY_1, "duration_seconds": 60, "answered": "yes"}, "calls[0].answered"),
    ({"started_at": MAY_1, "duration_seconds": 60, "answered": True, "sip": 1}, "calls[0].sip"),
    ({"started_at": MAY_1, "duration_seconds": 60, "answered": True, "forwarded_seconds": float("nan")},
     "calls[0].forwarded_seconds"),
])
def test_bad_calls_name_the_field(call, place):
    with pytest.raises(ValueError, match=re.escape(place)):
        monthly_usage([call])


# --- bad configs ----------------------------------------------------------------------

def broken(path, value):
    raw = copy.deepcopy(RAW)
    node = raw
    *parents, last = path
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()


@pytest.mark.parametrize("path, value, place", [
    (("plans", "provider", "minutes_included"), -1, "plans.provider.minutes_included"),
    (("plans", "provider", "minutes_included"), "lots", "plans.provider.minutes_included"),
    (("plans", "provider", "overage_rub_per_minute"), DELETE, "plans.provider.overage_rub_per_minute"),
    (("plans", "provider", "sip", "overage_rub_per_minute"), -0.1, "plans.provider.sip.overage_rub_per_minute"),
    (("plans", "provider", "number_price_rub", "other"), DELETE, "plans.provider.number_price_rub.other"),
    (("plans", "provider", "number_price_rub", "495"), "nan", "plans.provider.number_price_rub.495"),
    (("plans", "own", "minimum_rub"), True, "plans.own.minimum_rub"),
    (("plans", "own"), "cheap", "plans.own"),
    (("plans", "gold"), {}, "plans.gold"),
    (("agency_discounts", 2, "percent"), 150, "agency_discounts[2].percent"),
    (("agency_discounts", 3, "from_turnover_rub"), 50, "agency_discounts[3].from_turnover_rub"),
])
def test_bad_config_is_rejected_with_the_place_named(path, value, place):
    with pytest.raises(ConfigError) as caught:
        parse_plans(broken(path, value))
    assert place in [p for p, _ in caught.value.problems]


def test_every_fault_is_reported_at_once(tmp_path):
    raw = broken(("plans", "own", "minimum_rub"), -1)
    raw["plans"]["provider"]["minutes_included"] = -1
    path = tmp_path / "plans.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as caught:
        load_plans(path)
    assert {p for p, _ in caught.value.problems} == {"plans.own.minimum_rub", "plans.provider.minutes_included"}


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_plans(tmp_path / "absent.yaml")


# --- properties -----------------------------------------------------------------------

plans = st.sampled_from(["provider", "own", "code"])
codes = st.sampled_from(["495", "812", "800", "383"])
counts = st.integers(0, 500)
minutes = st.integers(0, 200_000)
turnovers = st.one_of(st.none(), st.integers(0, 3_000_000))
packages = st.sampled_from([None, "10k", "30k"])


@settings(max_examples=200, deadline=None)
@given(plans, codes, counts, minutes, minutes, turnovers, packages)
def test_total_is_never_negative_and_adds_up(plan, code, n, phone, sip, turnover, package):
    package = package if plan == "provider" else None
    invoice = estimate(n, code, Usage(phone, sip), plan, turnover, CONFIG, package)
    assert invoice.total >= 0
    assert invoice.total == sum(line.amount for line in invoice.lines)
    assert invoice.total == invoice.total.quantize(Decimal("0.01"))
    assert invoice.prepaid >= 0 and invoice.billed_at_month_end >= 0


@settings(max_examples=200, deadline=None)
@given(plans, codes, counts, minutes, minutes, st.integers(0, 5000), st.integers(0, 5000), turnovers, packages)
def test_more_minutes_are_never_cheaper(plan, code, n, phone, sip, more_phone, more_sip, turnover, package):
    package = package if plan == "provider" else None
    less = estimate(n, code, Usage(phone, sip), plan, turnover, CONFIG, package)
    more = estimate(n, code, Usage(phone + more_phone, sip + more_sip), plan, turnover, CONFIG, package)
    assert more.total >= less.total


@settings(max_examples=200, deadline=None)
@given(plans, codes, counts, minutes, st.integers(0, 3_000_000))
def test_a_discount_never_increases_the_total(plan, code, n, phone, turnover):
    assert estimate(n, code, phone, plan, turnover, CONFIG).total <= estimate(n, code, phone, plan, None, CONFIG).total
