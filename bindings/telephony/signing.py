"""Webhook signatures.

k50core's own scheme (any telephony system or script can sign this way)::

    X-K50-Timestamp: <unix seconds>
    X-K50-Signature: sha256=<hex of HMAC-SHA256(secret, timestamp + "." + raw body)>

A timestamp more than ``window`` seconds away from the clock (either way) is refused, and so is a
(timestamp, signature) pair seen before within the window (a replay). Several secrets may be
accepted at once, so a secret can be rotated without downtime.

Twilio's scheme (``X-Twilio-Signature``): base64 of HMAC-SHA1 keyed with the account's auth token
over the full URL Twilio requested followed by every POST parameter, sorted by name, as name and
value with no separators. It covers form bodies only (a JSON body, which Twilio's scheme leaves out,
would pass with a signature of the bare URL), so the service takes it on forms and refuses it on
anything else: a JSON call is signed with k50core's scheme. It carries no timestamp, so it cannot be
checked for replays here; the engine records each CallSid once, which makes a replayed callback
harmless.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

from k50core.errors import Error

TIMESTAMP_HEADER = "X-K50-Timestamp"
SIGNATURE_HEADER = "X-K50-Signature"
TWILIO_HEADER = "X-Twilio-Signature"
DEFAULT_WINDOW = 300.0
DEFAULT_REMEMBER = 10_000

Secret = str | bytes


def _key(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


class SignatureError(Error):
    """A request whose signature does not verify. ``reason`` is one of ``missing``, ``malformed``,
    ``stale``, ``bad signature``, ``replayed``, ``not a form`` (an X-Twilio-Signature on a body that is
    no form: it covers the URL and form fields only); the message never contains the expected value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def sign(secret: Secret, timestamp: int | str, body: bytes) -> str:
    """The ``X-K50-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(_key(secret), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: Secret, body: bytes, timestamp: int | None = None) -> dict:
    """The two headers a sender adds to a request carrying ``body``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


class Verifier:
    """Checks X-K50-Timestamp / X-K50-Signature against ``secrets``, within ``window`` seconds of
    ``now()``, refusing replays (the last ``remember`` accepted pairs still within the window)."""

    def __init__(self, secrets: Iterable[Secret], *, window: float = DEFAULT_WINDOW,
                 now: Callable[[], float] = time.time, remember: int = DEFAULT_REMEMBER) -> None:
        self.keys = [_key(s) for s in secrets if s]
        if not self.keys:
            raise ValueError("a Verifier needs at least one non-empty secret")
        if not window > 0 or remember < 1:
            raise ValueError("window must be positive and remember at least 1")
        self.window = float(window)
        self.now = now
        self.remember = int(remember)
        self._seen: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> None:
        """Returns when the request is genuine and fresh; raises SignatureError otherwise."""
        if not timestamp or not signature:
            missing = [h for h, v in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not v]
            raise SignatureError("missing", f"missing {' and '.join(missing)}")
        ts_text = timestamp.strip()
        if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= 12):
            raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be unix seconds")
        sig = signature.strip()
        if not sig.startswith("sha256=") or len(sig) != 71:
            raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
        ts = int(ts_text)
        now = float(self.now())
        if abs(now - ts) > self.window:
            when = "in the past" if ts < now else "in the future"
            raise SignatureError("stale", f"{TIMESTAMP_HEADER} is more than {int(self.window)} s {when}")
        given = sig.lower().encode("ascii", "replace")  # hex in either case
        ok = False
        for k in self.keys:  # every secret compared, each in constant time
            ok |= hmac.compare_digest(sign(k, ts_text, body).encode("ascii"), given)
        if not ok:
            raise SignatureError("bad signature", "signature does not match the body")
        with self._lock:
            self._forget(now)
            pair = (ts, sig.lower())
            if pair in self._seen:
                raise SignatureError("replayed", "this signed request was already received")
            self._seen[pair] = None
            while len(self._seen) > self.remember:
                self._seen.popitem(last=False)

    def _forget(self, now: float) -> None:
        """Drop pairs whose timestamp left the window: they would be refused as stale anyway."""
        stale = [p for p in self._seen if p[0] < now - self.window]
        for p in stale:
            del self._seen[p]


# -- Twilio ---------------------------------------------------------------------------------------
def twilio_signature(auth_token: Secret, url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """Twilio's X-Twilio-Signature for a request to ``url`` with POST ``params`` (name, value pairs)."""
    data = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(_key(auth_token), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_twilio(auth_token: Secret, url: str, params: Sequence[tuple[str, str]],
                  signature: str | None) -> None:
    """Returns when ``signature`` is Twilio's for this request; raises SignatureError otherwise."""
    if not signature:
        raise SignatureError("missing", f"missing {TWILIO_HEADER}")
    expected = twilio_signature(auth_token, url, params).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace")):
        raise SignatureError("bad signature", f"{TWILIO_HEADER} does not match the request")
