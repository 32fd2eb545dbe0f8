"""What the service, snippet and telephony tests share: a settable clock and the demo engine."""
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from k50core import Engine
from k50core.cli import demo_config_path

T0 = 1_700_000_000.0


class Clock:
    """The service's injectable clock: tests move ``t``."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(tmp_path):
    """The demo config's engine over a SQLite file store in the test's directory."""
    e = Engine.from_config(demo_config_path(), store=str(tmp_path / "k50.db"))
    yield e
    e.close()


@contextmanager
def serving(app: Any, timeout: float = 30.0) -> Iterator[str]:
    """``app`` under a real uvicorn in a thread on a free port: its base URL, then it is stopped."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                            proxy_headers=False)  # as `k50core serve` runs it
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout)


def metric(text, name, **labels):
    """One sample's value in a /metrics scrape (None when it is not there), read by prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None
