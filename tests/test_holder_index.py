"""The holder index (a holder's hash -> their slot, in the slots' memory) against a scan.

``SlotTable.lease_of`` answers from the index; ``SlotTable.find`` over every
slot is the oracle. A state machine claims, shares, renews, retires and revives
slots for a few holders whose hashes are made to crowd a few homes (so entries
probe on, replace ones that are no longer current, and overflow; some holders
share a whole hash), with clock
jumps past holds and cooldowns, in both builds side by side: every holder's
answer must be the scan's, and both builds must agree.
"""
import struct
from array import array

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from k50core import Engine
from k50core._impl import available

BUILDS = available()
HOLD, COOLDOWN = 10_000, 2_000
HOLDERS = [f"h{i}".encode() for i in range(24)] + [b""]  # b"": an anonymous lease


def crowded_hash(k: int, homes: int) -> int:
    """Holder k's hash: its home one of ``homes`` places, its tag (top 14 bits) its own."""
    return (k + 1) << 50 | (k % homes)


class Index(RuleBasedStateMachine):
    @initialize(capacity=st.sampled_from([4, 20]), homes=st.sampled_from([1, 3, 64]))
    def build(self, capacity, homes):
        self.homes = homes
        self.tables = []
        for name in ("compiled", "reference"):
            core = BUILDS[name]
            table = core.SlotTable(bytearray(core.table_bytes(capacity)), 0, capacity)
            for slot in range(capacity):
                table.setup(slot, 74950000000 + slot, 0)
            self.tables.append(table)
        self.slots = array("i", range(capacity))
        self.now = 1_000_000

    def both(self, method, *args):
        answers = [getattr(t, method)(*args) for t in self.tables]
        assert answers[0] == answers[1], (method, args, answers)
        return answers[0]

    def hashed(self, k):
        """Crowded homes, and every seventh holder the same whole hash (the text tells them apart)."""
        return (k % 7 + 1) << 50 | (k % self.homes) if HOLDERS[k] else 0

    @rule(k=st.integers(0, len(HOLDERS) - 1), share=st.booleans())
    def lease(self, k, share):
        if self.both("lease_of", self.hashed(k), HOLDERS[k], self.now) is not None:
            return  # the engine renews a holder's live lease rather than claiming another
        args = (self.now, HOLD, 0, self.hashed(k), HOLDERS[k], b"")
        if share:
            self.both("share", self.slots, *args)
        else:
            self.both("claim", self.slots, 0, self.now, HOLD, COOLDOWN, 0, self.hashed(k), HOLDERS[k], b"")

    @rule(k=st.integers(0, len(HOLDERS) - 1))
    def renew(self, k):
        found = self.both("lease_of", self.hashed(k), HOLDERS[k], self.now)
        if found is not None:
            assert self.both("renew", found[0], found[1], self.now, HOLD)

    @rule(ms=st.sampled_from([1, 500, HOLD // 2, HOLD, HOLD + COOLDOWN]))
    def later(self, ms):
        self.now += ms

    @rule(slot=st.integers(0, 19), revive=st.booleans())
    def retire(self, slot, revive):
        if slot < len(self.slots):
            self.both("retire", slot, self.now)
            if revive:
                self.both("revive", slot)

    @invariant()
    def index_answers_as_a_scan_does(self):
        if not hasattr(self, "tables"):
            return
        for k, holder in enumerate(HOLDERS):
            if holder:
                scanned = self.both("find", self.slots, self.hashed(k), holder, self.now)
                assert self.both("lease_of", self.hashed(k), holder, self.now) == scanned, (k, scanned)
        self.both("index_overflowed")


TestIndex = Index.TestCase
TestIndex.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_a_crowded_home_overflows_and_lookups_scan(name):
    core = BUILDS[name]
    table = core.SlotTable(bytearray(core.table_bytes(40)), 0, 40)
    slots = array("i", range(40))
    for k in range(17):  # 17 holders, one home: the 17th finds no place in the window of 16
        assert not table.index_overflowed()
        table.claim(slots, 0, 1000, HOLD, 0, 0, crowded_hash(k, 1), b"x%d" % k, b"")
    assert table.index_overflowed()
    for k in range(17):
        assert table.lease_of(crowded_hash(k, 1), b"x%d" % k, 1001) is not None
    assert table.lease_of(crowded_hash(30, 1), b"nobody", 1001) is None


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_entries_of_ended_leases_make_room(name):
    core = BUILDS[name]
    table = core.SlotTable(bytearray(core.table_bytes(16)), 0, 16)
    slots = array("i", range(16))
    now = 1000
    for round_ in range(50):  # 50 × 16 leases through one home: each claim reuses an entry whose slot moved on
        for k in range(16):
            got = table.claim(slots, 0, now, HOLD, 0, 0, crowded_hash(k, 1), b"r%d.%d" % (round_, k), b"")
            assert got is not None
        for k in range(16):
            assert table.lease_of(crowded_hash(k, 1), b"r%d.%d" % (round_, k), now) is not None
        now += HOLD
    assert not table.index_overflowed()


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_anonymous_leases_take_no_place(name):
    core = BUILDS[name]
    table = core.SlotTable(bytearray(core.table_bytes(64)), 0, 64)
    for _ in range(64):
        table.claim(array("i", range(64)), 0, 1000, HOLD, 0, 0, 0, b"", b"")
    assert not table.index_overflowed()
    assert table.lease_of(0, b"", 1001) is None


def test_a_returning_visitor_is_found_through_the_index_by_another_worker(build, tmp_path):
    """Two engines on one segment; the second never saw the visitor and has thousands of numbers
    to look through: it answers from the index (a scan would give the same, slower)."""
    numbers = [f"+7495{i:07d}" for i in range(3000)]
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": numbers, "hold_seconds": 900, "cooldown_seconds": 60}},
           "rules": [{"name": "all", "when": {}, "pool": "p"}]}
    path = str(tmp_path / "pool.seg")
    one = Engine.from_config(cfg, state_path=path, implementation=build)
    two = Engine.from_config(cfg, state_path=path, implementation=build)
    visits = [{"visitor_id": f"v{i}"} for i in range(200)]
    first = [one.assign(v, now=1000.0).number for v in visits]
    assert [two.assign(v, now=1010.0).number for v in visits] == first
    assert two.stats(now=1010.0)["holder_index_overflowed"] is False
    assert two.assign({"visitor_id": "new"}, now=1010.0).number not in first


def test_holder_hashes_are_keyed_per_segment(tmp_path):
    """Each segment has its own key: a visitor id's place in one segment's index says nothing of
    another's (ids cannot be crafted in advance to crowd one home)."""
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"]}},
           "rules": [{"name": "all", "when": {}, "pool": "p"}]}
    a = Engine.from_config(cfg, state_path=str(tmp_path / "a.seg"))
    b = Engine.from_config(cfg, state_path=str(tmp_path / "b.seg"))
    again = Engine.from_config(cfg, state_path=str(tmp_path / "a.seg"))
    assert a.pools._holder("v1")[1] != b.pools._holder("v1")[1]
    assert a.pools._holder("v1")[1] == again.pools._holder("v1")[1]


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_retiring_a_number_mid_claim_ends_the_claim(name):
    """A reload retires a number while a worker is between its claim's two CASes (slow, or killed),
    and another reload revives it: the claim is over, not a live lease nobody can find."""
    from k50core._engine_py.pool import HEAD_SIZE, OFF_HLEN, OFF_HOLDER, SLOT_SIZE
    core = BUILDS[name]
    buffer = bytearray(core.table_bytes(8))
    table = core.SlotTable(buffer, 0, 8)
    now, slot, gen, h, holder = 1_000_000, 3, 1, crowded_hash(5, 64), b"visitor-A"
    struct.pack_into("<Q", buffer, slot * HEAD_SIZE, gen << 46 | 1 << 44 | (now + 5000))  # CLAIMING
    struct.pack_into("<Q", buffer, slot * HEAD_SIZE + 8, h)
    record = 8 * HEAD_SIZE + slot * SLOT_SIZE
    buffer[record + OFF_HLEN] = len(holder)
    buffer[record + OFF_HOLDER:record + OFF_HOLDER + len(holder)] = holder
    assert table.retire(slot, now + 10) is False  # no published lease was cut
    table.revive(slot)
    assert table.state(slot)[3] <= now + 10
    assert table.find(array("i", range(8)), h, holder, now + 20) is None
    assert table.lease_of(h, holder, now + 20) is None
    assert table.renew(slot, gen, now + 20, HOLD) == 0


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_a_damaged_index_word_is_skipped(name):
    """A word no claim writes (slot field 0) names no slot: skipped, never read as slot -1."""
    core = BUILDS[name]
    buffer = bytearray(core.table_bytes(8))
    table = core.SlotTable(buffer, 0, 8)
    h = crowded_hash(1, 64)
    places = 8 * (32 + 128) + 64
    struct.pack_into("<Q", buffer, places + (h % 64) * 8, (h >> 50) << 50 | 1 << 32)
    assert table.lease_of(h, b"x", 1000) is None


@pytest.mark.parametrize("name", ["compiled", "reference"])
def test_table_bytes_refuses_a_capacity_past_32_bits(name):
    for capacity in (-1, 2 ** 32 - 1, 2 ** 61 - 1):
        with pytest.raises((ValueError, OverflowError)):
            BUILDS[name].table_bytes(capacity)
