"""Number pools and leases through the Engine API, in both builds."""
import os
import signal
import struct
import threading
import time

import pytest
from conftest import same_tag_key
from hypothesis import given, settings, strategies as st

from k50core import ConfigError, Engine
from k50core.pools import SegmentError, parse_token_text

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def config(numbers=3, on_exhausted="share", hold=900, cooldown=300):
    return {
        "site": {"default_number": "+74951234567"},
        "pools": {
            "p": {"type": "dynamic", "numbers": [f"+7495000000{i}" for i in range(1, numbers + 1)],
                  "hold_seconds": hold, "cooldown_seconds": cooldown, "on_exhausted": on_exhausted,
                  "default_number": "+74950000099"},
            "s": {"type": "static", "numbers": ["+74950000100"]},
        },
        "rules": [
            {"name": "staff", "when": {"cookie.staff": "1"}, "exclude": True},
            {"name": "static", "when": {"query.utm_source": "print"}, "pool": "s"},
            {"name": "all", "pool": "p"},
        ],
    }


def visit(v, **extra):
    return {"visitor_id": v, "ip": "5.101.68.156", "url": "https://shop.example.ru/", **extra}


@pytest.fixture
def engine(build):
    return Engine.from_config(config(), implementation=build)


def test_returning_visitor_keeps_number(engine):
    a = engine.assign(visit("v1"), now=1000)
    assert a.number and a.pool == "p" and a.rule == "all" and not a.shared and a.expires_at == 1900
    b = engine.assign(visit("v1"), now=1500)
    assert b.number == a.number and b.expires_at == 2400
    c = engine.assign({"visitor_id": "other-id"}, token=a.token, now=1600)  # by token
    assert c.number == a.number


def test_hold_and_cooldown_to_the_second(build):
    engine = Engine.from_config(config(numbers=1, on_exhausted="default", hold=10, cooldown=5), implementation=build)
    a = engine.assign(visit("v1"), now=100)
    assert engine.heartbeat(a.token, now=109) is True           # alive at 109 (until 110) → until 119
    assert engine.heartbeat(a.token, now=119) is False          # ended exactly at 119
    busy = engine.assign(visit("v2"), now=123.999)              # cooling until 124
    assert busy.number == "+74950000099" and busy.token is None
    fresh = engine.assign(visit("v2"), now=124)
    assert fresh.number == a.number and fresh.token != a.token
    assert engine.heartbeat(a.token, now=125) is False          # the old token no longer renews


def test_idle_longest_number_first(build):
    engine = Engine.from_config(config(numbers=3, hold=10, cooldown=0), implementation=build)
    first = [engine.assign(visit(f"v{i}"), now=100 + i).number for i in range(3)]
    assert len(set(first)) == 3
    # all ended; the one whose lease ended earliest has been idle longest
    assert engine.assign(visit("late"), now=200).number == first[0]
    assert engine.assign(visit("later"), now=200).number == first[1]


def test_exhaustion_share_counts_and_marks(engine):
    numbers = {engine.assign(visit(f"v{i}"), now=1000 + i).number for i in range(3)}
    shared = engine.assign(visit("v9"), now=1010)
    assert shared.shared and shared.number in numbers
    # the least recently active number is the one leased first
    assert shared.number == engine.assign(visit("v0"), now=1011).number
    stats = engine.stats(now=1010)["pools"]["p"]
    assert stats["claims"] == 3 and stats["exhausted_shared"] == 1 and stats["leased"] == 3


def test_exhaustion_default(build):
    engine = Engine.from_config(config(numbers=1, on_exhausted="default"), implementation=build)
    engine.assign(visit("v1"), now=1000)
    got = engine.assign(visit("v2"), now=1001)
    assert got.number == "+74950000099" and got.display == "+7 (495) 000-00-99" and not got.shared
    assert engine.stats(now=1001)["pools"]["p"]["exhausted_default"] == 1


def test_static_excluded_and_bots_take_nothing(engine):
    static = engine.assign(visit("v1", url="https://shop.example.ru/?utm_source=print"), now=1000)
    assert static.number == "+74950000100" and static.token is None
    staff = engine.assign(visit("v2", cookies={"staff": "1"}), now=1000)
    bot = engine.assign(visit("v3", user_agent=GOOGLEBOT), now=1000)
    assert staff.number is None and staff.rule == "staff"
    assert bot.number is None and bot.rule == "(bots)"
    stats = engine.stats(now=1000)
    assert stats["pools"]["p"]["claims"] == 0 and stats["excluded"] == 2 and stats["static"] == 1


def test_bad_visits_and_tokens_never_raise(engine):
    for bad in (None, 5, "x", [], {"visitor_id": b"\xff"}, {"visitor_id": "a" * 100_000}):
        engine.assign(bad, now=1000)
    for token in (None, "", "zz", "1.2", "0.ffffffff.1", "0.0.0.0", "x" * 10_000, 5):
        assert engine.heartbeat(token, now=1000) is False
    assert engine.assign(visit("v1"), token="garbage", now=1000).number


def test_lease_log_and_holders(engine):
    a = engine.assign(visit("v1", session_id="s-1"), now=1000)
    engine.heartbeat(a.token, now=1100)
    events = engine.drain_leases()
    assert [e.event for e in events] == ["start", "renew"]
    start, renew = events
    assert (start.visitor_id, start.session_id, start.rule, start.number) == ("v1", "s-1", "all", a.number)
    assert renew.lease == start.lease and renew.end == 2000 and renew.visitor_id == "v1"
    assert engine.drain_leases() == []
    holders = {h.number: h for h in engine.lease_holders()}
    assert holders[a.number].visitor_id == "v1" and holders[a.number].end == 2000


def test_lease_sink_gets_batches(build):
    """Starts go to the sink in batches; renewals only at checkpoints (store.checkpoint_seconds of
    renewal clock), one event per lease however often it was renewed meanwhile."""
    got = []
    cfg = dict(config(), store={"checkpoint_seconds": 30})
    engine = Engine.from_config(cfg, implementation=build, lease_sink=got.extend)
    engine.pools.set_sink_batch(1)
    a = engine.assign(visit("v1"), now=1000)
    b = engine.assign(visit("v2"), now=1000)
    assert [e.event for e in got] == ["start", "start"]
    for t in range(1001, 1030):  # within the interval: nothing reaches the sink
        assert engine.heartbeat(a.token, now=t) and engine.heartbeat_many([a.token, b.token], now=t) == 2
    assert [e.event for e in got] == ["start", "start"]
    engine.heartbeat(b.token, now=1031.5)  # the interval has passed: both leases, once each
    renewals = got[2:]
    assert sorted((e.event, e.visitor_id, e.last) for e in renewals) == [("renew", "v1", 1029.0),
                                                                           ("renew", "v2", 1031.5)]
    engine.heartbeat(a.token, now=1040)
    assert len(got) == 4  # the next checkpoint is due at 1061.5
    engine.heartbeat(a.token, now=1062)
    assert [(e.event, e.visitor_id, e.last) for e in got[4:]] == [("renew", "v1", 1062.0)]


def test_checkpoint_interval_is_checked_config(build):
    with pytest.raises(ConfigError) as err:
        Engine.from_config(dict(config(), store={"checkpoint_seconds": -1}), implementation=build)
    assert "store.checkpoint_seconds" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Engine.from_config(dict(config(), store={"checkpoints": 1}), implementation=build)
    assert "store.checkpoints" in str(err.value)


def test_log_events_stored_with_their_start_are_not_written_again(build, tmp_path):
    """A start and a shared join reach the store with their visits; the lease log's copies of
    them do not go to the store a second time, while the sink still hears every event, and the
    stored rows are what they were."""
    heard, written = [], []
    engine = Engine.from_config(config(numbers=1), implementation=build, lease_sink=heard.extend,
                                store=str(tmp_path / "k.db"))
    real = engine.store.save_writes

    def save_writes(starts, events, *args, **kw):
        written.extend(events)
        return real(starts, events, *args, **kw)
    engine.store.save_writes = save_writes
    a = engine.assign(visit("v1"), now=1000)
    b = engine.assign(visit("v2"), now=1001)                  # joins v1's number, shared
    engine.heartbeat(a.token, now=1002)
    engine.checkpoint()
    assert [e.event for e in heard] == ["start", "share", "renew"]
    assert [e.event for e in written] == ["renew"]
    rows = engine.store.leases_of(a.number, 0, 5000)
    assert len(rows) == 1 and rows[0].visitor_id == "v1" and rows[0].last == 1002 and rows[0].ends == 1902
    assert b.shared and [j[0] for j in engine.store.joins_of(rows[0].lease)] == ["v2"]
    engine.close()


def test_reload_keeps_live_leases(engine):
    a = engine.assign(visit("v1"), now=1000)
    cfg = config(numbers=3)
    cfg["pools"]["p"]["numbers"] = [a.number, "+74950000007"]        # two others retired, one added
    engine.reload(cfg)
    assert engine.assign(visit("v1"), now=1001).number == a.number    # same lease, same number
    b = engine.assign(visit("v2"), now=1001)
    assert b.number == "+74950000007"
    assert engine.assign(visit("v3"), now=1001).shared                 # only two numbers left
    assert engine.stats(now=1001)["pools"]["p"]["numbers"] == 2


def test_a_reload_that_changes_the_hold_keeps_returning_visitors(build):
    """Holder and joiner of a shared lease both return to it after a reload with a longer hold,
    before any rule (now a staff cookie), and renew with the new hold."""
    engine = Engine.from_config(config(numbers=1, hold=10), implementation=build)
    held = engine.assign(visit("v1"), now=1000)
    joined = engine.assign(visit("v2"), now=1001)
    assert joined.shared and joined.number == held.number
    engine.reload(config(numbers=1, hold=60), now=1002)
    for who in ("v1", "v2"):
        back = engine.assign(visit(who, cookies={"staff": "1"}), now=1003)
        assert (back.number, back.token, back.expires_at) == (held.number, held.token, 1063.0)


def test_add_and_retire_numbers(engine):
    engine.retire_numbers("p", ["+74950000001", "+74950000002"])
    a = engine.assign(visit("v1"), now=1000)
    assert a.number == "+74950000003"
    engine.add_numbers("p", ["8 (495) 000-00-08"])
    assert engine.assign(visit("v2"), now=1000).number == "+74950000008"
    with pytest.raises(ConfigError):
        engine.add_numbers("p", ["+7495"])
    with pytest.raises(ConfigError, match="pools.nope: unknown pool"):
        engine.add_numbers("nope", ["+74950000009"])


def test_retiring_a_number_ends_its_lease(build):
    engine = Engine.from_config(config(numbers=1, on_exhausted="default"), implementation=build)
    a = engine.assign(visit("v1"), now=1000)
    engine.drain_leases()
    engine.retire_numbers("p", [a.number], now=1100)
    end, = engine.drain_leases()
    assert (end.event, end.number, end.visitor_id, end.end) == ("end", a.number, "v1", 1100.0)
    assert engine.heartbeat(a.token, now=1101) is False
    engine.add_numbers("p", [a.number], now=1200)                            # back, but the lease stays ended
    assert engine.assign(visit("v1"), now=1201).number == "+74950000099"     # cooling until 1100 + 300
    assert engine.assign(visit("v2"), now=1400).number == a.number


def test_shared_lease_of_an_ended_number_belongs_to_the_sharer(build):
    engine = Engine.from_config(config(numbers=1, hold=10, cooldown=300), implementation=build)
    first = engine.assign(visit("v1"), now=1000)
    joined = engine.assign(visit("v2"), now=1020)       # v1's lease ended; the number is cooling
    assert joined.shared and joined.number == first.number and joined.token != first.token
    assert engine.heartbeat(first.token, now=1021) is False
    again = engine.assign(visit("v2", cookies={"staff": "1"}), now=1025)
    assert again.token == joined.token                  # v2 holds it: returns to it before any rule


def test_returning_fast_path_matches_the_full_path(build):
    engine = Engine.from_config(config(), implementation=build)
    full = engine._assign_new                           # the whole path, without the core's shortcut
    first = engine.assign(visit("v1"), now=1000)
    fast = engine.assign(visit("v1"), now=1001)
    slow = full(visit("v1"), 1002)
    assert fast._replace(expires_at=None) == slow._replace(expires_at=None) == first._replace(expires_at=None)
    assert (fast.expires_at, slow.expires_at) == (1001 + 900, 1002 + 900)
    assert engine.assign(visit("v1"), now=1003, token=first.token).number == first.number
    for odd in (True, "1700000000", b"1700000000"):                         # odd clocks take the full path,
        with pytest.raises(TypeError, match="now: expected seconds"):          # which refuses them
            engine.assign(visit("v1"), now=odd)
    for call in (engine.attributes, engine.decide, lambda v, now: engine.decide_many([v], now)):
        with pytest.raises(ValueError, match="now: .* is outside 0 .. "):
            call(visit("v1"), float("nan"))
        with pytest.raises(TypeError, match="now: expected seconds"):
            call(visit("v1"), "soon")
    with pytest.raises(TypeError, match="now: expected seconds"):
        engine.assign(visit("v1"), now="soon")
    for bad in (-5, float("nan"), float("inf"), 10 ** 400, 2.0 ** 60):  # a clear error, both paths
        with pytest.raises(ValueError, match="now: .* is outside 0 .. "):
            engine.assign(visit("v1"), now=bad)
        with pytest.raises(ValueError, match="now: .* is outside 0 .. "):
            full(visit("v1"), bad)
        with pytest.raises(ValueError, match="now: .* is outside 0 .. "):
            engine.heartbeat(first.token, bad)
        with pytest.raises(ValueError, match="now: .* is outside 0 .. "):
            engine.heartbeat_many([first.token], bad)
    with pytest.raises(TypeError, match="now: expected seconds"):
        engine.heartbeat(first.token, "soon")
    odd = engine.assign("not a visit", now=1004)                              # never raises: an anonymous visit
    assert odd.number not in (None, first.number) and not odd.shared
    many = engine.assign_many([visit("v1"), visit("v2"), "junk", visit("v1")], now=1005)
    assert [a.number for a in many] == [first.number, many[1].number, many[2].number, first.number]
    assert many[1].number not in (None, first.number)
    assert engine.assign_many([], now=1006) == []


def test_shared_segment_between_engines(build, tmp_path):
    path = str(tmp_path / "pools.seg")
    one = Engine.from_config(config(numbers=2, on_exhausted="default"), implementation=build, state_path=path)
    two = Engine.from_config(config(numbers=2, on_exhausted="default"), implementation=build, state_path=path)
    a = one.assign(visit("v1"), now=1000)
    b = two.assign(visit("v2"), now=1000)
    assert {a.number, b.number} == {"+74950000001", "+74950000002"}
    assert two.assign(visit("v3"), now=1000).number == "+74950000099"    # both taken, across engines
    assert two.assign(visit("v1"), now=1001).number == a.number           # v1's lease seen from engine two
    assert two.heartbeat(a.token, now=1002) is True
    assert one.stats(now=1002)["pools"]["p"]["claims"] == 2               # counters live in the segment


def test_a_worker_that_never_saw_a_visitor_keeps_their_lease_before_any_rule(build, tmp_path):
    """As the worker that made the lease answers from its cache, before enrichment and rules, so
    does one that finds the lease in the shared slots: the same number whichever worker answers."""
    path = str(tmp_path / "pools.seg")
    one = Engine.from_config(config(numbers=2), implementation=build, state_path=path)
    two = Engine.from_config(config(numbers=2), implementation=build, state_path=path)
    a = one.assign(visit("v1"), now=1000)
    b = two.assign(visit("v1", cookies={"staff": "1"}), now=1001)         # an excluded visit now
    assert (b.number, b.token, b.expires_at) == (a.number, a.token, 1901.0)
    c = Engine.from_config(config(numbers=2), implementation=build, state_path=path).assign(
        visit("v1", url="https://shop.example.ru/?utm_source=print"), now=1002)  # another pool's rule now
    assert (c.number, c.token) == (a.number, a.token)
    assert one.assign(visit("v1"), now=1003).expires_at == 1903.0


def test_incompatible_segment_is_refused(build, tmp_path):
    path = tmp_path / "old.seg"
    Engine.from_config(config(), implementation=build, state_path=str(path))
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 99))
    with pytest.raises(SegmentError, match="incompatible k50core build"):
        Engine.from_config(config(), implementation=build, state_path=str(path))
    garbage = tmp_path / "garbage.seg"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(SegmentError, match="not a k50core pool segment"):
        Engine.from_config(config(), implementation=build, state_path=str(garbage))


def as_layout_before_tags(f, capacity):
    """Rewrite an open segment file as layouts 2 and 3 kept it: each slot's holder hash in its head,
    where the token tag is now (it is in the record now)."""
    from k50core.pools import HEAD_SIZE, HEADER_SIZE, SLOT_SIZE
    for i in range(capacity):
        f.seek(HEADER_SIZE + capacity * HEAD_SIZE + i * SLOT_SIZE)
        holder_hash = f.read(8)
        f.seek(HEADER_SIZE + i * HEAD_SIZE + 8)
        f.write(holder_hash)


def test_a_segment_of_layout_2_grows_in_place_keeping_its_leases(build, tmp_path):
    """A segment made before the holder index (layout 2: no key, its hashes unkeyed, no index after
    the records) is grown on opening: every live lease is found again by a worker that never saw
    its visitor, and new leases go on."""
    from k50core.pools import HEAD_SIZE, HEADER_SIZE, KEY_AT, KEY_SIZE, SLOT_SIZE
    path = tmp_path / "v2.seg"
    Engine.from_config(config(numbers=8), implementation=build, state_path=str(path)).close()
    with open(path, "r+b") as f:  # what layout 2 wrote: no key (its hashes were blake2b without one)
        f.seek(KEY_AT)
        f.write(bytes(KEY_SIZE))
    before = Engine.from_config(config(numbers=8), implementation=build, state_path=str(path))
    numbers = {f"v{i}": before.assign(visit(f"v{i}"), now=1000).number for i in range(5)}
    capacity = before.pools.segment.capacity
    before.close()
    with open(path, "r+b") as f:  # ... and no index after the records, layout 2
        as_layout_before_tags(f, capacity)
        f.truncate(HEADER_SIZE + capacity * (HEAD_SIZE + SLOT_SIZE))
        f.seek(8)
        f.write(struct.pack("<I", 2))
    after = Engine.from_config(config(numbers=8), implementation=build, state_path=str(path))
    assert after.pools.segment.key == b"" and not after.pools.table.index_overflowed()
    assert {v: after.assign(visit(v), now=1001).number for v in numbers} == numbers
    assert after.assign(visit("new"), now=1001).number not in numbers.values()
    again = Engine.from_config(config(numbers=8), implementation=build, state_path=str(path))  # layout 4 now
    assert again.assign(visit("v3"), now=1002).number == numbers["v3"]


def test_a_segment_of_layout_3_gets_tags_keeping_its_leases(build, tmp_path):
    """A segment made before token tags (layout 3: no tag key, no tags in the records) is tagged on
    opening: its leases are found by visitor id and get tokens that renew; a token of the tagless
    form renews nothing."""
    from k50core.pools import KEY_SIZE, TAG_KEY_AT
    path = tmp_path / "v3.seg"
    before = Engine.from_config(config(numbers=8), implementation=build, state_path=str(path))
    shown = {f"v{i}": before.assign(visit(f"v{i}"), now=1000) for i in range(5)}
    capacity = before.pools.segment.capacity
    before.close()
    with open(path, "r+b") as f:  # what layout 3 had: no tag key, the holder hashes in the heads
        as_layout_before_tags(f, capacity)
        f.seek(TAG_KEY_AT)
        f.write(bytes(KEY_SIZE))
        f.seek(8)
        f.write(struct.pack("<I", 3))
    after = Engine.from_config(config(numbers=8), implementation=build, state_path=str(path))
    with open(path, "rb") as f:
        f.seek(8)
        assert struct.unpack("<I", f.read(4))[0] == 4
        f.seek(TAG_KEY_AT)
        assert f.read(KEY_SIZE) != bytes(KEY_SIZE)
    for v, a in shown.items():
        assert after.heartbeat(a.token[:16], now=1001) is False        # the tagless form of the time
        assert after.heartbeat(a.token, now=1001) is False             # a tag under no key: not valid now
        again = after.assign(visit(v), now=1002)
        assert again.number == a.number and again.token[:16] == a.token[:16] and again.token != a.token
        assert after.heartbeat(again.token, now=1003) is True


def test_assign_many_matches_assign(build):
    one, many = same_tag_key(Engine.from_config(config(), implementation=build),
                             Engine.from_config(config(), implementation=build))
    batch = [visit("v1"), visit("v2"), None, {"visitor_id": 5}, visit("v1"), visit("v3"), visit("v4")]
    for now in (1000, 1001, 2500):
        assert many.assign_many(batch, now=now) == [one.assign(v, now=now) for v in batch]


def test_the_lease_sink_drains_renewals_from_every_path(build):
    """Returning visitors (answered in the core), heartbeats and batches all renew without a
    record of their own: the sink hears of them at the next checkpoint, one record per lease
    with its latest times, however many leases are live and however often they were renewed."""
    big = {"pools": {"p": {"type": "dynamic", "numbers": [f"+7495{i:07d}" for i in range(1200)],
                           "hold_seconds": 900}}, "rules": [{"name": "all", "pool": "p"}],
           "store": {"checkpoint_seconds": 30}}
    batches = []
    engine = Engine.from_config(big, implementation=build, lease_sink=batches.append)
    tokens = [engine.assign(visit(f"v{i}"), now=1000).token for i in range(1200)]
    engine.drain_leases()
    batches.clear()
    for k in range(3):                                           # each lease renewed three times
        for i in range(400):
            engine.assign(visit(f"v{i}"), now=1001 + k)          # the core's returning path
            engine.heartbeat(tokens[400 + i], now=1001 + k)
        engine.heartbeat_many(tokens[800:], now=1001 + k)
    assert batches == []                                         # 3,600 renewals, not one record yet
    assert engine.stats(now=1003)["renewals"] == 3600
    engine.heartbeat(tokens[0], now=1031.5)                      # the checkpoint is due (30 s on)
    renewals = [e for b in batches for e in b if e.event == "renew"]
    latest = {e.lease: (e.last, e.end) for e in renewals}
    assert len(renewals) == len(latest) == 1200                  # one record per lease
    assert latest.pop("{1}.{2}".format(*parse_token_text(tokens[0]))) == (1031.5, 1931.5)
    assert set(latest.values()) == {(1003.0, 1903.0)}            # every other lease, up to date
    batches.clear()
    for k in range(400):                      # no checkpoint between them: one record per lease
        engine.heartbeat_many(tokens[:3], now=1040 + k / 100)
    assert batches == []
    folded = [e for e in engine.drain_leases() if e.event == "renew"]
    assert sorted((e.lease, e.last, e.end) for e in folded) == sorted(
        ("{1}.{2}".format(*parse_token_text(t)), 1043.99, 1943.99) for t in tokens[:3])


@pytest.mark.parametrize("cooldown, second", [(0, "claimed"), (300, "shared")])
def test_a_lease_passed_on_before_a_drain_keeps_its_renewals(build, cooldown, second):
    """The renewal log reads each lease's latest activity and end from its slot at the drain, so
    a lease renewed, ended and replaced (claimed anew, or shared once ended) before the drain
    is logged by its replacer, holder and all."""
    engine = Engine.from_config(config(numbers=1, hold=10, cooldown=cooldown), implementation=build)
    first = engine.assign(visit("v1", session_id="s-1"), now=1000)
    assert engine.heartbeat(first.token, now=1005) and engine.assign(visit("v1"), now=1007).token == first.token
    then = engine.assign(visit("v2"), now=1030)                   # v1's lease ended at 1017
    assert then.number == first.number and then.token != first.token and then.shared == (second == "shared")
    events = engine.drain_leases()
    renewed = [e for e in events if e.event == "renew" and e.visitor_id == "v1"]
    assert [(e.start, e.last, e.end, e.session_id, e.rule) for e in renewed] == [(1000.0, 1007.0, 1017.0, "s-1", "all")]
    assert {e.lease for e in events if e.visitor_id == "v1"} == {renewed[0].lease}
    assert engine.drain_leases() == []


def test_a_join_is_not_the_holders_activity(build):
    """A join is logged as its own "share" event; the holder's renewals keep the holder's times,
    also when the joiner's clock is behind and when the number then passes on."""
    engine = Engine.from_config(config(numbers=1, hold=10, cooldown=0), implementation=build)
    a = engine.assign(visit("v1"), now=1000)
    engine.drain_leases()
    assert engine.heartbeat(a.token, now=1008)
    assert engine.assign(visit("v2"), now=1009).shared and engine.assign(visit("v3"), now=1005).shared
    (renew,) = [e for e in engine.drain_leases() if e.event == "renew"]
    assert (renew.visitor_id, renew.last, renew.end) == ("v1", 1008.0, 1019.0)
    quiet = Engine.from_config(config(numbers=1, hold=10, cooldown=0), implementation=build)
    quiet.assign(visit("v1"), now=1000)                    # never back; v2 joins at 1005
    assert quiet.assign(visit("v2"), now=1005).shared
    quiet.assign(visit("v3"), now=1030)                    # the number passes on
    assert not [e for e in quiet.drain_leases() if e.visitor_id == "v1" and e.last > 1000.0]


def test_an_end_moved_at_the_start_instant_survives_a_pass_on(build):
    """A longer hold from a reload and a heartbeat in the start's millisecond move only the end:
    still logged when the number passes on before the drain."""
    engine = Engine.from_config(config(numbers=1, hold=10, cooldown=0), implementation=build)
    a = engine.assign(visit("v1"), now=1000)
    engine.reload(config(numbers=1, hold=20, cooldown=0), now=1000)
    assert engine.heartbeat(a.token, now=1000)                          # until 1010 -> 1020
    engine.assign(visit("v2"), now=1030)
    _, slot, gen, _ = parse_token_text(a.token)
    assert max(e.end for e in engine.drain_leases() if e.lease == f"{slot}.{gen}") == 1020.0


def test_a_lease_renewed_in_one_worker_and_passed_on_in_another(build, tmp_path):
    """Worker A renews and has not drained when worker B takes the number: B logs A's lease (A
    cannot, the slot holds B's lease now), and A logs nothing of B's unrenewed lease."""
    path = str(tmp_path / "pools.seg")
    cfg = config(numbers=1, hold=10, cooldown=0)
    one = Engine.from_config(cfg, implementation=build, state_path=path)
    two = Engine.from_config(cfg, implementation=build, state_path=path)
    a = one.assign(visit("v1", session_id="s-1"), now=1000)
    one.drain_leases()
    assert one.heartbeat(a.token, now=1009)
    assert two.assign(visit("v2"), now=1030).number == a.number
    logged = [(e.event, e.visitor_id, e.session_id, e.start, e.last, e.end) for e in two.drain_leases()]
    assert logged == [("renew", "v1", "s-1", 1000.0, 1009.0, 1019.0), ("start", "v2", None, 1030.0, 1030.0, 1040.0)]
    assert one.drain_leases() == []


def test_renewal_events_need_a_tuple_class(build):
    engine = Engine.from_config(config(), implementation=build)
    engine.heartbeat(engine.assign(visit("v1"), now=1000).token, now=1001)
    with pytest.raises(TypeError):
        engine.pools.table.take_renewal_events(int, ["p"], ["all"])


def test_reference_drain_keeps_a_renewal_made_while_it_swaps_its_marks(monkeypatch):
    """Code that runs inside the drain (a collection's finalizer, another thread) may renew: its
    mark goes to the next drain, not away with this one's."""
    import k50core._engine_py.pool as reference
    engine = Engine.from_config(config(numbers=3), implementation="reference")
    got = [engine.assign(visit(f"v{i}"), now=1000) for i in range(3)]
    engine.drain_leases()
    assert engine.heartbeat(got[0].token, now=1001)
    meanwhile = []

    def new_set(*args):  # the drain's new mark set: renew while it is made
        if not meanwhile:
            meanwhile.append(engine.heartbeat(got[1].token, now=1002))
        return set(*args)
    monkeypatch.setattr(reference, "set", new_set, raising=False)
    first = engine.drain_leases()
    monkeypatch.undo()
    renewed = {e.visitor_id for e in first + engine.drain_leases() if e.event == "renew"}
    assert meanwhile == [True] and renewed == {"v0", "v1"}


def test_a_fork_drops_pending_renewals_without_the_table_lock():
    """A forked worker forgets its parent's pending renewals without reading slots: the reference
    table's lock may have been held by another thread at the fork (the child would wait forever)."""
    engine = Engine.from_config(config(numbers=3), implementation="reference")
    assert engine.heartbeat(engine.assign(visit("v1"), now=1000).token, now=1001)
    table = engine.pools.table
    held, release = threading.Event(), threading.Event()

    def busy():
        with table._lock:
            held.set()
            release.wait()
    thread = threading.Thread(target=busy)
    thread.start()
    held.wait()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if table.pending_renewals() == 0 else 3)   # the fork hooks have run by now
    release.set()
    thread.join()
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.02)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the child kept its parent's renewals"
    assert engine.pools.table.pending_renewals() == 1


def test_an_unrenewed_lease_passed_on_logs_nothing_more(build):
    engine = Engine.from_config(config(numbers=1, hold=10, cooldown=0), implementation=build)
    engine.assign(visit("v1"), now=1000)
    engine.assign(visit("v2"), now=1030)
    assert [e.event for e in engine.drain_leases()] == ["start", "start"]


def test_a_renewal_from_an_earlier_clock_keeps_the_latest_activity(build):
    engine = Engine.from_config(config(hold=10), implementation=build)
    a = engine.assign(visit("v1"), now=1000)
    engine.drain_leases()
    assert engine.heartbeat(a.token, now=1008) and engine.heartbeat(a.token, now=1003)  # a worker's clock behind
    (renew,) = engine.drain_leases()
    assert (renew.last, renew.end) == (1008.0, 1018.0)
    assert engine.lease_holders()[0].last == 1008.0


def test_slot_table_renew_many_logs_its_renewals(build):
    from array import array
    engine = Engine.from_config(config(numbers=3), implementation=build)
    got = [engine.assign(visit(f"v{i}"), now=1000) for i in range(3)]
    engine.drain_leases()
    table = engine.pools.table
    slots = array("i", [parse_token_text(a.token)[1] for a in got])
    gens = array("q", [parse_token_text(a.token)[2] for a in got])
    assert table.pending_renewals() == 0
    assert table.renew_many(slots, gens, 1_001_000, 900_000) == 3
    assert table.renew_many(slots, array("q", [g + 1 for g in gens]), 1_002_000, 900_000) == 0   # other leases
    assert table.pending_renewals() == 3 and table.renewed == engine.stats(now=1001)["renewals"]
    assert sorted(e.end for e in engine.drain_leases()) == [1901.0] * 3
    assert table.pending_renewals() == 0 and engine.drain_leases() == []


def test_an_assignment_held_by_the_caller_never_changes(build):
    engine = Engine.from_config(config(), implementation=build)
    engine.assign(visit("v1"), now=1000)
    kept = engine.assign(visit("v1"), now=1001)
    again = engine.assign(visit("v1"), now=1002)                 # the core may reuse only what nobody holds
    assert (kept.expires_at, again.expires_at) == (1901.0, 1902.0) and kept is not again
    assert kept[:5] == again[:5] and kept.number and kept.token and not kept.shared   # a fresh copy, same lease
    many = engine.assign_many([visit("v1")] * 3, now=1003)
    assert [a.expires_at for a in many] == [1903.0] * 3 and kept.expires_at == 1901.0
    assert engine.assign(visit("v1"), now=1004).expires_at == 1904.0 and many[0].expires_at == 1903.0
    when = engine.assign(visit("v1"), now=1005).expires_at        # only the float is kept, not its tuple
    engine.assign(visit("v1"), now=1006)
    assert when == 1905.0
    for other in ("v2", "v3", "v4"):                                # three numbers: the fourth visitor shares
        engine.assign(visit(other), now=1007)
    back = engine.assign(visit("v1"), now=1008)
    shared_now = [n for n in ("v1", "v2", "v3") if engine.assign(visit(n), now=1009).shared]
    assert back.number == kept.number and len(shared_now) == 1     # the joined lease's holder sees it shared
    assert engine.assign(visit(shared_now[0]), now=1010).shared and not kept.shared


def test_heartbeat_many_over_batches_matches_the_reference_and_skips_garbage():
    """A list of 900 tokens (stale, garbage and repeated ones among them), a tuple, an iterator:
    the compiled build renews exactly what the reference renews."""
    big = {"pools": {"p": {"type": "dynamic", "numbers": [f"+7495{i:07d}" for i in range(700)],
                           "hold_seconds": 900}}, "rules": [{"name": "all", "pool": "p"}]}
    engines = [Engine.from_config(big, implementation=b) for b in ("compiled", "reference")]
    got = []
    for e in engines:
        tokens = [e.assign(visit(f"v{i}"), now=1000).token for i in range(600)]
        mixed = tokens[:300] + ["", "x.y.z", 7, None, "0.fffff.1", "ff.1.1", "0." + "1" * 40] + tokens[300:] + tokens[:50]
        alive = [e.heartbeat_many(mixed, now=1800), e.heartbeat_many(tuple(tokens), now=2600),
                 e.heartbeat_many(iter(tokens[:10]), now=3400), e.heartbeat_many(tokens, now=5000)]
        got.append((alive, sorted((h.number, h.end) for h in e.lease_holders())))
    assert got[0] == got[1]
    assert got[0][0] == [650, 600, 10, 0]    # 1800 + 900 = 2700 > 2600; the ten renewed at 3400 end at 4300


def test_one_heartbeat_in_the_core_answers_as_the_engine_path(build):
    """Engine.heartbeat is the slot table's heartbeat: same answers as renewing through
    Pools, for every kind of clock and token."""
    e = Engine.from_config(config(), implementation=build)
    token = e.assign(visit("v1"), now=1000).token
    assert e.pools.renew(token, 1_100_000) is True                 # the Pools path (milliseconds)
    assert e.heartbeat(token, 1200) is True and e.heartbeat(token, 1200.5) is True
    assert e.heartbeat(token, now=2000) is True                    # 1200.5 + 900 = 2100.5 > 2000
    assert e.heartbeat("0.0.0", 2000) is False and e.heartbeat(17, 2000) is False and e.heartbeat("", 2000) is False
    from fractions import Fraction
    assert e.heartbeat(token, Fraction(2100)) is True              # any number of seconds, as before
    assert e.heartbeat(token, 5000.0) is False                     # ended: 2100 + 900 = 3000


# -- the core's own argument and token parsing, against the reference -------------------------

_TOKEN_TEXT = st.text(alphabet="0123456789abcdefABCDEF.x -+_\u00e9", max_size=45)
_HEX32 = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)  # the token's shape


def two_builds(numbers=5):
    return same_tag_key(*(Engine.from_config(config(numbers=numbers), implementation=b)
                          for b in ("compiled", "reference")))


@settings(max_examples=300, deadline=None)
@given(noise=st.lists(st.one_of(_TOKEN_TEXT, _HEX32, st.integers(), st.none()), max_size=12), data=st.data())
def test_token_parsing_matches_the_reference(noise, data):
    """Real tokens, tokens edited a character at a time, and noise: each build renews exactly
    the same leases, one heartbeat at a time and in a batch."""
    engines = two_builds()
    real = [[e.assign(visit(f"v{i}"), now=1000).token for i in range(4)] for e in engines]
    assert real[0] == real[1]
    edits = []
    for token in real[0]:
        at = data.draw(st.integers(0, len(token)))
        piece = data.draw(_TOKEN_TEXT.filter(lambda t: len(t) <= 3))
        edits.append(token[:at] + piece + token[at + data.draw(st.integers(0, 2)):])
    tokens = edits + noise + real[0][:data.draw(st.integers(0, 4))]
    one = [[e.heartbeat(t, now=1100) for t in tokens] for e in engines]
    assert one[0] == one[1]
    batch = [e.heartbeat_many(tokens, now=1200) for e in engines]
    assert batch[0] == batch[1]
    assert [sorted((h.number, h.end) for h in e.lease_holders()) for e in engines][0] == \
        sorted((h.number, h.end) for h in engines[1].lease_holders())


def test_every_ascii_character_at_every_place_of_a_token_as_the_reference():
    """The core reads the fixed-width token eight bytes at a time: each of the 128 ASCII
    characters in each of its 32 places renews exactly what the reference renews."""
    engines = two_builds()
    token = [e.assign(visit("v1"), now=1000).token for e in engines][0]
    tried = [token[:at] + chr(c) + token[at + 1:] for at in range(32) for c in range(128)]
    results = [[e.heartbeat(t, now=1001) for t in tried] for e in engines]
    assert results[0] == results[1]
    assert sum(results[0]) == 32  # the token itself, once per place, and nothing else


def test_token_digits_and_case(build):
    """32 lowercase hex digits (pool, slot, gen, tag). Nothing else renews: not the tagless
    16-digit form, not the dotted form pages of earlier builds sent."""
    e = Engine.from_config(config(), implementation=build)
    token = e.assign(visit("v1"), now=1000).token
    assert len(token) == 32 and token == token.lower() and int(token, 16) >= 0
    pool, slot, gen, _tag = parse_token_text(token)
    assert e.heartbeat(token, now=1001) is True
    odd = token[:15] + ("0" if token[15] != "0" else "1") + token[16:]  # another generation of that slot
    for bad in (token[:16], f"{pool:x}.{slot:x}.{gen:x}", token.upper(), f" {token}", f"{token} ",
                token[:31], token + "0", "0" + token, token[:7] + "g" + token[8:], token[:7] + "." + token[8:],
                token[:20] + "A" + token[21:], token[:7] + ":" + token[8:], token[:7] + "/" + token[8:],
                token[:7] + "`" + token[8:], token[:7] + "\u00e9" + token[8:], odd, "ff" + token[2:],
                "0x" + token[2:], "-" + token[1:], token[:8] + " " + token[9:]):
        assert e.heartbeat(bad, now=1003) is False, bad
        assert e.heartbeat_many([bad], now=1003) == 0, bad
    with pytest.raises(TypeError):
        e.heartbeat_many(5, now=1003)   # not an iterable of tokens: said so, not ignored


@settings(max_examples=200, deadline=None)
@given(tag=st.integers(0, 2**64 - 1))
def test_a_guessed_token_renews_nothing_and_shows_no_strangers_number(tag):
    """A token is pool, slot and generation, which an attacker can guess, and a 64-bit tag keyed
    with the segment's secret, which they cannot: with any other tag it renews nothing, and a
    visit carrying it is not shown the stranger's number (it is a new visitor)."""
    for build in ("compiled", "reference"):
        e = Engine.from_config(config(numbers=3), implementation=build)
        real = e.assign(visit("stranger"), now=1000)
        guess = real.token[:16] + f"{tag:016x}"
        if guess == real.token:
            continue
        assert e.heartbeat(guess, now=1001) is False and e.heartbeat_many([guess], now=1001) == 0
        other_gen = real.token[:15] + ("2" if real.token[15] != "2" else "3") + real.token[16:]
        assert e.heartbeat(other_gen, now=1001) is False
        got = e.assign(visit("attacker"), now=1002, token=guess)
        assert got.number != real.number and got.token != real.token
        assert [h.end for h in e.lease_holders() if h.number == real.number] == [1900.0]  # not extended
        assert e.heartbeat(real.token, now=1003) is True


def test_tokens_of_two_segments_differ_and_survive_a_restart(build, tmp_path):
    """Each segment has its own tag key, made with it and kept in it: a restarted worker renews
    its pages' tokens; another deployment's token for the same slot and generation does not."""
    seg = str(tmp_path / "pools.seg")
    with Engine.from_config(config(), implementation=build, state_path=seg) as one:
        token = one.assign(visit("v1"), now=1000).token
    other = Engine.from_config(config(), implementation=build)
    assert other.assign(visit("v1"), now=1000).token[:16] == token[:16]
    assert other.assign(visit("v1"), now=1000).token != token
    assert other.heartbeat(token, now=1001) is False
    with Engine.from_config(config(), implementation=build, state_path=seg) as again:
        assert again.heartbeat(token, now=1002) is True
        assert again.assign(visit("v2"), now=1003, token=token).token == token


def test_assign_takes_its_arguments_every_way(build):
    """Engine.assign (a builtin with its own argument reading in the compiled build) answers
    positional and keyword calls alike and refuses a wrong call as a Python function would."""
    e = Engine.from_config(config(), implementation=build)
    first = e.assign(visit("v1"), now=1000)
    same = [e.assign(visit("v1"), 1001), e.assign(visit("v1"), now=1002), e.assign(visit=visit("v1"), now=1003),
            e.assign(visit("v1"), 1004, None), e.assign(visit("v1"), now=1005, token=None),
            e.assign(visit("v1"), **{"now": 1006}), e.assign(visit("v1"), **{"".join(["n", "ow"]): 1007}),
            e.assign(visit("v1"), token=first.token, now=1008), e.assign(visit("v2"), 1009, first.token)]
    assert {a.number for a in same} == {first.number}
    assert same[-2].expires_at == 1008 + 900
    for bad_call in (lambda: e.assign(), lambda: e.assign(visit("v1"), 1, None, 4),
                     lambda: e.assign(visit("v1"), when=1), lambda: e.assign(visit("v1"), 1000, now=1000),
                     lambda: e.assign(visit("v1"), visit=visit("v1")), lambda: e.assign(now=1000)):
        with pytest.raises(TypeError):
            bad_call()
    assert e.assign(visit("v1"), now=1010).number == first.number   # nothing above broke the cache
