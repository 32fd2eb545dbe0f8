"""Two ``k50core serve`` processes (two ports, as two hosts behind a load balancer) sharing one
Redis for the pools and one PostgreSQL for the history: a claim ticket from one redeemed on the
other, a visitor seen by one and their call posted to the other, attributed to them."""
import os
import subprocess
import sys
import time

import httpx
from drain_support import BROWSER, browser_visit
from redisserver import free_port

from k50core.cli import demo_config_path

KEY = "serve-key"
CAMPAIGN = "https://shop.example.ru/sale?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"


def start(port, store, state_url):
    return subprocess.Popen([sys.executable, "-m", "k50core.cli", "serve", "--config", str(demo_config_path()),
                             "--store", store, "--state-url", state_url, "--port", str(port), "--api-key", KEY,
                             "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))


def wait_up(proc, base):
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "k50core serve did not start"
        time.sleep(0.1)


def test_a_visit_on_one_host_and_its_call_on_the_other(postgres, redis_url):
    store = postgres.database()
    ports = [free_port(), free_port()]
    procs = [start(p, store, redis_url) for p in ports]
    try:
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        for proc, base in zip(procs, (a, b)):
            wait_up(proc, base)
        with httpx.Client(base_url=a, headers=BROWSER) as client:  # the claim step's first half on one host,
            first = client.post("/v1/visit", json={"url": CAMPAIGN}).json()
        assert first["claim"] and first["number"] is None
        with httpx.Client(base_url=b, headers=BROWSER) as client:  # its ticket redeemed on the other
            got = client.post("/v1/visit", json={"url": CAMPAIGN, "claim": first["claim"],
                                                 "visitor_id": first["visitor_id"]}).json()
        assert got["number"] and got["token"] and got["visitor_id"] == first["visitor_id"]
        with httpx.Client(base_url=a) as client:
            back = browser_visit(client, url=CAMPAIGN, visitor_id=got["visitor_id"]).json()
        assert back["number"] == got["number"]
        with httpx.Client(base_url=b) as client:  # the other host knows the lease through Redis
            again = browser_visit(client, url=CAMPAIGN, visitor_id=got["visitor_id"]).json()
            assert again["number"] == got["number"] and again["token"] == got["token"]
            assert client.post("/v1/heartbeat", json={"token": got["token"]}).json() == {"alive": True}
            other = browser_visit(client, url=CAMPAIGN, visitor_id="someone-else").json()
            assert other["number"] != got["number"]
            call = {"call_id": "c-1", "number": got["number"], "caller": "+79161234567",
                    "started_at": time.time() + 1, "duration_seconds": 60, "answered": True}
            r = client.post("/v1/calls", json=call, headers={"X-API-Key": KEY})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "matched" and body["visitor_id"] == got["visitor_id"]
        assert body["attributes"]["utm"]["utm_campaign"] == "spring_sale"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
