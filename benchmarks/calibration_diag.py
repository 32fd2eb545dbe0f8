"""Where attribution's likelihoods are off: calibration per status, and the shared numbers' recency
ratio the engine learnt against the one the traffic's ground truth shows.

    python benchmarks/calibration_diag.py --model B --sizes 40,50 --share 0

For each run it prints, per status (matched / late / ambiguous) and likelihood bin (width 0.1), the
calls, their mean likelihood and the share right; then, over the calls attributed ``ambiguous``, per
bin of tau (seconds from a candidate's visit start to the call, k50core.intent.recency.EDGES): how
many callers and other candidates fell in it, the ratio c/n those counts give (what recency.py
estimates without knowing the caller) and the engine's learnt ratio at the end of the run; and
then the calibration a posterior with that ground-truth ratio would have had (recency alone), which
is as well as a ratio per candidate (c/n) can do. Last, with ``--intensity``, the same for a call
intensity per candidate and second (a point process: calls over the seconds of exposure, read from the
run's lease log) in two kinds, the newest visitor shown the number (by the age of its visit) and the
earlier ones (by the time since the next one was shown it), counted from the ground truth: how far a
model of that shape gets; and then the same learnt without the truth (the newest's intensity from the
calls whose number had one candidate, over the seconds leases were held alone; the earlier ones' by
EM over the shared numbers' calls), which is where it falls apart today.

Only a diagnostic: it wraps Engine.attribute and Attributor._ambiguous to see each call's candidate
set, and uses the truth the traffic models know (the caller's number ends with the visitor's number).
"""
from __future__ import annotations

import argparse
import bisect
import collections
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from traffic_b import TrafficB  # noqa: E402

from k50core import (
    attribution as attribution_module,  # noqa: E402
    engine as engine_module,  # noqa: E402
)
from k50core.intent.recency import EDGES, RecencyModel, bin_of  # noqa: E402
from k50core.simulate import CallerModel, simulate  # noqa: E402
from k50core.simulate_callers import REGIONS  # noqa: E402

Record = tuple[str, float, bool, list[float], int]  # status, likelihood, right, candidates' tau, caller's index
_ORIGINALS: tuple[Any, Any, Any] | None = None
# finer bins of seconds for the intensity check: 0, 5, 7, 10, 14, ... (a factor of sqrt 2)
FINE = (0.0, *(5 * 2 ** (k / 2) for k in range(26)), math.inf)


class Recorder:
    """Wraps the engine for one run: each call's status, likelihood, whether its best guess is the
    caller and, for a shared number, every candidate's tau and which one called (-1: none)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.sets: dict[str, tuple[float, list[float], list[str | None]]] = {}
        self.learnt: RecencyModel | None = None
        self.lease_log: tuple[list[tuple[float, float]], list[list[float]]] = ([], [])  # (start, ends), joins' at

    def install(self) -> None:
        """Wraps the originals (kept on first use), so a second run's recorder replaces the first's."""
        global _ORIGINALS
        if _ORIGINALS is None:
            _ORIGINALS = (engine_module.Engine.attribute, attribution_module.Attributor._ambiguous,
                          engine_module.Engine.close)
        attribute, ambiguous, close = _ORIGINALS
        recorder = self

        def _ambiguous(self: Any, cid: str, leases: Sequence[Any], t: float, call: Any = None) -> Any:
            made = ambiguous(self, cid, leases, t, call)
            began: list[float] = []
            who: list[str | None] = []
            for r in leases:
                began.append(r.start)
                who.append(r.visitor_id)
                for visitor, _, at in self.store.joins_of(r.lease):
                    began.append(at)
                    who.append(visitor)
            recorder.sets[cid] = (t, began, who)
            recorder.learnt = self.signals.recency
            return made

        def _attribute(self: Any, call: Any, now: float | None = None) -> Any:
            made = attribute(self, call, now=now)
            person = str(int(str(call["caller"])[-7:]))  # both models: the caller's number ends with the visitor's
            best = made.candidates[0].visitor_id if made.candidates else made.visitor_id
            t, began, who = recorder.sets.pop(call["call_id"], (0.0, [], []))
            if made.status == "matched":   # its one candidate, the holder: its visit began with the lease
                cur = self.store.conn.cursor()
                cur.execute(self.store._sql("SELECT start FROM leases WHERE lease = ?"), (made.lease,))
                row = cur.fetchone()
                t, began, who = call["started_at"], [float(row[0])] if row else [], [made.visitor_id]
            caller = max((i for i, v in enumerate(who) if v and v[1:] == person), default=-1)
            recorder.records.append((made.status, made.likelihood, bool(best and best[1:] == person),
                                     [t - b for b in began], caller))
            return made

        def _close(self: Any) -> None:
            if not recorder.lease_log[0]:
                cur = self.store.conn.cursor()
                cur.execute("SELECT lease, start, ends FROM leases")
                rows = {lease: (float(start), float(ends)) for lease, start, ends in cur.fetchall()}
                joins: dict[str, list[float]] = collections.defaultdict(list)
                cur.execute("SELECT lease, at FROM lease_joins")
                for lease, at in cur.fetchall():
                    joins[lease].append(float(at))
                recorder.lease_log = (list(rows.values()), [joins.get(lease, []) for lease in rows])
            close(self)

        attribution_module.Attributor._ambiguous = _ambiguous
        engine_module.Engine.close = _close
        engine_module.Engine.attribute = _attribute


def run(model: str, numbers: int, share: float, visits: float, days: float) -> tuple[float, Recorder]:
    recorder = Recorder()
    recorder.install()
    if model == "A":
        callers = CallerModel.with_intent_share(share, noise_share=0.02, landline_share=0.15, regions=REGIONS)
        accuracy = simulate(visits_per_day=visits, avg_visit_minutes=4, numbers=numbers, days=days, call_share=1.0,
                            seed=0, callers=callers).accuracy
    else:
        accuracy = TrafficB(visits_per_day=visits, intent_share=share, days=days).run(numbers)["accuracy"]
    return accuracy, recorder


def bins_of(rows: list[tuple[str, float, bool]]) -> list[str]:
    table: dict[tuple[str, int], list[float]] = collections.defaultdict(lambda: [0, 0.0, 0])
    for key, likelihood, right in rows:
        b = table[(key, min(int(likelihood * 10), 9))]
        b[0], b[1], b[2] = b[0] + 1, b[1] + likelihood, b[2] + right
    out = []
    for (key, i), (n, total, hits) in sorted(table.items()):
        off = hits / n - total / n
        out.append(f"  {key:9s} {i / 10:.1f}-{(i + 1) / 10:.1f} {int(n):6,} calls  mean {total / n:.3f}  right "
                   f"{hits / n:.3f}  {off:+.3f}{'  <- over 3 points' if n >= 50 and abs(off) > 0.03 else ''}")
    return out


def report(recorder: Recorder) -> list[str]:
    lines = ["calibration per status:"] + bins_of([(s, p, r) for s, p, r, _, _ in recorder.records])
    shared = [(taus, caller) for s, _, _, taus, caller in recorder.records if s == "ambiguous" and taus]
    k = len(EDGES) - 1
    callers, others = [0] * k, [0] * k
    for taus, caller in shared:
        for i, tau in enumerate(taus):
            (callers if i == caller else others)[bin_of(tau)] += 1
    c_all, n_all = sum(callers) or 1, sum(others) or 1
    truth = [((c + 0.5) / c_all) / ((n + 0.5) / n_all) for c, n in zip(callers, others)]
    learnt = recorder.learnt or RecencyModel()
    lines.append(f"ambiguous calls: {len(shared):,}, the caller not among the candidates in "
                 f"{sum(c < 0 for _, c in shared):,}; per bin of tau:")
    for i in range(k):
        lines.append(f"  {EDGES[i]:6.0f}-{EDGES[i + 1]:<6.0f} callers {callers[i]:6,}  others {others[i]:7,}  "
                     f"ratio from the truth {truth[i]:9.3f}  learnt {learnt.ratio(EDGES[i]):9.3f}")
    oracle = []
    for taus, caller in shared:
        weights = [truth[bin_of(tau)] for tau in taus]
        best = max(range(len(taus)), key=lambda j: (weights[j], -taus[j]))
        oracle.append(("truth", weights[best] / sum(weights), best == caller))
    lines.append("ambiguous calls with the truth's ratio (recency alone):")
    return lines + bins_of(oracle)


def _fine(seconds: float) -> int:
    return min(bisect.bisect_right(FINE, max(seconds, 0.0)) - 1, len(FINE) - 2)


def kinds(taus: Sequence[float]) -> list[tuple[str, int]]:
    """Each candidate's kind and bin: ("newest", its visit's age) for the one shown the number last,
    ("earlier", seconds since the next one was shown it) for the others."""
    order = sorted(range(len(taus)), key=lambda i: taus[i])   # the newest first
    out: list[tuple[str, int]] = [("newest", 0)] * len(taus)
    for rank, i in enumerate(order):
        out[i] = ("newest", _fine(taus[i])) if rank == 0 else ("earlier", _fine(taus[order[rank - 1]]))
    return out


def exposure(recorder: Recorder) -> dict[tuple[str, int], float]:
    """Seconds each kind and bin was exposed: every visitor of every lease, from its start (or join) to
    the lease's end, newest until the next one joined, earlier after."""
    seconds: dict[tuple[str, int], float] = collections.defaultdict(float)
    for (start, ends), joins in zip(*recorder.lease_log):
        began = sorted([start, *joins])
        for k, b in enumerate(began):
            after = began[k + 1] if k + 1 < len(began) else ends
            for kind, lo, hi, zero in (("newest", b, min(after, ends), b), ("earlier", after, ends, after)):
                cuts = sorted({lo, hi, *(zero + e for e in FINE[1:-1] if lo < zero + e < hi)})
                for x, y in zip(cuts, cuts[1:]):
                    seconds[(kind, _fine((x + y) / 2 - zero))] += y - x
    return seconds


def intensity_report(recorder: Recorder) -> list[str]:
    calls: collections.Counter[tuple[str, int]] = collections.Counter()
    for status, _, _, taus, caller in recorder.records:
        if status in ("matched", "ambiguous") and taus and caller >= 0:
            calls[kinds(taus)[caller]] += 1
    seconds = exposure(recorder)
    rate = {key: (calls[key] + 0.01) / (seconds.get(key, 0.0) + 1.0) for key in set(seconds) | set(calls)}
    out = []
    for status, _, _, taus, caller in recorder.records:
        if status == "ambiguous" and taus:
            weights = [rate.get(key, 1e-12) for key in kinds(taus)]
            best = max(range(len(taus)), key=lambda j: (weights[j], -taus[j]))
            out.append(("intensity", weights[best] / sum(weights), best == caller))
    right = sum(r for _, _, r in out) / max(len(out), 1)
    lines = [f"ambiguous calls with a call intensity per kind of candidate counted from the truth "
             f"(newest / earlier, recency alone; right {right:.2%}):"] + bins_of(out)
    return lines + learnt_report(recorder, seconds)


def learnt_report(recorder: Recorder, seconds: dict[tuple[str, int], float], rounds: int = 30) -> list[str]:
    """The same intensities learnt without the truth: the newest's from matched calls over the seconds
    leases were held unshared; the earlier ones' by EM over the ambiguous calls' candidates."""
    alone: dict[int, float] = collections.defaultdict(float)
    for (start, ends), joins in zip(*recorder.lease_log):
        until = min([ends, *joins])
        cuts = sorted({start, until, *(start + e for e in FINE[1:-1] if start < start + e < until)})
        for x, y in zip(cuts, cuts[1:]):
            alone[_fine((x + y) / 2 - start)] += y - x
    matched: collections.Counter[int] = collections.Counter(   # calls with one candidate: its own
        _fine(taus[0]) for status, _, _, taus, _ in recorder.records
        if status in ("matched", "ambiguous") and len(taus) == 1)
    rate = {("newest", b): (matched[b] + 0.01) / (alone.get(b, 0.0) + 1.0) for b in range(len(FINE) - 1)}
    sets = [(kinds(taus), taus, caller) for status, _, _, taus, caller in recorder.records
            if status == "ambiguous" and len(taus) > 1]
    for b in range(len(FINE) - 1):
        rate[("earlier", b)] = 1e-6
    for _ in range(rounds):
        counts: dict[int, float] = collections.defaultdict(float)
        for ks, _, _ in sets:
            weights = [rate[k] for k in ks]
            total = sum(weights)
            for (kind, b), w in zip(ks, weights):
                if kind == "earlier":
                    counts[b] += w / total
        for b in range(len(FINE) - 1):
            rate[("earlier", b)] = (counts[b] + 0.01) / (seconds.get(("earlier", b), 0.0) + 1.0)
    out = []
    for ks, taus, caller in sets:
        weights = [rate[k] for k in ks]
        best = max(range(len(taus)), key=lambda j: (weights[j], -taus[j]))
        out.append(("learnt", weights[best] / sum(weights), best == caller))
    right = sum(r for _, _, r in out) / max(len(out), 1)
    return [f"... the same learnt without the truth (right {right:.2%}):"] + bins_of(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("A", "B"), default="B")
    ap.add_argument("--sizes", default="40,50")
    ap.add_argument("--share", type=float, default=0.0, help="share of calls after a tap or copy")
    ap.add_argument("--visits", type=float, default=3000.0, help="visits a day")
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--intensity", action="store_true", help="also the call-intensity check (see above)")
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        accuracy, recorder = run(args.model, n, args.share, args.visits, args.days)
        print(f"\nmodel {args.model}, {n} numbers, intents {args.share:.0%}: accuracy {accuracy:.2%}")
        print("\n".join(report(recorder)))
        if args.intensity:
            print("\n".join(intensity_report(recorder)))


if __name__ == "__main__":
    main()
