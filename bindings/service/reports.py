"""The service's reports and deals: ``GET /v1/reports``, ``GET /v1/pools/usage``, ``POST /v1/deals``
(API key), and the CRMs' webhooks ``POST /v1/crm/amocrm/SECRET`` (the config's ``crm.amocrm_token`` as
the last path segment: amoCRM signs nothing and sends no header of ours, so the URL is the only
channel; compared in constant time and redacted from every log, see redact.py; ``POST /v1/crm/amocrm``
takes an API key in a header instead) and ``POST /v1/crm/bitrix24`` (the application token Bitrix24
puts in the body, see k50core.crm.bitrix24).

Bodies are bounded (deals: 1 MiB and 5,000 rows; webhooks: 256 KiB); bad input is a 4xx naming the
field. The report GETs also open to the dashboard's session cookie (see dashboard.py).
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from k50core.crm import DealError, amocrm, bitrix24
from k50core.crm.forms import decode
from k50core.report import ReportError
from k50core.report.export import report_csv

from .bodies import DEALS, check
from .errors import ApiError, body_json, query_error

DEALS_BODY = 1024 * 1024
WEBHOOK_BODY = 256 * 1024
MAX_DEALS = 5000
Handler = Callable[[Request], Awaitable[Response]]
# A report read with a dashboard session is the business's figures: no shared cache may keep it.
PRIVATE = {"Cache-Control": "private, no-store"}


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (413 beyond, declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"body larger than {limit} bytes")
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"body larger than {limit} bytes")
    return body


def parse_when(text: str | None, name: str, problems: list[tuple[str, str]]) -> float | None:
    """Unix seconds, or a date / time in ISO 8601 (UTC unless it says otherwise)."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
        if math.isfinite(value) and 0 <= value < 1e11:
            return value
    except ValueError:
        try:
            when = datetime.fromisoformat(text[:40].replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return when.timestamp()
        except ValueError:
            pass
    problems.append((name, "expected unix seconds or a date (2026-12-01) or time in ISO 8601"))
    return None


def _problem(exc: Exception) -> tuple[str, str]:
    """A ReportError's "field: message" as a problem."""
    field, _, message = str(exc).partition(": ")
    return field, message


class ReportRoutes:
    def __init__(self, svc: Any, session_ok: Callable[[Request], Awaitable[bool]]) -> None:
        self.svc = svc
        self.engine = svc.engine
        self.session_ok = session_ok

    async def reader(self, request: Request) -> None:
        """An API key, or the dashboard's session cookie."""
        if not await self.session_ok(request):
            self.svc.authorise(request)

    async def reports(self, request: Request) -> Response:
        await self.reader(request)
        q = request.query_params
        problems: list[tuple[str, str]] = []
        since = parse_when(q.get("since"), "since", problems)
        until = parse_when(q.get("until"), "until", problems)
        fmt = q.get("format") or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")
        if fmt not in ("json", "csv"):
            problems.append(("format", "expected json or csv"))
        by = q.get("by") or "source"
        if len(by) > 400:
            problems.append(("by", "too long"))
        if problems:
            raise query_error(problems)
        try:
            rows = await self.svc.store.run(self.engine.report, by, since, until)
        except ReportError as exc:
            raise query_error([_problem(exc)]) from None
        dims = [d.strip() for d in by.split(",") if d.strip()]
        if fmt == "csv":
            return Response(report_csv(rows, dims), media_type="text/csv; charset=utf-8", headers=PRIVATE)
        return JSONResponse({"by": dims, "since": since, "until": until, "rows": rows}, headers=PRIVATE)

    async def pool_usage(self, request: Request) -> Response:
        await self.reader(request)
        q = request.query_params
        problems: list[tuple[str, str]] = []
        now = float(self.svc.now())
        until = parse_when(q.get("until"), "until", problems)
        since = parse_when(q.get("since"), "since", problems)
        until = now if until is None else until
        since = until - 86400.0 if since is None else since
        step = 3600.0
        if q.get("step"):
            try:
                step = float(q["step"])
                if not math.isfinite(step):
                    raise ValueError
            except ValueError:
                problems.append(("step", "expected seconds"))
        names = [q["pool"]] if q.get("pool") else [n for n, p in self.engine.config.pools.items()
                                                   if p.type == "dynamic"]
        if problems:
            raise query_error(problems)
        out = {}
        for name in names:
            try:
                out[name] = await self.svc.store.run(self.engine.pool_usage, name, since, until, step)
            except ReportError as exc:
                raise query_error([_problem(exc)]) from None
        return JSONResponse({"since": since, "until": until, "step": step, "pools": out}, headers=PRIVATE)

    async def deals(self, request: Request) -> Response:
        self.svc.authorise(request)  # before the body is read
        data = body_json(await read_limited(request, DEALS_BODY))
        rows = data if isinstance(data, list) else check(DEALS, data, "invalid deals")["deals"]
        if len(rows) > MAX_DEALS:
            raise ApiError(413, f"more than {MAX_DEALS} deals in one request: send them in parts")
        result = await self.svc.store.run(self.engine.import_deals, rows, float(self.svc.now()), "api")
        out = result.as_dict()
        if rows and not result.imported and not result.updated:
            problems = [(f"deals[{r['row']}].{p['field']}", p["message"]) for r in result.refused
                        for p in r["problems"]][:100]
            raise ApiError(422, "no deal imported", problems)
        return JSONResponse(out)

    async def amocrm(self, request: Request) -> Response:
        """An amoCRM webhook: authorised by the path's secret (``/v1/crm/amocrm/SECRET``) or, on the bare
        path, by an API key. A secret in the query is refused: query strings end up in more logs."""
        if "token" in request.query_params:
            raise ApiError(400, "the amoCRM secret goes in the path, not the query",
                           [("token", "use POST /v1/crm/amocrm/SECRET (crm.amocrm_token) as amoCRM's webhook URL")])
        given = request.path_params.get("secret")
        if given is None:
            self.svc.authorise(request)
        else:
            token = self.engine.config.crm.get("amocrm_token")
            if not token:
                raise ApiError(401, "amoCRM webhooks are off: the config has no crm.amocrm_token",
                               [("path", "not configured")])
            if not _same_secret(given, token):
                raise ApiError(401, "wrong amoCRM webhook secret", [("path", "not the config's crm.amocrm_token")])
        body = await read_limited(request, WEBHOOK_BODY)
        try:
            pairs = decode(body)
            amocrm.check_account(pairs, self.engine.config.crm.get("amocrm_subdomain"))
            engine = self.engine
            result = await self.svc.store.run(lambda: amocrm.handle(
                engine.store, pairs, region=engine.config.region, match_days=engine.config.crm["match_days"],
                now=float(self.svc.now())))
        except amocrm.WrongAccount as exc:
            raise ApiError(403, "a webhook of another amoCRM account", exc.problems) from None
        except DealError as exc:
            raise ApiError(422, "invalid amoCRM webhook", exc.problems) from None
        return JSONResponse(result)

    async def bitrix24(self, request: Request) -> Response:
        crm = self.engine.config.crm
        if not crm.get("bitrix24_application_token"):
            raise ApiError(401, "Bitrix24 webhooks are off: the config has no crm.bitrix24_application_token",
                           [("auth[application_token]", "not configured")])
        body = await read_limited(request, WEBHOOK_BODY)
        try:
            event, deal_id = bitrix24.event_of(decode(body), crm["bitrix24_application_token"])
        except bitrix24.TokenError as exc:
            raise ApiError(401, "wrong application token", exc.problems) from None
        except DealError as exc:
            raise ApiError(422, "invalid Bitrix24 webhook", exc.problems) from None
        if not crm.get("bitrix24_rest_url"):
            raise ApiError(422, "the deal's fields cannot be read", [
                ("crm.bitrix24_rest_url", "not configured: the outgoing webhook carries only the deal's id")])

        def run() -> Any:
            row = bitrix24.deal_row(crm["bitrix24_rest_url"], deal_id)
            return self.engine.import_deals([row], float(self.svc.now()), "bitrix24")
        try:
            result = await self.svc.store.run(run)
        except DealError as exc:
            raise ApiError(502, "the portal could not be read", exc.problems) from None
        out = result.as_dict()
        out["event"] = event
        if result.refused:
            raise ApiError(422, "deal refused", [(p["field"], p["message"]) for p in result.refused[0]["problems"]])
        return JSONResponse(out)


def _same_secret(given: str, token: str) -> bool:
    """Constant time whatever the lengths: the digests are compared, not the texts."""
    a = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(a, hashlib.sha256(token.encode("utf-8")).digest())


def report_routes(svc: Any, route: Callable[..., Route], session_ok: Callable[[Request], Awaitable[bool]]
                  ) -> list[Route]:
    """The routes, each wrapped by the app's ``route`` (errors, metrics); authorised in their handlers."""
    r = ReportRoutes(svc, session_ok)
    return [route("/v1/reports", r.reports, ["GET"]), route("/v1/pools/usage", r.pool_usage, ["GET"]),
            route("/v1/deals", r.deals, ["POST"]), route("/v1/crm/amocrm", r.amocrm, ["POST"]),
            route("/v1/crm/amocrm/{secret}", r.amocrm, ["POST"]),
            route("/v1/crm/bitrix24", r.bitrix24, ["POST"])]
