"""The returning-visitor cache (the assign fast path) against the reference.

The compiled cache is an open-addressing table with backward-shift deletion;
the reference is a dict. A state machine puts, renews, discards and clears
visitors in both, over slot tables of their own, and every answer must agree
(ids as new str objects each time, as a request's cookie would give them).
"""
from array import array

import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from k50core._impl import available
from k50core.pools import Assignment

BUILDS = available()
SLOTS = 64
HOLD = 10_000
IDS = st.text(alphabet="ab", min_size=0, max_size=7)  # few letters: the same ids come back often


def fresh(text):
    """An equal str that is another object (as each request's visitor id is)."""
    return "".join(list(text)) if len(text) > 1 else text


class Cache(RuleBasedStateMachine):
    @initialize(capacity=st.sampled_from([3, 40, 10_000]))
    def build(self, capacity):
        self.sides = []
        for name in ("compiled", "reference"):
            core = BUILDS[name]
            table = core.SlotTable(bytearray(core.table_bytes(SLOTS)), 0, SLOTS)
            self.sides.append((table, core.ReturnCache(table, capacity)))
        self.now = 1_000_000
        self.slots = array("i", range(SLOTS))

    @rule(visitor=IDS, joined=st.booleans())
    def put(self, visitor, joined):
        got = [table.claim(self.slots, 0, self.now, HOLD, 0, 0, 1, b"h", b"s") for table, _ in self.sides]
        assert got[0] == got[1]
        if got[0] is None:
            return
        slot, gen = got[0]
        made = Assignment(f"+7{slot}", None, "p", "r", f"t{slot}", (self.now + HOLD) / 1000, False)
        for _, cache in self.sides:
            cache.put(fresh(visitor), slot, gen, HOLD, made, joined)

    @rule(visitor=IDS)
    def put_a_str_subclass(self, visitor):
        """Not cached by either build (a subclass may hash its own way); a miss is only slower."""
        made = Assignment("+7", None, "p", "r", "t", 1.0, False)
        for _, cache in self.sides:
            cache.put(type("Id", (str,), {})(visitor), 0, 1, HOLD, made)

    @rule(visitor=IDS)
    def renew(self, visitor):
        seen = []
        for _, cache in self.sides:
            cache.seen = lambda *args: seen.append(args)
        got = [cache.renew(fresh(visitor), self.now) for _, cache in self.sides]
        assert got[0] == got[1]
        assert seen[:len(seen) // 2] == seen[len(seen) // 2:]

    @rule(visitor=st.one_of(IDS, st.none(), st.integers()))
    def discard(self, visitor):
        for _, cache in self.sides:
            cache.discard(fresh(visitor) if isinstance(visitor, str) else visitor)

    @rule()
    def clear(self):
        for _, cache in self.sides:
            cache.clear()

    @rule(hold=st.sampled_from([HOLD // 2, HOLD, 3 * HOLD]))
    def rehold(self, hold):
        """A reload changed the pool's hold (every slot here is pool 0's)."""
        for _, cache in self.sides:
            cache.rehold([hold, 1])

    @rule(ms=st.integers(0, 2 * HOLD))
    def later(self, ms):
        self.now += ms

    @invariant()
    def same_size(self):
        assert len(self.sides[0][1]) == len(self.sides[1][1])


TestCache = Cache.TestCase
TestCache.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_many_visitors_come_and_go():
    """Thousands of ids through one cache: growth, long probe runs and removals from their middle."""
    sides = []
    for name in ("compiled", "reference"):
        core = BUILDS[name]
        table = core.SlotTable(bytearray(core.table_bytes(4)), 0, 4)
        sides.append(core.ReturnCache(table))
    made = Assignment("+7", None, "p", "r", "t", 1.0, False)
    for cache in sides:
        for i in range(5000):
            cache.put(f"v{i}", 0, 99, HOLD, made)      # gen 99 never leased: each renew misses
        for i in range(0, 5000, 3):
            cache.discard(f"v{i}")
    assert len(sides[0]) == len(sides[1]) == 5000 - len(range(0, 5000, 3))
    for i in range(5000):  # every id still there is found (after all the backward shifts), once
        key = "".join(["v", str(i)])
        assert [c.renew(key, 1000) for c in sides] == [None, None]
    assert len(sides[0]) == len(sides[1]) == 0  # each renew found its entry and dropped the dead lease


def test_a_pool_slot_list_is_an_int_array_of_indices_in_the_table():
    """claim, share and find read a pool's slots in place: an array('i') whose every index is in
    the table, the same errors from both builds (whatever the scan would have reached)."""
    import pytest
    for name in ("compiled", "reference"):
        table = BUILDS[name].SlotTable(bytearray(BUILDS[name].table_bytes(4)), 0, 4)
        calls = [lambda s, table=table: table.claim(s, 0, 1000, HOLD, 0, 0, 1, b"h", b""),
                 lambda s, table=table: table.share(s, 1000, HOLD, 0, 1, b"h", b""),
                 lambda s, table=table: table.find(s, 1, b"h", 1000)]
        for call in calls:
            for wrong in ([0, 1], (0,), array("l", [0]), array("I", [0]), None):
                with pytest.raises(TypeError):
                    call(wrong)
            for outside in (array("i", [0, 1, 4]), array("i", [-1, 0]), array("i", [0] * 50 + [7])):
                with pytest.raises(IndexError):
                    call(outside)
            call(array("i"))  # no slots: nothing to do
        assert table.claim(array("i", [0, 1, 2, 3]), 0, 1000, HOLD, 0, 0, 1, b"h", b"") == (0, 1)
        assert table.find(array("i", [3, 2, 1, 0]), 1, b"h", 1001) == (0, 1)


_RENEWED_DURING_RENEWAL = """
import gc, sys
from array import array
from k50core._impl import available
from k50core.pools import Assignment
core = available()[sys.argv[1]]
table = core.SlotTable(bytearray(core.table_bytes(4)), 0, 4)
cache = core.ReturnCache(table)
slot, gen = table.claim(array("i", [0, 1, 2, 3]), 0, 1000, 10**9, 0, 0, 1, b"h", b"")
cache.put("v", slot, gen, 10**9, Assignment("+7", None, "p", "r", "t", 1.0, False))
inside, nested = [False], []
class Renews:
    def __del__(self):  # run by a collection that the renewal's allocation set off
        if inside[0]:
            nested.append(cache.renew("v", 2000))
keep = cache.renew("v", 1000)
for i in range(3000):
    gc.set_threshold(1)
    r = Renews(); r.me = r; del r
    inside[0] = True
    got = cache.renew("v", 1000 + i)
    inside[0] = False
    gc.set_threshold(700)
    assert keep.number == "+7" and sys.getrefcount(keep) >= 2, "the caller's Assignment was let go"
    assert got.number == "+7" and sys.getrefcount(got) >= 2
    keep = got
assert nested, "no renewal ran inside another"
del keep, got, nested[:]
for k in range(100_000):
    cache.renew("v", 10_000 + k)
print("ok")
"""

def _survives(script, build):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", script, build], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])


def test_a_renewal_run_inside_another_keeps_every_assignment_alive():
    """A collection set off by a renewal's allocation may run code that renews the same visitor
    (a finalizer here; another thread in a server): the outer renewal must not store over it
    nor let go of a reference twice (found by review: it freed the caller's Assignment)."""
    for build in ("compiled", "reference"):
        _survives(_RENEWED_DURING_RENEWAL, build)


def test_put_names_what_is_wrong_the_same_way_in_both_builds():
    import pytest
    made = Assignment("+7", None, "p", "r", "t", 1.0, False)
    for name in ("compiled", "reference"):
        core = BUILDS[name]
        cache = core.ReturnCache(core.SlotTable(bytearray(core.table_bytes(4)), 0, 4), capacity=1)
        cache.put("v", 3, 1, HOLD, made)
        for slot in (4, -1, 10**9):  # renewals use it as an offset into the table
            with pytest.raises(IndexError):
                cache.put("w", slot, 1, HOLD, made)
        for bad in (made._replace(expires_at=1), made._replace(shared=1), tuple(made), made[:6]):
            with pytest.raises(TypeError):
                cache.put("w", 0, 1, HOLD, bad)
        with pytest.raises(TypeError):
            cache.put(None, 0, 1, HOLD, made)
        assert len(cache) == 1  # nothing wrong was let in, and nothing cleared for it


class _Attrs:
    pass


def _visit_shapes(draw_keys, ids, where, drop_first, spelled_fresh, split):
    """A visit dict holding ids[0] under "visitor_id" among keys holding other visitors' ids."""
    name = fresh("visitor_id") if spelled_fresh else "visitor_id"
    keys = list(draw_keys)
    if split:  # an instance's attribute dict: CPython may share its keys between instances
        obj = _Attrs()
        for i, k in enumerate(keys):
            if isinstance(k, str) and k != "visitor_id":
                setattr(obj, k, ids[1 + i % (len(ids) - 1)])
        obj.visitor_id = ids[0]
        return vars(obj)
    visit = {}
    if drop_first:  # a deleted entry where a hint may point
        visit["visitor_id"] = ids[-1]
        del visit["visitor_id"]
    for i, k in enumerate(keys[:where]):
        visit[k] = ids[1 + i % (len(ids) - 1)]
    visit[name] = ids[0]
    for i, k in enumerate(keys[where:]):
        visit.setdefault(k, ids[1 + i % (len(ids) - 1)])
    return visit


OTHER_KEYS = st.lists(st.one_of(st.sampled_from(["url", "ip", "vid", "visitor", "visitor_ie", "x"]),
                                st.integers(0, 3)), max_size=9)


@settings(max_examples=300, deadline=None)
@given(keys=OTHER_KEYS, where=st.integers(0, 9), drop_first=st.booleans(), spelled_fresh=st.booleans(),
       split=st.booleans(), order=st.permutations(range(4)))
def test_the_fast_path_reads_the_visits_own_id(keys, where, drop_first, spelled_fresh, split, order):
    """Every shape of visit dict (the id first, last or among other visitors' ids, after a
    deleted entry, under an equal key that is another object, int keys, an instance's attribute
    dict) gives each visit its own visitor's Assignment, in both builds."""
    for name in ("compiled", "reference"):
        core = BUILDS[name]
        table = core.SlotTable(bytearray(core.table_bytes(8)), 0, 8)
        cache = core.ReturnCache(table)
        ids = [f"id{i}" for i in range(4)]
        for i, vid in enumerate(ids):
            slot, gen = table.claim(array("i", range(8)), 0, 1_000_000, HOLD, 0, 0, 1, b"h", b"")
            cache.put(vid, slot, gen, HOLD, Assignment(f"+7{i}", None, "p", "r", f"t{i}", 1.0, False))
        fallback = []
        assigner = core.Assigner(cache, lambda visit, now, token, fallback=fallback: fallback.append(visit) or "full")
        for turn in order:  # visits of different shapes in turn: the hint moves between them
            own = ids[turn:] + ids[:turn]
            visit = _visit_shapes(keys, own, where, drop_first, spelled_fresh, split and turn % 2 == 0)
            got = assigner.assign(visit, now=1_000.5)
            assert got.number == f"+7{ids.index(own[0])}", (name, visit)
        assert fallback == []
        assert assigner.assign({"url": "x", 1: ids[0]}, now=1_000.6) == "full"  # no id: the full path
