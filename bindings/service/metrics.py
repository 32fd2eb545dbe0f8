"""The service's Prometheus metrics, with prometheus_client: counters of this process (requests, visits
answered, calls, limits hit), and at each scrape the engine's pools and the events outbox.

Each app has a registry of its own (several apps in one process, as in the tests, do not add up), and
``/metrics`` stays private: the route checks the key before ``render`` runs.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

LIMITS = ("ip", "visitor", "lease_ip", "lease_subnet", "subnet_share", "heartbeat")
REFUSALS = ("agent",)


class Metrics:
    """Counters of this process, and what the engine says at each scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter("k50_http_requests", "HTTP requests by route, method and status.",
                                 ("route", "method", "status"), registry=self.registry)
        self._assignments = Counter("k50_assignments",
                                    "Visits answered, by pool and outcome (dynamic, shared, static, default, none).",
                                    ("pool", "outcome"), registry=self.registry)
        self._calls = Counter("k50_calls", "Calls attributed by this process, by status.", ("status",),
                              registry=self.registry)
        self._limited = Counter("k50_visits_rate_limited",
                                "Visits over a rate limit (given the site's number, nothing taken), by the limit hit.",
                                ("limit",), registry=self.registry)
        self._refused = Counter("k50_visits_refused",
                                "Visits refused a number outright (the page keeps its own), by reason (agent: not "
                                "a browser).", ("reason",), registry=self.registry)
        self._intents = Counter("k50_intents", "Call intents (a tap or copy of the number) posted, by outcome: "
                                "recorded, or why not (not_alive, bad_token, bad_kind, bad_body, limited, not_stored).",
                                ("outcome",), registry=self.registry)
        from .intents import OUTCOMES
        for outcome in OUTCOMES:
            self._intents.labels(outcome)
        for why in LIMITS:  # shown at 0 before the first: an alert can compare against them
            self._limited.labels(why)
        for why in REFUSALS:
            self._refused.labels(why)
        # a visit's counters by their labels: labels() takes a lock and builds a key each time
        self._children: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._scrape = threading.Lock()
        self._stats: dict[str, Any] | None = None
        self.registry.register(_Scraped(self))

    def _child(self, counter: Counter, *labels: str) -> Any:
        key = (id(counter),) + labels
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children[key] = counter.labels(*labels)
        return child

    def request(self, route: str, method: str, status: int) -> None:
        self._child(self._requests, route, method, str(status)).inc()

    def assigned(self, pool: str | None, outcome: str) -> None:
        self._child(self._assignments, pool or "", outcome).inc()

    def rate_limited(self, why: str) -> None:
        self._child(self._limited, why).inc()

    def refused(self, why: str) -> None:
        self._child(self._refused, why).inc()

    def intent(self, outcome: str) -> None:
        self._child(self._intents, outcome).inc()

    def called(self, status: str) -> None:
        self._child(self._calls, status).inc()

    def render(self, stats: dict[str, Any], accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of a scrape, in the format the scraper's Accept header asks for."""
        encoder, content_type = choose_encoder(accept or "")
        with self._scrape:  # one scrape at a time: the collector reads the stats of this one
            self._stats = stats
            try:
                return encoder(self.registry), content_type
            finally:
                self._stats = None


class _Scraped:
    """What is read at scrape time: the pools, the process, the events outbox."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # nothing to check for name clashes before the first scrape

    def collect(self) -> Iterator[Metric]:
        stats = self.metrics._stats
        if stats is None:
            return
        pools = sorted(stats.get("pools", {}).items())
        exhausted = CounterMetricFamily("k50_pool_exhausted",
                                        "Times a pool had no free number, by the policy applied (share or default).",
                                        labels=("pool", "policy"))
        for policy in ("share", "default"):
            key = "exhausted_shared" if policy == "share" else "exhausted_default"
            for name, p in pools:
                exhausted.add_metric((name, policy), p.get(key, 0))
        yield exhausted
        claims = CounterMetricFamily("k50_pool_claims", "Numbers leased, by pool.", labels=("pool",))
        for name, p in pools:
            claims.add_metric((name,), p.get("claims", 0))
        yield claims
        for state in ("numbers", "leased", "cooling", "free"):
            gauge = GaugeMetricFamily(f"k50_pool_{state}", f"Numbers of the pool that are {state} now."
                                      if state != "numbers" else "Numbers in the pool.", labels=("pool",))
            for name, p in pools:
                gauge.add_metric((name,), p.get(state, 0))
            yield gauge
        redis = stats.get("redis")
        if redis is not None:  # pools in Redis (state_url): is it answering, and what it cost
            yield GaugeMetricFamily("k50_redis_up", "Whether the pools' Redis answered this process's last round trip.",
                                    value=1 if redis["healthy"] else 0)
            yield CounterMetricFamily("k50_redis_unreachable", "Round trips to the pools' Redis that failed or timed "
                                      "out (new visitors then got the default number).", value=redis["unreachable"])
            if "claims" in redis:
                yield CounterMetricFamily("k50_redis_claims", "New visitors' claims this process sent to Redis.",
                                          value=redis["claims"])
                yield CounterMetricFamily("k50_redis_claim_round_trips", "Round trips that carried them (claims "
                                          "made while one was out go together in the next).",
                                          value=redis["claim_round_trips"])
            yield CounterMetricFamily("k50_redis_epoch_changes", "Restarts of Redis this process saw (its live "
                                      "leases re-asserted, free numbers quarantined).", value=redis["epoch_changes"])
        kept = CounterMetricFamily("k50_visits_not_substituted",
                                   "Visits that kept the page's own number: excluded by a rule, or no rule matched.",
                                   labels=("reason",))
        kept.add_metric(("excluded",), stats.get("excluded", 0))
        kept.add_metric(("unmatched",), stats.get("unmatched", 0))
        yield kept
        process = GaugeMetricFamily("k50_process", "This worker process (each of `serve --workers N` is scraped "
                                    "alone).", labels=("pid",))
        process.add_metric((str(os.getpid()),), 1)
        yield process
        yield GaugeMetricFamily("k50_holder_index_overflowed",
                                "1 once the pool segment's holder index overflowed (a look for a visitor's lease "
                                "then scans every number; start the segment afresh to clear it).",
                                value=1 if stats.get("holder_index_overflowed") else 0)
        events = stats.get("events")
        if events:
            outbox = GaugeMetricFamily("k50_events", "Outgoing call events (webhooks, GA4) in the outbox, by status.",
                                       labels=("status",))
            for status in ("pending", "delivered", "dead"):
                outbox.add_metric((status,), events.get(status, 0))
            yield outbox
            yield GaugeMetricFamily("k50_events_oldest_pending_seconds", "Age of the oldest event waiting to be sent.",
                                    value=events.get("oldest_pending_seconds", 0))
