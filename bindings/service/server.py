"""The HTTP protocol ``k50core serve`` runs uvicorn with: uvicorn's own, answering the requests it
cannot parse with the service's JSON error instead of a bare ``text/plain`` 400.

uvicorn refuses a request it cannot parse (a ``Content-Length: abc``, a malformed request line or
header) before any application sees it, and answers ``400`` in plain text. Every other bad request
gets ``{"error": ...}``; these get it too.
"""
from __future__ import annotations

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .errors import json_bytes

UNPARSABLE = {"error": "invalid HTTP request: a malformed request line, header or Content-Length"}


class JsonErrorsHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) with a JSON 400 for requests it
    cannot parse. A module-level class: ``uvicorn.run(..., workers=N)`` hands it to its workers."""

    def send_400_response(self, msg: str) -> None:
        body = json_bytes(UNPARSABLE)
        lines = [b"HTTP/1.1 400 Bad Request"]
        state = getattr(self, "server_state", None)
        for name, value in getattr(state, "default_headers", ()):  # date and server, as on every answer
            lines.append(name + b": " + value)
        lines += [b"content-type: application/json", b"content-length: " + str(len(body)).encode("ascii"),
                  b"connection: close"]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.transport.close()
