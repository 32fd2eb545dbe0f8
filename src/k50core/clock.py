"""Injected time: seconds since the epoch, as the pools keep it.

Every public call takes ``now=`` (None: the wall clock). The pools keep
instants in 43 bits of milliseconds, so a time they cannot hold is refused
here with an error naming ``now``, on every path (the core's fast paths hand
such values to these functions).
"""
from __future__ import annotations

import reprlib
import time
from typing import Any

MAX_MS = (1 << 43) - 1  # to the year 2248


def seconds(now: Any | None) -> float:
    """``now`` in seconds (None: the clock); TypeError/ValueError naming ``now`` for anything else."""
    if now is None:
        return time.time()
    if type(now) is float and 0.0 <= now * 1000.0 <= MAX_MS:  # the usual case, checked at once
        return now
    if isinstance(now, (str, bytes, bytearray, bool)):  # float() would read these: a caller's mistake
        raise TypeError(f"now: expected seconds since the epoch (a number), got {reprlib.repr(now)}")
    try:
        value = float(now)
    except OverflowError:  # an int past a float's range
        value = float("inf")
    except (TypeError, ValueError):
        raise TypeError(f"now: expected seconds since the epoch (a number), got {reprlib.repr(now)}") from None
    if not 0.0 <= value * 1000.0 <= MAX_MS:  # NaN too
        raise ValueError(f"now: {reprlib.repr(now)} is outside 0 .. {MAX_MS // 1000} seconds since the epoch")
    return value


def milliseconds(now: Any | None) -> int:
    """``now`` as the pools' milliseconds (see seconds())."""
    return int(seconds(now) * 1000)
