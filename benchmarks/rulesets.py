"""Realistic generated rule sets and visits for the benchmarks.

A call-tracking account with ~1,000 substitution rules: an office
exclusion, hundreds of ad campaigns by utm_campaign, region × traffic-type
rules, source × device rules, landing-host rules and a few landing-path
prefixes and regexes. Visits are enriched attribute dicts (what
``Engine.attributes`` returns), a third of them matching nothing so a
first-match loop has to try every rule.
"""
from __future__ import annotations

import random
from typing import Any

REGIONS = ["RU-MOW", "RU-SPE", "RU-MOS", "RU-LEN", "RU-NVS", "RU-SVE", "RU-KDA", "RU-TA", "RU-NIZ", "RU-SAM",
           "RU-ROS", "RU-BA", "RU-KEM", "RU-CHE", "RU-PER", "RU-VOR", "RU-VGG", "RU-KYA", "RU-SAR", "RU-TYU"]
TRAFFIC = ["search", "ads", "social", "messenger", "email", "referral", "direct", "internal"]
SOURCES = ["yandex", "google", "bing", "mail.ru", "vk", "ok.ru", "dzen", "telegram", "facebook", "youtube"]
DEVICES = ["mobile", "desktop", "tablet"]


def rules(n: int = 1000, seed: int = 7) -> list[dict[str, Any]]:
    """Conditions in priority order (the ``when`` of each rule)."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = [{"ip": {"$inGroup": "office"}}]
    for i in range(20):
        out.append({"landing.path": {"$regex": f"^/promo{i}/"}, "traffic_type": {"$in": ["ads", "social"]}})
    for i in range(5):
        out.append({"landing.path": {"$regex": f"^/(sale|offer){i}/[0-9]+$"}})
    for i in range(int(n * 0.65)):
        cond: dict[str, Any] = {"query.utm_campaign": f"campaign_{i}"}
        if i % 3 == 0:
            cond["query.utm_source"] = rnd.choice(SOURCES)
        if i % 5 == 0:
            cond["geo.region"] = {"$in": rnd.sample(REGIONS, 3)}
        out.append(cond)
    for region in REGIONS:
        for t in TRAFFIC[:6]:
            out.append({"geo.region": region, "traffic_type": t, "device.type": {"$ne": "bot"}})
    for source in SOURCES:
        for device in DEVICES:
            out.append({"source": source, "device.type": device})
    i = 0
    while len(out) < n:
        out.append({"landing.host": f"promo{i}.example.ru", "query.utm_medium": {"$in": ["cpc", "cpm"]}})
        i += 1
    return out[:n]


SAVED_GROUPS = {"office": ["203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"]}


def visits(n: int = 2000, seed: int = 11, n_rules: int = 1000) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    campaigns = int(n_rules * 0.65)
    out = []
    for k in range(n):
        kind = k % 3
        attrs: dict[str, Any] = {
            "visitor_id": f"v{k}", "ts": 1_700_000_000.0 + k,
            "ip": f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
            "landing": {"host": "shop.example.ru", "path": rnd.choice(["/", "/catalog/sofas", "/about", "/promo3/x"])},
            "device": {"type": rnd.choice(DEVICES), "os": "Android", "browser": "Chrome Mobile"},
            "geo": {"country": "RU", "region": rnd.choice(REGIONS), "city": "X"},
        }
        if kind == 0:    # an ad click for one of the campaigns (often deep in the list)
            attrs["query"] = {"utm_source": rnd.choice(SOURCES), "utm_medium": "cpc",
                              "utm_campaign": f"campaign_{rnd.randrange(campaigns)}"}
            attrs["traffic_type"], attrs["source"] = "ads", attrs["query"]["utm_source"]
        elif kind == 1:  # organic / social traffic matched by region, type, source
            attrs["traffic_type"] = rnd.choice(TRAFFIC)
            attrs["source"] = rnd.choice(SOURCES)
        else:            # matches nothing: a first-match loop tries every rule
            attrs["traffic_type"] = "internal"
            attrs["geo"]["region"] = "RU-XXX"
            attrs["device"]["type"] = "other"
            attrs["query"] = {"utm_campaign": "unknown"}
        out.append(attrs)
    return out


def one_condition() -> tuple[dict[str, Any], dict[str, Any], str]:
    """A 5-clause condition, a visit it matches, and the same in rule-engine's language."""
    cond = {
        "geo.region": {"$in": ["RU-MOW", "RU-MOS"]},
        "traffic_type": "search",
        "device.type": {"$ne": "bot"},
        "landing.path": {"$regex": "^/catalog"},
        "query.utm_source": {"$exists": True},
    }
    attrs = {"geo": {"region": "RU-MOW", "country": "RU"}, "traffic_type": "search", "device": {"type": "mobile"},
             "landing": {"path": "/catalog/sofas", "host": "shop.example.ru"}, "query": {"utm_source": "yandex"}}
    text = ("geo['region'] in ['RU-MOW', 'RU-MOS'] and traffic_type == 'search' and device['type'] != 'bot'"
            " and landing['path'] =~ '^/catalog.*' and query['utm_source'] != null")
    return cond, attrs, text


# -- mixed rule sets of every clause kind (the rule-index sweep) ---------------------------
def mixed_rules(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """n rules: half on a path regex ``^/catalog/sectionN(/|$)``, the rest mostly ``$in`` of
    regions, sources and devices, with some ``$host``, ``$cidr``, ``$glob``, ``$or``, five
    country exclusions (``$not`` of ``$in``: indexed by the countries they exclude) and three
    unanchored regexes the index cannot take (residual: tried for every visit)."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    exclusions, residual = 5, 3  # "a few" of each, whatever the rule count
    for i in range(n - exclusions - residual):
        kind = i % 20
        if kind < 10:
            cond: dict[str, Any] = {"landing.path": {"$regex": f"^/catalog/section{i}(/|$)"}}
            if kind == 0:
                cond["traffic_type"] = {"$in": ["ads", "search"]}
        elif kind < 16:
            cond = {"geo.region": {"$in": rnd.sample(REGIONS, rnd.randint(1, 4))},
                    "source": {"$in": rnd.sample(SOURCES, rnd.randint(1, 3))}}
            if kind % 2:
                cond["device.type"] = {"$in": rnd.sample(DEVICES, rnd.randint(1, 2))}
        elif kind == 16:
            cond = {"referrer.host": {"$host": f"partner{i}.example.com"}}
        elif kind == 17:
            cond = {"ip": {"$cidr": [f"10.{(i >> 8) & 255}.{i & 255}.0/24"]}}
        elif kind == 18:
            cond = {"landing.path": {"$glob": f"/promo{i}/**"}, "device.type": {"$ne": "bot"}}
        else:
            cond = {"$or": [{"query.utm_campaign": f"camp{i}"}, {"query.utm_content": f"banner{i}"}]}
        out.append(cond)
    for _ in range(exclusions):  # spread through the list
        out.insert(rnd.randrange(len(out) + 1), {"$not": {"geo.country": {"$in": ["RU", "KZ", "BY"]}},
                                                  "device.type": {"$ne": "bot"}})
    for k in range(residual):
        out.insert(rnd.randrange(len(out) + 1), {"landing.path": {"$regex": f"sale{k}"}})
    return out


MIXES = {
    # share of visits of each kind (the sweep reports with "alt", not the mix the code was tuned on)
    "default": {"section": 30, "in": 25, "host": 10, "ip": 10, "promo": 5, "campaign": 10, "none": 10},
    "alt": {"section": 15, "in": 35, "host": 5, "ip": 15, "promo": 10, "campaign": 5, "none": 15},
}


def mixed_visits(n: int, n_rules: int, seed: int = 5, mix: str = "default") -> list[dict[str, Any]]:
    """Enriched attribute dicts (what ``Engine.attributes`` returns) aimed at ``mixed_rules``:
    section paths (some past the last rule's number), region × source × device, partner
    referrers and their subdomains, addresses in and out of the rules' networks, promo paths,
    utm campaigns, and visits no rule matches."""
    rnd = random.Random(seed)
    kinds = [k for k, w in MIXES[mix].items() for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rnd.choice(kinds)
        a: dict[str, Any] = {
            "landing": {"host": "shop.example.ru", "path": rnd.choice(["/", "/about", "/cart", "/catalog/"])},
            "query": {}, "referrer": {"host": rnd.choice(["yandex.ru", "www.google.com", "vk.com"])},
            "source": rnd.choice(SOURCES + ["other"]), "traffic_type": rnd.choice(TRAFFIC),
            "geo": {"country": "RU", "region": rnd.choice(REGIONS + ["RU-XXX"] * 10), "city": "X"},
            "device": {"type": rnd.choice(DEVICES + ["other"] * 3), "os": "Android", "browser": "Chrome"},
            "ip": f"{rnd.randint(11, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        }
        if kind == "section":
            a["landing"]["path"] = f"/catalog/section{rnd.randrange(int(n_rules * 0.6) + 1)}" + rnd.choice(["", "/", "/sofas/12"])
        elif kind == "in":
            a["geo"]["region"], a["source"] = rnd.choice(REGIONS), rnd.choice(SOURCES)
            a["device"]["type"] = rnd.choice(DEVICES)
        elif kind == "host":
            a["referrer"]["host"] = rnd.choice(["", "www.", "m.Www."]) + f"partner{rnd.randrange(n_rules)}.example.com"
        elif kind == "ip":
            i = rnd.randrange(n_rules)
            a["ip"] = f"10.{(i >> 8) & 255}.{i & 255}.{rnd.randint(1, 254)}"
        elif kind == "promo":
            a["landing"]["path"] = f"/promo{rnd.randrange(n_rules)}/" + rnd.choice(["", "x", "a/b"])
        elif kind == "campaign":
            a["query"] = {rnd.choice(["utm_campaign", "utm_content"]): rnd.choice(["camp", "banner"]) + str(rnd.randrange(n_rules))}
        out.append(a)
    return out
