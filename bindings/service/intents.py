"""``POST /v1/intent {token, kind[, visitor_id]}``: the page's visitor tapped or copied the number.

The snippet sends it with ``navigator.sendBeacon`` as the page hands over to the dialer, so it is a
text/plain body (a beacon cannot send application/json across origins without a preflight it never
makes), and nobody reads the answer: it is always 204. What was wrong with it (a token not alive, a
kind not known, a body that is not the JSON object expected, a network over its allowance) is
counted in ``/metrics`` (``k50_intents{outcome}``), never an error on the visitor's path. Like a
heartbeat, an intent renews its lease; a token this process did not give the caller's network
counts against the address's heartbeat allowance.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from k50core.intent import capture, save
from k50core.intent.capture import valid

from ..visitors import VISITOR_ID
from .errors import ApiError, body_json

if TYPE_CHECKING:
    from .app import Service
    from .public import Answer, Incoming

log = logging.getLogger("k50core.service")
OUTCOMES = ("recorded", "not_alive", "bad_token", "bad_kind", "bad_body", "limited", "not_stored")


def _visitor(data: Any, req: Incoming) -> str | None:
    """Who made it: the body's visitor_id (the snippet's), else the service's own cookie."""
    given = data.get("visitor_id")
    if isinstance(given, str) and VISITOR_ID.match(given):
        return given
    cookie = req.visitor_cookie()
    return cookie if cookie and VISITOR_ID.match(cookie) else None


async def intent(svc: Service, req: Incoming, body: bytes) -> Answer:
    try:
        data = body_json(body)
    except ApiError:
        data = None
    if not isinstance(data, dict):
        svc.metrics.intent("bad_body")
        return 204, None, []
    token, kind = data.get("token"), data.get("kind")
    if not isinstance(token, str) or not valid(token, kind):
        svc.metrics.intent("bad_token" if not valid(token, "click") else "bad_kind")
        return 204, None, []
    now = float(svc.now())
    guard = svc.guard
    pool = None
    if guard is not None:
        ip = svc.client_ip(req.peer, req.forwarded)
        pool = guard.pool_of(token, ip)
        if pool is None and not guard.heartbeat_allowed(ip, now):
            svc.metrics.rate_limited("heartbeat")
            svc.metrics.intent("limited")
            return 204, None, []
    row = capture(svc.engine.pools, token, kind, now, _visitor(data, req), svc.engine.store.time_first_keys)
    if row is None:
        svc.metrics.intent("not_alive")
        return 204, None, []
    if guard is not None and pool is not None:
        known = svc.engine.config.pools.get(pool)
        guard.renewed(token, now + known.hold_seconds if known is not None else None)
    try:
        await svc.store.run(save, svc.engine.store, row)
    except Exception:  # logged with its cause; the visitor's page hears nothing of it
        log.exception("storing a call intent failed")
        svc.metrics.intent("not_stored")
        return 204, None, []
    svc.metrics.intent("recorded")
    return 204, None, []
