"""call → lease → visit: which visit made a call, and how sure we are.

A call to a dynamic number at time t belongs to the lease of that number that
covered t (``matched``; or, when none did, to one that began at most
``attribution.clock_skew_seconds`` after t: telephony and web clocks differ); to
the lease that ended shortly before t (``late``, within the pool's
``late_seconds``); to everyone shown the number while it was shared
(``ambiguous``, the likeliest ``attribution.max_candidates`` ranked, the rest
counted). Static numbers attribute to their
rule, offline numbers to their campaign; anything else is ``unmatched``.
"""
from __future__ import annotations

import heapq
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._engine_py.summary import visit_summary  # noqa: F401 (the reference; an engine uses its core's)
from .config.model import Config, Pool
from .config.phones import normalise
from .config.schema import CALL_STATUSES
from .errors import Error
from .intent.recency import PRIOR_MATCHED, RecencyModel
from .store.base import LeaseRow, Store

STATUSES = CALL_STATUSES  # what a call can be: one list, which the config checks against too
_CALL_ID = re.compile(r"^[\x21-\x7e]{1,128}$")

# A covered unshared lease is right unless an earlier holder of the number called late: how often, is
# learnt from the deployment's own leases and calls (k50core.intent.recency.LeaseRight; a prior of
# P_MATCHED until it has some). A late call is right a little less often, the less so the later it comes
# (late calls are right 91-100% of the time in simulation, more in a roomy pool).
P_MATCHED = PRIOR_MATCHED
P_LATE_AT_END = 0.95
LATE_DECAY = 0.02       # a late call at the very end of the late window: P_LATE_AT_END x (1 - LATE_DECAY)
# A shared number's candidates are ranked, and their likelihoods shared out, by a posterior: each
# candidate's recency (how long before the call its visit began, as a likelihood ratio learnt from this
# deployment's own calls: k50core.intent.recency) times the other signals' ratios (k50core.intent.signals).

# What a call may claim (a 422 beyond): it started at most MAX_CALL_AGE before it is reported (a CDR
# import of the last year, with room) and at most MAX_CALL_AHEAD after (a telephony clock or zone
# set wrong by hours, not days), and lasted at most MAX_CALL_SECONDS.
MAX_CALL_AGE = 400 * 86400
MAX_CALL_AHEAD = 86400
MAX_CALL_SECONDS = 86400


class CallError(Error, ValueError):
    """A call payload that cannot be attributed; ``problems`` lists (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


@dataclass(frozen=True)
class Candidate:
    visitor_id: str | None
    session_id: str | None
    lease: str
    seen_at: float
    likelihood: float


@dataclass(frozen=True)
class Attribution:
    """What a call is attributed to. ``attributes`` are the visit's (source, utm, landing, region, device)."""
    call_id: str
    status: str
    visitor_id: str | None = None
    session_id: str | None = None
    rule: str | None = None
    pool: str | None = None
    lease: str | None = None
    likelihood: float = 0.0
    attributes: Mapping[str, Any] = field(default_factory=dict)
    candidates: tuple[Candidate, ...] = ()
    repeat: bool = False
    first_call_id: str | None = None
    more_candidates: int = 0   # ambiguous: candidates beyond those kept (config attribution.max_candidates)


def parse_call(call: Any, region: str, now: float) -> dict[str, Any]:
    """A validated, normalised call dict; CallError names every bad field."""
    if not isinstance(call, Mapping):
        raise CallError([("call", f"expected an object, got {type(call).__name__}")])
    problems: list[tuple[str, str]] = []
    call_id = call.get("call_id")
    if not isinstance(call_id, str) or not _CALL_ID.match(call_id):
        problems.append(("call_id", "expected 1-128 printable ASCII characters"))
    number = normalise(call.get("number"), region)
    if number is None:
        problems.append(("number", f"not a valid phone number: {str(call.get('number'))[:40]!r}"))
    caller_raw = call.get("caller")
    caller = normalise(caller_raw, region) if caller_raw not in (None, "") else None
    if caller_raw not in (None, "") and caller is None:
        # "anonymous", a SIP URI: kept as given, never a repeat key for others. Printable only: a lone
        # surrogate cannot be stored as UTF-8, a NUL not in PostgreSQL, a control character not shown
        if isinstance(caller_raw, str) and 0 < len(caller_raw) <= 64 and caller_raw.strip().isprintable():
            caller = caller_raw.strip()
        else:
            problems.append(("caller", "expected a phone number or a short string of printable characters"))
    started = _seconds(call.get("started_at"), "started_at", problems, required=True)
    if not any(f == "started_at" for f, _ in problems) and not now - MAX_CALL_AGE <= started <= now + MAX_CALL_AHEAD:
        problems.append(("started_at", f"expected a time from {MAX_CALL_AGE // 86400} days before now to "
                                       f"{MAX_CALL_AHEAD // 3600} hours after it (unix seconds; now is {now:.0f})"))
    duration = _seconds(call.get("duration_seconds", 0), "duration_seconds", problems, required=False)
    if duration > MAX_CALL_SECONDS:
        problems.append(("duration_seconds", f"longer than a day ({MAX_CALL_SECONDS} s)"))
    answered = call.get("answered", bool(duration))
    if not isinstance(answered, bool):
        problems.append(("answered", "expected true or false"))
    if problems:
        raise CallError(problems)
    return {"call_id": call_id, "number": number, "caller": caller, "started_at": started,
            "duration_seconds": duration, "answered": answered, "received_at": now}


def _seconds(value: Any, name: str, problems: list[tuple[str, str]], required: bool) -> float:
    if value is None and not required:
        return 0.0
    number = finite(value)
    if number is None or number < 0:
        problems.append((name, "expected a non-negative number of seconds" + (" (unix time)" if required else "")))
        return 0.0
    return number


def finite(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (a boolean, text, NaN, an integer too
    large for a float: JSON has no bound on its digits, and math.isfinite raises on such an int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class Attributor:
    """Attribution over a store and the live pool state (see ``Engine.attribute``)."""

    def __init__(self, store: Store) -> None:
        from .intent.signals import Signals
        self.store = store
        self.signals = Signals(store)  # intents, caller history, landline region (k50core.intent)
        self.configure(Config())

    def configure(self, config: Config) -> None:
        self.config = config
        self.pool_of: dict[str, Pool] = {n: p for p in config.pools.values() for n in p.numbers}
        self.rule_of: dict[str, str] = {}
        for r in config.rules:
            if r.pool is not None:
                self.rule_of.setdefault(r.pool, r.name)
        self.max_window = max([p.hold_seconds + p.late_seconds for p in config.pools.values()] + [3600])
        self.max_candidates = config.attribution.max_candidates
        self.signals.late_seconds = max([float(p.late_seconds) for p in config.pools.values()] + [0.0]) or 1800.0
        self.signals.numbers = [n for p in config.pools.values() if p.type == "dynamic" for n in p.numbers]
        self.skew = config.attribution.clock_skew_seconds

    def attribute(self, call: dict[str, Any], live: Sequence[LeaseRow]) -> Attribution:
        """``call`` from parse_call(); ``live`` are the number's leases as the pool state has them now."""
        stored = self.store.saved_attribution(call["call_id"])
        if stored is not None:
            return _from_stored(call["call_id"], stored)
        made = self._decide(call, live)
        if call["caller"]:
            first = self.store.first_call_of(call["caller"], call["started_at"], call["call_id"])
            if first is not None:
                made = _replace(made, repeat=True, first_call_id=first)
        if not self.store.save_call(call, _to_stored(made)):  # another worker recorded it meanwhile
            return _from_stored(call["call_id"], self.store.saved_attribution(call["call_id"]) or {})
        return made

    def _decide(self, call: dict[str, Any], live: Sequence[LeaseRow]) -> Attribution:
        cid, number, t = call["call_id"], call["number"], call["started_at"]
        pool = self.pool_of.get(number)
        if pool is not None and pool.type == "static":
            return Attribution(cid, "static", rule=self.rule_of.get(pool.name), pool=pool.name, likelihood=1.0)
        if pool is not None and pool.type == "offline":
            return Attribution(cid, "offline", rule=pool.campaign or self.rule_of.get(pool.name) or pool.name,
                               pool=pool.name, likelihood=1.0)
        late_for = pool.late_seconds if pool is not None else 1800
        leases = _merge(self.store.leases_of(number, t - self.max_window, t + self.skew), live)
        covering = [r for r in leases if r.start <= t < r.ends]
        if not covering and self.skew > 0:
            # stamped a little before its lease began: the telephony's clock is behind the web's, or it
            # dropped the fraction of a second (`date +%s`); within the tolerance the call is that lease's
            covering = [r for r in leases if t < r.start <= t + self.skew and t < r.ends]
        if covering or any(r.ends <= t < r.ends + late_for for r in leases):
            self.signals.refresh()  # a call a lease may explain: the learnt models, refitted now and then
        if covering:
            if len(covering) == 1 and not covering[0].shared:
                return self._one(cid, "matched", covering[0], self.signals.p_matched())
            return self._ambiguous(cid, covering, t, call)
        ended = [r for r in leases if r.ends <= t < r.ends + late_for]
        if ended:
            last = max(ended, key=lambda r: r.ends)
            p = P_LATE_AT_END * (1 - LATE_DECAY * (t - last.ends) / max(late_for, 1))
            made = self._one(cid, "late", last, p)
            if last.shared:
                others = self._ambiguous(cid, [last], t, call)
                return _replace(made, candidates=others.candidates, more_candidates=others.more_candidates,
                                likelihood=p * others.candidates[0].likelihood)
            return made
        return Attribution(cid, "unmatched", pool=pool.name if pool else None)

    def _one(self, cid: str, status: str, r: LeaseRow, p: float) -> Attribution:
        return Attribution(cid, status, r.visitor_id, r.session_id, r.rule, r.pool, r.lease, round(p, 4),
                           self.store.visit_of(r.lease) or {})

    def _ambiguous(self, cid: str, leases: Sequence[LeaseRow], t: float,
                   call: dict[str, Any] | None = None) -> Attribution:
        """Everyone shown the number then, ranked by their posterior: recency (how long before the call
        their visit began, k50core.intent.recency) times the other signals' ratios (an intent just
        before the call, the caller's history, a landline's region: see k50core.intent.signals): the
        first ``max_candidates`` of them kept, the rest counted. Likelihoods are each one's share of
        everyone's weight times the chance that the caller is among them (as for a matched call:
        ``Signals.p_matched``), so the kept ones sum to less than that when some were left out."""
        seen: list[tuple[str | None, str | None, str, float]] = []
        began: list[float] = []   # when each candidate's visit began: the holder's lease, a joiner's (re)join
        for r in leases:
            joins = self.store.joins_of(r.lease)
            seen.append((r.visitor_id, r.session_id, r.lease, min(r.last, t)))
            began.append(r.start)
            seen.extend((v, s, r.lease, min(at, t)) for v, s, at in joins)
            began.extend(at for _, _, at in joins)
        recency = self.signals.recency or RecencyModel()
        ratios: Sequence[float] = [1.0] * len(seen)
        if call is not None:  # an intent is shown as its maker's last activity (seen_at)
            ratios, intents = self.signals.ratios(call, seen, leases[0].number)
            for i, at in enumerate(intents):
                if at is not None:
                    v, s, lease, was = seen[i]
                    seen[i] = (v, s, lease, max(was, min(at, t)))
        weights = [x * recency.ratio(t - b) for x, b in zip(ratios, began)]
        total = sum(weights) or 1.0
        # equal weights: the later visit first, then by visitor id (the same order on every worker)
        ranked = heapq.nsmallest(self.max_candidates, zip(seen, weights, began),
                                 key=lambda swb: (-swb[1], -swb[2], swb[0][0] or ""))
        inside = self.signals.p_matched()  # the caller is among them unless an earlier holder called late
        candidates = tuple(Candidate(v, s, lease, at, round(inside * w / total, 4))
                           for (v, s, lease, at), w, _ in ranked)
        more = len(seen) - len(candidates)
        best = candidates[0]
        r = next(r for r in leases if r.lease == best.lease)
        attrs = self.store.visit_of(r.lease) if best.visitor_id == r.visitor_id else \
            self.store.visit_of(r.lease, best.visitor_id)
        return Attribution(cid, "ambiguous", best.visitor_id, best.session_id, r.rule, r.pool, r.lease,
                           best.likelihood, attrs or {}, candidates, more_candidates=more)


def _merge(stored: Sequence[LeaseRow], live: Sequence[LeaseRow]) -> list[LeaseRow]:
    """Stored leases, with the live pool state's newer ends (renewals not yet drained) applied;
    the stored last activity stays: the slot's own counts shared joins too."""
    by_key = {r.lease: r for r in stored}
    for r in live:
        old = by_key.get(r.lease)
        if old is None or r.ends > old.ends or r.shared != old.shared:
            by_key[r.lease] = r if old is None else _replace_row(old, r)
    return sorted(by_key.values(), key=lambda r: r.start)


def _replace_row(old: LeaseRow, new: LeaseRow) -> LeaseRow:
    return LeaseRow(old.lease, old.pool, old.number, old.visitor_id or new.visitor_id,
                    old.session_id or new.session_id, old.rule or new.rule, old.start,
                    old.last, new.ends, old.shared or new.shared)


def _replace(a: Attribution, **changes: Any) -> Attribution:
    values = {f: getattr(a, f) for f in a.__dataclass_fields__}
    values.update(changes)
    return Attribution(**values)


def _to_stored(a: Attribution) -> dict[str, Any]:
    return {"status": a.status, "lease": a.lease, "visitor_id": a.visitor_id, "session_id": a.session_id,
            "pool": a.pool, "rule": a.rule, "likelihood": a.likelihood, "repeat_of": a.first_call_id,
            "candidates": [[c.visitor_id, c.session_id, c.lease, c.seen_at, c.likelihood] for c in a.candidates],
            "more_candidates": a.more_candidates, "attributes": dict(a.attributes)}


def _from_stored(call_id: str, s: dict[str, Any]) -> Attribution:
    return Attribution(call_id, s.get("status", "unmatched"), s.get("visitor_id"), s.get("session_id"),
                       s.get("rule"), s.get("pool"), s.get("lease"), float(s.get("likelihood") or 0.0),
                       s.get("attributes") or {}, tuple(Candidate(*c) for c in s.get("candidates") or ()),
                       s.get("repeat_of") is not None, s.get("repeat_of"), int(s.get("more_candidates") or 0))


