"""Generate the documentation pages that come from the code: the configuration reference (from
``k50core.config``) and the HTTP API (from the service's OpenAPI document).

    python docs/gen_reference.py          # rewrite docs/configuration.md and docs/http-api.md
    python docs/gen_reference.py --check  # exit 1 if either is not what the code gives (CI runs this)

The configuration reference reads what the config module exposes: the keys it accepts in each
section (its key sets), the choices it checks against, and the defaults ``parse()`` fills in for a
minimal config. Only the one-line meanings are written here, and every accepted key must have one
(and no other), so a key added to the config without a line here fails the check. When the config
becomes a pydantic model with a JSON Schema, ``config_sections()`` is the one function to switch to
reading the schema (its descriptions and defaults); the page layout stays.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from k50core.config import model, phones, reporting

DOCS = Path(__file__).resolve().parent
MINIMAL = {  # the least each section needs: parse() fills in every default around it
    "pools": {"p": {"numbers": ["+74950000001"]}},
    "rules": [{"pool": "p"}],
    "events": {"webhooks": [{"url": "https://hooks.example.com/k50", "secret": "s"}],
               "ga4": {"measurement_id": "G-ABC123XYZ", "api_secret": "s"}},
}
REQUIRED = "required"


@dataclass
class Section:
    path: str                              # where in the file: "pools.NAME", "events.webhooks[i]"
    intro: str
    keys: Sequence[str]                    # what the config module accepts there, in the page's order
    default: Callable[[Any, str], Any]     # (the parsed minimal config, key) -> the default shown


# The meaning of each key, one line each (the only text here that is not read from the code).
MEANINGS: Dict[str, str] = {
    "site.default_number": "the number the site shows when no rule gives one, and the fallback of a pool "
                           "with `on_exhausted: default` and no number of its own",
    "site.region": "two-letter country code national numbers are read in",
    "site.display": "how numbers are written on pages (`ru`, or a phonenumbers format)",
    "pools.type": "`dynamic`: numbers leased to visitors; `static`: one number for every visitor of its "
                  "rules; `offline`: numbers printed elsewhere, never shown on the site",
    "pools.numbers": "the pool's phone numbers (normalised to E.164; a number belongs to one pool)",
    "pools.hold_seconds": "a lease ends this long after the visitor's last activity",
    "pools.cooldown_seconds": "after a lease ends, the number rests this long before another visitor gets it",
    "pools.on_exhausted": "no free number: `share` joins the least recently active lease, `default` shows "
                          "the default number",
    "pools.default_number": "this pool's default number (else the site's)",
    "pools.display": "how this pool's numbers are written",
    "pools.late_seconds": "a call this long after a lease ended is still attributed to it, as `late`",
    "pools.campaign": "offline pools: what their calls are attributed to",
    "rules.name": "unique; reported in decisions and attributions",
    "rules.when": "the condition (GrowthBook-style operators plus `$cidr`, `$host`, `$prefix`, `$glob`, "
                  "`$contains`)",
    "rules.pool": "the pool whose number a matching visit gets",
    "rules.exclude": "a matching visit keeps the page's own number and takes none",
    "rules.note": "free text for people; ignored",
    "geoip.path": "a MaxMind City database (default: GeoLite2-City from `maxminddb-geolite2`)",
    "bots.exclude": "bots (by User-Agent) match an implicit first rule and take no number",
    "store.checkpoint_seconds": "how often each renewed lease's latest activity is written to the store",
    "events.webhooks": "URLs that get each attributed call",
    "events.ga4": "a GA4 Measurement Protocol event per attributed call whose visit had a GA client id",
    "events.retry": "how failed deliveries are retried",
    "events.webhooks[i].name": "the outbox target's name: part of the idempotency key, keep it stable",
    "events.webhooks[i].url": "where the call is POSTed (http or https)",
    "events.webhooks[i].secret": "HMAC-SHA256 key of the X-K50-Signature header",
    "events.webhooks[i].statuses": "which attribution statuses are sent",
    "events.ga4.measurement_id": "the GA4 stream's measurement id, `G-…`",
    "events.ga4.api_secret": "the Measurement Protocol API secret",
    "events.ga4.event_name": "the event's name (GA4's rules; reserved names refused)",
    "events.ga4.endpoint": "the Measurement Protocol endpoint",
    "events.ga4.statuses": "which attribution statuses are sent",
    "events.retry.max_attempts": "a delivery is given up after this many attempts (1-100)",
    "events.retry.base_seconds": "the first retry waits about this long, doubling each time",
    "events.retry.max_seconds": "the longest wait between attempts",
    "attribution.max_candidates": "an ambiguous call keeps this many candidates, likeliest first "
                                  f"(1-{model.MAX_CANDIDATES}); the rest are counted",
    "attribution.clock_skew_seconds": "a call stamped up to this long before a lease began still "
                                      f"belongs to it (at most {model.MAX_CLOCK_SKEW:g})",
    "reports.plan": "the pricing plan reports take the cost from: `provider`, `own` or `code`",
    "reports.package": "a prepaid minutes package of the provider plan (its minutes replace the included ones)",
    "reports.plans_file": "your price list (YAML / JSON / TOML, see `k50core.pricing`)",
    "crm.match_days": "a deal belongs to its phone's latest call at most this many days before it "
                      f"(1-{reporting.MAX_MATCH_DAYS})",
    "crm.amocrm_token": "the secret amoCRM's webhook URL carries (`?token=`); at least 16 characters",
    "crm.bitrix24_application_token": "the application token Bitrix24's outgoing webhook must carry",
    "crm.bitrix24_rest_url": "the portal's inbound webhook URL (`https://PORTAL/rest/USER/KEY/`): deals and "
                             "contacts are read there",
}
TOP_MEANINGS: Dict[str, str] = {
    "site": "the site's own number and how numbers are read and written",
    "lists": "named lists of values or CIDR networks, for `$inGroup` / `$notInGroup`",
    "pools": "the tracking numbers, by pool name",
    "rules": "which visits get which pool, in priority order: the first rule that matches wins",
    "sources": "overrides of the traffic-source catalogue (search engines, social networks, paid mediums)",
    "geoip": "the GeoIP database",
    "bots": "what bots get",
    "store": "how the store is written",
    "events": "what is sent out for each attributed call",
    "attribution": "how calls are joined to visits",
    "reports": "where reports take the cost of the calls from",
    "crm": "how CRM deals are matched to calls, and the CRMs' webhook secrets",
}


def _field(obj: Any, name: str) -> Any:
    return getattr(obj, name)


def config_sections() -> List[Section]:
    """The sections, their keys and defaults, from what ``k50core.config`` exposes today."""
    cfg, problems = model.parse(MINIMAL)
    assert not problems, problems
    pool, rule, hook = cfg.pools["p"], cfg.rules[0], cfg.events.webhooks[0]
    required = {"pools.numbers", "events.webhooks[i].url", "events.webhooks[i].secret",
                "events.ga4.measurement_id", "events.ga4.api_secret"}
    derived = {"events.webhooks[i].name": "`webhook-` and a hash of the url",
               "rules.name": "`rule-` and its index", "pools.display": "the site's `display`",
               "pools.default_number": "the site's", "geoip.path": "the bundled GeoLite2-City",
               "rules.pool": "none", "rules.note": "none", "rules.when": "`{}`: every visit"}

    def from_object(obj: Any, prefix: str, rename: Optional[Dict[str, str]] = None) -> Callable[[Any, str], Any]:
        def default(_: Any, key: str) -> Any:
            where = f"{prefix}.{key}"
            if where in required:
                return REQUIRED
            if where in derived:
                return derived[where]
            return _field(obj, (rename or {}).get(key, key))
        return default

    return [
        Section("site", "", sorted(model._SITE_KEYS), from_object(cfg, "site")),
        Section("pools.NAME", "Each pool is `pools: {NAME: {...}}`.", sorted(model._POOL_KEYS),
                from_object(pool, "pools")),
        Section("rules[i]", "A list; a rule either names a `pool` or has `exclude: true`.", sorted(model._RULE_KEYS),
                from_object(rule, "rules")),
        Section("geoip", "", ["path"], from_object(cfg, "geoip", {"path": "geoip_path"})),
        Section("bots", "", ["exclude"], from_object(cfg, "bots", {"exclude": "exclude_bots"})),
        Section("store", "", sorted(model._STORE_KEYS), from_object(cfg, "store")),
        Section("events", "Nothing is sent unless configured.", sorted(model._EVENTS_KEYS),
                lambda _, key: "none" if key != "retry" else "see below"),
        Section("events.webhooks[i]", "", sorted(model._WEBHOOK_KEYS), from_object(hook, "events.webhooks[i]")),
        Section("events.ga4", "", sorted(model._GA4_KEYS), from_object(cfg.events.ga4, "events.ga4")),
        Section("events.retry", "", sorted(model._RETRY_KEYS), from_object(cfg.events.retry, "events.retry")),
        Section("attribution", "", sorted(model._ATTRIBUTION_KEYS), from_object(cfg.attribution, "attribution")),
        Section("reports", "", sorted(reporting._REPORT_KEYS), lambda _, key: {
            "plan": "provider", "plans_file": "the bundled `plans.yaml`"}.get(key, cfg.reports.get(key))),
        Section("crm", "", sorted(reporting._CRM_KEYS), lambda _, key: cfg.crm.get(key)),
    ]


def _meaning_key(section: str, key: str) -> str:
    base = section.replace(".NAME", "").replace("rules[i]", "rules")
    return f"{base}.{key}"


def _shown(value: Any) -> str:
    if value == REQUIRED:
        return "**required**"
    if isinstance(value, str) and value.startswith(("`", "the ", "see ", "none")):
        return value
    if isinstance(value, tuple):
        return ", ".join(f"`{v}`" for v in value) or "none"
    if value is None or value == "" or value == {}:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


CHOICES = {"pools.type": model.POOL_TYPES, "pools.on_exhausted": model.EXHAUSTION,
           "site.display": phones.DISPLAY_FORMATS, "pools.display": phones.DISPLAY_FORMATS,
           "events.webhooks[i].statuses": model.CALL_STATUSES, "events.ga4.statuses": model.CALL_STATUSES}


def configuration_page() -> str:
    sections = config_sections()
    wanted = {_meaning_key(s.path, k) for s in sections for k in s.keys} | {
        _meaning_key("events", k) for k in model._EVENTS_KEYS}
    missing, extra = wanted - set(MEANINGS), set(MEANINGS) - wanted
    if missing or extra:
        raise SystemExit(f"docs/gen_reference.py: meanings missing for {sorted(missing)}, "
                         f"for keys the config does not accept: {sorted(extra)}")
    if set(TOP_MEANINGS) != model._TOP_KEYS:
        raise SystemExit(f"docs/gen_reference.py: top-level keys differ: {sorted(set(TOP_MEANINGS) ^ model._TOP_KEYS)}")
    lines = ["# Configuration reference", "",
             "<!-- generated by docs/gen_reference.py from k50core.config: edit that script, not this page -->", "",
             "A config is a YAML, JSON or TOML file (or a dict given to `Engine.from_config`). Every fault is "
             "reported with its place, e.g. `rules[3].when.geo.region: $in expects a list`; an unknown key is "
             "a fault too, so a typo does not silently do nothing. `k50core check FILE` lists the faults or "
             "summarises the config.", "", "## Top level", "", "| key | what it holds |", "|---|---|"]
    lines += [f"| `{key}` | {TOP_MEANINGS[key]} |" for key in sorted(model._TOP_KEYS)]
    cfg = model.parse(MINIMAL)[0]
    for section in sections:
        lines += ["", f"## `{section.path}`", ""]
        if section.intro:
            lines += [section.intro, ""]
        lines += ["| key | default | meaning |", "|---|---|---|"]
        for key in section.keys:
            where = _meaning_key(section.path, key)
            meaning = MEANINGS[where]
            if where in CHOICES:
                listed = ", ".join(f"`{c}`" for c in CHOICES[where])
                meaning += ("; any of " if key == "statuses" else "; one of ") + listed
            lines.append(f"| `{key}` | {_shown(section.default(cfg, key))} | {meaning} |")
    lines += ["", "## `sources`", "",
              "Overrides of the traffic-source catalogue; see `k50core.enrich.source` for its keys.", ""]
    return "\n".join(lines)


def http_api_page() -> str:
    from k50core.bindings.service.apidocs import render_markdown
    from k50core.bindings.service.openapi import openapi_document

    return ("# HTTP API\n\n<!-- generated by docs/gen_reference.py from the service's OpenAPI document -->\n\n"
            + render_markdown(openapi_document()))


PAGES: Tuple[Tuple[str, Callable[[], str]], ...] = (("configuration.md", configuration_page),
                                                     ("http-api.md", http_api_page))


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a page differs from what the code gives")
    args = ap.parse_args(argv)
    stale = []
    for name, build in PAGES:
        text = build().rstrip("\n") + "\n"
        path = DOCS / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"docs/gen_reference.py: {', '.join(stale)} out of date: run python docs/gen_reference.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
