"""The lease start journal: what is appended and not yet stored is always on disk; a dead
process's journal is replayed once, a live one's never; unreadable lines are skipped."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from k50core import Engine
from k50core.store import LeaseRow, journal as journal_mod, lease_key, open_store
from k50core.store.journal import StartJournal, recover


def start(i, joined=False):
    visit = {"visitor_id": f"v{i}", "session_id": None, "at": 1000.0 + i, "joined": joined,
             "attributes": {"source": "yandex", "utm": {"utm_campaign": f"c{i}"}}}
    row = LeaseRow(lease_key("p", "+74950000001", 1000.0 + i, f"0.{i}", time_first=True), "p", "+74950000001", None if joined else f"v{i}",
                   None, "all", 1000.0 + i, 1000.0 + i, 1900.0 + i, joined)
    return visit, row


def on_disk(db):
    """Visitor ids in every journal file of ``db``, line by line (a cut line is skipped)."""
    found = []
    for path in sorted(db.parent.glob(db.name + ".starts-*")):
        for line in journal_mod.lines(str(path)):
            try:
                found.append(json.loads(line)[0]["visitor_id"])
            except ValueError:
                pass
    return found


class JournalMachine(RuleBasedStateMachine):
    """Appends, skips (starts the journal could not take), stores in order and small rotations,
    against a model: the queue of starts not yet stored."""

    def __init__(self):
        super().__init__()
        import tempfile
        self.dir = tempfile.TemporaryDirectory()
        from pathlib import Path
        self.db = Path(self.dir.name) / "k.db"
        self.journal = StartJournal(str(self.db))
        self.queue = []          # (visitor id, journaled) in order
        self.next = 0

    @rule(n=st.integers(1, 5))
    def append(self, n):
        starts = [start(self.next + k) for k in range(n)]
        self.journal.append(starts)
        self.queue += [(f"v{self.next + k}", True) for k in range(n)]
        self.next += n

    @rule()
    def skip(self):
        self.journal.skip(1)
        self.queue.append((f"v{self.next}", False))
        self.next += 1

    @precondition(lambda self: self.queue)
    @rule(data=st.data())
    def store_oldest(self, data):
        n = data.draw(st.integers(1, len(self.queue)))
        self.journal.stored(n)
        del self.queue[:n]

    @invariant()
    def unstored_lines_are_on_disk(self):
        present = on_disk(self.db)
        journaled = [v for v, j in self.queue if j]
        assert set(journaled) <= set(present)
        assert self.journal.unstored == len(journaled)
        if not self.queue:  # everything stored: at most the current file (written on until full)
            assert len(list(self.db.parent.glob(self.db.name + ".starts-*"))) <= 1
        files = list(self.db.parent.glob(self.db.name + ".starts-*"))
        assert len(files) <= 1 + len(journaled)

    def teardown(self):
        self.journal.close()
        left = list(self.db.parent.glob(self.db.name + ".starts-*"))
        assert bool(left) == any(j for _, j in self.queue)   # kept only with starts not stored
        self.dir.cleanup()


@pytest.fixture
def small_files(monkeypatch):
    monkeypatch.setattr(journal_mod, "ROTATE_BYTES", 600)   # a new file every couple of lines


def test_journal_state_machine(small_files):
    JournalMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
    JournalMachine.TestCase().runTest()


def test_replays_a_dead_process_journal_once_and_skips_bad_lines(tmp_path, caplog):
    db = tmp_path / "k.db"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {sys.path!r}
        from k50core.store import LeaseRow
        from k50core.store.journal import StartJournal
        j = StartJournal({str(db)!r})
        for i in range(5):
            visit = {{"visitor_id": f"v{{i}}", "session_id": None, "at": 1000.0 + i, "joined": False,
                     "attributes": {{"source": "vk"}}}}
            j.append([(visit, LeaseRow(f"p:+7:1:0.{{i}}", "p", "+74950000001", f"v{{i}}", None, "all",
                                       1000.0 + i, 1000.0 + i, 1900.0 + i, False))])
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    store = open_store(str(db))
    try:
        assert recover(str(db), store) == 0                   # alive: its journal is left alone
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        (path,) = tmp_path.glob("k.db.starts-*")
        with open(path, "r+b") as f:  # right after its lines (the rest of the file is zero bytes)
            f.seek(path.read_bytes().index(0))
            f.write(b'not json\n[{"visitor_id": 1}, [1, 2]]\n[{"visitor_id": "cut"')   # garbage, a cut line
        assert recover(str(db), store) == 5
        assert "unreadable, skipped" in caplog.text
        assert not list(tmp_path.glob("k.db.starts-*"))
        assert recover(str(db), store) == 0                   # once
        rows = store.conn.execute("SELECT visitor_id, attributes FROM visits ORDER BY visitor_id").fetchall()
        assert [r[0] for r in rows] == [f"v{i}" for i in range(5)]
        assert json.loads(rows[0][1]) == {"source": "vk"}
    finally:
        store.close()


def test_replay_is_idempotent_with_what_the_store_has(tmp_path):
    """A start stored and then replayed from a journal (killed between the two) is one row."""
    db = str(tmp_path / "k.db")
    j = StartJournal(db)
    starts = [start(i) for i in range(3)] + [start(3, joined=True)]
    j.append(starts)
    store = open_store(db)
    try:
        store.save_starts(starts[:2])
        j.close()                                           # not marked stored: the files stay
        assert recover(db, store) == 4
        counts = [store.count(t) for t in ("visits", "leases", "lease_joins")]
        assert counts == [4, 4, 1]
        again = StartJournal(db)
        again.append(starts)
        again.close()
        assert recover(db, store) == 4                      # the same starts once more: nothing new
        assert [store.count(t) for t in ("visits", "leases", "lease_joins")] == counts
    finally:
        store.close()


def test_engine_journals_each_start_and_stores_in_batches(tmp_path, build):
    """An embedding engine on a SQLite file: a new visitor's start is in the journal when assign()
    returns, in the store after a second (or a full batch, or close()); the journal then holds
    nothing unstored (its file is written on until full, and removed at close)."""
    db = tmp_path / "k.db"
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": [f"+749500000{i:02d}" for i in range(20)]}},
           "rules": [{"name": "all", "pool": "p"}]}
    engine = Engine.from_config(cfg, implementation=build, store=str(db))
    try:
        engine.assign({"visitor_id": "a", "url": "https://shop.example.ru/"}, now=1000)
        assert on_disk(db) == ["a"] and engine.store.count("visits") == 0
        engine.assign({"visitor_id": "b", "url": "https://shop.example.ru/"}, now=1000.5)
        assert engine.store.count("visits") == 0
        engine.assign({"visitor_id": "c", "url": "https://shop.example.ru/"}, now=1001.2)  # a second on
        journal = engine.lease_recorder.journal
        assert engine.store.count("visits") == 3 and journal.unstored == 0
        engine.assign({"visitor_id": "d", "url": "https://shop.example.ru/"}, now=1002)
        assert on_disk(db) == ["a", "b", "c", "d"] and journal.unstored == 1
    finally:
        engine.close()
    assert not list(tmp_path.glob("k.db.starts-*"))
    with Engine.from_config(cfg, implementation=build, store=str(db)) as again:
        assert again.store.count("visits") == 4


def test_a_call_in_another_process_sees_starts_still_in_a_journal(tmp_path, build):
    """Two engines on one SQLite file (two workers): a visit one of them journaled a moment ago,
    not stored yet, is found with its campaign when the other attributes a call to that number."""
    db = str(tmp_path / "k.db")
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002"]}},
           "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, implementation=build, store=db) as one, \
            Engine.from_config(cfg, implementation=build, store=db) as two:
        a = one.assign({"visitor_id": "v1", "url": "https://shop.example.ru/?utm_source=vk&utm_campaign=may"},
                       now=1000)
        assert one.store.count("visits") == 0                     # in one's journal only
        got = two.attribute({"call_id": "c1", "number": a.number, "started_at": 1030, "duration_seconds": 20},
                            now=1050)
        assert (got.status, got.visitor_id) == ("matched", "v1")
        assert got.attributes.get("utm", {}).get("utm_campaign") == "may" and got.attributes.get("source") == "vk"
    assert not list(tmp_path.glob("k.db.starts-*"))


def test_a_replayed_start_does_not_undo_what_the_store_has(tmp_path):
    """A start read back from a journal after its lease was cut short (a retired number) adds
    nothing and moves no time: the store keeps the cut."""
    from k50core.pools import LeaseEvent
    store = open_store(str(tmp_path / "k.db"))
    try:
        visit, row = start(1)
        store.save_starts([(visit, row)])
        cut = LeaseEvent("end", "p", row.number, row.visitor_id, None, "all", row.start, row.start + 5,
                         row.start + 5, False, row.lease.rsplit(":", 1)[1])
        store.save_events([cut])
        (before,) = store.leases_of(row.number, 0, 1e12)
        store.save_starts([(visit, row)], replayed=True)
        (after,) = store.leases_of(row.number, 0, 1e12)
        assert after == before and after.ends == row.start + 5
        store.save_starts([start(2)], replayed=True)              # a missing one is added
        assert store.count("leases") == 2 and store.count("visits") == 2
    finally:
        store.close()


def test_a_replayed_start_fills_the_holder_of_a_lease_a_join_stored_first(store_url):
    """Worker B shares worker A's number and stores the join before A's start reaches the store
    (it waits in A's journal): the lease row B wrote has no holder. The start, read from A's
    journal, names the holder, so a call on the number finds A's visitor (found by
    test_workers_share_one_pool once in 20 runs: the holder was missing from the candidates)."""
    from k50core.pools import LeaseEvent
    store = open_store(store_url)
    try:
        visit, row = start(1)
        join = LeaseEvent("share", "p", row.number, "v9", None, "all", row.start, row.start + 30,
                          row.start + 930, True, row.lease.rsplit(":", 1)[1])
        store.save_events([join])
        (before,) = store.leases_of(row.number, 0, 1e12)
        assert before.visitor_id is None
        store.save_starts([(visit, row)], replayed=True)
        (after,) = store.leases_of(row.number, 0, 1e12)
        assert (after.visitor_id, after.rule) == ("v1", "all")
        assert (after.start, after.last, after.ends, after.shared) == (before.start, before.last, before.ends, True)
    finally:
        store.close()


@settings(max_examples=150, deadline=None)
@given(garbage=st.lists(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                                  st.sampled_from([b"[]", b"[{}, []]", b'[{"a": 1}, [1,2,3,4,5,6,7,8,9,10]]',
                                                   b"\xff\xfe", b"null", b"[1, 2]"])), max_size=6),
       where=st.integers(0, 3))
def test_recovery_reads_any_damaged_journal_without_raising(tmp_path_factory, garbage, where):
    """Bytes of any kind among the lines of a dead process's journal: recovery never raises,
    replays every intact line and removes the file."""
    d = tmp_path_factory.mktemp("j")
    db = d / "k.db"
    good = [start(i) for i in range(3)]
    lines = [journal_mod._line(v, r) for v, r in good]
    body = b"".join(lines[:where]) + b"\n".join(garbage) + b"\n" + b"".join(lines[where:])
    (d / "k.db.starts-1-dead-1").write_bytes(body)
    store = open_store(str(db))
    try:
        replayed = recover(str(db), store)
        ids = {r[0] for r in store.conn.execute("SELECT visitor_id FROM visits")}
        assert {"v0", "v1", "v2"} <= ids and replayed >= 3
        assert not list(d.glob("k.db.starts-*"))
    finally:
        store.close()


CFG20 = {"pools": {"p": {"type": "dynamic", "numbers": [f"+749500000{i:02d}" for i in range(80)]}},
         "rules": [{"name": "all", "pool": "p"}]}


def test_failed_writes_lose_no_start(tmp_path, small_files, build):
    """The store fails now and then (a flush, an automatic batch, the lease log's write): every
    start stays queued and journaled, the journal never counts one stored twice, and after a
    kill (no close) the next engine has them all."""
    db = str(tmp_path / "k.db")
    engine = Engine.from_config(CFG20, implementation=build, store=db)
    real = engine.store.save_writes
    fail = {3, 7, 8, 15}
    calls = [0]

    def flaky(starts, events=(), durable=False, replayed=False):
        calls[0] += 1
        if calls[0] in fail:
            raise RuntimeError("disk on fire")
        return real(starts, events, durable, replayed)
    engine.store.save_writes = flaky
    for i in range(40):
        engine.assign({"visitor_id": f"v{i}", "url": "https://shop.example.ru/"}, now=1000 + i * 0.6)
        if i % 5 == 4:
            try:
                engine.flush()
            except RuntimeError:
                pass
    leases = engine.lease_recorder
    assert leases.journal.unstored == leases.position - leases.starts_stored  # what is not stored is journaled
    assert set(on_disk(tmp_path / "k.db")) >= {v["visitor_id"] for v, _ in leases._starts}
    leases.journal.close()                                        # as a kill leaves it: files released
    with Engine.from_config(CFG20, implementation=build, store=db) as again:
        ids = {r[0] for r in again.store.conn.execute("SELECT visitor_id FROM visits")}
    assert ids == {f"v{i}" for i in range(40)}


def test_the_service_writer_never_lets_an_end_overtake_its_start(tmp_path):
    """Starts are written in slices; a lease cut short (its number retired) right after it started
    reaches the store cut, even when its start waited behind other slices."""
    import asyncio

    from k50core.bindings.service.writer import START_SLICE, StoreThread
    engine = Engine.from_config(CFG20, store=str(tmp_path / "k.db"))
    writer = StoreThread(engine)
    try:
        got = [engine.assign({"visitor_id": f"v{i}", "url": "https://shop.example.ru/"}, now=1000)
               for i in range(START_SLICE + 20)]
        last = got[-1].number
        engine.retire_numbers("p", [last], now=1000.5)
        asyncio.run(writer.commit(with_log=True))
        (row,) = engine.store.leases_of(last, 0, 1e12)
        assert row.ends == 1000.5 and engine.store.count("visits") == START_SLICE + 20
    finally:
        asyncio.run(writer.close(close_engine=False))
        engine.close()


def test_an_engine_that_fails_to_start_leaves_no_journal(tmp_path):
    from k50core import ConfigError
    bad = dict(CFG20, geoip={"path": str(tmp_path / "missing.mmdb")})
    for _ in range(3):
        with pytest.raises(ConfigError):
            Engine.from_config(bad, store=str(tmp_path / "k.db"))
    assert not [p for p in tmp_path.iterdir() if ".starts-" in p.name]


def test_a_forked_worker_keeps_its_own_journal(tmp_path, build):
    """An engine made before a fork (a pre-forking server): the child journals into files of its
    own, so the parent emptying its file cannot drop the child's lines; the child killed, its
    starts are recovered."""
    db = str(tmp_path / "k.db")
    engine = Engine.from_config(CFG20, implementation=build, store=db)
    pid = os.fork()
    if pid == 0:  # the child: three visitors, then gone without a word (as a kill)
        try:
            for i in range(3):
                engine.assign({"visitor_id": f"child{i}", "url": "https://shop.example.ru/"}, now=1000)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    for i in range(2):
        engine.assign({"visitor_id": f"parent{i}", "url": "https://shop.example.ru/"}, now=1000)
    engine.flush()                                    # the parent's file emptied
    engine.close()
    with Engine.from_config(CFG20, implementation=build, store=db) as again:
        ids = {r[0] for r in again.store.conn.execute("SELECT visitor_id FROM visits")}
    assert ids == {"child0", "child1", "child2", "parent0", "parent1"}


def test_a_full_disk_refuses_a_new_file_and_loses_no_line(tmp_path, monkeypatch, small_files):
    """The disk refuses the next file's blocks: that append raises (its start goes to the store
    instead, see LeaseRecorder.record_start), nothing of it is written, no half-made file is left,
    and the lines before and after it are whole and replay."""
    db = str(tmp_path / "k.db")
    j = StartJournal(db)
    j.append([start(1)])
    real = os.posix_fallocate

    def full(fd, offset, length):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError):
        j.append([start(2), start(3)])        # more than the current file has room for (600 bytes)
    monkeypatch.setattr(os, "posix_fallocate", real)
    j.skip(2)                                 # what the recorder does with them: stored directly
    j.append([start(4), start(5)])
    assert on_disk(tmp_path / "k.db") == ["v1", "v4", "v5"]
    assert not list(tmp_path.glob(".k.db.starts-*"))                 # no hidden, half-made file
    assert j.unstored == 3
    j.close()
    store = open_store(db)
    try:
        assert recover(db, store) == 3
    finally:
        store.close()


def test_a_file_reads_as_its_lines_and_nothing_after(tmp_path):
    """A journal file is reserved whole and mapped: what its lines leave reads as zero bytes,
    which neither recovery nor another process's catch-up takes for a line."""
    db = str(tmp_path / "k.db")
    j = StartJournal(db)
    j.append([start(1), start(2)])
    (path,) = tmp_path.glob("k.db.starts-*")
    raw = path.read_bytes()
    assert len(raw) >= journal_mod.ROTATE_BYTES and raw.count(b"\n") == 2 and raw.rstrip(b"\0") == raw[:raw.index(0)]
    assert [json.loads(line)[0]["visitor_id"] for line in journal_mod.lines(str(path))] == ["v1", "v2"]
    j.stored(2)                               # all stored: the file is written on until full
    j.append([start(3)])
    assert on_disk(tmp_path / "k.db") == ["v1", "v2", "v3"] and path.exists()
    j.stored(1)
    j.close()                                 # all stored: removed
    assert not path.exists()


_CLAIM_AND_DIE = """
import os, signal, sys
sys.path[:0] = {path!r}
from k50core import Engine
engine = Engine.from_config({cfg!r}, implementation={build!r}, store={db!r})
got = engine.assign({{"visitor_id": "y", "url": "https://shop.example.ru/"}}, now={now!r})
print(got.number, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # before any drain of its lease log
"""


def test_a_worker_killed_after_taking_over_a_number_loses_none_of_the_previous_lease(tmp_path, build):
    """Worker one renews visitor x's lease (the renewal only marked in its memory); the lease ends,
    worker two claims the number for y and is killed at once. Once the slot holds y's lease, the
    final state of x's lease was in two's memory only: it is stored with y's start (and is in
    its journal line), so x's last activity is not lost."""
    db = str(tmp_path / "k.db")
    cfg = {"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"], "hold_seconds": 60,
                           "cooldown_seconds": 10}},
           "rules": [{"name": "all", "pool": "p"}]}
    with Engine.from_config(cfg, implementation=build, store=db) as one:
        x = one.assign({"visitor_id": "x", "url": "https://shop.example.ru/"}, now=1000)
        assert one.assign({"visitor_id": "x", "url": "https://shop.example.ru/"}, now=1030).number == x.number
        script = _CLAIM_AND_DIE.format(path=sys.path, cfg=cfg, build=build, db=db, now=1101.0)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == -signal.SIGKILL and done.stdout.strip() == x.number, done.stderr[-2000:]
    with Engine.from_config(cfg, implementation=build, store=db) as again:  # replays two's journal
        rows = again.store.conn.execute("SELECT visitor_id, start, last, ends FROM leases ORDER BY start").fetchall()
    assert [tuple(r) for r in rows] == [("x", 1000.0, 1030.0, 1090.0), ("y", 1101.0, 1101.0, 1161.0)]


def test_a_journal_line_with_a_damaged_superseded_lease_is_skipped(tmp_path, caplog):
    db = str(tmp_path / "k.db")
    visit, row = start(1)
    good = dict(visit, superseded=[["p:+74950000001:1:0.0", "p", "+74950000001", "v0", None, "all", 1.0, 5.0, 9.0,
                                    False]])
    j = StartJournal(db)
    j.append([(good, row)])
    for bad in ("x", [["p"]], [[1, "p", "+7", None, None, None, 1.0, 2.0, 3.0, False]], [good["superseded"][0]] * 2):
        j.append([(dict(visit, superseded=bad, visitor_id="bad"), row._replace(lease=f"bad{len(str(bad))}"))])
    j.close()
    store = open_store(db)
    try:
        assert recover(db, store) == 1
        assert caplog.text.count("unreadable, skipped") == 4
        got = store.conn.execute("SELECT lease, visitor_id, last, ends FROM leases ORDER BY lease").fetchall()
        assert sorted(tuple(r) for r in got) == sorted([("p:+74950000001:1:0.0", "v0", 5.0, 9.0),
                                                        (row.lease, "v1", 1001.0, 1901.0)])
    finally:
        store.close()


def test_a_start_stores_the_final_state_of_the_lease_it_replaced(store_url):
    """A start that carries the number's previous lease as it ended moves that lease's last
    activity and end to the greatest (a replay or a later renewal row changes nothing back)."""
    store = open_store(store_url)
    try:
        old_visit, old_row = start(0)
        store.save_starts([(old_visit, old_row)])
        final = list(old_row._replace(last=old_row.start + 60, ends=old_row.start + 960))
        visit, row = start(1)
        for replayed in (False, True, True):  # stored, then replayed twice from a journal
            store.save_starts([(dict(visit, superseded=[final]), row)], replayed=replayed)
            got = {r.lease: r for r in store.leases_of(row.number, 0, 1e12)}
            assert (got[old_row.lease].last, got[old_row.lease].ends) == (1060.0, 1960.0)
            assert (got[row.lease].visitor_id, got[row.lease].last) == ("v1", 1001.0)
        assert store.count("visits") == 2 and store.count("leases") == 2
    finally:
        store.close()
