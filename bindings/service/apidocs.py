"""The HTTP API reference, rendered from the service's OpenAPI document: as the HTML page the
service serves at ``GET /docs``, and as the Markdown page of the documentation site
(``docs/gen_reference.py``). Both read the same document, so neither can drift from the service.

The page is built here, on the server, with no script and nothing fetched from elsewhere: it works
offline and behind a strict Content-Security-Policy."""
from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, METHOD, operation) of every operation, in the document's order."""
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield path, method.upper(), item[method]


def schema_text(schema: dict[str, Any]) -> str:
    """A schema in a few words: ``Visit``, ``string (E.164) or null``, ``one of Call, AsteriskCdr``."""
    null = " or null" if schema.get("nullable") else ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "allOf" in schema and len(schema["allOf"]) == 1:  # a $ref with a note beside it: nullable
        return schema_text(schema["allOf"][0]) + null
    if "oneOf" in schema:
        return "one of " + ", ".join(schema_text(s) for s in schema["oneOf"]) + null
    if "anyOf" in schema:
        return " or ".join(schema_text(s) for s in schema["anyOf"]) + null
    kind = str(schema.get("type", "any"))
    if kind == "object" and schema.get("properties"):
        kind = "object {" + ", ".join(schema["properties"]) + "}"
    if kind == "array":
        kind = f"array of {schema_text(schema.get('items', {}))}"
    if "enum" in schema:
        kind += ": " + " | ".join(str(v) for v in schema["enum"])
    if "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        kind = f"object of {schema_text(schema['additionalProperties'])}"
    return kind + null


def _security(op: dict[str, Any]) -> str:
    names = [" + ".join(sorted(req)) for req in op.get("security", [])]
    return " or ".join(names) if names else "none (public)"


def _bodies(op: dict[str, Any]) -> list[tuple[str, str]]:
    content = op.get("requestBody", {}).get("content", {})
    return [(media, schema_text(spec.get("schema", {}))) for media, spec in content.items()]


def _responses(op: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for code, answer in op.get("responses", {}).items():
        content = answer.get("content", {})
        shapes = ", ".join(f"{schema_text(s.get('schema', {}))} ({m})" for m, s in content.items())
        out.append((code, str(answer.get("description", "")), shapes))
    return out


def _properties(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    required = set(schema.get("required", []))
    return [(name + (" (required)" if name in required else ""), schema_text(spec),
             str(spec.get("description", ""))) for name, spec in schema.get("properties", {}).items()]


def render_markdown(doc: dict[str, Any]) -> str:
    """The reference as Markdown (tables; every cell escaped for a table)."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    info = doc.get("info", {})
    lines = [f"{info.get('description', '')} OpenAPI {doc.get('openapi', '')}; the service serves this "
             "document at `GET /openapi.json` and this page at `GET /docs`.", ""]
    for path, method, op in operations(doc):
        lines += [f"## `{method} {path}`", "", str(op.get("summary", "")) + ".", ""]
        if op.get("description"):
            lines += [str(op["description"]), ""]
        lines += [f"Authorisation: {_security(op)}.", ""]
        if op.get("parameters"):
            lines += ["| parameter | in | type | meaning |", "|---|---|---|---|"]
            lines += [f"| `{p['name']}` | {p['in']} | {cell(schema_text(p.get('schema', {})))} | "
                      f"{cell(str(p.get('description', '')))} |" for p in op["parameters"]]
            lines.append("")
        for media, shape in _bodies(op):
            lines += [f"Request body ({media}): {shape}.", ""]
        lines += ["| status | meaning | body |", "|---|---|---|"]
        lines += [f"| {code} | {cell(text)} | {cell(shapes)} |" for code, text, shapes in _responses(op)]
        lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", "| field | type | meaning |", "|---|---|---|"]
        lines += [f"| `{field}` | {cell(kind)} | {cell(text)} |" for field, kind, text in _properties(schema)]
        lines.append("")
    return "\n".join(lines)


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
          "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
          "text-align:left;vertical-align:top}code{background:#f3f3f3;padding:0 .2rem}h2{margin-top:2rem}")


def render_html(doc: dict[str, Any]) -> str:
    """The reference as one self-contained HTML page."""
    def e(text: Any) -> str:
        return html.escape(str(text))

    def table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
        top = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{top}</tr>{body}</table>"

    info = doc.get("info", {})
    out = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(info.get('title', 'API'))}"
           f"</title><style>{_STYLE}</style></head><body>",
           f"<h1>{e(info.get('title', ''))} {e(info.get('version', ''))}</h1>",
           f"<p>{e(info.get('description', ''))} The machine-readable document: "
           "<a href=\"openapi.json\">openapi.json</a>.</p>"]
    for path, method, op in operations(doc):
        out.append(f"<h2 id=\"{e(method.lower() + path)}\"><code>{e(method)} {e(path)}</code></h2>"
                   f"<p>{e(op.get('summary', ''))}</p>")
        if op.get("description"):
            out.append(f"<p>{e(op['description'])}</p>")
        out.append(f"<p>Authorisation: {e(_security(op))}</p>")
        if op.get("parameters"):
            out.append(table(("parameter", "in", "type", "meaning"),
                             [(p["name"], p["in"], schema_text(p.get("schema", {})), str(p.get("description", "")))
                              for p in op["parameters"]]))
        for media, shape in _bodies(op):
            out.append(f"<p>Request body ({e(media)}): {e(shape)}</p>")
        out.append(table(("status", "meaning", "body"), _responses(op)))
    out.append("<h2>Schemas</h2>")
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out.append(f"<h3 id=\"{e(name)}\">{e(name)}</h3>" + table(("field", "type", "meaning"), _properties(schema)))
    out.append("</body></html>")
    return "\n".join(out)
