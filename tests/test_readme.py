"""What a newcomer meets first: the README's commands and examples run as written, the paths it names
exist, the licence the metadata claims is there."""
import ast
import doctest
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tokenize
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI = Path(sys.executable).parent / "k50core"          # the installed command, as a newcomer runs it
TOP = ("src/", "examples/", "bindings/", "benchmarks/", "tests/", ".ci/")


def test_the_licence_the_metadata_claims_is_there():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 k50core contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"} and metadata.metadata("k50core")["License"] == "MIT"


def test_version():
    from k50core import IMPLEMENTATION

    got = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    assert got.stdout == f"k50core {metadata.version('k50core')} ({IMPLEMENTATION} build)\n"


def readme_paths():
    """Every repository path the README names: in `code` or a code block, starting at a top folder."""
    text = README.read_text()
    found = set()
    for token in re.findall(r"[\w.+-]*(?:/[\w.*+-]+)+/?", text):
        token = token.rstrip(".,;:)")
        if token.startswith(TOP) and "*" not in token and "…" not in token:
            found.add(token)
    return sorted(found)


def test_every_path_the_readme_names_exists():
    paths = readme_paths()
    assert "src/k50core/examples/plans.yaml" in paths and "src/k50core/examples/demo.yaml" in paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"README.md names paths that do not exist: {missing}"


# -- the README's code blocks, run as written --------------------------------------------------------------
# ```python blocks run in order, one namespace per section; a line ending in `# -> VALUE` must give
# VALUE (its repr; `...` matches anything, as in doctest). ```yaml blocks parse; one whose first line
# is `# NAME.yaml` is written as that file for the blocks after it. ```bash lines are commands: the
# CLI's commands that need no server run with the installed `k50core` (`# -> TEXT`: what they print),
# `k50core serve` lines are parsed by the CLI itself, `curl` lines run against `serve --demo` in
# test_the_run_command_shows_the_whole_flow, and pip / pytest are .ci/run's.
SAFE = {"check", "demo", "size", "simulate", "invoice", "report", "import-deals", "--version", "--help"}
CI = ("pip install", "python -m pytest")


def blocks():
    """(section, language, code, line) of every fenced block, in order; a section starts at a heading."""
    out, section, fence = [], "", None
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if fence is None:
            if line.startswith("```"):
                fence, lang, code, start = line, line[3:].strip(), [], number + 1
            elif line.startswith("#"):
                section = line.lstrip("#").strip()
        elif line.startswith("```"):
            out.append((section, lang, "\n".join(code) + "\n", start))
            fence = None
        else:
            code.append(line)
    assert fence is None, "README.md: a code block is not closed"
    return out


def expected(comment):
    """`# -> VALUE  (a note)` -> 'VALUE'."""
    return comment.split("->", 1)[1].split("  (")[0].strip()


def same(want, got):
    return doctest.OutputChecker().check_output(want + "\n", got + "\n", doctest.ELLIPSIS)


def run_python(code, namespace, where):
    tree = ast.parse(code, where)
    comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                if tok.type == tokenize.COMMENT}
    for node in tree.body:
        shown = comments.get(node.end_lineno, "")
        if shown.startswith("# ->"):
            assert isinstance(node, ast.Expr), f"{where}:{node.lineno}: `# ->` follows an expression only"
            got = repr(eval(compile(ast.Expression(node.value), where, "eval"), namespace))
            want = expected(shown)
            assert same(want, got), f"{where}:{node.lineno}: README shows {want}, the code gives {got}"
        else:
            exec(compile(ast.Module([node], []), where, "exec"), namespace)


def commands(code):
    """(command, `# ->` text or None) of a bash block: continuations joined, `&&` split, comments off."""
    lines, out = code.replace("\\\n", " ").splitlines(), []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("# ->") and out:
            out[-1] = (out[-1][0], expected(text))
            continue
        if text.startswith("#"):
            continue
        command, _, comment = text.partition(" # ")      # a comment starts after a space
        want = expected(comment) if comment.strip().startswith("->") else None
        parts = [p.strip() for p in command.split(" && ")]
        out += [(p, None) for p in parts[:-1]] + [(parts[-1], want)]
    return out


def parse_cli(args):
    """The CLI's own parser over ``args`` (no command runs): a usage mistake fails the test."""
    import typer

    from k50core.cli import app

    group = typer.main.get_command(app)
    try:
        if args[0].startswith("-"):                      # the group's own options: --version, --help
            group.make_context("k50core", list(args))
            return
        command = group.commands.get(args[0])
        assert command is not None, f"no command {args[0]!r}"
        with group.context_class(group, info_name="k50core") as parent:
            command.make_context(args[0], list(args[1:]), parent=parent)
    except typer.Exit:
        pass


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A directory where the README's commands run as if from the repository's root (its folders and
    files linked in), so what they write (k50core-demo.db, k50.db, site.yaml) lands there."""
    where = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name != ".git" and not entry.name.startswith("k50core-demo.db"):
            (where / entry.name).symlink_to(entry)
    return where


def test_every_python_and_yaml_example_runs_as_written(checkout, monkeypatch):
    monkeypatch.chdir(checkout)
    assert not (checkout / ".examples-ran").exists(), "the examples run here first, once"
    namespaces, ran = {}, 0
    for section, lang, code, line in blocks():
        where = f"README.md:{line} ({section})"
        if lang == "yaml":
            data = yaml.safe_load(code)
            first = code.splitlines()[0]
            if first.startswith("# ") and first[2:].strip().endswith((".yaml", ".yml")):
                (checkout / first[2:].strip()).write_text(code)
            assert isinstance(data, dict), where
        elif lang == "python":
            run_python(code, namespaces.setdefault(section, {"__name__": "readme"}), where)
            ran += 1
    assert ran >= 2
    (checkout / ".examples-ran").write_text("")


def _run_examples(checkout):
    """The python blocks, once per checkout: some commands read what they wrote (k50-reports.db)."""
    if (checkout / ".examples-ran").exists():
        return
    here = os.getcwd()
    os.chdir(checkout)
    try:
        namespaces = {}
        for section, lang, code, line in blocks():
            first = code.splitlines()[0] if code.strip() else ""
            if lang == "yaml" and first.startswith("# ") and first[2:].strip().endswith((".yaml", ".yml")):
                (checkout / first[2:].strip()).write_text(code)
            elif lang == "python":
                run_python(code, namespaces.setdefault(section, {"__name__": "readme"}), f"README.md:{line}")
    finally:
        os.chdir(here)
    (checkout / ".examples-ran").write_text("")


def test_every_cli_command_in_the_readme_runs_or_parses(checkout):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    seen = {"run": 0, "serve": 0, "curl": 0}
    for _section, lang, code, line in blocks():
        if lang not in ("bash", "sh", "shell"):
            continue
        for command, want in commands(code):
            where = f"README.md:{line}: {command}"
            if command.startswith(CI):
                continue
            if command.startswith("curl "):
                seen["curl"] += 1
                continue
            args = shlex.split(command)
            assert args[0] == "k50core", f"{where}: a command the README test does not know how to check"
            parse_cli(args[1:])
            if args[1] == "serve":
                seen["serve"] += 1
                continue
            assert args[1] in SAFE, f"{where}: a command the README test does not know how to check"
            if args[1] in ("report", "import-deals"):
                _run_examples(checkout)
            got = subprocess.run([str(CLI), *args[1:]], capture_output=True, text=True, cwd=checkout, env=env,
                                 timeout=300)
            assert got.returncode == 0, f"{where}: exit {got.returncode}: {got.stderr}"
            if want is not None:
                assert same(want, got.stdout.strip()), f"{where}: README shows {want}, it prints {got.stdout}"
            seen["run"] += 1
    assert seen["run"] >= 4 and seen["serve"] >= 1 and seen["curl"] >= 1, seen


def test_every_cli_command_quoted_in_the_text_parses():
    """`k50core ...` in the README's prose: every option it names exists and takes what is given."""
    quoted = re.findall(r"`(k50core (?:check|demo|size|simulate|invoice|serve|report|import-deals)[^`]*)`",
                        README.read_text())
    assert len(quoted) >= 4
    for text in quoted:
        parse_cli(shlex.split(text.replace("\n", " "))[1:])


def test_every_dotted_name_in_the_readme_imports():
    """`k50core.x.y` names in the README are importable: a module, or a name in one."""
    import importlib

    names = set(re.findall(r"`(k50core(?:\.\w+)+)`", README.read_text()))
    assert "k50core.bindings.middleware.wsgi.K50Middleware" in names
    for name in sorted(names):
        module, attr = name, None
        while True:
            try:
                found = importlib.import_module(module)
                break
            except ModuleNotFoundError:
                module, _, last = module.rpartition(".")
                attr = last if attr is None else f"{last}.{attr}"
        for part in (attr.split(".") if attr else []):
            assert hasattr(found, part), f"README.md names {name}, but {module} has no {attr}"
            found = getattr(found, part)


# -- the run command's whole flow -------------------------------------------------------------------------
PERSON_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
             "Safari/537.36")


def chromium():
    """The browser the snippet's tests drive: $K50_CHROMIUM, else Debian's (.ci/run installs it)."""
    import shutil

    for path in (os.environ.get("K50_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if path and Path(path).exists():
            return path
    raise AssertionError("no Chromium: .ci/run installs Debian's chromium, or set K50_CHROMIUM")


def readme_curl():
    """The README's call request and the answer it shows."""
    for _, lang, code, _ in blocks():
        if lang == "bash":
            for command, want in commands(code):
                if command.startswith("curl ") and "/v1/calls" in command:
                    return command, want
    raise AssertionError("README.md shows no call posted with curl")


def test_the_run_command_shows_the_whole_flow(tmp_path):
    """`k50core serve --demo` (the README's run command, on a free port): it prints the demo site, a key it
    made and the request that posts a call, the same request the README shows. A real browser opens the
    site and gets a tracking number from the snippet; that request, with the page's number in it, run by
    bash and curl, gets the attribution the README shows: matched to that browser's visit."""
    import socket
    import time

    import httpx
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = open(tmp_path / "serve.err", "w+")
    proc = subprocess.Popen([str(CLI), "serve", "--demo", "--port", str(port), "--log-level", "warning"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert proc.poll() is None, (tmp_path / "serve.err").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        said = (tmp_path / "serve.err").read_text()
        key = re.search(r"demo API key, made for this run \(--api-key KEY sets one\): (\S+)\n", said).group(1)
        site = re.search(r"demo site: (\S+)", said).group(1)
        printed = next(line.strip() for line in said.splitlines() if line.strip().startswith("curl "))
        call_id = re.search(r'"call_id": "(demo-\d+)"', printed).group(1)
        shown, want = readme_curl()
        normal = printed.replace(base, "http://127.0.0.1:8050").replace(key, "KEY").replace(call_id, "demo-1")
        assert normal == shown, f"serve --demo prints\n{normal}\nthe README shows\n{shown}"
        assert site == f"{base}/?utm_campaign=spring_sale"

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_context(user_agent=PERSON_UA).new_page()
                page.goto(site)
                page.wait_for_function("window.K50 && K50.number()", timeout=30_000)
                number = page.inner_text("#phone")
                visitor = {c["name"]: c["value"] for c in page.context.cookies()}["k50_vid"]
            finally:
                browser.close()
        assert number != "+7 (495) 123-45-67"                  # the page shows a tracking number now
        shown_at = time.time()       # the request stamps the call in whole seconds ($(date +%s)): a person
        time.sleep(max(0.0, int(shown_at) + 1 - time.time()))   # posts it a second or more after the visit
        got = subprocess.run(["bash", "-c", printed.replace("NUMBER", number)], capture_output=True, text=True,
                             timeout=60)
        assert got.returncode == 0, got.stderr
        answer = json.loads(got.stdout)
        assert (answer["status"], answer["visitor_id"], answer["rule"]) == ("matched", visitor, "spring-campaign")
        assert answer["attributes"]["utm"] == {"utm_campaign": "spring_sale"}
        assert same(want, got.stdout.strip().replace(call_id, "demo-1")), (want, got.stdout)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        err.close()
