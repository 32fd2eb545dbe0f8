"""The slot table's records, named: what both builds' ``SlotTable.record()`` and
``last_superseded()`` return (times in milliseconds, the number as its E.164 digits)."""
from __future__ import annotations

from typing import NamedTuple


class SlotRecord(NamedTuple):
    """A slot's lease as it stands, read consistently (holder and session as the slot keeps them)."""
    kind: int      # FREE, CLAIMING, LEASED or RETIRED
    gen: int
    shared: bool
    until: int     # the lease's end
    number: int
    pool: int      # registry index
    rule: int      # rule index
    start: int
    last: int      # the latest activity
    holder: bytes
    session: bytes


class SupersededLease(NamedTuple):
    """The final state of a lease a claim replaced (it moved since its start: see _pool.pyx)."""
    slot: int
    gen: int
    shared: bool
    start: int
    last: int
    until: int
    pool: int
    rule: int
    number: int
    holder: str | None
    session: str | None
