"""What a browser running the snippet does against /v1/visit, for tests that talk HTTP to the service.

A new visitor's first answer may be provisional (a ``claim`` ticket and no number); the snippet
then repeats the visit with the ticket and gets the number. ``browser_visit`` does both steps with
a real browser's User-Agent, as the snippet does."""
from __future__ import annotations

from typing import Any, Dict, Optional

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
BROWSER = {"User-Agent": CHROME}


def browser_visit(client: Any, path: str = "/v1/visit", headers: Optional[Dict[str, str]] = None,
                  **body: Any) -> Any:
    """POST the visit as the snippet does (a browser's User-Agent, the claim step when asked):
    the last response. ``client`` is a TestClient or an httpx client; ``path`` may be a full URL."""
    sent = dict(BROWSER, **(headers or {}))
    r = client.post(path, json=body, headers=sent)
    got = r.json() if r.status_code == 200 else {}
    if got.get("claim"):
        body = dict(body, claim=got["claim"], visitor_id=got["visitor_id"])
        r = client.post(path, json=body, headers=sent)
    return r
