"""The Engine: config → compiled rules; visit → attributes → decision."""
from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any, NamedTuple, Protocol, cast

from . import _impl
from .attribution import Attribution, Attributor, parse_call
from .clock import milliseconds, seconds
from .config import Config, Pool, Rule, Source, parse, read_config
from .config.phones import display as format_number, normalise
from .enrich import Enricher, SourceCatalogue, clean_text
from .errors import ConfigError, Problem
from .leases import LeaseRecorder
from .pools import Assignment, LeaseEvent, Pools
from .report.recorder import Recorder
from .rules import index
from .rules.bulk import gc_paused
from .rules.compiler import Compiler, PathTable, compile_groups
from .store import LeaseRow, Store, open_store, row_of

BOT_RULE = "(bots)"  # the implicit first rule excluding bots when bots.exclude is on
log = logging.getLogger("k50core.engine")


def _load(source: Source) -> Config:
    config, problems = parse(read_config(source))
    if problems:  # report the conditions' faults too, all in one go
        raise ConfigError(problems + _compile_rules(config)[3])
    return config


def _compile_rules(config: Config) -> tuple[list[Rule], Compiler, list[int], list[Problem]]:
    """The rules (bot exclusion first), their compiled programs, and every fault found."""
    rules: list[Rule] = list(config.rules)
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
    rule: str | None
    kind: str
    pool: str | None


NO_MATCH = Decision(None, "none", None)
# Engine.new_visit: yields pools.lease's arguments, is sent its (assignment, lease event), returns the assignment
NewVisit = Generator[tuple[Any, ...], tuple[Assignment | None, LeaseEvent | None], Assignment]


# What Engine.assign, assign_many, heartbeat and heartbeat_many are: the core's methods (see Engine).
class AssignCall(Protocol):
    def __call__(self, visit: Any, now: float | None = None, token: str | None = None) -> Assignment: ...


class AssignManyCall(Protocol):
    def __call__(self, visits: Sequence[Any], now: float | None = None) -> list[Assignment]: ...


class HeartbeatCall(Protocol):
    def __call__(self, token: str, now: float | None = None) -> bool: ...


class HeartbeatManyCall(Protocol):
    def __call__(self, tokens: Sequence[str], now: float | None = None) -> int: ...


class Engine:
    """Compiled rules plus enrichment. Build with ``Engine.from_config``."""

    def __init__(self, config: Config, *, core: ModuleType, geoip: Any = None, state_path: str | None = None,
                 lease_sink: Callable[[list[LeaseEvent]], None] | None = None,
                 now: float | None = None, store: Store | str | None = None, warm: bool = True,
                 state_url: str | None = None, lease_recorder: LeaseRecorder | None = None) -> None:
        self.core = core
        if lease_recorder is not None:
            if (store is not None and store is not lease_recorder.store) or lease_sink is not None:
                raise ConfigError([("lease_recorder", "records to the engine's store and takes the lease_sink "
                                                      "itself: give the store and the sink to it, not to the engine")])
            store = lease_recorder.store
        # leases and the visits that started them go to the store (in memory unless given)
        self.store = open_store(store if store is not None else ":memory:")
        self._owns_store = not isinstance(store, Store)  # close() leaves a caller's Store open
        if state_url is not None and state_path is not None:
            raise ConfigError([("state_url", "pools live either in Redis (state_url) or in a segment (state_path), "
                                             "not both")])
        if state_url is None and state_path is None and getattr(self.store, "persistent", False) \
                and self.store.backend == "sqlite":
            state_path = self.store.path + ".pools"  # pools persist beside their leases: a restart continues them
        # the lease starts and the lease log on their way to the store (journal, queue, writes: see
        # k50core.leases); opened last, once nothing else can fail
        self.lease_recorder = leases = lease_recorder or LeaseRecorder(self.store, lease_sink=lease_sink)
        self.attributor = Attributor(self.store)
        # visit sessions (counted by the core's visit_combo), pool samples
        self.recorder = Recorder(int(config.checkpoint_seconds * 1000), combo=core.visit_combo)
        self.implementation = "compiled" if core is not _impl.available()["reference"] else "reference"
        self._compile(config, geoip)
        self._late_return: Callable[[str | None, int], Assignment | None] | None = None
        self._redis: Any = None  # RedisPools when the pools live in Redis (typed loosely: an optional extra)
        if state_url is not None:  # pools shared by many hosts through Redis (see k50core.pool_redis)
            from .pool_redis import RedisPools
            from .pool_redis.fast import redis_assigner

            redis = self._redis = RedisPools(state_url, config.pools, [r.name for r in self.rules],
                                             lease_sink=leases.sink,
                                             checkpoint_ms=int(config.checkpoint_seconds * 1000),
                                             now_ms=milliseconds(now), core=core)
            self.pools = cast(Pools, redis)  # the interface the engine uses of Pools, over Redis
            self._late_return = redis.after_rules
            self.assign, self.assign_many = redis_assigner(redis, self._assign_new)
            self.heartbeat, self.heartbeat_many = redis.heartbeat, redis.heartbeat_many
        else:
            self.pools = Pools(core, config.pools, [r.name for r in self.rules], state_path=state_path,
                               lease_sink=leases.sink, checkpoint_ms=int(config.checkpoint_seconds * 1000),
                               now_ms=milliseconds(now))
            # returning visitors answered in the core, the rest by _assign_new
            assigner = core.Assigner(self.pools.returns, self._assign_new)
            self.assign, self.assign_many = assigner.assign, assigner.assign_many
            self.heartbeat, self.heartbeat_many = self.pools.table.heartbeat, self.pools.table.heartbeat_many
        self.attributor.configure(self.config)
        self.recorder.pools = self.pools
        self._counts = {"excluded": 0, "unmatched": 0, "static": 0}
        leases.attach(self.pools.drain, self._write_reports_due)
        leases.open()
        if warm:  # the first engine of a process pays it, not its first visitor
            self.warm_up()

    def _compile(self, config: Config, geoip: Any = None) -> None:
        # one load, millions of objects that all live on: no cyclic-GC scans meanwhile (rules.bulk)
        with gc_paused():
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
    def from_config(cls, source: Source, *, implementation: str | None = None, geoip: Any = None,
                    state_path: str | None = None,
                    lease_sink: Callable[[list[LeaseEvent]], None] | None = None,
                    now: float | None = None, store: Store | str | None = None,
                    warm: bool = True, state_url: str | None = None,
                    lease_recorder: LeaseRecorder | None = None) -> Engine:
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
        ``lease_recorder`` (default: one over ``store``) takes the lease starts and the lease log to
        the store (see ``k50core.leases``).
        Raises ConfigError listing every problem with its place.
        """
        config = _load(source)
        core = _impl.by_name(implementation) if implementation else _impl.core
        return cls(config, core=core, geoip=geoip, state_path=state_path, lease_sink=lease_sink, now=now,
                   store=store, warm=warm, state_url=state_url, lease_recorder=lease_recorder)

    # -- number assignment ---------------------------------------------------------------
    # Every page view calls one of these four: each is the core's own method, bound once per engine
    # in __init__ (the instance attribute *is* the fast path). A Python method delegating to it
    # added about 25 ns to a returning assign of 50-80 ns at 1,000 live leases, a property 14 ns.
    assign: AssignCall
    """``assign(visit, now=None, token=None)``: the number this visit's page shows (see
    ``Assignment``); never raises for a bad visit. A returning visitor whose lease is alive (by
    ``token`` or visitor id) gets the same number, and the lease is renewed: answered in the core
    (``Assigner.assign``; with pools in Redis, ``pool_redis.fast``), which calls ``_assign_new``
    for everyone else."""
    assign_many: AssignManyCall
    """``assign_many(visits, now=None)``: assign() for a batch at one instant, in one pass of the core."""
    heartbeat: HeartbeatCall
    """``heartbeat(token, now=None)``: extend a live lease (activity on the page); False when it has
    ended. The pools' ``SlotTable.heartbeat`` (with Redis, ``RedisPools.heartbeat``)."""
    heartbeat_many: HeartbeatManyCall
    """``heartbeat_many(tokens, now=None)``: heartbeat() for many tokens; how many leases were alive."""

    def _assign_new(self, visit: Any, now: float | None = None, token: str | None = None) -> Assignment:
        """assign() for what the core sent back: a visit by token, a clock it does not judge, a new
        visitor (enrichment, rules, pools)."""
        steps = self.new_visit(visit, now, token)
        try:
            claim = next(steps)
            while True:
                claim = steps.send(self.pools.lease(*claim))
        except StopIteration as done:
            return cast(Assignment, done.value)

    def new_visit(self, visit: Any, now: float | None = None,
                  token: str | None = None) -> NewVisit:
        """``_assign_new`` in steps: yields a claim's arguments for ``pools.lease`` and takes its
        (assignment, lease event) back, so a caller may make the claim elsewhere (pools in Redis:
        ``k50core.pool_redis.visits``); returns the assignment."""
        now_s = seconds(now)
        now_ms = int(now_s * 1000)
        fields = visit if isinstance(visit, dict) else {}
        visitor = clean_text(fields.get("visitor_id"), 256) or None
        back = self.pools.returning(visitor, token or fields.get("token"), now_ms)
        if back is not None:
            return back
        attrs = self.enrich(visit, now_s)
        got = yield from self._answer(fields, visitor, attrs, now_ms)
        # only here, where the core sent the visit back to Python: a live lease is inside a session
        self.recorder.page_view(visitor or clean_text(fields.get("session_id"), 64), now_ms, attrs, got.rule,
                                got.pool, got.number)
        return got

    def _answer(self, fields: dict[str, Any], visitor: str | None, attrs: dict[str, Any],
                now_ms: int) -> NewVisit:
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
        got, started = yield (pool.name, rule, visitor, session, now_ms)  # pools.lease(...)
        if got is None and pool.on_exhausted == "share":
            self.recorder.exhausted(pool.name, True, now_ms)
            got, started = self.pools.share(pool.name, rule, visitor, session, now_ms)
        if started is not None:
            self.lease_recorder.record_start(started, *self._start_record(started, attrs))
            self.recorder.started = started.lease
        if got is not None:
            return got
        if pool.on_exhausted != "share":
            self.pools.count_default(pool.name)
            self.recorder.exhausted(pool.name, False, now_ms)
        return self._fixed(pool.default_number or self.config.default_number, pool, decision.rule)

    def _start_record(self, e: LeaseEvent, attrs: dict[str, Any]) -> tuple[dict[str, Any], LeaseRow]:
        """A new lease (or a join of a shared one) as the store keeps it: (its visit, its row)."""
        joined = False
        if e.event == "share":  # a join, unless the share started a new lease held by this visitor
            now_held = self.pools.holder_of(e.number)
            joined = now_held is None or now_held.lease != e.lease or now_held.visitor_id != e.visitor_id
        row = row_of(e, not joined, self.store.time_first_keys)
        visit: dict[str, Any] = {"visitor_id": e.visitor_id, "session_id": e.session_id, "at": e.last, "joined": joined,
                                 "attributes": self.core.visit_summary(attrs)}
        replaced = self.pools.replaced_by_last_claim()
        if replaced is not None:
            # the number's previous lease, as it ended: once the slot holds this one, only this
            # process's memory has its last activity (until the next drain); stored with the start
            # (and in its journal line), a kill before that drain loses none of it
            visit["superseded"] = [list(row_of(replaced, True, self.store.time_first_keys))]
        return visit, row

    # -- calls --------------------------------------------------------------------------
    def attribute(self, call: Any, now: float | None = None) -> Attribution:
        """Which visit made this call (see ``Attribution``); recorded once per ``call_id``.

        Raises CallError naming each bad field. The call and its attribution
        are on disk (for a file or PostgreSQL store) before this returns.
        """
        prepared = self.prepare_call(call, now)
        self.flush()
        return self.attribute_prepared(*prepared)

    def prepare_call(self, call: Any, now: float | None = None) -> tuple[dict[str, Any], list[LeaseRow]]:
        """attribute()'s first half, which reads no store: the call checked (CallError names each
        bad field) and the called number's lease as the pool state has it now."""
        parsed = parse_call(call, self.config.region, seconds(now))
        e = self.pools.holder_of(parsed["number"])  # renewals other workers have not drained yet
        return parsed, [] if e is None else [row_of(e, True, self.store.time_first_keys)]

    def attribute_prepared(self, parsed: dict[str, Any], live: list[LeaseRow]) -> Attribution:
        """attribute()'s second half, in the store: run it after the writes taken before it.
        Other processes' lease starts of the last second, still in their journals, go in first."""
        self.lease_recorder.catch_up()
        return self.attributor.attribute(parsed, live)

    def flush(self, checkpoint: bool = False) -> None:
        """Write the buffered lease starts and lease log to the store (on failure they stay queued);
        with ``checkpoint`` also every lease's activity since the last checkpoint, which otherwise
        goes every ``store.checkpoint_seconds``. (A host that writes them itself: ``lease_recorder``.)"""
        self.lease_recorder.flush(checkpoint)

    def checkpoint(self) -> None:
        """Write everything now, the live leases' latest activity included (see ``flush``)."""
        self.lease_recorder.flush(checkpoint=True)

    def _write_reports_due(self, checkpoint: bool) -> None:
        """After each store write of the lease log: the visit counts and pool samples, when due."""
        if checkpoint or self.recorder.due():
            try:
                self.recorder.write(self.store, self.pools)
            except Exception as exc:  # the counts stay for the next write; the lease writes went through
                log.error("writing visit counts and pool samples failed; kept for the next write", exc_info=exc)

    def close(self) -> None:
        """A clean shutdown: flush the lease log with a last checkpoint, close the store (if the
        engine opened it)."""
        self.flush(checkpoint=True)
        self.lease_recorder.close()
        if self._owns_store:
            self.store.close()
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _fixed(self, number: str | None, pool: Pool, rule: str | None) -> Assignment:
        shown = format_number(number, pool.display) if number else None
        return Assignment(number, shown, pool.name, rule, None, None, False)

    def intent(self, token: str, kind: str, now: float | None = None, visitor: str | None = None) -> bool:
        """A call intent: the page's visitor tapped (``kind`` "click") or copied ("copy") the number its
        lease ``token`` shows. Renews the lease like a heartbeat and keeps the intent with it in the
        store (``visitor``: who, on a shared number; by default its holder), where attribution weighs it
        (see ``k50core.intent``). False for a token that is not alive or a kind that is not known."""
        from .intent import record
        return record(self, token, kind, seconds(now), visitor)

    def stats(self, now: float | None = None) -> dict[str, Any]:
        """Per pool: numbers, leased / cooling / free now, claims, exhaustion events, renewals."""
        out: dict[str, Any] = {"pools": self.pools.stats(milliseconds(now))}
        out.update(self._counts)
        out["renewals"] = self.pools.table.renewed  # by this process
        # True once a crowd of equal hashes filled a place's window: a look for a holder then scans
        # every number (correct, slower); a segment made afresh starts without it
        out["holder_index_overflowed"] = self.pools.table.index_overflowed()
        if self._late_return is not None:  # pools in Redis: whether it answers, and its failures seen here
            p: Any = self.pools
            out["redis"] = {"healthy": p.healthy, "unreachable": p.unreachable, "epoch_changes": p.epoch_changes}
        return out

    def drain_leases(self) -> list[LeaseEvent]:
        """Lease starts, renewals and shared joins recorded since the last drain."""
        return self.lease_recorder.drain()

    def lease_holders(self) -> list[LeaseEvent]:
        """The last lease of every number, read from the pool state itself."""
        return self.pools.holders()

    # -- reports and deals (k50core.report, k50core.crm) -------------------------------------------
    def write_reports(self) -> None:
        """Add the visit sessions counted so far, and a sample of the pools, to the store now."""
        self.recorder.write(self.store, self.pools, full=True)

    def report(self, by: str | Sequence[str], since: float | None = None, until: float | None = None,
               plans: Any = None) -> list[dict[str, Any]]:
        """One dict per group of ``by`` (dimensions, e.g. "source,query.utm_campaign"): its keys and
        visits, calls, answered, first_time_callers, minutes, deals, won, revenue and cost, for the
        calls and visits of [since, until). See ``k50core.report.query``. ``plans``: a
        PricingConfig (default: ``reports.plans_file`` or the bundled plans)."""
        from .report import query
        self.write_reports()
        return query.report(self.store, self.config, by, since, until, plans, self.config.reports)

    def pool_usage(self, pool: str, since: float, until: float, step: float = 3600.0) -> dict[str, Any]:
        """Per ``step`` seconds: the peak of leased numbers, the pool's size and its exhaustion
        events (shared / default), as the engine sampled them; with the size sizing recommends."""
        from .report import query
        self.write_reports()
        return query.pool_usage(self.store, self.config, pool, since, until, step)

    def import_deals(self, rows: Sequence[Any], now: float | None = None, origin: str = "api") -> Any:
        """Store CRM deals (see ``k50core.crm``), each matched to the caller's latest call before it
        within ``crm.match_days``; returns an ImportResult (imported, updated, unattributed, and
        each refused row with its index and reason). Importing a deal again updates it."""
        from .crm import import_deals
        return import_deals(self.store, rows, region=self.config.region,
                            match_days=self.config.crm.get("match_days", 30.0), now=seconds(now), origin=origin)

    # -- changes at run time ---------------------------------------------------------------
    def reload(self, source: Source, now: float | None = None) -> None:
        """Load a new config; live leases of numbers that remain are kept, those of dropped ones end."""
        config = _load(source)
        self._compile(config, self.geoip if config.geoip_path == self.config.geoip_path else None)
        self.pools.rule_names = [r.name for r in self.rules]
        self.pools.configure(config.pools, milliseconds(now))
        self.pools.set_checkpoint(int(config.checkpoint_seconds * 1000))
        self.attributor.configure(self.config)

    def add_numbers(self, pool: str, numbers: Sequence[str], now: float | None = None) -> None:
        self._resize(pool, lambda current: current + tuple(n for n in numbers if n not in current), now)

    def retire_numbers(self, pool: str, numbers: Sequence[str], now: float | None = None) -> None:
        """Take numbers out of a pool; their live leases end now (an "end" in the lease log)."""
        self._resize(pool, lambda current: tuple(n for n in current if n not in set(numbers)), now)

    def _resize(self, name: str, change: Callable[[tuple[str, ...]], tuple[str, ...]],
                now: float | None) -> None:
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
    def attributes(self, visit: Any, now: float | None = None) -> dict[str, Any]:
        """The attribute dict rules look at (see ``k50core.enrich``)."""
        return self.enrich(visit, None if now is None else seconds(now))

    def match(self, attributes: Any) -> Decision:
        r = self.matcher.first_match(attributes)
        return NO_MATCH if r < 0 else self._outcomes[r]

    def match_many(self, batch: Iterable[Any]) -> list[Decision]:
        decisions: list[Decision] = self.matcher.pick_many(batch, self._outcomes, NO_MATCH)
        return decisions

    def decide(self, visit: Any, now: float | None = None) -> Decision:
        return self.match(self.enrich(visit, None if now is None else seconds(now)))

    def decide_many(self, visits: Iterable[Any], now: float | None = None) -> list[Decision]:
        enrich, at = self.enrich, None if now is None else seconds(now)
        decisions: list[Decision] = self.matcher.pick_many([enrich(v, at) for v in visits], self._outcomes, NO_MATCH)
        return decisions
