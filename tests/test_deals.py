"""Deals: checked, normalised (phonenumbers), matched to the caller's latest call before them within
crm.match_days, idempotent by deal_id; read from CSV / JSON files with line numbers; the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from k50core import Engine
from k50core.crm import DealError, DealFileError, parse_deal, read_deal_file
from k50core.crm.forms import nested
from k50core.store import open_store

CLI = Path(sys.executable).parent / "k50core"
T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
DAY = 86400.0
CONFIG = {"pools": {"site": {"type": "static", "numbers": ["+74950000100"]}},
          "rules": [{"name": "all", "pool": "site"}], "crm": {"match_days": 10}}


@pytest.fixture
def engine(store_url):
    e = Engine.from_config(CONFIG, store=store_url)
    yield e
    e.close()


def call(e, call_id, caller, at):
    e.attribute({"call_id": call_id, "number": "+74950000100", "caller": caller, "started_at": at,
                 "duration_seconds": 30, "answered": True}, now=at + 60)


def deal(deal_id, phone, at, amount=100, status="won", **more):
    return {"deal_id": deal_id, "phone": phone, "created_at": at, "amount": amount, "status": status, **more}


def test_a_deal_belongs_to_the_callers_latest_call_before_it_within_match_days(engine):
    e = engine
    call(e, "old", "+79991112233", T0)
    call(e, "recent", "+79991112233", T0 + 2 * DAY)
    call(e, "after", "+79991112233", T0 + 5 * DAY)       # after the deal: not its call
    call(e, "other", "+79994445566", T0 + 2 * DAY)
    result = e.import_deals([deal("d1", "8 (999) 111-22-33", T0 + 3 * DAY),      # national format, RU
                             deal("d2", "+7 999 444 55 66", T0 + 13 * DAY),       # 11 days after: too late
                             deal("d3", "+79990000000", T0 + DAY)], now=T0 + 20 * DAY)
    assert result.imported == ["d1", "d2", "d3"] and result.unattributed == ["d2", "d3"]
    from k50core.crm.deals import deal_of
    assert deal_of(e.store, "d1")["call_id"] == "recent" and deal_of(e.store, "d1")["phone"] == "+79991112233"
    assert deal_of(e.store, "d2")["call_id"] is None


def test_importing_again_updates_by_deal_id(engine):
    e = engine
    call(e, "c1", "+79991112233", T0)
    first = e.import_deals([deal("d1", "+79991112233", T0 + 60, 100, "open")], now=T0 + DAY)
    again = e.import_deals([deal("d1", "+79991112233", T0 + 60, 250, "won", currency="rub", title="Sofa")],
                           now=T0 + 2 * DAY)
    assert (first.imported, first.updated, again.imported, again.updated) == (["d1"], [], [], ["d1"])
    rows = e.report("status")
    assert sum(r["deals"] for r in rows) == 1 and sum(r["revenue"] for r in rows) == 250
    from k50core.crm.deals import deal_of
    assert deal_of(e.store, "d1")["currency"] == "RUB" and e.store.count("calls") == 1


def test_refusals_name_the_row_and_the_field(engine):
    got = engine.import_deals([deal("ok", "+79991112233", T0), "not a deal", deal("", "x", "yesterday", -1, "maybe"),
                               deal("ms", "+79991112233", T0 * 1000)], now=T0 + DAY)
    assert got.imported == ["ok"]
    assert [r["row"] for r in got.refused] == [1, 2, 3]
    assert {p["field"] for p in got.refused[1]["problems"]} == {"deal_id", "phone", "created_at", "amount", "status"}
    assert "not ms" in got.refused[2]["reason"]


@settings(deadline=None, max_examples=200)
@given(st.dictionaries(st.sampled_from(["deal_id", "phone", "created_at", "amount", "status", "currency", "title"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                                 st.lists(st.integers(), max_size=2))))
def test_any_row_is_a_deal_or_a_named_refusal(row):
    try:
        d = parse_deal(row, "RU", T0)
    except DealError as exc:
        assert exc.problems and all(f in ("deal", "deal_id", "phone", "created_at", "amount", "status", "currency",
                                          "title") for f, _ in exc.problems)
    else:
        assert d["phone"].startswith("+") and d["status"] in ("won", "lost", "open") and d["amount"] >= 0


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.text(alphabet="ab[]0 ", max_size=12), st.text(max_size=5)), max_size=8))
def test_any_form_is_nested_fields_or_a_named_refusal(pairs):
    try:
        out = nested(pairs)
    except DealError as exc:
        assert exc.problems
    else:
        assert isinstance(out, dict)


# -- files ------------------------------------------------------------------------------------------------

def test_csv_rows_carry_their_lines(tmp_path):
    f = tmp_path / "deals.csv"
    f.write_text("deal_id;phone;created_at;amount;status\n1;89991112233;2025-12-01;1500,50;won\n\n"
                 "2;x;2025-12-01;1;won;extra\n", encoding="utf-8")
    rows = read_deal_file(f)
    assert rows[0] == ("line 2", {"deal_id": "1", "phone": "89991112233", "created_at": "2025-12-01",
                                  "amount": "1500,50", "status": "won"})
    assert rows[1][0] == "line 4" and "6 values for 5 columns" in rows[1][1]


def test_json_items_carry_their_lines(tmp_path):
    f = tmp_path / "deals.json"
    f.write_text('[\n {"deal_id": "1"},\n\n {"deal_id": "2",\n  "x": [1, {"y": "]"}]}\n]\n')
    assert [p for p, _ in read_deal_file(f)] == ["line 2", "line 4"]


@pytest.mark.parametrize("name, text, message", [
    ("d.json", '[{"deal_id": 1},\n  {oops}]', "line 2: not valid JSON"),
    ("d.csv", "id,phone\n1,2\n", "line 1: the header lacks deal_id, created_at, status"),
    ("d.txt", "", "expected a .csv or .json file"),
    ("d.json", '{"x": 1}', "expected an array of deals"),
])
def test_unreadable_files_say_where(tmp_path, name, text, message):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(DealFileError, match=message):
        read_deal_file(f)


# -- the CLI ----------------------------------------------------------------------------------------------

def test_import_deals_and_report_on_the_command_line(tmp_path):
    db, cfg = tmp_path / "k50.db", tmp_path / "site.json"
    cfg.write_text(json.dumps(CONFIG))
    e = Engine.from_config(CONFIG, store=str(db))
    call(e, "c1", "+79991112233", T0)
    e.close()
    deals = tmp_path / "deals.csv"
    deals.write_text("deal_id,phone,created_at,amount,status\nd1,+79991112233,2025-12-01T10:00:00Z,900,won\n"
                     "d2,nope,2025-12-01,1,won\n")
    got = subprocess.run([str(CLI), "import-deals", str(deals), "--store", str(db), "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 1, got.stderr
    assert got.stdout.startswith("1 imported, 0 updated (0 with no call from their phone), 1 refused")
    assert f"{deals}, line 3: phone: not a valid phone number: 'nope'" in got.stderr
    out = subprocess.run([str(CLI), "report", "--store", str(db), "--by", "rule,status", "--since", "2025-12-01",
                          "--format", "json", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["rule"], r["status"], r["calls"], r["deals"], r["revenue"]) for r in rows] == \
        [("all", "static", 1, 1, 900.0)]
    with open_store(str(db)) as s:
        from k50core.report import report
        assert rows == json.loads(json.dumps(report(s, Engine.from_config(CONFIG).config, "rule,status",
                                                    T0, None, settings={})))
    table = subprocess.run([str(CLI), "report", "--store", str(db), "--by", "rule"], capture_output=True, text=True,
                           timeout=60)
    assert table.returncode == 0 and "first_time_callers" in table.stdout and "900.00" in table.stdout
    csv_out = subprocess.run([str(CLI), "report", "--store", str(db), "--by", "rule", "--format", "csv"],
                             capture_output=True, text=True, timeout=60)
    assert csv_out.stdout.splitlines()[0] == ("rule,unmatched,visits,calls,answered,first_time_callers,minutes,"
                                              "deals,won,revenue,cost")
    bad = subprocess.run([str(CLI), "report", "--store", str(db), "--by", "query.gclid"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unknown dimension 'query.gclid'" in bad.stderr


@pytest.mark.parametrize("deal_id", ["²", "١٢", "12a", "", "1" * 21])
def test_bitrix24_deal_id_must_be_ascii_digits(deal_id):
    """Bitrix24's deal ids are ASCII digits: a Unicode digit ("²", Arabic-Indic) is refused at the
    webhook, naming the field, rather than later by the import."""
    from k50core.crm.bitrix24 import event_of
    pairs = [("event", "ONCRMDEALADD"), ("data[FIELDS][ID]", deal_id), ("auth[application_token]", "t" * 32)]
    with pytest.raises(DealError) as caught:
        event_of(pairs, "t" * 32)
    assert caught.value.problems[0][0] == "data[FIELDS][ID]"
    assert event_of([("event", "ONCRMDEALADD"), ("data[FIELDS][ID]", "42"), ("auth[application_token]", "t" * 32)],
                    "t" * 32) == ("ONCRMDEALADD", "42")
