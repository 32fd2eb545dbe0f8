"""Every test that takes ``core`` (or ``build``) runs over both builds.

The compiled build must be importable: a missing extension is an error,
not a skip, unless K50CORE_NO_EXTENSIONS asks for the reference only.
"""
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules beside the tests (pgserver, service_support)

from k50core import _impl

pytest_plugins = ["service_support"]  # its fixtures (clock, engine) for the service, snippet and telephony tests

# Hypothesis profiles, chosen with HYPOTHESIS_PROFILE (.ci/run sets ci); a test that sets its own
# max_examples keeps it under both. No deadline: a slow machine is not a failure. ``ci`` tries more
# examples of the rest, the same ones every run (a red build reproduces), and prints the blob that
# replays a failure; ``dev`` keeps hypothesis's random search and its example database.
_QUIET = [HealthCheck.too_slow]
settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=_QUIET)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BUILDS = ["compiled", "reference"]


@pytest.fixture(params=BUILDS)
def build(request):
    if request.param == "compiled" and os.environ.get("K50CORE_NO_EXTENSIONS"):
        pytest.skip("K50CORE_NO_EXTENSIONS=1 selects the reference build only")
    return request.param


@pytest.fixture
def core(build):
    return _impl.by_name(build)


def same_tag_key(*engines, key=b"k50core-test-key"):
    """Give engines in process memory one lease-tag key (each makes its own at random), so the two
    builds' tokens can be compared. Call before the first assign."""
    for engine in engines:
        engine.pools.table.set_tag_key(key)
    return engines


def both_cores():
    """(compiled, reference) modules for differential tests."""
    return _impl.by_name("compiled"), _impl.by_name("reference")


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (see tests/pgserver.py)."""
    from pgserver import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh empty store of each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "k50.db")
    return request.getfixturevalue("postgres").database()


@pytest.fixture(scope="session")
def redis_server():
    """A real redis-server for the session (see tests/redisserver.py)."""
    from redisserver import RedisServer

    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A state URL on the session's redis-server with a fresh namespace (pools of its own)."""
    return redis_server.url()
