"""The lease log, stats and holders of pools in Redis (a part of ``RedisPools``)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..pools import SEEN_EVERY_MS, LeaseEvent
from .leases import LEASED, RETIRED, Lease, Unavailable, _fields, _PoolKeys, _records


class LeaseLog:
    """The lease log (starts, joins, renewals at checkpoints, ends), stats and holders; the state
    comes from ``RedisPools``."""
    _log: list[LeaseEvent]
    _superseded: list[LeaseEvent]
    _marked: dict[tuple[int, int], _PoolKeys]
    _joiner_seen: dict[str, int]
    _sink: Any
    _sink_batch: int
    _checkpoint_ms: int
    _checkpoint_due: int | None
    _checkpoint_floor: int
    _fresh_state: LeaseEvent | None
    _last_stats: dict[str, dict[str, int]]
    rule_names: list[str]
    by_name: dict[str, _PoolKeys]
    _slot_of: dict[str, tuple[_PoolKeys, int]]
    _pipeline: Any
    _counted_defaults: Any

    def _seen_again(self, visitor: str, lease: Lease, now_ms: int) -> None:
        key = f"{lease.slot}.{lease.gen} {visitor}"
        if now_ms - self._joiner_seen.get(key, -SEEN_EVERY_MS) < SEEN_EVERY_MS:
            return
        if len(self._joiner_seen) > 200_000:
            self._joiner_seen.clear()
        self._joiner_seen[key] = now_ms
        m = lease.made
        self._logged(LeaseEvent("share", lease.ps.pool.name, m.number or "", visitor, None, m.rule,
                                lease.start / 1000.0, now_ms / 1000.0, lease.lu / 1000.0, m.shared,
                                f"{lease.slot}.{lease.gen}"))

    # -- tokens ----------------------------------------------------------------------------

    def _event(self, event: str, pool: str, slot: int, rec: Sequence[Any], last: int | None = None) -> LeaseEvent:
        gen, shared, until, number, rule_i, start, rlast, holder, sess = _fields(rec)
        return LeaseEvent(event, pool, number, holder or None, sess or None, self._rule_name(rule_i), start / 1000.0,
                          (rlast if last is None else last) / 1000.0, until / 1000.0, bool(shared), f"{slot}.{gen}")

    def _logged(self, e: LeaseEvent) -> None:
        self._log.append(e)
        if self._sink is not None and len(self._log) >= self._sink_batch:
            self._sink(self.drain(checkpoint=False))

    def set_sink_batch(self, events: int) -> None:
        self._sink_batch = events

    def set_checkpoint(self, ms: int) -> None:
        self._checkpoint_ms = ms
        self._checkpoint_due = None

    def _check_log(self, now: int) -> None:
        every = self._checkpoint_ms if self._sink is not None else 0
        if every and (self._checkpoint_due is None or now >= self._checkpoint_due or now < self._checkpoint_floor):
            due = self._checkpoint_due is not None and now >= self._checkpoint_due
            self._checkpoint_due, self._checkpoint_floor = now + every, now - min(now, every)
            if due and self._sink is not None:
                self._sink(self.drain(True))
        if self._sink is not None and len(self._superseded) >= self._sink_batch > 0:
            self._sink(self.drain(False))

    def drain(self, checkpoint: bool = True) -> list[LeaseEvent]:
        """The events since the last drain, oldest first; with ``checkpoint`` also each lease this host
        renewed since the last checkpoint, as Redis has it now (renewals written first)."""
        out, self._log = self._log, []
        out += self._superseded
        self._superseded = []
        if checkpoint and self._marked:
            marked = dict(self._marked)
            self._marked.clear()  # in place: the fast path holds this dict
            by_pool: dict[str, tuple[_PoolKeys, list[int]]] = {}
            for (_index, slot), ps in marked.items():
                by_pool.setdefault(ps.pool.name, (ps, []))[1].append(slot)
            order = list(by_pool.values())
            try:
                replies = self._pipeline([("k50_records", ps.keys, slots) for ps, slots in order])
            except Unavailable:
                self._marked.update(marked)  # at the next checkpoint
                replies = []
            for (ps, _), reply in zip(order, replies):
                for slot, rec in _records(reply):
                    kind, start, last, until, end0 = int(rec[9]), int(rec[5]), int(rec[6]), int(rec[2]), int(rec[10])
                    if kind in (LEASED, RETIRED) and (last > start or until != end0):
                        out.append(self._event("renew", ps.pool.name, slot, rec))
        out.sort(key=lambda e: e.last)
        return out

    def _rule_name(self, rule: int) -> str | None:
        return self.rule_names[rule] if 0 <= rule < len(self.rule_names) else None

    def holders(self) -> list[LeaseEvent]:
        """The last lease of every number, read from Redis."""
        order = list(self.by_name.values())
        try:
            replies = self._pipeline([("k50_records", ps.keys, list(ps.slots)) for ps in order])
        except Unavailable:
            return []
        return [self._event("state", ps.pool.name, slot, rec) for ps, reply in zip(order, replies)
                for slot, rec in _records(reply) if int(rec[9]) in (LEASED, RETIRED) and int(rec[2])]

    def holder_of(self, number: str) -> LeaseEvent | None:
        """The last lease of one configured number, from Redis (attribution reads it); None if never leased."""
        fresh, self._fresh_state = self._fresh_state, None
        if fresh is not None and fresh.number == number:
            return fresh
        at = self._slot_of.get(number)
        if at is None:
            return None
        ps, slot = at
        try:
            reply = self._pipeline([("k50_records", ps.keys, [slot])])[0]
        except Unavailable:  # attribution goes by the store's history alone
            return None
        for s, rec in _records(reply):
            if int(rec[9]) in (LEASED, RETIRED) and int(rec[2]):
                return self._event("state", ps.pool.name, s, rec)
        return None

    def stats(self, now_ms: int) -> dict[str, dict[str, int]]:
        order = list(self.by_name.values())
        try:
            replies = self._pipeline(self._counted_defaults() + [("k50_stats", ps.keys, [now_ms, ps.cooldown_ms])
                                                                 for ps in order])[-len(order):] if order else []
        except Unavailable:
            return self._last_stats
        out = {}
        for ps, r in zip(order, replies):
            n, leased, cooling, claims, shares, defaults = (int(x) for x in r[:6])
            out[ps.pool.name] = {"numbers": n, "leased": leased, "cooling": cooling, "free": n - leased - cooling,
                                 "claims": claims, "exhausted_shared": shares, "exhausted_default": defaults}
        self._last_stats = out
        return out
