"""The Engine: config → compiled rules; visit → attributes → decision."""
from __future__ import annotations

import logging
import os
import weakref
from dataclasses import replace
from types import ModuleType
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, cast

from . import _impl
from .config import Config, Pool, Rule, Source, parse, read_config
from .config.phones import display as format_number, normalise
from .enrich import Enricher, SourceCatalogue, clean_text
from .attribution import Attribution, Attributor, parse_call, visit_summary
from .clock import milliseconds, seconds
from .pools import Assignment, LeaseEvent, Pools
from .store import LeaseRow, Store, open_store, row_of
from .report.recorder import Recorder
from .store.journal import StartJournal, catch_up as catch_up_journals, recover as recover_journals
from .errors import ConfigError, Problem
from .rules import index
from .rules.compiler import Compiler, PathTable, compile_groups

BOT_RULE = "(bots)"  # the implicit first rule excluding bots when bots.exclude is on
log = logging.getLogger("k50core.engine")


def _load(source: Source) -> Config:
    config, problems = parse(read_config(source))
    if problems:  # report the conditions' faults too, all in one go
        raise ConfigError(problems + _compile_rules(config)[3])
    return config


def _compile_rules(config: Config) -> Tuple[List[Rule], Compiler, List[int], List[Problem]]:
    """The rules (bot exclusion first), their compiled programs, and every fault found."""
    rules: List[Rule] = list(config.rules)
    if config.exclude_bots:
        rules.insert(0, Rule(BOT_RULE, {"device.type": "bot"}, None, True, "bots"))
    groups, problems = compile_groups(config.lists, strict=True)
    compiler = Compiler(PathTable(), groups, strict=True)
    roots = [compiler.add(rule.when, rule.place) for rule in rules]
    return rules, compiler, roots, problems + compiler.problems


class Decision(NamedTuple):
    """What a visit gets: the rule that matched and its outcome.

    ``kind`` is "pool" (a number from ``pool``), "exclude" (the page keeps
    its own number and nothing is taken from any pool) or "none" (no rule
    matched: the page keeps its own number).
    """
    rule: Optional[str]
    kind: str
    pool: Optional[str]


NO_MATCH = Decision(None, "none", None)


class Engine:
    """Compiled rules plus enrichment. Build with ``Engine.from_config``."""

    def __init__(self, config: Config, *, core: ModuleType, geoip: Any = None, state_path: Optional[str] = None,
                 lease_sink: Optional[Callable[[List[LeaseEvent]], None]] = None,
                 now: Optional[float] = None, store: "Store | str | None" = None, warm: bool = True,
                 state_url: Optional[str] = None) -> None:
        self.core = core
        # leases and the visits that started them go to the store (in memory unless given)
        self.store = open_store(store if store is not None else ":memory:")
        self._owns_store = not isinstance(store, Store)  # close() leaves a caller's Store open
        if state_url is not None and state_path is not None:
            raise ConfigError([("state_url", "pools live either in Redis (state_url) or in a segment (state_path), "
                                             "not both")])
        if state_url is None and state_path is None and getattr(self.store, "persistent", False) \
                and self.store.backend == "sqlite":
            state_path = self.store.path + ".pools"  # pools persist beside their leases: a restart continues them
        self._durable_starts = self.store.persistent
        # A SQLite file: each new lease's visit goes to an append-only journal before its number is
        # shown (an append costs far less than a transaction per visitor), and to the store in batches (see
        # store.journal). A journal a killed process left behind is replayed first.
        self.journal: Optional[StartJournal] = None  # opened last, once nothing else can fail
        self._first_queued: Optional[float] = None  # when the oldest start waiting for the store came
        # log events the store has already with their start (see _not_saved), by identity
        self._saved_with_start: Dict[int, LeaseEvent] = {}
        self._starts: List[Tuple[Dict[str, Any], LeaseRow]] = []  # lease starts waiting for the store, oldest first
        self._events: List[LeaseEvent] = []  # the lease log waiting, when writes are deferred
        # A host that places the store's writes itself (the HTTP service) sets this: assign() then
        # only queues, and the host takes the queue (take_writes) and writes it (write).
        self.defer_writes = False
        self._report_due = False  # a checkpoint asked for: the report counters go with it
        self.lease_starts = 0  # lease starts and joins recorded: a host sees whether assign() queued one
        self.starts_stored = 0  # ... and how many of them (the oldest first) the store has
        self.attributor = Attributor(self.store)
        self._user_sink = user_sink = lease_sink

        def sink(events: List[LeaseEvent]) -> None:
            if self.defer_writes:
                self._events.extend(events)
                return
            try:
                self._write_or_keep(self._take_starts(), self._not_saved(events))
            except Exception as exc:  # called from inside assign() or a heartbeat: kept, logged, not raised
                log.error("writing lease starts and log events failed; kept for the next write", exc_info=exc)
            if user_sink is not None:
                user_sink(events)

        self.recorder = Recorder(int(config.checkpoint_seconds * 1000))  # visit sessions, pool samples
        self.implementation = "compiled" if core is not _impl.available()["reference"] else "reference"
        self._compile(config, geoip)
        self._late_return: Optional[Callable[[Optional[str], int], Optional[Assignment]]] = None
        self._redis: Any = None  # RedisPools when the pools live in Redis (typed loosely: an optional extra)
        if state_url is not None:  # pools shared by many hosts through Redis (see k50core.pool_redis)
            from .pool_redis import RedisPools
            from .pool_redis.fast import redis_assigner

            redis = self._redis = RedisPools(state_url, config.pools, [r.name for r in self.rules], lease_sink=sink,
                                             checkpoint_ms=int(config.checkpoint_seconds * 1000),
                                             now_ms=milliseconds(now))
            self.pools = cast(Pools, redis)  # the interface the engine uses of Pools, over Redis
            self._late_return = redis.after_rules
            self.assign, self.assign_many = redis_assigner(  # type: ignore[method-assign]
                redis, type(self).assign.__get__(self))
            self.heartbeat, self.heartbeat_many = redis.heartbeat, redis.heartbeat_many  # type: ignore[method-assign]
        else:
            self.pools = Pools(core, config.pools, [r.name for r in self.rules], state_path=state_path,
                               lease_sink=sink, checkpoint_ms=int(config.checkpoint_seconds * 1000),
                               now_ms=milliseconds(now))
            # instances answer returning visitors in the core; the method below is the rest
            assigner = core.Assigner(self.pools.returns, type(self).assign.__get__(self))
            self.assign, self.assign_many = assigner.assign, assigner.assign_many  # type: ignore[method-assign]
            # heartbeats answered in the core, the clock read there
            self.heartbeat, self.heartbeat_many = (  # type: ignore[method-assign]
                self.pools.table.heartbeat, self.pools.table.heartbeat_many)
        self.attributor.configure(self.config)
        self.recorder.pools = self.pools
        self._counts = {"excluded": 0, "unmatched": 0, "static": 0}
        if self.store.backend == "sqlite" and self.store.persistent:
            recover_journals(self.store.path, self.store)
            self.journal = StartJournal(self.store.path)
            me = weakref.ref(self)  # an engine made before a fork (gunicorn --preload): see _forked
            os.register_at_fork(after_in_child=lambda: getattr(me(), "_forked", lambda: None)())
        if warm:  # the first engine of a process pays it, not its first visitor
            self.warm_up()

    def _compile(self, config: Config, geoip: Any = None) -> None:
        rules, compiler, roots, problems = _compile_rules(config)
        try:
            catalogue = SourceCatalogue(config.sources)
        except ConfigError as exc:
            problems.extend(exc.problems)
            catalogue = SourceCatalogue()
        if geoip is None:
            try:
                geoip = self.core.GeoIP(config.geoip_path)
            except (OSError, ValueError) as exc:
                problems.append(("geoip.path", str(exc)))
        if problems:
            raise ConfigError(problems)
        anchors, always = index.build(compiler.nodes, roots)
        self.config = config
        self.rules = rules
        self._rule_index = {r.name: i for i, r in enumerate(rules)}
        self.matcher = self.core.Matcher(compiler.nodes, compiler.paths.paths, roots, anchors, always)
        self.enrich = Enricher(geoip, catalogue, self.core)
        self.geoip = geoip
        self._outcomes = tuple(
            Decision(r.name, "exclude", None) if r.exclude else Decision(r.name, "pool", r.pool) for r in rules
        )

    @classmethod
    def from_config(cls, source: Source, *, implementation: Optional[str] = None, geoip: Any = None,
                    state_path: Optional[str] = None,
                    lease_sink: Optional[Callable[[List[LeaseEvent]], None]] = None,
                    now: Optional[float] = None, store: "Store | str | None" = None,
                    warm: bool = True, state_url: Optional[str] = None) -> "Engine":
        """An engine from a dict or a YAML / JSON / TOML file.

        ``implementation`` picks "compiled" or "reference" (default: the
        active one, see ``k50core.IMPLEMENTATION``). ``state_path`` puts the
        number pools in a shared segment (e.g. under /dev/shm) that every
        worker process opens; by default they live in process memory.
        ``lease_sink`` receives lease events in batches; ``now`` is the clock
        for numbers a shared segment has but this config retires. ``store``
        (a SQLite path, ``postgresql://…`` or a Store; default: SQLite in
        memory) keeps leases, visits, calls and attributions. ``warm`` (default)
        loads now what enrichment would load at the first visit (the User-Agent
        parser's patterns, once per process), so no visitor waits for it.
        ``state_url`` (``redis://host:6379/0``, ``rediss://…``, ``redis+cluster://h1:p1,h2:p2``)
        keeps the pools in Redis instead, shared by every host that names it (see
        ``k50core.pool_redis``); with ``store="postgresql://…"`` the hosts share the history too.
        Raises ConfigError listing every problem with its place.
        """
        config = _load(source)
        core = _impl.by_name(implementation) if implementation else _impl.core
        return cls(config, core=core, geoip=geoip, state_path=state_path, lease_sink=lease_sink, now=now,
                   store=store, warm=warm, state_url=state_url)

    # -- number assignment ---------------------------------------------------------------
    def assign(self, visit: Any, now: Optional[float] = None, token: Optional[str] = None) -> Assignment:
        """The number this visit's page shows (see ``Assignment``); never raises for a bad visit.

        A returning visitor whose lease is alive (by ``token`` or visitor id)
        gets the same number, and the lease is renewed.
        """
        now_s = seconds(now)
        now_ms = int(now_s * 1000)
        fields = visit if isinstance(visit, dict) else {}
        visitor = clean_text(fields.get("visitor_id"), 256) or None
        back = self.pools.returning(visitor, token or fields.get("token"), now_ms)
        if back is not None:
            return back
        attrs = self.enrich(visit, now_s)
        got = self._answer(fields, visitor, attrs, now_ms)
        # only here, where the core sent the visit back to Python: a live lease is inside a session
        self.recorder.page_view(visitor or clean_text(fields.get("session_id"), 64), now_ms, attrs, got.rule,
                                got.pool, got.number)
        return got

    def _answer(self, fields: Dict[str, Any], visitor: Optional[str], attrs: Dict[str, Any],
                now_ms: int) -> Assignment:
        decision = self.match(attrs)
        if self._late_return is not None and (decision.pool is None
                                              or self.config.pools[decision.pool].type == "static"):
            back = self._late_return(visitor, now_ms)  # a lease another host made keeps its visitor before any rule
            if back is not None:
                return back
        if decision.kind != "pool":
            self._counts["excluded" if decision.kind == "exclude" else "unmatched"] += 1
            return Assignment(None, None, None, decision.rule, None, None, False)
        assert decision.pool is not None and decision.rule is not None  # a "pool" decision names both
        pool = self.config.pools[decision.pool]
        if pool.type == "static":
            self._counts["static"] += 1
            return self._fixed(pool.numbers[0], pool, decision.rule)
        session = clean_text(fields.get("session_id"), 64) or None
        rule = self._rule_index[decision.rule]
        got, started = self.pools.lease(pool.name, rule, visitor, session, now_ms)
        if got is None and pool.on_exhausted == "share":
            self.recorder.exhausted(pool.name, True, now_ms)
            got, started = self.pools.share(pool.name, rule, visitor, session, now_ms)
        if started is not None:
            self._save_start(started, attrs)
            self.recorder.started = started.lease
        if got is not None:
            return got
        if pool.on_exhausted != "share":
            self.pools.count_default(pool.name)
            self.recorder.exhausted(pool.name, False, now_ms)
        return self._fixed(pool.default_number or self.config.default_number, pool, decision.rule)

    def assign_many(self, visits: Sequence[Any], now: Optional[float] = None) -> List[Assignment]:
        """assign() for a batch at one instant; instances renew returning visitors in one pass of the core."""
        now_s = seconds(now)
        return [self.assign(v, now_s) for v in visits]

    def _save_start(self, e: LeaseEvent, attrs: Dict[str, Any]) -> None:
        """A new lease (or a join of a shared one) with its visit: on disk before the page shows it,
        when the store is on disk, so a restart or a kill -9 cannot lose who held the number."""
        joined = False
        if e.event == "share":  # a join, unless the share started a new lease held by this visitor
            now_held = self.pools.holder_of(e.number)
            joined = now_held is None or now_held.lease != e.lease or now_held.visitor_id != e.visitor_id
        row = row_of(e, holder=not joined)
        visit: Dict[str, Any] = {"visitor_id": e.visitor_id, "session_id": e.session_id, "at": e.last, "joined": joined,
                 "attributes": visit_summary(attrs)}
        replaced = self.pools.replaced_by_last_claim()
        if replaced is not None:
            # the number's previous lease, as it ended: once the slot holds this one, only this
            # process's memory has its last activity (until the next drain); stored with the start
            # (and in its journal line), a kill before that drain loses none of it
            visit["superseded"] = [list(row_of(replaced))]
        if self.journal is not None:
            try:
                self.journal.append(((visit, row),))
            except OSError as exc:  # a full or failing disk: the store's own commit instead
                self._saved_with_start[id(e)] = e
                self._store_past_journal(visit, row, exc)
                return
        elif self._durable_starts and not self.defer_writes:  # PostgreSQL: committed right here
            self.store.save_start(visit, row)
            self._saved_with_start[id(e)] = e
            self.lease_starts += 1
            self.starts_stored += 1
            return
        # journaled, or a store in memory (nothing to lose to a crash): to the store in batches
        self._saved_with_start[id(e)] = e  # the same event reaches the lease log: stored once, with this
        self._queue_start(visit, row)
        if not self.defer_writes and (len(self._starts) >= 512 or e.last - (self._first_queued or e.last) >= 1.0):
            try:  # the starts alone: the lease log stays for drain_leases() and the sink
                self._write_starts()
            except Exception as exc:  # safe in the journal (or nothing to lose): kept for the next write
                log.error("writing %d lease starts failed; kept for the next write", len(self._starts),
                          exc_info=exc)

    def _forked(self) -> None:
        """In a forked child: a journal of its own; the starts it inherited queued are in the
        parent's journal, not in this one (the order the journal counts in)."""
        if self.journal is not None:
            self.journal = self.journal.reopened()
            self.journal.skip(len(self._starts))

    def _queue_start(self, visit: Dict[str, Any], row: LeaseRow) -> None:
        if not self._starts:
            self._first_queued = row.last
        self._starts.append((visit, row))
        self.lease_starts += 1  # counted once queued: a host waits for starts_stored to reach it

    def _store_past_journal(self, visit: Dict[str, Any], row: LeaseRow, exc: OSError) -> None:
        """The journal refused a start: the store takes it now, after everything queued before it
        (the order the journal counts in). If the store fails too, the start stays queued for the
        next write and the caller hears of it (the service answers 503)."""
        log.error("lease start journal failed (%s): storing directly", exc)
        self.journal.skip(1)  # type: ignore[union-attr]
        self._queue_start(visit, row)
        self._write_starts()

    def _write_starts(self) -> None:
        self._write_or_keep(self._take_starts(), [])

    def _write_or_keep(self, starts: List[Tuple[Dict[str, Any], LeaseRow]], events: List[LeaseEvent]) -> None:
        """write() what was taken; on failure it goes back, in order, for the next write."""
        try:
            self.write(starts, events, durable=False)
        except Exception:
            self.requeue(starts, events)
            raise

    @property
    def starts_need_commit(self) -> bool:
        """Whether a host that defers writes must have the queued lease starts stored before it
        shows their numbers: only for a store kept elsewhere (PostgreSQL). A SQLite file has the
        journal, a store in memory has nothing to keep."""
        return self._durable_starts and self.journal is None

    # -- calls --------------------------------------------------------------------------
    def attribute(self, call: Any, now: Optional[float] = None) -> Attribution:
        """Which visit made this call (see ``Attribution``); recorded once per ``call_id``.

        Raises CallError naming each bad field. The call and its attribution
        are on disk (for a file or PostgreSQL store) before this returns.
        """
        prepared = self.prepare_call(call, now)
        self.flush()
        return self.attribute_prepared(*prepared)

    def prepare_call(self, call: Any, now: Optional[float] = None) -> Tuple[Dict[str, Any], List[LeaseRow]]:
        """attribute()'s first half, which reads no store: the call checked (CallError names each
        bad field) and the called number's lease as the pool state has it now."""
        parsed = parse_call(call, self.config.region, seconds(now))
        e = self.pools.holder_of(parsed["number"])  # renewals other workers have not drained yet
        return parsed, [] if e is None else [row_of(e)]

    def attribute_prepared(self, parsed: Dict[str, Any], live: List[LeaseRow]) -> Attribution:
        """attribute()'s second half, in the store: run it after the writes taken before it.
        Other processes' lease starts of the last second, still in their journals, go in first."""
        if self.journal is not None:
            catch_up_journals(self.store.path, self.store, self.journal)
        return self.attributor.attribute(parsed, live)

    def flush(self, checkpoint: bool = False) -> None:
        """Write the buffered lease starts and lease log to the store (on failure they stay queued);
        with ``checkpoint`` also every lease's activity since the last checkpoint, which otherwise
        goes every ``store.checkpoint_seconds``."""
        self._write_or_keep(*self.take_writes(checkpoint=checkpoint))

    def checkpoint(self) -> None:
        """Write everything now, the live leases' latest activity included (see ``flush``)."""
        self.flush(checkpoint=True)

    def take_writes(self, log: bool = True, checkpoint: bool = False
                    ) -> Tuple[List[Tuple[Dict[str, Any], LeaseRow]], List[LeaseEvent]]:
        """The queued lease starts (with their visits) and, with ``log``, the lease log, taken, for
        ``write``. With ``defer_writes`` a host takes them where it calls assign() and writes them
        where it likes (the service: see its writer). A start carries what the store needs of it;
        the log may wait and fold. Renewals join the log at checkpoints (the core's, every
        ``store.checkpoint_seconds`` of renewal clock, or ``checkpoint``): a heartbeat costs no
        store write of its own."""
        starts = self._take_starts()
        if not log:
            return starts, []
        events, self._events = self._events, []
        events += self.pools.drain(checkpoint)
        if checkpoint:
            self._report_due = True
        if events and self._user_sink is not None:
            self._user_sink(events)
        return starts, self._not_saved(events)

    def _not_saved(self, events: List[LeaseEvent]) -> List[LeaseEvent]:
        """The lease log less the starts and joins saved with their visits: the same rows again
        (a busy shared number makes one per new visitor). Sinks still get every event."""
        saved = self._saved_with_start
        if not saved:
            return events
        return [e for e in events if saved.pop(id(e), None) is not e]

    def _take_starts(self) -> List[Tuple[Dict[str, Any], LeaseRow]]:
        starts, self._starts, self._first_queued = self._starts, [], None
        return starts

    def write(self, starts: List[Tuple[Dict[str, Any], LeaseRow]], events: List[LeaseEvent],
              durable: bool = True) -> None:
        """Store what take_writes() gave (the oldest starts first, in the order they were taken);
        ``durable``: the starts are on disk when this returns."""
        self.store.save_writes(starts, events, durable)  # one transaction: all of it, or none
        if starts:
            self.starts_stored += len(starts)
            if self.journal is not None:
                self.journal.stored(len(starts))
        if self._report_due or self.recorder.due():
            self._report_due = False
            try:
                self.recorder.write(self.store, self.pools)
            except Exception as exc:  # the counts stay for the next write; the lease writes went through
                log.error("writing visit counts and pool samples failed; kept for the next write", exc_info=exc)

    def requeue(self, starts: List[Tuple[Dict[str, Any], LeaseRow]], events: List[LeaseEvent]) -> None:
        """Put back what a failed write() was given, ahead of anything queued since."""
        if starts:
            self._first_queued = starts[0][0]["at"]
        self._starts[:0] = starts
        self._events[:0] = events

    def close(self) -> None:
        """A clean shutdown: flush the lease log with a last checkpoint, close the store (if the
        engine opened it)."""
        self.flush(checkpoint=True)
        if self.journal is not None:
            self.journal.close()
        if self._owns_store:
            self.store.close()
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _fixed(self, number: Optional[str], pool: Pool, rule: Optional[str]) -> Assignment:
        shown = format_number(number, pool.display) if number else None
        return Assignment(number, shown, pool.name, rule, None, None, False)

    def heartbeat(self, token: str, now: Optional[float] = None) -> bool:
        """Extend a live lease (activity on the page); False when it has ended. (An engine
        answers this in the core: instances bind it to their slot table's ``heartbeat``.)"""
        return self.pools.renew(token, milliseconds(now))

    def intent(self, token: str, kind: str, now: Optional[float] = None, visitor: Optional[str] = None) -> bool:
        """A call intent: the page's visitor tapped (``kind`` "click") or copied ("copy") the number its
        lease ``token`` shows. Renews the lease like a heartbeat and keeps the intent with it in the
        store (``visitor``: who, on a shared number; by default its holder), where attribution weighs it
        (see ``k50core.intent``). False for a token that is not alive or a kind that is not known."""
        from .intent import record
        return record(self, token, kind, seconds(now), visitor)

    def heartbeat_many(self, tokens: Sequence[str], now: Optional[float] = None) -> int:
        """heartbeat() for many tokens; returns how many leases were alive. (Instances bind it to
        their slot table's ``heartbeat_many``, as ``heartbeat``.)"""
        return self.pools.renew_many(tokens, milliseconds(now))

    def stats(self, now: Optional[float] = None) -> Dict[str, Any]:
        """Per pool: numbers, leased / cooling / free now, claims, exhaustion events, renewals."""
        out: Dict[str, Any] = {"pools": self.pools.stats(milliseconds(now))}
        out.update(self._counts)
        out["renewals"] = self.pools.table.renewed  # by this process
        # True once a crowd of equal hashes filled a place's window: a look for a holder then scans
        # every number (correct, slower); a segment made afresh starts without it
        out["holder_index_overflowed"] = self.pools.table.index_overflowed()
        if self._late_return is not None:  # pools in Redis: whether it answers, and its failures seen here
            p: Any = self.pools
            out["redis"] = {"healthy": p.healthy, "unreachable": p.unreachable, "epoch_changes": p.epoch_changes}
        return out

    def drain_leases(self) -> List[LeaseEvent]:
        """Lease starts, renewals and shared joins recorded since the last drain."""
        self._saved_with_start.clear()  # what the caller drains is theirs: nothing left to match
        return self.pools.drain()

    def lease_holders(self) -> List[LeaseEvent]:
        """The last lease of every number, read from the pool state itself."""
        return self.pools.holders()

    # -- reports and deals (k50core.report, k50core.crm) -------------------------------------------
    def write_reports(self) -> None:
        """Add the visit sessions counted so far, and a sample of the pools, to the store now."""
        self.recorder.write(self.store, self.pools, full=True)

    def report(self, by: "str | Sequence[str]", since: Optional[float] = None, until: Optional[float] = None,
               plans: Any = None) -> List[Dict[str, Any]]:
        """One dict per group of ``by`` (dimensions, e.g. "source,query.utm_campaign"): its keys and
        visits, calls, answered, first_time_callers, minutes, deals, won, revenue and cost, for the
        calls and visits of [since, until). See ``k50core.report.query``. ``plans``: a
        PricingConfig (default: ``reports.plans_file`` or the bundled plans)."""
        from .report import query
        self.write_reports()
        return query.report(self.store, self.config, by, since, until, plans, self.config.reports)

    def pool_usage(self, pool: str, since: float, until: float, step: float = 3600.0) -> Dict[str, Any]:
        """Per ``step`` seconds: the peak of leased numbers, the pool's size and its exhaustion
        events (shared / default), as the engine sampled them; with the size sizing recommends."""
        from .report import query
        self.write_reports()
        return query.pool_usage(self.store, self.config, pool, since, until, step)

    def import_deals(self, rows: Sequence[Any], now: Optional[float] = None, origin: str = "api") -> Any:
        """Store CRM deals (see ``k50core.crm``), each matched to the caller's latest call before it
        within ``crm.match_days``; returns an ImportResult (imported, updated, unattributed, and
        each refused row with its index and reason). Importing a deal again updates it."""
        from .crm import import_deals
        return import_deals(self.store, rows, region=self.config.region,
                            match_days=self.config.crm.get("match_days", 30.0), now=seconds(now), origin=origin)

    # -- changes at run time ---------------------------------------------------------------
    def reload(self, source: Source, now: Optional[float] = None) -> None:
        """Load a new config; live leases of numbers that remain are kept, those of dropped ones end."""
        config = _load(source)
        self._compile(config, self.geoip if config.geoip_path == self.config.geoip_path else None)
        self.pools.rule_names = [r.name for r in self.rules]
        self.pools.configure(config.pools, milliseconds(now))
        self.pools.set_checkpoint(int(config.checkpoint_seconds * 1000))
        self.attributor.configure(self.config)

    def add_numbers(self, pool: str, numbers: Sequence[str], now: Optional[float] = None) -> None:
        self._resize(pool, lambda current: current + tuple(n for n in numbers if n not in current), now)

    def retire_numbers(self, pool: str, numbers: Sequence[str], now: Optional[float] = None) -> None:
        """Take numbers out of a pool; their live leases end now (an "end" in the lease log)."""
        self._resize(pool, lambda current: tuple(n for n in current if n not in set(numbers)), now)

    def _resize(self, name: str, change: Callable[[Tuple[str, ...]], Tuple[str, ...]],
                now: Optional[float]) -> None:
        if name not in self.config.pools:
            raise ConfigError([(f"pools.{name}", "unknown pool: numbers can be added to or retired from "
                                                 "the pools the config has")])
        target = self.config.pools[name]
        numbers = tuple(normalise(n, self.config.region) or n for n in change(target.numbers))
        bad = [n for n in numbers if normalise(n, self.config.region) is None]
        if bad:
            raise ConfigError([(f"pools.{name}.numbers", f"{b!r} is not a valid phone number") for b in bad])
        pools = dict(self.config.pools)
        pools[name] = replace(target, numbers=numbers)
        self.config = replace(self.config, pools=pools)
        self.pools.configure(self.config.pools, milliseconds(now))
        self.attributor.configure(self.config)

    def warm_up(self) -> None:
        """Load now what enrichment loads on first use (the User-Agent parser's patterns take
        about a second, the Public Suffix List a tenth), so that a server's first visitors do not wait for it."""
        self.enrich({"url": "https://example.com/", "ip": "127.0.0.1", "referrer": "https://www.example.org/",
                     "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"}, 0.0)

    # -- visit → attributes → decision ------------------------------------------
    def attributes(self, visit: Any, now: Optional[float] = None) -> Dict[str, Any]:
        """The attribute dict rules look at (see ``k50core.enrich``)."""
        return self.enrich(visit, None if now is None else seconds(now))

    def match(self, attributes: Any) -> Decision:
        r = self.matcher.first_match(attributes)
        return NO_MATCH if r < 0 else self._outcomes[r]

    def match_many(self, batch: Iterable[Any]) -> List[Decision]:
        decisions: List[Decision] = self.matcher.pick_many(batch, self._outcomes, NO_MATCH)
        return decisions

    def decide(self, visit: Any, now: Optional[float] = None) -> Decision:
        return self.match(self.enrich(visit, None if now is None else seconds(now)))

    def decide_many(self, visits: Iterable[Any], now: Optional[float] = None) -> List[Decision]:
        enrich, at = self.enrich, None if now is None else seconds(now)
        decisions: List[Decision] = self.matcher.pick_many([enrich(v, at) for v in visits], self._outcomes, NO_MATCH)
        return decisions
