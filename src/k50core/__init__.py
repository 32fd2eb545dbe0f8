"""k50core: call tracking with a compiled core."""
from ._impl import IMPLEMENTATION
from .errors import ConfigError

__all__ = ["IMPLEMENTATION", "ConfigError"]
