"""The service's reports, deals and CRM webhooks over real HTTP (uvicorn), with recorded payloads of
amoCRM's and Bitrix24's webhooks (tests/crm_payloads) and a stand-in for the Bitrix24 portal's REST
API serving its recorded answers."""
import json
from pathlib import Path

import httpx
import pytest
from service_support import Clock, serving
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from k50core import ConfigError, Engine
from k50core.bindings.service import create_app

PAYLOADS = Path(__file__).parent / "crm_payloads"
KEY = "reports-test-key-0123456789"
AMO_TOKEN = "amo-Secret_0123456789abcdefghijklmnopqrstuv"  # per install, URL-safe, >= 32
B24_TOKEN = "w7s1o3gq8vyk5rbb9tfx2qj0n6v3e4cd"   # the recorded payload's application token
T0 = 1_764_547_200.0  # 2025-12-01 00:00 UTC
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def config(rest_url=None):
    crm = {"match_days": 30, "amocrm_token": AMO_TOKEN, "bitrix24_application_token": B24_TOKEN}
    if rest_url:
        crm["bitrix24_rest_url"] = rest_url
    return {"pools": {"ads": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002"]},
                      "site": {"type": "static", "numbers": ["+74950000100"]}},
            "rules": [{"name": "paid", "when": {"query.utm_medium": "cpc"}, "pool": "ads"},
                      {"name": "rest", "pool": "site"}], "crm": crm}


def payload(name):
    return (PAYLOADS / name).read_bytes().strip()


@pytest.fixture
def portal():
    """The Bitrix24 portal's REST API, answering what a portal answered (recorded), noting the asks."""
    asked = []

    def answer(name):
        async def endpoint(request):
            asked.append((name, request.query_params.get("id")))
            return JSONResponse(json.loads((PAYLOADS / f"bitrix24_{name}.json").read_text()))
        return endpoint
    app = Starlette(routes=[Route("/rest/1/secretkey/crm.deal.get.json", answer("crm.deal.get")),
                            Route("/rest/1/secretkey/crm.contact.get.json", answer("crm.contact.get"))])
    with serving(app) as base:
        yield f"{base}/rest/1/secretkey/", asked


@pytest.fixture
def service(store_url, portal):
    engine = Engine.from_config(config(portal[0]), store=store_url)
    clock = Clock(T0 + 20 * 3600)
    app = create_app(engine, api_keys=[KEY], now=clock, rate_limits=None, protection=None)
    with serving(app) as base:
        yield base, engine, clock
    engine.close()


def _calls(engine):
    """Calls from the CRM payloads' phones before their deals; a paid visit that called."""
    got = engine.assign({"url": "https://shop.example/?utm_source=yandex&utm_medium=cpc&utm_campaign=sofas",
                         "visitor_id": "v1", "ip": "5.6.7.8", "user_agent": UA}, now=T0 + 11 * 3600)
    for call_id, number, caller, at in [("c-anna", got.number, "+79165551234", T0 + 11 * 3600 + 60),
                                        ("c-igor", "+74950000100", "+79267008090", T0 + 12 * 3600),
                                        ("c-bed", "+74950000100", "+79031112233", T0 + 12 * 3600 + 30)]:
        engine.attribute({"call_id": call_id, "number": number, "caller": caller, "started_at": at,
                          "duration_seconds": 90, "answered": True}, now=T0 + 13 * 3600)


def test_amocrm_a_lead_waits_for_its_contacts_phone(service):
    base, engine, _ = service
    _calls(engine)
    url = f"{base}/v1/crm/amocrm/{AMO_TOKEN}"
    first = httpx.post(url, content=payload("amocrm_leads_add.form"), headers=FORM)
    assert first.status_code == 200, first.text
    assert first.json()["waiting"] == ["23925633"] and first.json()["imported"] == []
    contact = httpx.post(url, content=payload("amocrm_contacts_add.form"), headers=FORM).json()
    assert contact["contacts"] == 1 and contact["imported"] == ["23925633"] and contact["unattributed"] == []
    won = httpx.post(url, content=payload("amocrm_leads_status_won.form"), headers=FORM).json()
    assert won["updated"] == ["23925633"] and won["waiting"] == []       # the phone is the deal's from before
    embedded = httpx.post(url, content=payload("amocrm_leads_add_with_contact.form"), headers=FORM).json()
    assert embedded["imported"] == ["23925700"]
    rows = httpx.get(f"{base}/v1/reports?by=query.utm_campaign,status", headers={"X-API-Key": KEY}).json()["rows"]
    sofas = [r for r in rows if r["query.utm_campaign"] == "sofas"][0]
    assert (sofas["calls"], sofas["deals"], sofas["won"], sofas["revenue"]) == (1, 1, 1, 52000.0)
    static = [r for r in rows if r["status"] == "static"][0]
    assert (static["calls"], static["deals"], static["revenue"]) == (2, 1, 31000.0)


def test_amocrm_needs_its_path_secret_or_a_key(service):
    base, _, _ = service
    body = payload("amocrm_leads_add.form")
    assert httpx.post(f"{base}/v1/crm/amocrm", content=body, headers=FORM).status_code == 401
    wrong = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN[:-1]}x", content=body, headers=FORM)
    assert wrong.status_code == 401 and wrong.json()["problems"][0]["field"] == "path"
    short = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN[:8]}", content=body, headers=FORM)
    assert short.status_code == 401
    # the old form, the secret in the query, is refused even when right: it is what logs keep
    query = httpx.post(f"{base}/v1/crm/amocrm?token={AMO_TOKEN}", content=body, headers={**FORM, "X-API-Key": KEY})
    assert query.status_code == 400 and query.json()["problems"][0]["field"] == "token"
    assert httpx.post(f"{base}/v1/crm/amocrm", content=body, headers={**FORM, "X-API-Key": KEY}).status_code == 200
    bad = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}", content=b"leads[add]=1&leads[add][0][id]=2",
                     headers=FORM)
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "leads[add][0][id]"
    big = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}", content=b"a=" + b"x" * 300_000, headers=FORM)
    assert big.status_code == 413


def test_amocrm_webhooks_of_another_account_are_refused(store_url):
    """With crm.amocrm_subdomain set, a webhook must name that account (amoCRM sends account[subdomain]
    in every one): the URL leaked to another account, or a payload from one, imports nothing."""
    raw = config()
    raw["crm"]["amocrm_subdomain"] = "SofaShop"  # compared without case
    engine = Engine.from_config(raw, store=store_url)
    app = create_app(engine, api_keys=[KEY], now=Clock(T0 + 20 * 3600), rate_limits=None, protection=None)
    body = payload("amocrm_leads_add.form")
    try:
        with serving(app) as base:
            url = f"{base}/v1/crm/amocrm/{AMO_TOKEN}"
            other = body.replace(b"account%5Bsubdomain%5D=sofashop", b"account%5Bsubdomain%5D=rival")
            missing = body.replace(b"account%5Bsubdomain%5D=sofashop&", b"")
            twice = body + b"&account%5Bsubdomain%5D=rival"
            for bad in (other, missing, twice):
                got = httpx.post(url, content=bad, headers=FORM)
                assert got.status_code == 403 and got.json()["problems"][0]["field"] == "account[subdomain]"
            assert engine.store.conn.execute("SELECT COUNT(*) FROM deals").fetchone()[0] == 0
            assert httpx.post(url, content=body, headers=FORM).status_code == 200
    finally:
        engine.close()


@pytest.mark.parametrize("bad", ["sofa shop", "-sofa", "x" * 64, "", 5])
def test_amocrm_subdomain_is_checked_in_the_config(bad):
    raw = config()
    raw["crm"]["amocrm_subdomain"] = bad
    with pytest.raises(ConfigError) as e:
        Engine.from_config(raw)
    assert "crm.amocrm_subdomain" in str(e.value)


def test_amocrm_webhooks_off_without_a_configured_secret(store_url):
    raw = config()
    del raw["crm"]["amocrm_token"]
    engine = Engine.from_config(raw, store=store_url)
    app = create_app(engine, api_keys=[KEY], rate_limits=None, protection=None)
    try:
        with serving(app) as base:
            got = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}", content=payload("amocrm_leads_add.form"),
                             headers=FORM)
            assert got.status_code == 401 and "no crm.amocrm_token" in got.json()["error"]
    finally:
        engine.close()


@pytest.mark.parametrize("token", ["short-0123456789", "has space 0123456789abcdefghijklmnopq",
                                   "slash/0123456789abcdefghijklmnopqrstu"])
def test_the_amocrm_secret_must_be_long_and_url_safe(token):
    from k50core.config.reporting import parse_crm

    _, problems = parse_crm({"amocrm_token": token})
    assert [p[0] for p in problems] == ["crm.amocrm_token"] and "32" in problems[0][1]
    assert parse_crm({"amocrm_token": AMO_TOKEN})[1] == []


def test_the_amocrm_secret_never_reaches_the_logs(tmp_path):
    """`k50core serve` at log level info (uvicorn's access log on): the secret posted in the path and
    in the query, and a request that fails inside the service, leave no trace of it in its output."""
    import os
    import subprocess
    import sys
    import tempfile
    import time

    import yaml
    from test_cli import free_port, stop

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config()))
    port, out = free_port(), tempfile.TemporaryFile(mode="w+")  # uvicorn's access log goes to stdout
    proc = subprocess.Popen([sys.executable, "-m", "k50core.cli", "serve", "--port", str(port), "--config", str(path),
                             "--store", str(tmp_path / "k50.db"), "--api-key", KEY, "--log-level", "info",
                             "--no-rate-limits"], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                            stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        assert proc.poll() is None, "serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        ok = httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}", content=payload("amocrm_leads_add.form"), headers=FORM)
        assert ok.status_code == 200, ok.text
        assert httpx.post(f"{base}/v1/crm/amocrm?token={AMO_TOKEN}", content=b"", headers=FORM).status_code == 400
        assert httpx.post(f"{base}/v1/crm/amocrm/{AMO_TOKEN}", content=b"\xff", headers=FORM).status_code in (400, 422)
    finally:
        stop(proc)
    out.seek(0)
    said = out.read()
    assert "POST /v1/crm/amocrm/[redacted]" in said, said   # the access log was on, and redacted
    assert "/v1/crm/amocrm?token=[redacted]" in said, said
    assert AMO_TOKEN not in said and AMO_TOKEN[:16] not in said


def test_the_redaction_filter_rewrites_any_record_it_sees():
    """What the service's loggers pass to their handlers, with the filter installed by create_app."""
    import logging

    from k50core.bindings.service.redact import install

    install()
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    loggers = [logging.getLogger("uvicorn.access"), logging.getLogger("k50core.service")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        loggers[0].warning('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "POST", f"/v1/crm/amocrm/{AMO_TOKEN}", "1.1", 200)
        loggers[1].error(f"failed on /v1/crm/amocrm/{AMO_TOKEN}?x=1&token=abc")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    text = "\n".join(seen)
    assert len(seen) == 2 and AMO_TOKEN not in text and "token=abc" not in text
    assert text.count("/v1/crm/amocrm/[redacted]") == 2 and "token=[redacted]" in text


def test_bitrix24_deal_read_from_the_portal(service, portal):
    base, engine, _ = service
    _calls(engine)
    got = httpx.post(f"{base}/v1/crm/bitrix24", content=payload("bitrix24_oncrmdealadd.form"), headers=FORM)
    assert got.status_code == 200, got.text
    assert got.json()["imported"] == ["4711"] and got.json()["event"] == "ONCRMDEALADD"
    assert portal[1] == [("crm.deal.get", "4711"), ("crm.contact.get", "903")]
    from k50core.crm.deals import deal_of
    d = deal_of(engine.store, "4711")
    assert (d["call_id"], d["status"], d["amount"], d["currency"], d["created_at"]) == \
        ("c-igor", "won", 27500.0, "RUB", T0 + 13 * 3600)


def test_bitrix24_checks_the_application_token(service, portal):
    base, _, _ = service
    forged = payload("bitrix24_oncrmdealadd.form").replace(B24_TOKEN.encode(), b"forged-token-000000")
    got = httpx.post(f"{base}/v1/crm/bitrix24", content=forged, headers=FORM)
    assert got.status_code == 401 and got.json()["problems"][0]["field"] == "auth[application_token]"
    assert portal[1] == []  # nothing asked of the portal for a forged event
    other = payload("bitrix24_oncrmdealadd.form").replace(b"ONCRMDEALADD", b"ONCRMLEADADD")
    assert httpx.post(f"{base}/v1/crm/bitrix24", content=other, headers=FORM).json()["problems"][0]["field"] == "event"


def test_post_deals(service):
    base, engine, _ = service
    _calls(engine)
    url, key = f"{base}/v1/deals", {"X-API-Key": KEY}
    deals = [{"deal_id": "api-1", "phone": "+79267008090", "created_at": T0 + 13 * 3600, "amount": 10, "status": "won"},
             {"deal_id": "api-2", "phone": "bad", "created_at": T0, "amount": 1, "status": "won"}]
    assert httpx.post(url, json=deals).status_code == 401
    got = httpx.post(url, json={"deals": deals}, headers=key)
    assert got.status_code == 200 and got.json()["imported"] == ["api-1"] and got.json()["refused"][0]["row"] == 1
    none = httpx.post(url, json=deals[1:], headers=key)
    assert none.status_code == 422 and none.json()["problems"][0]["field"] == "deals[0].phone"
    assert httpx.post(url, json={"deals": "x"}, headers=key).json()["problems"][0]["field"] == "deals"
    assert httpx.post(url, content=b"[" + b" " * (1024 * 1024 + 10) + b"]", headers=key).status_code == 413
    assert httpx.post(url, content=b"{nope", headers=key).status_code == 400


def test_reports_over_http_equal_the_engines(service):
    base, engine, clock = service
    _calls(engine)
    key = {"X-API-Key": KEY}
    assert httpx.get(f"{base}/v1/reports?by=source").status_code == 401
    got = httpx.get(f"{base}/v1/reports", params={"by": "source,query.utm_campaign", "since": "2025-12-01"},
                    headers=key)
    assert got.status_code == 200
    assert got.json()["rows"] == engine.report("source,query.utm_campaign", since=T0)
    assert got.headers["cache-control"] == "private, no-store"  # the business's figures: no shared cache
    csv_got = httpx.get(f"{base}/v1/reports?by=rule&format=csv", headers=key)
    assert csv_got.headers["cache-control"] == "private, no-store"
    csv_text = csv_got.text
    assert csv_text.splitlines()[0].startswith("rule,unmatched,visits,calls")
    bad = httpx.get(f"{base}/v1/reports?by=nope&since=yesterday", headers=key)
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "since"
    usage_got = httpx.get(f"{base}/v1/pools/usage?since={T0}&until={T0 + 86400}&step=3600", headers=key)
    assert usage_got.headers["cache-control"] == "private, no-store"
    usage = usage_got.json()
    assert list(usage["pools"]) == ["ads"] and len(usage["pools"]["ads"]["steps"]) == 24
    assert usage["pools"]["ads"] == engine.pool_usage("ads", T0, T0 + 86400, 3600)
    assert httpx.get(f"{base}/v1/pools/usage?pool=zzz", headers=key).json()["problems"][0]["field"] == "pool"
    doc = httpx.get(f"{base}/openapi.json").json()
    assert {"/v1/reports", "/v1/pools/usage", "/v1/deals", "/v1/crm/amocrm", "/v1/crm/bitrix24"} <= set(doc["paths"])
