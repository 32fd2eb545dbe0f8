"""What keeps a flood from draining a pool: rate limits, and the guard on new leases.

``RateLimiter``: a token bucket per key, ``rate`` requests a minute on average, ``burst`` at once
(the service's per-IP and per-visitor request limits).

``Guard`` decides who may *start* a lease; a visitor holding a live lease is answered before it
(see public.visit), so nothing here ever takes a number away from anyone:

* only a browser takes a dynamic number: an empty User-Agent, an HTTP library's, a headless or
  automated browser's, or one ``user-agents`` does not take for a desktop, mobile or tablet browser
  is refused (``agents``);
* a new visitor's first answer is provisional (``claims``): the decision, and a claim ticket
  instead of a number — an HMAC, with a per-deployment secret, over the visitor id, the pool, the
  client's network and an expiry. The snippet repeats the visit with the ticket and only then is
  the lease made. A page elsewhere that makes a visitor's browser post to /v1/visit cannot read the
  ticket (no CORS for it), so it starts nothing;
* new leases are limited per address (an IPv6 client by its /64) and per network (/24 IPv4, /48
  IPv6), and one network may hold at most ``subnet_share`` of a pool's numbers (at least
  ``subnet_min``) at once, counted here from the leases this process started (bounded memory);
* heartbeats for tokens this process did not give the caller's network are limited per address.

A loopback or unknown client address (a proxy not declared with ``trusted_proxies``, a Unix
socket, a test client) is one address for every visitor: the address and network limits do not
apply to it — they would make the whole site one visitor.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
import secrets as _secrets
import threading
from dataclasses import dataclass

from k50core import device_type


class RateLimiter:
    """Token buckets by key, bounded in memory (the oldest half is dropped when full)."""

    def __init__(self, per_minute: float, burst: float, max_keys: int = 100_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("rate limits need per_minute > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys = per_minute / 60.0, float(burst), max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def allow(self, key: str, now: float) -> bool:
        """Take one token for ``key`` at time ``now``; False when its bucket is empty."""
        with self._lock:
            tokens = self._tokens(key, now)
            ok = tokens >= 1.0
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                for old in list(self._buckets)[: self.max_keys // 2]:
                    del self._buckets[old]
            self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
            return ok

    def peek(self, key: str, now: float) -> bool:
        """Whether ``allow`` would let ``key`` through now (nothing taken)."""
        with self._lock:
            return self._tokens(key, now) >= 1.0

    def _tokens(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - when) * self.rate)


@dataclass(frozen=True)
class Protection:
    """The guard's settings (``create_app(protection=...)``; ``None`` there turns all of it off).

    Rates are (burst, per hour) for leases and (burst, per minute) for heartbeats."""

    agents: bool = True                                  # refuse non-browser User-Agents
    claims: bool = True                                  # provisional first answer + claim ticket
    claim_seconds: float = 120.0                         # how long a ticket may be claimed
    leases_per_ip: tuple[float, float] = (3.0, 20.0)     # new leases from one address
    leases_per_subnet: tuple[float, float] = (10.0, 60.0)  # ... from one /24 (IPv6 /48)
    subnet_share: float = 0.02                           # of a pool's numbers one network may hold
    subnet_min: int = 2                                  # ... but at least this many
    heartbeats_per_ip: tuple[float, float] = (60.0, 120.0)  # for tokens not given to that network here
    origins: bool = True                                 # refuse browsers' requests from other sites
    secret: bytes | None = None                       # claim tickets' key (default: see Guard)


# Not a visitor's browser: HTTP libraries and tools, headless and automated browsers, crawlers.
_NOT_A_BROWSER = re.compile(
    r"headless|phantomjs|puppeteer|playwright|selenium|webdriver|lighthouse|pagespeed|slimerjs|"
    r"curl|wget|python|httpx|aiohttp|requests|urllib|go-http|okhttp|java/|libwww|lwp::|axios|node-fetch|undici|"
    r"node\.js|postman|insomnia|httpie|scrapy|apache-httpclient|guzzle|restsharp|\bwrk\b|\bk6/|locust|jmeter|"
    r"bot\b|spider|crawl|preview|fetcher", re.I)
_BROWSER_DEVICES = frozenset(("desktop", "mobile", "tablet"))


def is_browser(user_agent: str | None) -> bool:
    """A User-Agent that a person's browser sends: ``Mozilla/…``, a desktop, mobile or tablet to
    ``user-agents`` (as the engine's enrichment classifies it), and no tool or automation in it."""
    if not user_agent or not user_agent.startswith("Mozilla/"):
        return False
    return device_type(user_agent) in _BROWSER_DEVICES and not _NOT_A_BROWSER.search(user_agent)


def networks_of(ip: str | None) -> tuple[str | None, str | None]:
    """(address key, network key) of a client address: an IPv4 address and its /24, an IPv6 /64 and
    its /48. (None, None) for an unknown or loopback address: no address limits apply to it."""
    if not ip:
        return None, None
    if ":" not in ip:
        if ip.startswith("127."):
            return None, None
        return ip, ip.rsplit(".", 1)[0] + ".0/24"
    try:
        addr = ipaddress.IPv6Address(ip)
    except ValueError:
        return None, None
    if addr.ipv4_mapped is not None:
        return networks_of(str(addr.ipv4_mapped))
    if addr.is_loopback:
        return None, None
    value = int(addr)
    return (str(ipaddress.IPv6Address(value >> 64 << 64)) + "/64",
            str(ipaddress.IPv6Address(value >> 80 << 80)) + "/48")


def deployment_secret(engine: object, given: bytes | None = None) -> bytes:
    """The claim tickets' key: the one given, else $K50CORE_CLAIM_SECRET, else derived from the pool
    segment's random key (every worker on the segment derives the same) or the Redis namespace's
    (every host on it derives the same), else random (one process)."""
    if given:
        return given
    env = os.environ.get("K50CORE_CLAIM_SECRET")
    if env:
        return env.encode("utf-8")
    pools = getattr(engine, "pools", None)
    # pools in Redis: the namespace's secret, the same on every host (a ticket may come back to another)
    key = getattr(pools, "shared_secret", b"") or getattr(getattr(pools, "segment", None), "key", b"")
    if key:
        return hmac.new(bytes(key), b"k50core claim tickets", hashlib.sha256).digest()
    return _secrets.token_bytes(32)


class Guard:
    """Who may start a lease (see the module's text). One per service process; thread-safe."""

    SWEEP_SECONDS = 10.0
    MAX_LEASES = 500_000  # leases remembered for the per-network share; far above any pool's size

    def __init__(self, settings: Protection, secret: bytes) -> None:
        self.settings = settings
        self._key = secret
        burst, per_hour = settings.leases_per_ip
        self.by_ip = RateLimiter(per_hour / 60.0, burst)
        burst, per_hour = settings.leases_per_subnet
        self.by_subnet = RateLimiter(per_hour / 60.0, burst)
        burst, per_minute = settings.heartbeats_per_ip
        self.beats = RateLimiter(per_minute, burst)
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, str, float]] = {}  # token -> (pool, network, until)
        self._held: dict[tuple[str, str], int] = {}           # (pool, network) -> live leases
        self._swept = float("-inf")
        self._agents: dict[str, bool] = {}                    # User-Agent -> is_browser

    # -- who --------------------------------------------------------------------------------------
    def refuses_agent(self, *agents: str | None) -> bool:
        """True when agent checks are on and any of the given User-Agents is not a browser's."""
        if not self.settings.agents:
            return False
        for ua in agents:
            if ua is None:
                continue
            ok = self._agents.get(ua)
            if ok is None:
                if len(self._agents) > 20_000:
                    self._agents.clear()
                ok = self._agents[ua] = is_browser(ua)
            if not ok:
                return True
        return not any(ua is not None for ua in agents)  # no User-Agent at all

    # -- claim tickets ------------------------------------------------------------------------------
    def ticket(self, visitor: str, pool: str, network: str | None, now: float) -> str:
        expires = int(now + self.settings.claim_seconds)
        return f"{expires:x}.{self._mac(expires, visitor, pool, network)}"

    def valid_ticket(self, ticket: str, visitor: str, pool: str, network: str | None, now: float) -> bool:
        head, _, mac = ticket.partition(".")
        try:
            expires = int(head, 16)
        except ValueError:
            return False
        if expires < now or len(head) > 12:
            return False
        return hmac.compare_digest(mac, self._mac(expires, visitor, pool, network))

    def _mac(self, expires: int, visitor: str, pool: str, network: str | None) -> str:
        msg = "\x1f".join(("1", str(expires), pool, network or "-", visitor)).encode("utf-8", "surrogateescape")
        return base64.urlsafe_b64encode(hmac.new(self._key, msg, hashlib.sha256).digest()[:18]).decode("ascii")

    # -- new leases ---------------------------------------------------------------------------------
    def lease_refusal(self, ip: str | None, pool: str, size: int, now: float, take: bool) -> str | None:
        """Why a new lease from ``ip`` in ``pool`` (of ``size`` numbers) is refused now, else None;
        ``take`` spends the address's and network's allowance (a claim), else only looks (a ticket)."""
        addr, network = networks_of(ip)
        if network is None:
            return None
        with self._lock:
            self._sweep(now)
            if self._held.get((pool, network), 0) >= self.share_cap(size):
                return "subnet_share"
        if not (self.by_ip.allow(addr, now) if take else self.by_ip.peek(addr, now)):  # type: ignore[arg-type]
            return "lease_ip"
        if not (self.by_subnet.allow(network, now) if take else self.by_subnet.peek(network, now)):
            return "lease_subnet"
        return None

    def share_cap(self, size: int) -> int:
        return max(self.settings.subnet_min, int(size * self.settings.subnet_share))

    def leased(self, token: str, pool: str, ip: str | None, until: float) -> None:
        """A lease this process started for a client at ``ip``, alive until ``until``."""
        network = networks_of(ip)[1]
        if network is None:
            return
        with self._lock:
            if token in self._leases or len(self._leases) >= self.MAX_LEASES:
                return
            self._leases[token] = (pool, network, until)
            self._held[(pool, network)] = self._held.get((pool, network), 0) + 1

    def renewed(self, token: str | None, until: float | None) -> None:
        """A lease seen alive again (a returning visit, a heartbeat): it is held until ``until``."""
        if token is None or until is None:
            return
        with self._lock:
            known = self._leases.get(token)
            if known is not None and until > known[2]:
                self._leases[token] = (known[0], known[1], until)

    def held(self, pool: str, network: str, now: float) -> int:
        """Live leases of ``pool`` this process started for ``network``."""
        with self._lock:
            self._sweep(now, force=True)
            return self._held.get((pool, network), 0)

    def _sweep(self, now: float, force: bool = False) -> None:
        if not force and now - self._swept < self.SWEEP_SECONDS:
            return
        self._swept = now
        gone = [t for t, (_, _, until) in self._leases.items() if until <= now]
        for token in gone:
            pool, network, _ = self._leases.pop(token)
            left = self._held[(pool, network)] - 1
            if left:
                self._held[(pool, network)] = left
            else:
                del self._held[(pool, network)]

    # -- heartbeats ---------------------------------------------------------------------------------
    def pool_of(self, token: str, ip: str | None) -> str | None:
        """The pool of a lease this process started for the network of ``ip``, else None."""
        known = self._leases.get(token)
        if known is None or known[1] != networks_of(ip)[1]:
            return None
        return known[0]

    def heartbeat_allowed(self, ip: str | None, now: float) -> bool:
        """A heartbeat for a token not known here: within the address's allowance?"""
        addr = networks_of(ip)[0]
        return addr is None or self.beats.allow(addr, now)
