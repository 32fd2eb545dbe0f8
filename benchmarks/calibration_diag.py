"""Where attribution's likelihoods are off: calibration per status, and the shared numbers' recency
ratio the engine learnt against the one the traffic's ground truth shows.

    python benchmarks/calibration_diag.py --model B --sizes 40,50 --share 0

For each run it prints, per status (matched / late / ambiguous) and likelihood bin (width 0.1), the
calls, their mean likelihood and the share right; then, over the calls attributed ``ambiguous``, per
bin of tau (seconds from a candidate's visit start to the call, k50core.intent.recency.EDGES): how
many callers and other candidates fell in it, the ratio c/n those counts give (what recency.py
estimates without knowing the caller) and the engine's learnt ratio at the end of the run; and
last the calibration a posterior with that ground-truth ratio would have had (recency alone), which
is as well as a ratio per candidate can do.

Only a diagnostic: it wraps Engine.attribute and Attributor._ambiguous to see each call's candidate
set, and uses the truth the traffic models know (the caller's number ends with the visitor's number).
"""
from __future__ import annotations

import argparse
import collections
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
_ORIGINALS: tuple[Any, Any] | None = None


class Recorder:
    """Wraps the engine for one run: each call's status, likelihood, whether its best guess is the
    caller and, for a shared number, every candidate's tau and which one called (-1: none)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.sets: dict[str, tuple[float, list[float], list[str | None]]] = {}
        self.learnt: RecencyModel | None = None

    def install(self) -> None:
        """Wraps the originals (kept on first use), so a second run's recorder replaces the first's."""
        global _ORIGINALS
        if _ORIGINALS is None:
            _ORIGINALS = (engine_module.Engine.attribute, attribution_module.Attributor._ambiguous)
        attribute, ambiguous = _ORIGINALS
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
            caller = max((i for i, v in enumerate(who) if v and v[1:] == person), default=-1)
            recorder.records.append((made.status, made.likelihood, bool(best and best[1:] == person),
                                     [t - b for b in began], caller))
            return made

        attribution_module.Attributor._ambiguous = _ambiguous  # type: ignore[method-assign]
        engine_module.Engine.attribute = _attribute  # type: ignore[method-assign]


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
    for (key, i), (n, total, right) in sorted(table.items()):
        off = right / n - total / n
        out.append(f"  {key:9s} {i / 10:.1f}-{(i + 1) / 10:.1f} {int(n):6,} calls  mean {total / n:.3f}  right "
                   f"{right / n:.3f}  {off:+.3f}{'  <- over 3 points' if n >= 50 and abs(off) > 0.03 else ''}")
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("A", "B"), default="B")
    ap.add_argument("--sizes", default="40,50")
    ap.add_argument("--share", type=float, default=0.0, help="share of calls after a tap or copy")
    ap.add_argument("--visits", type=float, default=3000.0, help="visits a day")
    ap.add_argument("--days", type=float, default=1.0)
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        accuracy, recorder = run(args.model, n, args.share, args.visits, args.days)
        print(f"\nmodel {args.model}, {n} numbers, intents {args.share:.0%}: accuracy {accuracy:.2%}")
        print("\n".join(report(recorder)))


if __name__ == "__main__":
    main()
