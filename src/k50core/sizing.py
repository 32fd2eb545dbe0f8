"""How many dynamic numbers a pool needs for a target attribution accuracy.

The model (every assumption is a parameter, so a simulator can check it):

* Arrivals. Visits arrive as a Poisson stream. The pool is sized for the busiest hour:
  its rate is ``visits_per_day x peak_share`` per hour, where ``peak_share`` is the
  busiest hour's share of the daily visits (from ``daily_profile``, by default
  ``DEFAULT_DAILY_PROFILE``, which peaks at 7% an hour in working hours).
* Occupancy. A lease lives from the first page view until ``hold_seconds`` after the
  last activity; heartbeats from the open page keep the last activity at the end of the
  visit, and the number then cools down before it is handed out again. So a number is
  out of rotation for ``avg visit + hold + cooldown`` seconds. Only the mean matters:
  Erlang-B is insensitive to the distribution of the holding time.
* Sharing. An arrival that finds every number taken gets a shared number (the pool's
  exhaustion policy) and takes no free one: that is Erlang's loss system, so the
  probability of sharing is Erlang-B ``B(N, A)`` with offered load
  ``A = arrival rate x occupancy`` (Erlangs). Calls from a shared number are
  ambiguous; we count them all as wrong (conservative: the engine reports candidates,
  it does not guess).
* Call timing. ``call_delay(t)`` gives P(a call comes more than t seconds after the
  visit's end); calls during the visit have delay <= 0. A call within ``hold`` is
  matched; within ``hold + cooldown`` it is *late* but still attributed (the number has
  not been reassigned); later calls are counted as lost. The default ``CallDelay`` puts
  90% of calls during the visit and the rest after an exponential delay, mean 10 min.

* Call intents. A share ``intent_share`` of calls follows a tap on or a copy of the number,
  which the snippet reports (``Engine.intent``): a call to a shared number that an intent
  precedes goes to the visitor who made it, right ``INTENT_RESOLVES`` of the time (measured
  with the simulator); the other calls to shared numbers still count as wrong. ``k50core size
  --store`` measures the share from a deployment's own calls.

expected accuracy = (1 - B(N, A_peak) x (1 - intent_share x INTENT_RESOLVES)) x (1 - P(delay > hold + cooldown)),
and ``recommend`` returns the smallest N >= 1 that reaches the target at the peak hour
(so any quieter hour, and the day as a whole, does at least as well).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import Error

# Share of the daily visits in each hour of the day (local time), in percent; sums to
# 100. A typical Russian commercial site: quiet at night, a 7%/hour plateau 10:00-17:00.
DEFAULT_DAILY_PROFILE = (
    1.6, 1.0, 0.6, 0.5, 0.5, 0.6, 1.2, 2.2, 3.8, 6.0, 7.0, 7.0,
    7.0, 7.0, 7.0, 7.0, 6.8, 6.4, 5.6, 5.2, 5.0, 4.6, 3.8, 2.6,
)

VISITS_PER_NUMBER_RULE_OF_THUMB = 20
# A call to a shared number preceded by a tap or copy goes to the right visitor this often (the
# simulator, 35% of calls with an intent, 40-92 numbers for 3,000 visits a day: 97-99%; less, to be safe).
INTENT_RESOLVES = 0.95


@dataclass(frozen=True)
class CallDelay:
    """When calls come, measured from the end of the visit (its last activity).

    A share ``during_visit_share`` of the calls is made while the visitor is on the
    site; the others come after an exponential delay with mean ``tail_mean_seconds``.
    Calling the object gives P(delay > t).
    """
    during_visit_share: float = 0.9
    tail_mean_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.during_visit_share <= 1.0:
            raise ValueError(f"during_visit_share: expected a share from 0 to 1, got {self.during_visit_share!r}")
        if not self.tail_mean_seconds > 0 or not math.isfinite(self.tail_mean_seconds):
            raise ValueError(f"tail_mean_seconds: expected a positive number, got {self.tail_mean_seconds!r}")

    def __call__(self, t: float) -> float:
        if t < 0:
            return 1.0
        return (1.0 - self.during_visit_share) * math.exp(-t / self.tail_mean_seconds)


DelaySurvival = Callable[[float], float]


def erlang_b(servers: int, load: float) -> float:
    """Erlang-B blocking probability B(servers, load), by the stable recurrence
    B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)) (no factorials, no overflow)."""
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 0:
        raise ValueError(f"servers: expected a non-negative whole number, got {servers!r}")
    if not load >= 0 or not math.isfinite(load):
        raise ValueError(f"load: expected a non-negative number of Erlangs, got {load!r}")
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def rule_of_thumb(visits_per_day: float) -> int:
    """The folk rule: one number per 20 daily visits."""
    _check_non_negative("visits_per_day", visits_per_day)
    return math.ceil(visits_per_day / VISITS_PER_NUMBER_RULE_OF_THUMB)


class UnreachableTarget(Error, ValueError):
    """The target cannot be met by any pool size: too many calls come after hold + cooldown."""

    def __init__(self, target: float, max_accuracy: float, lost_call_share: float, window_seconds: float) -> None:
        self.target, self.max_accuracy, self.lost_call_share = target, max_accuracy, lost_call_share
        super().__init__(
            f"target_accuracy={target:g} is unreachable: {lost_call_share:.2%} of calls come more than "
            f"hold + cooldown = {window_seconds:g} s after the visit ends, so no pool size attributes more "
            f"than {max_accuracy:.2%}; raise hold_seconds or cooldown_seconds, or lower the target")


@dataclass(frozen=True)
class Recommendation:
    numbers: int                 # the smallest pool reaching the target at the peak hour
    expected_accuracy: float     # at the peak hour, with that pool
    peak_utilisation: float      # carried load per number at the peak (lease + cooldown)
    target_accuracy: float
    peak_share: float            # share of daily visits in the busiest hour
    peak_visits_per_hour: float
    occupancy_seconds: float     # visit + hold + cooldown
    offered_load_erlangs: float  # peak arrival rate x occupancy
    sharing_probability: float   # B(numbers, load): a visit gets a shared number
    late_call_share: float       # calls after hold, within cooldown: attributed as late
    lost_call_share: float       # calls after hold + cooldown: counted as lost
    max_accuracy: float          # with an unlimited pool: 1 - lost_call_share
    daily_accuracy: float | None  # visit-weighted over the day's profile (None without one)
    rule_of_thumb: int           # ceil(visits_per_day / 20), for comparison
    intent_share: float = 0.0    # calls preceded by a tap or copy: a shared number's such call counts right

    def explain(self) -> list[str]:
        """Human-readable lines for the CLI."""
        lines = [
            f"numbers: {self.numbers} (rule of thumb visits/{VISITS_PER_NUMBER_RULE_OF_THUMB}: {self.rule_of_thumb})",
            f"expected accuracy at the peak hour: {self.expected_accuracy:.2%} (target {self.target_accuracy:.2%})",
            f"peak hour: {self.peak_visits_per_hour:.1f} visits ({self.peak_share:.1%} of the day)",
            f"a number is occupied {self.occupancy_seconds:.0f} s per visit (visit + hold + cooldown)",
            f"offered load {self.offered_load_erlangs:.1f} Erlangs, utilisation {self.peak_utilisation:.1%}",
            f"visits given a shared number: {self.sharing_probability:.2%}"
            + (f"; their calls after a tap or copy ({self.intent_share:.0%} of calls) count as right"
               if self.intent_share else ""),
            f"calls attributed late (after hold): {self.late_call_share:.2%}; "
            f"lost (after hold + cooldown): {self.lost_call_share:.2%}",
        ]
        if self.daily_accuracy is not None:
            lines.append(f"accuracy over the whole day: {self.daily_accuracy:.2%}")
        return lines


def _check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
    return float(value)


def _profile_shares(profile: Sequence[float]) -> list[float]:
    values = list(profile)
    if len(values) != 24:
        raise ValueError(f"daily_profile: expected 24 hourly values, got {len(values)}")
    for v in values:
        _check_non_negative("daily_profile", v)
    total = sum(values)
    if total <= 0:
        raise ValueError("daily_profile: expected at least one hour with visits")
    return [v / total for v in values]


def _delay_survival(call_delay: DelaySurvival | CallDelay | None, t: float) -> float:
    survival = (call_delay or CallDelay())(t)
    if not 0.0 <= survival <= 1.0:
        raise ValueError(f"call_delay: P(delay > {t:g}) must be a probability, got {survival!r}")
    return survival


def recommend(visits_per_day: float, avg_visit_minutes: float, target_accuracy: float = 0.95, *,
              hold_seconds: float = 900, cooldown_seconds: float = 300, peak_share: float | None = None,
              call_delay: DelaySurvival | CallDelay | None = None,
              daily_profile: Sequence[float] | None = None, intent_share: float = 0.0) -> Recommendation:
    """The smallest dynamic pool reaching ``target_accuracy`` at the peak hour (see the module doc).

    ``peak_share`` (busiest hour's share of daily visits) overrides ``daily_profile``
    (24 hourly weights). ``call_delay`` is a callable t -> P(call > t s after the visit
    ends), default ``CallDelay()``. Raises ValueError naming a bad argument, and
    ``UnreachableTarget`` (a ValueError) when late calls alone cap accuracy below the target.
    ``intent_share``: the share of calls a tap or copy of the number precedes (see the module doc).
    """
    visits = _check_non_negative("visits_per_day", visits_per_day)
    visit_seconds = _check_non_negative("avg_visit_minutes", avg_visit_minutes) * 60.0
    hold = _check_non_negative("hold_seconds", hold_seconds)
    cooldown = _check_non_negative("cooldown_seconds", cooldown_seconds)
    intents = _check_non_negative("intent_share", intent_share)
    if intents > 1:
        raise ValueError(f"intent_share: expected a share from 0 to 1, got {intent_share!r}")
    kept = intents * INTENT_RESOLVES  # of a shared number's calls, those an intent resolves
    if isinstance(target_accuracy, bool) or not isinstance(target_accuracy, (int, float)) \
            or not 0.0 < target_accuracy < 1.0:
        raise ValueError(f"target_accuracy: expected a share strictly between 0 and 1, got {target_accuracy!r}")
    shares: list[float] | None = None
    if peak_share is not None:
        if isinstance(peak_share, bool) or not isinstance(peak_share, (int, float)) or not 0.0 < peak_share <= 1.0:
            raise ValueError(f"peak_share: expected a share in (0, 1], got {peak_share!r}")
        busiest = float(peak_share)
    else:
        shares = _profile_shares(DEFAULT_DAILY_PROFILE if daily_profile is None else daily_profile)
        busiest = max(shares)

    late = _delay_survival(call_delay, hold)
    lost = _delay_survival(call_delay, hold + cooldown)
    max_accuracy = 1.0 - lost
    if max_accuracy < target_accuracy:
        raise UnreachableTarget(target_accuracy, max_accuracy, lost, hold + cooldown)

    occupancy = visit_seconds + hold + cooldown
    load = visits * busiest / 3600.0 * occupancy  # Erlangs at the peak hour

    # Walk N up the Erlang-B recurrence until the accuracy reaches the target; B falls to
    # 0 (in floats) once N passes the load, so the walk ends whenever max_accuracy >= target.
    numbers, blocking = 1, load / (1.0 + load)
    while (1.0 - blocking * (1.0 - kept)) * max_accuracy < target_accuracy:
        numbers += 1
        blocking = load * blocking / (numbers + load * blocking)

    daily = None
    if shares is not None:  # visit-weighted: each hour's sharing probability at its own load
        occupancy_per_day = visits / 3600.0 * occupancy
        daily = max_accuracy * sum(s * (1.0 - erlang_b(numbers, occupancy_per_day * s) * (1.0 - kept)) for s in shares)
    return Recommendation(
        numbers=numbers,
        expected_accuracy=(1.0 - blocking * (1.0 - kept)) * max_accuracy,
        peak_utilisation=load * (1.0 - blocking) / numbers,
        target_accuracy=float(target_accuracy),
        peak_share=busiest,
        peak_visits_per_hour=visits * busiest,
        occupancy_seconds=occupancy,
        offered_load_erlangs=load,
        sharing_probability=blocking,
        late_call_share=late - lost,
        lost_call_share=lost,
        max_accuracy=max_accuracy,
        daily_accuracy=daily,
        rule_of_thumb=rule_of_thumb(visits),
        intent_share=intents,
    )
