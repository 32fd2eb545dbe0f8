"""The connection to Redis for the pools: URL forms, short timeouts, the function library.

``redis://host:6379/0`` and ``rediss://…`` (TLS) reach one server; ``redis+cluster://h1:p1,h2:p2``
a Redis Cluster through its seed nodes. Query options: ``namespace`` (default ``k50``: the keys
are ``{k50:<pool>}:…`` and ``{k50}:registry``) and ``timeout`` (seconds, default 0.25: a
visitor waits at most this long before getting the default number when Redis is unreachable).
"""
from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import ConfigError

DEFAULT_NAMESPACE = "k50"
DEFAULT_TIMEOUT = 0.25
LIBRARY = resources.files(__package__).joinpath("pool.lua").read_text(encoding="utf-8")


def _redis() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - the extra is installed in the tests
        raise ConfigError([("state_url",
                            "a Redis state needs the redis client: pip install 'k50core[redis]'")]) from None
    return redis


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """(URL for the client, options) of a state URL; ConfigError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "redis+cluster", "rediss+cluster", "unix"):
        raise ConfigError([("state_url", f"{parts.scheme or url!r}: expected redis://, rediss://, "
                                         "redis+cluster://host:port,host:port or unix://")])
    query = parse_qs(parts.query)
    options: dict[str, Any] = {"namespace": DEFAULT_NAMESPACE, "timeout": DEFAULT_TIMEOUT}
    if "namespace" in query:
        ns = query.pop("namespace")[-1]
        if not ns or any(c in ns for c in "{}: "):
            raise ConfigError([("state_url.namespace", f"{ns!r}: expected a word without braces, colons or spaces")])
        options["namespace"] = ns
    if "timeout" in query:
        raw = query.pop("timeout")[-1]
        try:
            options["timeout"] = float(raw)
            assert 0 < options["timeout"] <= 60
        except (ValueError, AssertionError):
            raise ConfigError([("state_url.timeout", f"{raw!r}: expected seconds, more than 0, at most 60")]) from None
    rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")), options


def connect(url: str, timeout: Any = None, load: bool = True) -> tuple[Any, dict[str, Any]]:
    """A client (one server or a cluster) with the library loaded, and the URL's options;
    ``timeout`` (seconds) instead of the URL's, for set-up round trips that may take long."""
    redis = _redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    target, options = parse_url(url)
    timeout = options["timeout"] if timeout is None else timeout
    common = dict(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                  decode_responses=False)
    if "+cluster" in target.split("://", 1)[0]:
        from redis.cluster import ClusterNode, RedisCluster

        scheme, netloc = target.split("://", 1)
        nodes = []
        for seed in netloc.split("/", 1)[0].split(","):
            host, _, port = seed.rpartition(":")
            nodes.append(ClusterNode(host or "127.0.0.1", int(port or 6379)))
        client = RedisCluster(startup_nodes=nodes, ssl=scheme.startswith("rediss"), **common)
        options["cluster"] = True
    else:
        client = redis.Redis.from_url(target, **common)
        options["cluster"] = False
    if load:
        load_library(client, options["cluster"])
    return client, options


def load_library(client: Any, cluster: bool) -> None:
    """FUNCTION LOAD REPLACE on the server (every primary of a cluster): idempotent, and the
    functions then persist with the data (AOF / RDB)."""
    if cluster:
        for node in client.get_primaries():
            client.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY, target_nodes=node)
    else:
        client.execute_command("FUNCTION", "LOAD", "REPLACE", LIBRARY)


def pool_keys(namespace: str, pool: str) -> tuple[bytes, bytes, bytes, bytes]:
    """The four keys of one pool, one hash tag: free, rec, who, meta."""
    tag = f"{{{namespace}:{pool}}}"
    return tuple((tag + part).encode("utf-8") for part in (":free", ":rec", ":who", ":meta"))  # type: ignore[return-value]


def registry_key(namespace: str) -> bytes:
    return (f"{{{namespace}}}:registry").encode()
