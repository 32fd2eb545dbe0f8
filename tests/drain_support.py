"""What a browser running the snippet does against /v1/visit, for tests that talk HTTP to the service.

A new visitor's first answer may be provisional (a ``claim`` ticket and no number); the snippet
then repeats the visit with the ticket and gets the number. ``browser_visit`` does both steps with
a real browser's User-Agent, as the snippet does."""
from __future__ import annotations

from typing import Any

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")
BROWSER = {"User-Agent": CHROME}


def browser_visit(client: Any, path: str = "/v1/visit", headers: dict[str, str] | None = None,
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


# -- any country's numbers (issue 15.12): the snippet's Chromium tests and the middleware's --------
# tracking numbers of seven countries, two each
WORLD_NUMBERS = {"us": ["+14155550123", "+14155550124"], "gb": ["+442079460123", "+442079460124"],
                 "de": ["+4930123450001", "+4930123450002"], "fr": ["+33123450001", "+33123450002"],
                 "kz": ["+77272000001", "+77272000002"], "by": ["+375171110001", "+375171110002"],
                 "ua": ["+380441110001", "+380441110002"]}
# country -> (data-region, the site's numbers, [(written on the page, what it becomes given the new
# number's national significant digits n)]); the last forms of each are other numbers: kept
COUNTRIES = {
    "us": ("US", "+1 415 555 0100", [
        ("(415) 555-0100", lambda n: f"({n[:3]}) {n[3:6]}-{n[6:]}"),
        ("+1 415 555 0100", lambda n: f"+1 {n[:3]} {n[3:6]} {n[6:]}"),
        ("1-415-555-0100", lambda n: f"1-{n[:3]}-{n[3:6]}-{n[6:]}"),
        ("415.555.0100", lambda n: f"{n[:3]}.{n[3:6]}.{n[6:]}"),
        ("+1 (415) 555-0100", lambda n: f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}"),
        ("Call (415) 555-0199 or 555-0100 ext 7", lambda n: "Call (415) 555-0199 or 555-0100 ext 7")]),
    "gb": ("GB", "020 7946 0018", [
        ("020 7946 0018", lambda n: f"0{n[:2]} {n[2:6]} {n[6:]}"),
        ("+44 20 7946 0018", lambda n: f"+44 {n[:2]} {n[2:6]} {n[6:]}"),
        ("+44 (0)20 7946 0018", lambda n: f"+44 (0){n[:2]} {n[2:6]} {n[6:]}"),
        ("(020) 7946 0018", lambda n: f"(0{n[:2]}) {n[2:6]} {n[6:]}"),
        ("020 7946 0019", lambda n: "020 7946 0019")]),
    "de": ("DE", "+49 30 123456789, 030 1234567", [
        ("030 123456789", lambda n: f"0{n[:2]} {n[2:]}"),
        ("+49 30 123456789", lambda n: f"+49 {n[:2]} {n[2:]}"),
        ("+49 (0)30 1234 5678-9", lambda n: f"+49 (0){n[:2]} {n[2:6]} {n[6:10]}-{n[10:]}"),
        ("030/123456789", lambda n: f"0{n[:2]}/{n[2:]}"),
        ("+49 30 123 4567", lambda n: f"+49 {n[:2]} {n[2:5]} {n[5:]}"),   # 9 digits -> 11: the last group grows
        ("030 12345678", lambda n: "030 12345678")]),
    "fr": ("FR", "+33 1 23 45 67 89", [
        ("01 23 45 67 89", lambda n: f"0{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:]}"),
        ("+33 1 23 45 67 89", lambda n: f"+33 {n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:]}"),
        ("+33 (0)1 23 45 67 89", lambda n: f"+33 (0){n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:]}"),
        ("01.23.45.67.89", lambda n: f"0{n[0]}.{n[1:3]}.{n[3:5]}.{n[5:7]}.{n[7:]}"),
        ("01 23 45 67 80", lambda n: "01 23 45 67 80")]),
    "kz": ("KZ", "8 (727) 212-34-56", [
        ("8 (727) 212-34-56", lambda n: f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}"),
        ("+7 727 212 3456", lambda n: f"+7 {n[:3]} {n[3:6]} {n[6:]}"),
        ("8 7272 12 34 56", lambda n: f"8 {n[:4]} {n[4:6]} {n[6:8]} {n[8:]}"),
        ("+7 (727) 212-34-57", lambda n: "+7 (727) 212-34-57")]),
    "by": ("BY", "+375 17 123-45-67", [
        ("8 017 123-45-67", lambda n: f"8 0{n[:2]} {n[2:5]}-{n[5:7]}-{n[7:]}"),
        ("+375 17 123-45-67", lambda n: f"+375 {n[:2]} {n[2:5]}-{n[5:7]}-{n[7:]}"),
        ("+375 (17) 123-45-67", lambda n: f"+375 ({n[:2]}) {n[2:5]}-{n[5:7]}-{n[7:]}"),
        ("8017 1234567", lambda n: f"80{n[:2]} {n[2:]}"),
        ("+375 17 123-45-68", lambda n: "+375 17 123-45-68")]),
    "ua": ("UA", "044 123 4567", [
        ("044 123 4567", lambda n: f"0{n[:2]} {n[2:5]} {n[5:]}"),
        ("+380 44 123 4567", lambda n: f"+380 {n[:2]} {n[2:5]} {n[5:]}"),
        ("(044) 123-45-67", lambda n: f"(0{n[:2]}) {n[2:5]}-{n[5:7]}-{n[7:]}"),
        ("+38 044 123 45 67", lambda n: f"+38 0{n[:2]} {n[2:5]} {n[5:7]} {n[7:]}"),
        ("044 123 4568", lambda n: "044 123 4568")]),
}
CC = {"us": "1", "gb": "44", "de": "49", "fr": "33", "kz": "7", "by": "375", "ua": "380"}
