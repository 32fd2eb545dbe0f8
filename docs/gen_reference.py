"""Generate the documentation pages that come from the code: the configuration reference (from
``k50core.config``) and the HTTP API (from the service's OpenAPI document).

    python docs/gen_reference.py          # rewrite docs/configuration.md and docs/http-api.md
    python docs/gen_reference.py --check  # exit 1 if either is not what the code gives (CI runs this)

The configuration reference reads the config's JSON Schema (``k50core.config.schema.json_schema()``):
each section's keys, types, choices, defaults and descriptions. A field the schema leaves without a
description needs a line in MEANINGS here, or the generator fails, so no key goes undocumented.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from k50core.config import schema

DOCS = Path(__file__).resolve().parent
# where each section of the schema sits in a config file, in the page's order
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("site", "Site", ""),
    ("pools.NAME", "Pool", "Each pool is `pools: {NAME: {...}}`."),
    ("rules[i]", "Rule", "A list, in priority order; a rule either names a `pool` or has `exclude: true`."),
    ("geoip", "Geoip", ""),
    ("bots", "Bots", ""),
    ("store", "Store", ""),
    ("events", "Events", "Nothing is sent unless configured."),
    ("events.webhooks[i]", "Webhook", ""),
    ("events.ga4", "GA4", ""),
    ("events.retry", "Retry", ""),
    ("attribution", "Attribution", ""),
)
# Meanings for the keys whose schema field carries no description (the schema's own text wins).
MEANINGS: dict[str, str] = {
    "pools.NAME.numbers": "the pool's phone numbers, normalised to E.164; a number belongs to one pool",
    "pools.NAME.default_number": "this pool's default number (else the site's)",
    "events.webhooks[i].url": "where the call is POSTed (http or https)",
    "events.webhooks[i].secret": "HMAC-SHA256 key of the X-K50-Signature header",
    "events.ga4.measurement_id": "the GA4 stream's measurement id, `G-…`",
    "events.ga4.api_secret": "the Measurement Protocol API secret",
    "events.ga4.event_name": "the event's name (GA4's rules; reserved names refused)",
    "events.ga4.endpoint": "the Measurement Protocol endpoint",
    "events.webhooks": "URLs that get each attributed call",
    "events.ga4": "a GA4 Measurement Protocol event per attributed call whose visit had a GA client id",
    "events.retry": "how failed deliveries are retried",
    "events.retry.max_attempts": "a delivery is given up after this many attempts",
    "rules[i].pool": "the pool whose number a matching visit gets",
    "rules[i].exclude": "a matching visit keeps the page's own number and takes none",
    "rules[i].note": "free text for people; ignored",
}
TOP: dict[str, str] = {  # the top-level keys whose schema entry has no description
    "pools": "the tracking numbers, by pool name",
    "geoip": "the GeoIP database",
    "bots": "what bots get",
    "store": "how the store is written",
}


def _type(spec: dict[str, Any]) -> str:
    """A field's type in a few words: `integer ≥ 1`, `one of a, b`, `list of string`."""
    if "anyOf" in spec:
        kinds = [_type(s) for s in spec["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds) + (" or null" if len(kinds) < len(spec["anyOf"]) else "")
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    kind = str(spec.get("type", "any"))
    if kind == "array":
        kind = "list of " + _type(spec.get("items", {}))
    if "minimum" in spec:
        kind += f" ≥ {spec['minimum']}"
    if "maximum" in spec:
        kind += f" ≤ {spec['maximum']}"
    return kind


def _default(name: str, spec: dict[str, Any], required: Sequence[str]) -> str:
    if name in required:
        return "**required**"
    if "default" not in spec or spec["default"] is None or spec["default"] in ({}, []):
        return "none"
    value = spec["default"]
    if isinstance(value, dict):
        return "see below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def config_sections() -> list[tuple[str, str, list[tuple[str, str, str, str]]]]:
    """(where, intro, [(key, type, default, meaning)]) of each section, from the config's JSON Schema."""
    doc = schema.json_schema()
    out = []
    missing = []
    for where, name, intro in SECTIONS:
        section = doc["$defs"][name]
        rows = []
        for key, spec in section["properties"].items():
            meaning = spec.get("description") or MEANINGS.get(f"{where}.{key}")
            if not meaning:
                missing.append(f"{where}.{key}")
                continue
            rows.append((key, _type(spec), _default(key, spec, section.get("required", [])), str(meaning)))
        out.append((where, intro or str(section.get("description", "")), rows))
    if missing:
        raise SystemExit(f"docs/gen_reference.py: no meaning for {missing}: give the schema field a description")
    return out


def configuration_page() -> str:
    doc = schema.json_schema()
    lines = ["# Configuration reference", "",
             "<!-- generated by docs/gen_reference.py from the config's JSON Schema: edit the schema's "
             "descriptions (k50core.config.schema), not this page -->", "",
             "A config is a YAML, JSON or TOML file (or a dict given to `Engine.from_config`). Every fault is "
             "reported with its place, e.g. `rules[3].when.geo.region: $in expects a list`; an unknown key is "
             "a fault too, so a typo does not silently do nothing. `k50core check FILE` lists the faults or "
             "summarises the config; `k50core schema` prints the JSON Schema editors can validate with.", "",
             "## Top level", "", "| key | what it holds |", "|---|---|"]
    for key, spec in doc["properties"].items():
        ref = str(spec.get("$ref", "")).rsplit("/", 1)[-1]
        text = spec.get("description") or doc["$defs"].get(ref, {}).get("description") or TOP.get(key)
        if not text:
            raise SystemExit(f"docs/gen_reference.py: no meaning for {key}: give the schema a description")
        lines.append(f"| `{key}` | {str(text).rstrip('.')} |")
    for where, intro, rows in config_sections():
        lines += ["", f"## `{where}`", ""]
        if intro:
            lines += [intro.replace("``", "`"), ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{key}` | {kind} | {default} | {meaning.replace('|', '/')} |"
                  for key, kind, default, meaning in rows]
    lines += ["", "## `sources`", "",
              "Overrides of the traffic-source catalogue; see `k50core.enrich.source` for its keys.", ""]
    return "\n".join(lines)


def http_api_page() -> str:
    from k50core.bindings.service.apidocs import render_markdown
    from k50core.bindings.service.openapi import openapi_document

    return ("# HTTP API\n\n<!-- generated by docs/gen_reference.py from the service's OpenAPI document -->\n\n"
            + render_markdown(openapi_document()))


PAGES: tuple[tuple[str, Callable[[], str]], ...] = (("configuration.md", configuration_page),
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
