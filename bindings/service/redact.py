"""Secrets that travel in URLs, kept out of uvicorn's access log.

amoCRM signs nothing, so its webhook carries the config's ``crm.amocrm_token`` as ``?token=``; the
access log (on at ``k50core serve``'s default level) writes every path with its query. A filter on
that logger writes such a value as ``***``.
"""
from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_SECRET = re.compile(r"(?i)((?:^|[?&;])(?:token|api_key|key|secret|application_token)=)[^&;#\s]*")


def redacted(text: str) -> str:
    """``text`` with the value of every token-like query field replaced by ``***``."""
    return _SECRET.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Rewrites a log record's string arguments (uvicorn's access line passes the path with its
    query as one) and message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redacted(record.msg)
        return True


def redact_access_log() -> None:
    """Installs the filter on uvicorn's access logger, once (uvicorn's own logging set-up, which
    may run later, keeps a logger's filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
