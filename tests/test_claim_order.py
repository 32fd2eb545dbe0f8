"""Which number a claim hands out: the free one idle longest, ties from the hint on.

The compiled build keeps each pool's free numbers sorted between scans (_claims.pxi); the
reference scans every slot every time. A state machine drives two compiled tables over one
buffer (two workers of a shared segment, one clock) and a reference table over a buffer of its
own through the same claims, renewals, retirements, revivals, dead claimers and clock moves:
every claim must return the same number and generation. A second machine has one worker whose
clock also goes back (a worker sees another's doings at its next scan, so two workers whose
clocks disagree by more than the cooldown may each hand out a number idle a little less long:
never one that is not free, which the stress test in test_pool_multiprocess checks). Both run
again with the lists off (every claim a scan), as pools too large for the lists' keys do.
"""
import struct
from array import array

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from k50core._engine_py.pool import CLAIM_DEADLINE_MS, HEAD_SIZE, pack_state, unpack_state
from k50core._impl import available

BUILDS = available()
N = 24
POOLS = (array("i", range(0, N, 2)), array("i", range(1, N, 2)))  # two pools, interleaved slots
COOLDOWNS = (3_000, 0)
CLAIMING = 1


class ClaimOrder(RuleBasedStateMachine):
    WORKERS, CLOCK_BACK = 2, False

    @initialize(hold=st.sampled_from([0, 1, 2_000, 9_000]))
    def build(self, hold):
        compiled, reference = BUILDS["compiled"], BUILDS["reference"]
        self.shared = bytearray(compiled.table_bytes(N))
        self.workers = [compiled.SlotTable(self.shared, 0, N) for _ in range(self.WORKERS)]
        self.own = bytearray(reference.table_bytes(N))
        self.oracle = reference.SlotTable(self.own, 0, N)
        for t in self.workers[:1] + [self.oracle]:
            for i in range(N):
                t.setup(i, 74950000000 + i, i % 2)
        self.now, self.hold, self.leases, self.made = 1_000_000, hold, [], 0
        self.latest = self.now  # the latest instant seen

    def _everywhere(self, method, *args):
        got = [getattr(t, method)(*args) for t in self.workers + [self.oracle]]
        assert all(g == got[0] for g in got), (method, args, got)
        return got[0]

    @rule(worker=st.integers(0, 1), pool=st.integers(0, 1), hint=st.integers(0, 40), times=st.integers(1, 4))
    def claim(self, worker, pool, hint, times):
        for _ in range(times):  # several at one instant: ties, and the list consumed in place
            self.made += 1
            args = (POOLS[pool], hint, self.now, self.hold, COOLDOWNS[pool], 0, self.made, b"v%d" % self.made, b"")
            got = self.workers[worker % self.WORKERS].claim(*args)
            want = self.oracle.claim(*args)
            assert got == want, ("claim", worker, pool, hint, self.now, got, want)
            if got is not None:
                self.leases.append(got)
            hint += 1

    @rule(data=st.data())
    def renew(self, data):
        if self.leases:
            slot, gen = data.draw(st.sampled_from(self.leases))
            self._everywhere("renew", slot, gen, self.now, self.hold)

    @rule(slot=st.integers(0, N - 1), back=st.booleans())
    def retire_and_revive(self, slot, back):
        tables = self.workers + [self.oracle]  # each worker does it at its own reload: the second
        for t in tables:                         # worker's call finds it done (its list rescans)
            t.retire(slot, self.now)
        for t in tables if back else ():
            t.revive(slot)

    @rule(slot=st.integers(0, N - 1))
    def a_claimer_dies_mid_claim(self, slot):
        """A free number's state word as a claim leaves it when its process is killed mid-write:
        free again at the claim's deadline. (That process's clock is not behind the latest instant
        a claim here has seen: a worker whose clock lags by more than the deadline may be handed a
        number idle a little less long than another, never one that is not free.)"""
        for buf, t in ((self.shared, self.workers[0]), (self.own, self.oracle)):
            kind, gen, shared, until = t.state(slot)
            if kind in (0, 2) and (kind == 0 or self.now >= until + COOLDOWNS[slot % 2]):
                struct.pack_into("<Q", buf, slot * HEAD_SIZE,
                                 pack_state(gen + 1, CLAIMING, False, self.latest + CLAIM_DEADLINE_MS))

    @rule(step=st.sampled_from([0, 1, 999, 1_000, 2_000, 3_000, 5_001, 12_000, 60_000]))
    def clock_forward(self, step):
        self.now += step
        self.latest = max(self.latest, self.now)

    @precondition(lambda self: self.CLOCK_BACK)
    @rule(step=st.integers(1, 20_000))
    def clock_back(self, step):
        self.now = max(self.now - step, 0)

    @invariant()
    def same_states(self):
        if hasattr(self, "oracle"):
            for i in range(N):
                assert unpack_state(struct.unpack_from("<Q", self.shared, i * HEAD_SIZE)[0]) \
                    == unpack_state(struct.unpack_from("<Q", self.own, i * HEAD_SIZE)[0])


class ClaimOrderClockBack(ClaimOrder):
    WORKERS, CLOCK_BACK = 1, True


@pytest.mark.parametrize("lists", ["on", "off"])
@pytest.mark.parametrize("machine", [ClaimOrder, ClaimOrderClockBack], ids=["two workers", "clock back"])
def test_claims_hand_out_the_number_the_reference_does(machine, lists):
    compiled = BUILDS["compiled"]
    before = compiled._set_candidate_list_max(0) if lists == "off" else None
    try:
        machine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
        machine.TestCase().runTest()
    finally:
        if before is not None:
            compiled._set_candidate_list_max(before)


def test_a_steady_pool_claims_without_scanning_it_again():
    """After one scan a pool's claims come from its list: the idle-longest order holds across many
    claims at later instants, with leases ending meanwhile (each claim equal to the reference's)."""
    compiled, reference = BUILDS["compiled"], BUILDS["reference"]
    n = 500
    tables = [b.SlotTable(bytearray(b.table_bytes(n)), 0, n) for b in (compiled, reference)]
    slots = array("i", range(n))
    for t in tables:
        for i in range(n):
            t.setup(i, 74950000000 + i, 0)
        for i in range(n):  # every number leased once, each at its own instant
            t.claim(slots, i * 7, 1_000 + (i * 37) % n, 1_000, 1_000, 0, i + 1, b"x%d" % i, b"")
    now = 10_000_000
    for k in range(3 * n):  # leases made here end and come back while the list is taken from
        got = [t.claim(slots, k, now + k * 10, 1_000, 1_000, 0, 10**6 + k, b"y%d" % k, b"") for t in tables]
        assert got[0] == got[1], (k, got)


def test_a_slot_list_changed_in_place_is_checked_where_it_is_read():
    """The list remembers positions in the pool's array: an index changed in place afterwards is
    checked when a claim reads it (IndexError), as a new list's every index is."""
    compiled = BUILDS["compiled"]
    t = compiled.SlotTable(bytearray(compiled.table_bytes(8)), 0, 8)
    slots = array("i", range(8))
    assert t.claim(slots, 0, 1_000, 10, 0, 0, 1, b"a", b"") == (0, 1)
    slots[1] = 99
    with pytest.raises(IndexError):
        t.claim(slots, 1, 1_000, 10, 0, 0, 2, b"b", b"")
    slots[1] = 1
    assert t.claim(slots, 1, 1_000, 10, 0, 0, 3, b"c", b"") == (1, 1)
    with pytest.raises(IndexError):
        t.claim(array("i", [2, 8]), 0, 1_000, 10, 0, 0, 4, b"d", b"")


def test_a_worker_whose_list_other_workers_emptied_still_claims_the_right_number():
    """Worker one's list holds every free number; worker two then takes 200 of them. Worker one's
    next claim looks past each taken entry (not a lost race: it must not run out of attempts and
    call the pool exhausted) and hands out what the reference does."""
    compiled, reference = BUILDS["compiled"], BUILDS["reference"]
    n = 300
    shared = bytearray(compiled.table_bytes(n))
    one, two = compiled.SlotTable(shared, 0, n), compiled.SlotTable(shared, 0, n)
    oracle = reference.SlotTable(bytearray(reference.table_bytes(n)), 0, n)
    slots = array("i", range(n))
    for t in (one, oracle):
        for i in range(n):
            t.setup(i, 74950000000 + i, 0)
    for t in (one, oracle):  # all leased once, ended long ago, each at its own instant
        for i in range(n):
            t.claim(slots, 0, 1_000 + i, 10, 0, 0, i + 1, b"x", b"")

    def args(k):
        return slots, 0, 1_000_000 + k, 10_000, 0, 0, 10**6 + k, b"y", b""

    assert one.claim(*args(0)) == oracle.claim(*args(0))          # one's list: the 299 still free
    for k in range(1, 201):
        assert two.claim(*args(k)) == oracle.claim(*args(k))
    for k in range(201, 260):
        assert one.claim(*args(k)) == oracle.claim(*args(k)) is not None
