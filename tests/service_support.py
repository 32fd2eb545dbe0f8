"""What the service, snippet and telephony tests share: a settable clock and the demo engine."""
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
