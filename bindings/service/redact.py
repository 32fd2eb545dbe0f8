"""Secrets that travel in URLs kept out of the logs.

amoCRM's webhooks carry no signature and no custom header: the only secret they can bring is in
the URL, as the last path segment of ``/v1/crm/amocrm/SECRET``. uvicorn's access log writes every
request's path, and so would a logged error: this filter rewrites such paths (and any ``token=`` /
``secret=`` query value) to ``[redacted]`` in every record of the loggers it is installed on,
whatever the secret's value, before any handler formats them.
"""
from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
_PATH = re.compile(r"(/v1/crm/amocrm/)[^/?#\s\"']+")
_QUERY = re.compile(r"([?&](?:token|secret|key|api_key)=)[^&#\s\"']*", re.IGNORECASE)
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "k50core.service", "k50core")


def redact(text: str) -> str:
    """``text`` with URL secrets replaced by ``[redacted]``."""
    if "/v1/crm/amocrm/" in text:
        text = _PATH.sub(r"\1" + REDACTED, text)
    if "=" in text:
        text = _QUERY.sub(r"\1" + REDACTED, text)
    return text


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments with ``redact`` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Put the filter on the loggers that may see a request's URL (once each; uvicorn's logging
    set-up keeps a logger's filters)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
