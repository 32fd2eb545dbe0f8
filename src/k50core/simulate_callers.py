"""Who calls, and how, for the simulator: call intents, landline callers and their regions.

A share of callers tap the shown number (mobile visitors, on a ``tel:`` link) or copy it (desktop
visitors) shortly before calling; the page reports it (``Engine.intent``). Some visitors tap or
copy without calling (``noise_share``): the intents attribution must not trust blindly. A share
of callers ring from a landline of the region their visit came from. Drawn from a random stream
of their own, so a model that is off (the default) leaves every other draw of a run as it was.
"""
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MOBILE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0 Mobile Safari/537.36")
# (visitor IP, its GeoLite2 region, a landline area code there, share of visitors)
REGIONS: tuple[tuple[str, str, str, float], ...] = (
    ("5.101.68.156", "RU-MOW", "495", 0.55), ("95.161.0.1", "RU-SPE", "812", 0.25),
    ("46.61.0.1", "RU-ROS", "863", 0.1), ("217.118.64.1", "RU-PRI", "423", 0.1))


@dataclass(frozen=True)
class CallerModel:
    """``mobile_share`` of visitors on phones; of the callers, ``tap_share`` of mobile ones and
    ``copy_share`` of desktop ones leave an intent, the call following it after a log-normal delay
    (median ``tap_median_seconds`` / ``copy_median_seconds``, spread ``delay_sigma``, at most
    ``max_delay_seconds``). ``noise_share`` of visitors who do not call leave one too.
    ``landline_share`` of visitors call from a landline of their region; ``regions`` spreads the
    visitors over regions (IPs) as in REGIONS; empty keeps the simulator's one address."""
    mobile_share: float = 0.6
    tap_share: float = 0.0
    copy_share: float = 0.0
    tap_median_seconds: float = 5.0
    copy_median_seconds: float = 20.0
    delay_sigma: float = 0.8
    max_delay_seconds: float = 60.0
    noise_share: float = 0.0
    landline_share: float = 0.0
    regions: Sequence[tuple[str, str, str, float]] = ()

    def __post_init__(self) -> None:
        for name in ("mobile_share", "tap_share", "copy_share", "noise_share", "landline_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a share from 0 to 1, got {getattr(self, name)!r}")

    @classmethod
    def with_intent_share(cls, share: float, **kw: Any) -> CallerModel:
        """Taps and copies such that ``share`` of all calls follow an intent (mobile callers tap
        twice as often as desktop ones copy)."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"intent share: expected a share from 0 to 1, got {share!r}")
        mobile = float(kw.pop("mobile_share", 0.6))
        copy = share / (2 * mobile + (1 - mobile))
        if 2 * copy > 1:  # every mobile caller taps: the desktop ones make up the rest
            return cls(mobile_share=mobile, tap_share=1.0, copy_share=(share - mobile) / (1 - mobile), **kw)
        return cls(mobile_share=mobile, tap_share=2 * copy, copy_share=copy, **kw)

    @property
    def intent_share(self) -> float:
        return self.mobile_share * self.tap_share + (1 - self.mobile_share) * self.copy_share

    @property
    def active(self) -> bool:
        return bool(self.intent_share or self.noise_share or self.landline_share or self.regions)


class Callers:
    """Draws for one run."""

    def __init__(self, model: CallerModel, seed: int) -> None:
        self.model = model
        self.rng = random.Random(seed * 7919 + 17)
        total = sum(r[3] for r in model.regions)
        self._cum = []
        acc = 0.0
        for r in model.regions:
            acc += r[3] / total
            self._cum.append(acc)

    def region(self, who: int) -> tuple[str, str, str, float] | None:
        """A visitor's region (the same at every visit of theirs)."""
        if not self.model.regions:
            return None
        u = random.Random(who * 104729).random()
        for r, c in zip(self.model.regions, self._cum):
            if u <= c:
                return r
        return self.model.regions[-1]

    def mobile(self, who: int) -> bool:
        return random.Random(who * 15485863).random() < self.model.mobile_share

    def caller(self, who: int) -> str:
        """A visitor's phone: a landline of their region for ``landline_share`` of them, else a mobile."""
        region = self.region(who)
        if region is not None and random.Random(who * 32452843).random() < self.model.landline_share:
            return f"+7{region[2]}{who % 10_000_000:07d}"
        return f"+7916{who:07d}"

    def intent(self, who: int) -> tuple[str, float] | None:
        """(kind, delay to the call) when this caller leaves an intent, else None."""
        m = self.model
        mobile = self.mobile(who)
        if self.rng.random() >= (m.tap_share if mobile else m.copy_share):
            return None
        median = m.tap_median_seconds if mobile else m.copy_median_seconds
        delay = min(m.max_delay_seconds, median * math.exp(m.delay_sigma * self.rng.gauss(0.0, 1.0)))
        return ("click" if mobile else "copy"), max(0.5, delay)

    def noise(self) -> bool:
        return self.model.noise_share > 0 and self.rng.random() < self.model.noise_share

    def uniform(self) -> float:
        return self.rng.random()
