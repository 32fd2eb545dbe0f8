"""Recency as a likelihood ratio, learnt from the deployment: whose visit began when, against the call.

Of a shared number's candidates, exactly one made the call (or, rarely, none). Each candidate's
evidence is how long before the call its visit began: ``tau = call - start`` (a holder: its lease's
start; a joiner: when it joined or last came back to the page; a page's heartbeats renew the shared
lease, not one visitor, so they tell nobody apart). Then

    P(candidate i called | every candidate's tau) = c(tau_i) / n(tau_i) / sum_j c(tau_j) / n(tau_j)

where ``c`` is the distribution of tau for the visitor who calls and ``n`` that of a candidate who
does not (Bayes' rule with the others' evidence independent of who called). Both are learnt per
bin of tau, over a prior:

* ``c`` from answered calls attributed ``matched`` (one unshared lease covered them: its visitor
  called, so tau is a caller's);
* ``n`` from the candidates of calls attributed ``ambiguous``: every candidate's tau counted, less
  the one caller per call (its expected share, ``c``, taken off per bin). Who is shown a shared number
  and stays a candidate depends on the pool and its traffic (how long a busy number stays shared,
  how many join it), which is why ``n`` is measured rather than assumed.

Nothing is fitted to a simulator: the prior only stands in until a deployment has calls.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..store.base import Store

# bins of tau (seconds from the visit's start to the call): finer where callers are
EDGES = (0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 5120.0, math.inf)
PRIOR_VISIT_SECONDS = 240.0   # the prior's caller: a visit of this mean length (exponential) ...
PRIOR_DURING_SHARE = 0.9      # ... calling during it at a uniform moment, or after it (as sizing.CallDelay)
PRIOR_TAIL_SECONDS = 600.0    # ... by an exponential delay of this mean
PRIOR_SPAN_SECONDS = 7200.0   # the prior's other candidates: their visits began uniformly over the last 2 hours
PRIOR_CALLS = 30.0            # the caller prior weighs as much as this many learnt calls
PRIOR_CANDIDATES = 100.0      # the other candidates' prior, as much as this many learnt candidates
FIT_CALLS = 5000              # c: from this many of the latest matched calls
FIT_SETS = 1000               # n: from the candidates of this many of the latest ambiguous calls


def bin_of(tau: float) -> int:
    return min(bisect.bisect_right(EDGES, max(tau, 0.0)) - 1, len(EDGES) - 2)


def _caller_cdf(x: float) -> float:
    """P(tau <= x) for the prior's caller (closed forms for the exponential visit V of mean m: during
    it, tau = U x V with U uniform; after it, tau = V + D, D exponential of mean d)."""
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    m, d = PRIOR_VISIT_SECONDS, PRIOR_TAIL_SECONDS
    z = x / m
    during = 1.0 - (math.exp(-z) - z * _e1(z))         # P(U V > x) = e^-z - z E1(z)
    after = 1.0 - (m * math.exp(-x / m) - d * math.exp(-x / d)) / (m - d)
    return PRIOR_DURING_SHARE * during + (1.0 - PRIOR_DURING_SHARE) * after


def _e1(z: float) -> float:
    """The exponential integral E1(z), z > 0 (series below 1, continued fraction above)."""
    if z < 1.0:
        total, term, k = -0.5772156649015329 - math.log(z), 1.0, 1
        while True:
            term *= -z / k
            add = -term / k
            total += add
            if abs(add) < 1e-12:
                return total
            k += 1
    b, c, d = z + 1.0, 1e300, 1.0 / (z + 1.0)
    h = d
    for i in range(1, 200):
        a = -i * i
        b += 2.0
        d = 1.0 / (a * d + b)
        c = b + a / c
        delta = c * d
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h * math.exp(-z)


def _prior_shares() -> tuple[tuple[float, ...], tuple[float, ...]]:
    caller = tuple(_caller_cdf(hi) - _caller_cdf(lo) for lo, hi in zip(EDGES, EDGES[1:]))
    span = PRIOR_SPAN_SECONDS
    other = tuple((min(hi, span) - min(lo, span)) / span for lo, hi in zip(EDGES, EDGES[1:]))
    return caller, other


PRIOR_CALLER, PRIOR_OTHER = _prior_shares()
_FLOOR = 0.5  # pseudo-candidates per bin: no ratio is infinite


@dataclass
class RecencyModel:
    """Learnt counts per bin of tau: callers' (matched calls) and every candidate's (ambiguous calls)."""
    callers: list[float] = field(default_factory=lambda: [0.0] * len(PRIOR_CALLER))
    candidates: list[float] = field(default_factory=lambda: [0.0] * len(PRIOR_CALLER))
    sets: int = 0                   # ambiguous calls whose candidates were counted
    _ratios: list[float] | None = field(default=None, repr=False, compare=False)

    def caller_shares(self) -> list[float]:
        total = sum(self.callers) + PRIOR_CALLS
        return [(k + PRIOR_CALLS * p) / total for k, p in zip(self.callers, PRIOR_CALLER)]

    def other_shares(self) -> list[float]:
        """n: every candidate counted, less the expected one caller per call (never below nothing)."""
        c = self.caller_shares()
        learnt = [max(0.0, k - self.sets * q) for k, q in zip(self.candidates, c)]
        counts = [k + PRIOR_CANDIDATES * p + _FLOOR for k, p in zip(learnt, PRIOR_OTHER)]
        total = sum(counts)
        return [k / total for k in counts]

    def ratio(self, tau: float) -> float:
        """c(tau) / n(tau): how much likelier a candidate whose visit began tau seconds before the call
        made it than one who did not. Per bin, made non-increasing in tau (a later start is never less
        likely the caller's: where the counts say otherwise, that is noise, pooled)."""
        if self._ratios is None:
            raw = [math.log(c / n) for c, n in zip(self.caller_shares(), self.other_shares())]
            self._ratios = [math.exp(v) for v in
                            _non_increasing(raw, [c + n for c, n in zip(self.callers, self.candidates)])]
        return self._ratios[bin_of(tau)]


def _non_increasing(values: list[float], weights: list[float]) -> list[float]:
    """The weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []   # [mean, weight, size]
    for v, w in zip(values, weights):
        blocks.append([v, w + 1.0, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    out: list[float] = []
    for v, _, n in blocks:
        out.extend([v] * int(n))
    return out


def fit_recency(store: Store, until: float = math.inf, calls: int = FIT_CALLS, sets: int = FIT_SETS) -> RecencyModel:
    """The recency model learnt from the store's calls before ``until`` (see the module's doc)."""
    bound = until if until != math.inf else 1e18
    model = RecencyModel()
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT c.started_at - l.start FROM calls c JOIN attributions a ON a.call_id = c.call_id "
        "JOIN leases l ON l.lease = a.lease WHERE a.status = 'matched' AND c.answered AND c.started_at < ? "
        "ORDER BY c.started_at DESC LIMIT ?"), (bound, int(calls)))
    for (tau,) in cur.fetchall():
        model.callers[bin_of(float(tau))] += 1
    # the latest ambiguous calls, each with its lease's holder, then everyone who had joined it by then
    latest = ("SELECT c.started_at AS t, a.lease AS lease, l.start AS start FROM calls c "
              "JOIN attributions a ON a.call_id = c.call_id JOIN leases l ON l.lease = a.lease "
              "WHERE a.status = 'ambiguous' AND c.started_at < ? ORDER BY c.started_at DESC LIMIT ?")
    cur.execute(store._sql(f"SELECT x.t - x.start FROM ({latest}) x"), (bound, int(sets)))
    for (tau,) in cur.fetchall():
        model.sets += 1
        model.candidates[bin_of(float(tau))] += 1
    cur.execute(store._sql(f"SELECT x.t - j.at FROM ({latest}) x JOIN lease_joins j ON j.lease = x.lease "
                           "WHERE j.at <= x.t"), (bound, int(sets)))
    for (tau,) in cur.fetchall():
        model.candidates[bin_of(float(tau))] += 1
    return model


PRIOR_MATCHED = 0.97      # P(caller held the lease): a prior of this share, weighing as much as PRIOR_CALLS calls


@dataclass(frozen=True)
class LeaseRight:
    """How often the one lease covering a call is its caller's: it is not when the call comes from an
    earlier holder of the number, late (after their lease ended) but after the number went to someone
    else. Measured from the store: the rate of late calls per second a number stays free after a lease
    ended (per bin of the time since that end), times the seconds the numbers were already held again
    in their previous holder's late window, against the matched calls of the same leases."""
    matched: int = 0
    misattributed: float = 0.0      # expected matched calls that were an earlier holder's

    @property
    def share(self) -> float:
        return 1.0 - (self.misattributed + (1 - PRIOR_MATCHED) * PRIOR_CALLS) / (self.matched + PRIOR_CALLS)


def fit_lease_right(store: Store, late_seconds: float, numbers: Sequence[str], until: float = math.inf,
                    calls: int = FIT_CALLS) -> LeaseRight:
    """LeaseRight from the leases of ``numbers`` (the dynamic pools') and the calls since the latest
    ``calls`` calls began (read through the indexes on calls' start and leases' number and start)."""
    bound = until if until != math.inf else 1e18
    cur = store.conn.cursor()
    cur.execute(store._sql("SELECT min(x.started_at) FROM (SELECT started_at FROM calls WHERE started_at < ? "
                           "ORDER BY started_at DESC LIMIT ?) x"), (bound, int(calls)))
    first = cur.fetchone()
    if not numbers or first is None or first[0] is None:
        return LeaseRight()
    since = float(first[0])
    rows: list[tuple[str, float, float]] = []
    wanted = sorted(set(numbers))
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        cur.execute(store._sql(f"SELECT number, start, ends FROM leases WHERE number IN ({','.join('?' * len(chunk))}) "
                               "AND start >= ? AND start < ?"), (*chunk, since - late_seconds, bound))
        rows.extend((str(n), float(s), float(e)) for n, s, e in cur.fetchall())
    rows.sort()
    free = [0.0] * (len(EDGES) - 1)      # seconds a number stayed free after a lease ended, per bin
    held = [0.0] * (len(EDGES) - 1)      # seconds it was held again within that late window
    for (number, _, ends), (after, start, _) in zip(rows, rows[1:]):
        if after != number:
            continue
        _spread(free, 0.0, min(start, ends + late_seconds) - ends)
        if start < ends + late_seconds:
            _spread(held, max(start - ends, 0.0), late_seconds)
    late = [0.0] * (len(EDGES) - 1)
    cur.execute(store._sql(
        "SELECT c.started_at - l.ends FROM calls c JOIN attributions a ON a.call_id = c.call_id "
        "JOIN leases l ON l.lease = a.lease WHERE a.status = 'late' AND c.started_at >= ? AND c.started_at < ?"),
        (since, bound))
    for (s,) in cur.fetchall():
        late[bin_of(float(s))] += 1
    cur.execute(store._sql(
        "SELECT count(*) FROM calls c JOIN attributions a ON a.call_id = c.call_id "
        "WHERE a.status = 'matched' AND c.started_at >= ? AND c.started_at < ?"), (since, bound))
    matched = int(cur.fetchone()[0])
    wrong = sum(k / f * h for k, f, h in zip(late, free, held) if f > 0)
    return LeaseRight(matched, min(wrong, float(matched)))


def _spread(into: list[float], lo: float, hi: float) -> None:
    """Adds the seconds of [lo, hi) (from a lease's end) to the bins they fall in."""
    for i, (a, b) in enumerate(zip(EDGES, EDGES[1:])):
        if hi <= a:
            break
        into[i] += max(0.0, min(hi, b) - max(lo, a))
