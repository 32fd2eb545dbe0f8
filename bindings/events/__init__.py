"""Outgoing events on each attributed call: signed webhooks and GA4 Measurement Protocol events,
through a durable outbox in the store (retries with backoff, an idempotency key, crash catch-up).

Configured under ``events:`` (see ``k50core.config.model.Events``); ``Dispatcher`` writes and
sends; ``attribution_json`` is the one JSON form of an Attribution.
"""
from .outbox import GA4_TARGET, Dispatcher, Entry
from .payloads import EVENT_TYPE, attribution_from_row, attribution_json, call_event, ga4_at_send, ga4_event
from .sender import USER_AGENT, Reply, backoff, http_send, retry_after, verdict

__all__ = ["Dispatcher", "Entry", "EVENT_TYPE", "GA4_TARGET", "Reply", "USER_AGENT", "attribution_from_row",
           "attribution_json", "backoff", "call_event", "ga4_at_send", "ga4_event", "http_send", "retry_after",
           "verdict"]
