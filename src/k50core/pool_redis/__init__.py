"""Number pools shared by many hosts through Redis (``Engine.from_config(cfg, state_url="redis://…")``)."""
from .client import connect, parse_url
from .pools import RedisPools, Unavailable

__all__ = ["RedisPools", "Unavailable", "connect", "parse_url"]
