"""The documentation site (docs/, mkdocs.yml) says what the code does: the generated pages are what
the code gives today, its configs load, its commands parse, its examples run against a real
service, and the service serves its API reference at /docs."""
import ast
import doctest
import io
import re
import shlex
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest
import typer
import yaml
from service_support import serving
from starlette.testclient import TestClient

from k50core.bindings.service import create_app
from k50core.bindings.service.apidocs import operations
from k50core.bindings.service.openapi import openapi_document
from k50core.cli import app as cli_app
from k50core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
sys.path.insert(0, str(DOCS))
import gen_reference  # noqa: E402 (docs/ is not a package)


def fences(page: Path):
    """(language, code) of every fenced block of a page."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```", page.read_text(), re.S | re.M)]


def test_every_page_of_the_nav_exists_and_every_page_is_in_it():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    named = set()

    def walk(items):
        for item in items:
            for value in item.values():
                walk(value) if isinstance(value, list) else named.add(value)
    walk(nav)
    assert named == {p.name for p in PAGES}


def test_the_generated_pages_are_what_the_code_gives():
    got = subprocess.run([sys.executable, str(DOCS / "gen_reference.py"), "--check"], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr


def test_a_config_key_without_a_meaning_fails_the_generator(monkeypatch):
    from k50core.config import schema

    real = schema.json_schema

    def with_a_new_key():
        doc = real()
        doc["$defs"]["Pool"]["properties"]["brand_new_key"] = {"type": "integer", "default": 1}
        return doc
    monkeypatch.setattr(schema, "json_schema", with_a_new_key)
    with pytest.raises(SystemExit, match="brand_new_key"):
        gen_reference.configuration_page()


def test_the_configuration_reference_shows_the_schemas_defaults():
    page = (DOCS / "configuration.md").read_text()
    assert "| `hold_seconds` | integer ≥ 1 | `900` |" in page and "| `cooldown_seconds` | integer ≥ 0 | `300` |" in page
    assert "| `numbers` | list of string | **required** |" in page and "| `max_candidates` |" in page


def test_every_config_in_the_docs_loads(tmp_path):
    configs = 0
    for page in PAGES:
        for lang, code in fences(page):
            if lang == "yaml" and code.startswith("# ") and code.split("\n", 1)[0].endswith(".yaml"):
                path = tmp_path / code.split("\n", 1)[0][2:].strip()
                path.write_text(code)
                load_config(str(path))
                configs += 1
    assert configs >= 1


def _parse(args):
    group = typer.main.get_command(cli_app)
    if args[0].startswith("-"):
        group.make_context("k50core", list(args))
        return
    command = group.commands[args[0]]
    with group.context_class(group, info_name="k50core") as parent:
        command.make_context(args[0], list(args[1:]), parent=parent)


def test_every_k50core_command_in_the_docs_parses():
    """`k50core ...` lines of bash blocks and systemd's ExecStart: the CLI takes every option as given."""
    seen = 0
    for page in PAGES:
        for lang, code in fences(page):
            for line in code.replace("\\\n", " ").splitlines():  # a command continued with "\" is one line
                line = line.split(" # ")[0].strip()
                if lang == "ini" and line.startswith("ExecStart="):
                    line = "k50core " + line.split(" ", 1)[1]
                if lang in ("bash", "ini") and line.startswith("k50core "):
                    args = shlex.split(line)[1:]
                    try:
                        _parse(args)
                    except typer.Exit:
                        pass
                    seen += 1
    assert seen >= 10


def _run_python(code: str, namespace: dict, where: str) -> None:
    """Run a block; a line ending in `# -> VALUE` must give VALUE (doctest's ELLIPSIS rules), as in the
    README's blocks (tests/test_readme.py)."""
    comments = {t.start[0]: t.string for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type == tokenize.COMMENT}
    for node in ast.parse(code).body:
        shown = comments.get(node.end_lineno, "")
        if shown.startswith("# ->"):
            got = repr(eval(compile(ast.Expression(node.value), where, "eval"), namespace))
            want = shown[4:].split("  (")[0].strip()     # `# -> VALUE  (a note)`
            assert doctest.OutputChecker().check_output(want + "\n", got + "\n", doctest.ELLIPSIS), (where, want, got)
        else:
            exec(compile(ast.Module([node], []), where, "exec"), namespace)


def test_getting_started_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = DOCS / "getting-started.md"
    blocks = fences(page)
    config = next(code for lang, code in blocks if lang == "yaml")
    (tmp_path / "site.yaml").write_text(config)
    code = next(code for lang, code in blocks if lang == "python")
    _run_python(code, {"__name__": "docs"}, str(page))


@pytest.fixture
def telephony_service(engine):
    """The demo engine served as the telephony pages start it (a Twilio token, a webhook secret)."""
    app = create_app(engine, api_keys=["KEY"], twilio_auth_token="TOKEN", webhook_secrets=["SECRET"],
                     cdr_timezone="UTC")
    with serving(app) as base:
        yield base


def test_the_twilio_example_posts_a_signed_callback(telephony_service):
    code = next(code for lang, code in fences(DOCS / "telephony-twilio.md") if lang == "python")
    assert "http://127.0.0.1:8050" in code
    _run_python(code.replace("http://127.0.0.1:8050", telephony_service), {}, "telephony-twilio.md")


def test_the_asterisk_example_posts_a_signed_cdr(telephony_service):
    code = next(code for lang, code in fences(DOCS / "telephony-asterisk.md") if lang == "bash" and "openssl" in code)
    got = subprocess.run(["bash", "-c", code.replace("http://127.0.0.1:8050", telephony_service)],
                         capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    answer = yaml.safe_load(got.stdout)   # JSON is YAML
    assert (answer["call_id"], answer["status"]) == ("1700000000.42", "unmatched")


def test_the_service_serves_its_api_reference_at_docs(engine, clock):
    client = TestClient(create_app(engine, now=clock))
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text                                  # nothing to run, nothing fetched
    for path, method, _ in operations(openapi_document()):
        assert f"<code>{method} {path}</code>" in page.text
    assert "/docs" in client.get("/openapi.json").json()["paths"]


def test_no_test_module_sets_the_hypothesis_profile():
    """Profiles are registered and chosen in conftest.py only (HYPOTHESIS_PROFILE)."""
    offenders = [p.name for p in sorted((ROOT / "tests").glob("test_*.py"))
                 if re.search(r"settings\.(register|load)_profile\(", p.read_text()) and p.name != Path(__file__).name]
    assert offenders == []
    assert 'settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE"' in (ROOT / "tests" / "conftest.py").read_text()
