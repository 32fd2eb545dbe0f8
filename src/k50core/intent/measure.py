"""The share of a deployment's calls that a tap or copy of the number preceded, from its own store:
what ``sizing.recommend(intent_share=...)`` and ``k50core size --store`` take."""
from __future__ import annotations

from typing import NamedTuple

from ..store.base import Store
from .signals import AHEAD, WINDOW


class IntentShare(NamedTuple):
    share: float        # with_intent / calls (0 without calls)
    calls: int          # calls to dynamic numbers that a lease covered (matched, late, ambiguous)
    with_intent: int    # ... of which an intent on the number came at most WINDOW seconds before


def intent_share(store: Store, since: float = 0.0, until: float = float("inf")) -> IntentShare:
    """Measured over the calls that started in [since, until)."""
    cur = store.conn.cursor()
    cur.execute(store._sql(
        "SELECT count(*), sum(CASE WHEN EXISTS (SELECT 1 FROM intents i WHERE i.number = c.number "
        "AND i.at >= c.started_at - ? AND i.at <= c.started_at + ?) THEN 1 ELSE 0 END) "
        "FROM calls c JOIN attributions a ON a.call_id = c.call_id "
        "WHERE a.status IN ('matched', 'late', 'ambiguous') AND c.started_at >= ? AND c.started_at < ?"),
        (WINDOW, AHEAD, since, until if until != float("inf") else 1e18))
    calls, with_intent = cur.fetchone()
    calls, with_intent = int(calls or 0), int(with_intent or 0)
    return IntentShare(with_intent / calls if calls else 0.0, calls, with_intent)
