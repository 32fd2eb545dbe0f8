"""A second traffic model, written apart from k50core.simulate, to check its accuracy figures.

It shares none of the simulator's code or shapes: arrivals follow a sinusoidal day (a thinned
Poisson process, not hourly steps), visits last a log-normal time (heavy tail, median well below
the mean), pages heartbeat every 30 s, returning visitors come back within hours, and calls are
dialled after a Weibull delay from a tap or copy, or during the visit, or after it by a gamma delay.
Only the real Engine is common: it is driven with ``now=`` the model's time and asked to attribute
each call, and a call counts right when the engine's best guess (its top candidate, or its visitor)
is the visitor who called.
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any

from k50core import Engine

DESKTOP = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
# (IP, landline area code, share of visitors)
PLACES = (("5.101.68.156", "499", 0.6), ("95.161.0.1", "812", 0.3), ("217.118.64.1", "423", 0.1))


@dataclass
class TrafficB:
    visits_per_day: float = 3000.0
    mean_visit_seconds: float = 240.0
    visit_sigma: float = 1.0            # log-normal spread of the visit length
    swing: float = 0.8                  # the day's rate: mean x (1 + swing x sin(...)), peak in the afternoon
    returning_share: float = 0.15       # arrivals that are an earlier visitor back (within 6 hours)
    intent_share: float = 0.35          # calls a tap or copy precedes, dialled after a Weibull delay
    dial_shape: float = 1.5
    dial_scale: float = 15.0            # seconds; capped at 60
    during_share: float = 0.75          # of the other calls: during the visit; the rest after it
    after_shape: float = 2.0
    after_scale: float = 240.0          # gamma: mean 8 minutes after the visit
    noise_share: float = 0.03           # visits that tap the number and do not call
    mobile_share: float = 0.55
    landline_share: float = 0.1
    hold: int = 900
    cooldown: int = 300
    days: float = 1.0
    seed: int = 11
    start: float = 1_900_000_000.0
    results: dict[str, Any] = field(default_factory=dict)

    def rate(self, t: float) -> float:
        day = (t - self.start) / 86400.0
        return self.visits_per_day / 86400.0 * (1 + self.swing * math.sin(2 * math.pi * (day - 0.35)))

    def config(self, numbers: int) -> dict[str, Any]:
        return {"site": {"default_number": "+74951234567"},
                "pools": {"b": {"type": "dynamic", "numbers": [f"+7499{i:07d}" for i in range(1, numbers + 1)],
                                "hold_seconds": self.hold, "cooldown_seconds": self.cooldown,
                                "on_exhausted": "share"}},
                "rules": [{"name": "every", "pool": "b"}]}

    def run(self, numbers: int, implementation: str | None = None) -> dict[str, Any]:
        rng = random.Random(self.seed)
        top = self.visits_per_day / 86400.0 * (1 + self.swing)
        end = self.start + self.days * 86400.0
        events: list[tuple[float, int, Any]] = []
        n = 0

        def at(t: float, what: Any) -> None:
            nonlocal n
            n += 1
            heapq.heappush(events, (t, n, what))

        t = self.start
        while True:  # thinning: candidate arrivals at the top rate, each kept with rate(t) / top
            t += rng.expovariate(top)
            if t >= end:
                break
            if rng.random() < self.rate(t) / top:
                at(t, ("arrive",))
        people: list[tuple[float, int]] = []
        who_place: dict[int, tuple[str, str, bool, bool]] = {}
        calls = right = with_intent = 0
        bins = [[0, 0.0, 0] for _ in range(10)]  # likelihood bins: calls, sum of likelihoods, right
        engine = Engine.from_config(self.config(numbers), implementation=implementation, now=self.start)
        mu = math.log(self.mean_visit_seconds) - self.visit_sigma ** 2 / 2
        try:
            while events:
                now, _, what = heapq.heappop(events)
                kind = what[0]
                if kind == "arrive":
                    recent = [p for p in people[-2000:] if now - p[0] < 6 * 3600]
                    if recent and rng.random() < self.returning_share:
                        person = rng.choice(recent)[1]
                    else:
                        person = len(who_place) + 1
                        u = rng.random()
                        ip, code = next(((ip, c) for ip, c, s in _cumulative() if u <= s), PLACES[-1][:2])
                        who_place[person] = (ip, code, rng.random() < self.mobile_share,
                                             rng.random() < self.landline_share)
                    people.append((now, person))
                    ip, code, mobile, _ = who_place[person]
                    stay = rng.lognormvariate(mu, self.visit_sigma)
                    got = engine.assign({"visitor_id": f"p{person}", "ip": ip, "url": "https://b.example/?utm_source=google",
                                         "user_agent": PHONE if mobile else DESKTOP}, now=now)
                    if got.token is None:
                        continue
                    for beat in range(1, int(stay // 30) + 1):
                        at(now + 30 * beat, ("beat", got.token))
                    if rng.random() < self.intent_share:
                        tap = now + rng.random() * stay
                        dial = min(60.0, rng.weibullvariate(self.dial_scale, self.dial_shape))
                        at(tap, ("intent", got.token, "click" if mobile else "copy", person))
                        at(tap + dial, ("call", got.number, person, True))
                    else:
                        if rng.random() < self.noise_share:
                            at(now + rng.random() * stay, ("intent", got.token, "click", person))
                        ring = now + rng.random() * stay if rng.random() < self.during_share else \
                            now + stay + rng.gammavariate(self.after_shape, self.after_scale)
                        at(ring, ("call", got.number, person, False))
                elif kind == "beat":
                    engine.heartbeat(what[1], now=now)
                elif kind == "intent":
                    engine.intent(what[1], what[2], now=now, visitor=f"p{what[3]}")
                else:
                    _, number, person, tapped = what
                    ip, code, mobile, landline = who_place[person]
                    caller = f"+7{code}{person % 10_000_000:07d}" if landline else f"+7926{person:07d}"
                    calls += 1
                    with_intent += tapped
                    made = engine.attribute({"call_id": f"b{calls}", "number": number, "caller": caller,
                                             "started_at": now, "duration_seconds": 90, "answered": True}, now=now)
                    best = made.candidates[0].visitor_id if made.candidates else made.visitor_id
                    right += best == f"p{person}"
                    b = bins[min(int(made.likelihood * 10), 9)]
                    b[0], b[1], b[2] = b[0] + 1, b[1] + made.likelihood, b[2] + (best == f"p{person}")
        finally:
            engine.close()
        return {"numbers": numbers, "calls": calls, "right": right, "accuracy": right / calls if calls else 0.0,
                "intent_share": with_intent / calls if calls else 0.0,
                "calibration": [(i / 10, n, s / n, r / n) for i, (n, s, r) in enumerate(bins) if n]}


def _cumulative() -> list[tuple[str, str, float]]:
    out, acc = [], 0.0
    for ip, code, share in PLACES:
        acc += share
        out.append((ip, code, acc))
    return out
