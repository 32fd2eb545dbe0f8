"""What besides recency tells apart the visitors of a shared number when its call comes.

Each signal is a likelihood ratio: how much likelier the evidence is if this candidate made the
call than if someone else did. Attribution multiplies a candidate's recency weight by them and
shares P_MATCHED out in proportion (see ``attribution.Attributor._ambiguous``):

* an **intent** (a tap or copy of the number, see ``capture``) at delay d before the call:
  (q·f(d) + r) / r, where f is the density of the delay from an intent to the call it precedes, q
  the share of calls preceded by one, both learnt from this deployment's own answered calls of
  unshared leases (whose caller is known) with a prior for a deployment without history, and r
  the rate of intents that lead to no call (a slip, a copy for later); without an intent, 1 - q.
  An intent older than ``WINDOW`` seconds says nothing.
* **history**: the caller's earlier call was attributed to this visitor (a repeat caller).
* **region**: a landline caller's area (``region``) is, or is not, the visit's GeoIP region.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store.base import Store
from .recency import LeaseRight, RecencyModel, fit_lease_right, fit_recency
from .region import landline_place, same_place

WINDOW = 600.0          # an intent this long before a call is not its intent
AHEAD = 5.0             # an intent stamped up to this after the call's start (clocks differ) still counts
# delay bins (seconds from the intent to the call) and the prior share of intents in each: a tap
# dials at once, a copied number is pasted or typed within a minute or so
EDGES = (-AHEAD, 0.0, 3.0, 7.0, 15.0, 30.0, 60.0, 120.0, 300.0, WINDOW)
PRIOR_SHARES = (0.03, 0.22, 0.25, 0.18, 0.12, 0.09, 0.06, 0.03, 0.02)
PRIOR_CALLS = 30.0      # the prior weighs as much as this many learnt delays
PRIOR_INTENT_SHARE = 0.3
NOISE_RATE = 5e-5       # intents per second of an open page that lead to no call (r)
HISTORY_RATIO = 500.0   # a repeat caller's earlier visitor: someone else with that history would be a misattribution
REGION_MATCH = 3.0
REGION_MISMATCH = 0.5
REFIT_CALLS = 50        # the delay and recency models are fitted again after this many calls to shared numbers
FIT_CALLS = 5000        # ... from this many of the latest matched calls


@dataclass
class DelayModel:
    """The delay from an intent to its call: learnt counts per bin over the prior's."""
    counts: list[float] = field(default_factory=lambda: [0.0] * len(PRIOR_SHARES))
    with_intent: int = 0            # learnt calls preceded by an intent
    calls: int = 0                  # learnt calls in all

    @property
    def learnt(self) -> int:
        return int(sum(self.counts))

    @property
    def intent_share(self) -> float:
        """q: the share of calls preceded by an intent (prior PRIOR_INTENT_SHARE over PRIOR_CALLS calls)."""
        return (self.with_intent + PRIOR_INTENT_SHARE * PRIOR_CALLS) / (self.calls + PRIOR_CALLS)

    def density(self, delay: float) -> float:
        """f(d), per second; 0 outside [-AHEAD, WINDOW]."""
        if not EDGES[0] <= delay <= EDGES[-1]:
            return 0.0
        i = min(bisect.bisect_right(EDGES, delay) - 1, len(PRIOR_SHARES) - 1)
        total = sum(self.counts) + PRIOR_CALLS
        mass = (self.counts[i] + PRIOR_SHARES[i] * PRIOR_CALLS) / total
        return mass / (EDGES[i + 1] - EDGES[i])

    def ratio(self, delay: float | None) -> float:
        """The intent's likelihood ratio: (q·f(d) + r) / r; (1 - q) without an intent."""
        q = self.intent_share
        if delay is None:
            return 1.0 - q
        f = self.density(delay)
        return (q * f + NOISE_RATE) / NOISE_RATE if f > 0 else 1.0 - q

    def add(self, delay: float | None) -> None:
        self.calls += 1
        if delay is None or not EDGES[0] <= delay <= EDGES[-1]:
            return
        self.with_intent += 1
        self.counts[min(bisect.bisect_right(EDGES, delay) - 1, len(PRIOR_SHARES) - 1)] += 1


def fit(store: Store, until: float = float("inf"), calls: int = FIT_CALLS) -> DelayModel:
    """The delay model learnt from the store: the latest ``calls`` answered calls attributed
    ``matched`` (one unshared lease covered them: its visitor is the caller), each with its lease's
    last intent in the window before it."""
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT c.started_at, (SELECT max(i.at) FROM intents i WHERE i.lease = a.lease AND i.at >= c.started_at - ? "
        "AND i.at <= c.started_at + ?) FROM calls c JOIN attributions a ON a.call_id = c.call_id "
        "WHERE a.status = 'matched' AND c.answered AND c.started_at < ? ORDER BY c.started_at DESC LIMIT ?"),
        (WINDOW, AHEAD, until if until != float("inf") else 1e18, int(calls)))
    model = DelayModel()
    for started, at in cur.fetchall():
        model.add(None if at is None else float(started) - float(at))
    return model


class Signals:
    """The ratios for one call's candidates, read from the store; the delay and recency models refitted
    as calls come."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.model: DelayModel | None = None
        self.recency: RecencyModel | None = None
        self.lease_right: LeaseRight | None = None
        self.late_seconds = 1800.0   # the pools' longest late window, and their dynamic numbers
        self.numbers: Sequence[str] = ()   # (both set by Attributor.configure)
        self._uses = 0
        self.enabled = True

    def refresh(self) -> RecencyModel:
        """Counts a call; every REFIT_CALLS of them the models are fitted again from the store (a fit
        reads the store: not per call). Returns the recency model."""
        self._uses += 1
        if self.recency is None or self.lease_right is None or self._uses >= REFIT_CALLS:
            self.model, self.recency = fit(self.store), fit_recency(self.store)
            self.lease_right, self._uses = fit_lease_right(self.store, self.late_seconds, self.numbers), 0
        return self.recency

    def p_matched(self) -> float:
        """The share of calls covered by a lease that its visitors made (see recency.LeaseRight), as
        last fitted (the prior's before the first ``refresh``)."""
        return (self.lease_right or LeaseRight()).share

    def delay_model(self) -> DelayModel:
        """The intent delay model as last fitted (fitted now when it never was)."""
        if self.model is None:
            self.model = fit(self.store)
        return self.model

    def ratios(self, call: dict[str, Any], seen: Sequence[tuple[str | None, str | None, str, float]],
               number: str) -> tuple[list[float], list[float | None]]:
        """One ratio per candidate (visitor, session, lease, seen_at) of a call to ``number``, and
        when each made its last intent before the call (None: none in the window). An intent is
        activity too: the one who made it was on the page then."""
        out = [1.0] * len(seen)
        last: list[float | None] = [None] * len(seen)
        if not self.enabled or not seen:
            return out, last
        t = call["started_at"]
        from .capture import intents_near
        near = intents_near(self.store, number, t - WINDOW, t + AHEAD)
        model = self.delay_model()
        for i, (visitor, _, lease, _) in enumerate(seen):
            made = [m for m in near.get((lease, visitor), ()) if m[0] <= t + AHEAD]
            if made:
                last[i] = made[-1][0]
            out[i] *= model.ratio(t - made[-1][0] if made else None)
        caller = call.get("caller")
        if caller:
            earlier = self._earlier_visitors(caller, t, call["call_id"])
            for i, (visitor, _, _, _) in enumerate(seen):
                p = earlier.get(visitor) if visitor else None
                if p:
                    out[i] *= 1.0 + HISTORY_RATIO * p
            place = landline_place(caller) if caller.startswith("+") else None
            if place:
                for i, (visitor, _, lease, _) in enumerate(seen):
                    out[i] *= self._region_ratio(place, lease, visitor)
        return out, last

    def _earlier_visitors(self, caller: str, before: float, call_id: str) -> dict[str, float]:
        """The visitors the caller's earlier calls (the last few) were attributed to, with their likelihood."""
        cur = self.store.conn.cursor()
        cur.execute(self.store._sql(
            "SELECT a.visitor_id, a.likelihood FROM calls c JOIN attributions a ON a.call_id = c.call_id "
            "WHERE c.caller = ? AND c.call_id <> ? AND c.started_at <= ? AND a.visitor_id IS NOT NULL "
            "ORDER BY c.started_at DESC LIMIT 5"), (caller, call_id, before))
        out: dict[str, float] = {}
        for visitor, likelihood in cur.fetchall():
            out[visitor] = max(out.get(visitor, 0.0), float(likelihood or 0.0))
        return out

    def _region_ratio(self, place: str, lease: str, visitor: str | None) -> float:
        # a joiner's visit is stored under lease+visitor, the holder's under the lease
        visit = (self.store.visit_of(lease, visitor) if visitor else None) or self.store.visit_of(lease) or {}
        same = same_place(place, visit.get("region"), visit.get("city"))
        return 1.0 if same is None else REGION_MATCH if same else REGION_MISMATCH
