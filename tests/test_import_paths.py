"""One import path per module, and the extras: the SDK without the service stack, the service as an extra.

bindings/ is installed as ``k50core.bindings``; importing it a second way (a top-level ``bindings`` from a
checkout) would load each module twice, with two ``PayloadError`` classes an ``except`` could tell apart.
"""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*(ROOT / "src").rglob("*.py"), *(ROOT / "bindings").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
           *(ROOT / "benchmarks").rglob("*.py")]
OURS = ("k50core", "bindings")

# Run first in a child interpreter: the service stack cannot be imported, as where it is not installed.
BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("starlette", "uvicorn"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _NotInstalled())
""")


def run(code, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args], capture_output=True,
                          text=True, env=env, cwd=cwd or ROOT, timeout=120)


def _imported(node):
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""] if node.level == 0 else []
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return []


def test_no_module_of_ours_is_imported_two_ways():
    """No ``try: import A / except ImportError: import B`` over our own modules, no top-level
    ``bindings`` import, and bindings/ reaches its own modules relatively (one name for each)."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                    for h in node.handlers):
                names = [n for stmt in node.body for sub in ast.walk(stmt) for n in _imported(sub)]
                if any(n.split(".")[0] in OURS for n in names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: a fallback import of {names}")
            for name in _imported(node):
                if name.split(".")[0] == "bindings":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {name} (k50core.{name})")
                if path.is_relative_to(ROOT / "bindings") and name.startswith("k50core.bindings"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: bindings/ imports {name} by its "
                                 "absolute name (a relative import keeps one path)")
    assert not found, "\n".join(found)


def test_the_sources_checked_are_there():
    """The scan above reads the folders it should (a moved folder would make it pass vacuously)."""
    names = {p.relative_to(ROOT).as_posix() for p in SOURCES}
    assert {"bindings/service/app.py", "src/k50core/cli.py", "tests/test_telephony.py"} <= names


def test_one_payload_error_class():
    from k50core.bindings import telephony
    from k50core.bindings.service import app
    from k50core.bindings.telephony import payloads

    assert app.PayloadError is telephony.PayloadError is payloads.PayloadError
    loaded = [name for name in sys.modules if name == "bindings" or name.startswith("bindings.")]
    assert loaded == [], loaded


def test_bindings_as_a_top_level_package_is_refused_by_name():
    """From the checkout's root ``bindings`` is on the path; importing it there says which name to use."""
    got = run("import bindings")
    assert got.returncode != 0 and "import k50core.bindings" in got.stderr, got.stderr


def test_the_sdk_runs_a_decision_without_the_service_stack():
    got = run("""
        import k50core
        from k50core.cli import demo_config_path
        from k50core.bindings.middleware.wsgi import K50Middleware  # a host adapter needs no web server
        engine = k50core.Engine.from_config(demo_config_path())
        got = engine.assign({"visitor_id": "v1", "url": "https://shop.example.ru/?utm_campaign=spring_sale",
                             "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"},
                            now=1000.0)
        assert got.rule == "spring-campaign" and got.number, got
        try:
            import starlette
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("the blocker let starlette in: this test would prove nothing")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn"))
        assert not loaded, loaded
        print("decided", got.number)
    """)
    assert got.returncode == 0 and "decided +7" in got.stdout, got.stderr


def test_serve_without_the_service_stack_says_what_to_install(tmp_path):
    got = run("from k50core.cli import main; main(sys.argv[1:])", "serve", "--demo", cwd=tmp_path)
    assert got.returncode == 2 and "Traceback" not in got.stderr, got.stderr
    assert "pip install 'k50core[service]'" in got.stderr and "starlette and uvicorn" in got.stderr, got.stderr
    assert not (tmp_path / "k50core-demo.db").exists()  # refused before anything was made


def test_the_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    extras = project["optional-dependencies"]
    assert "starlette" not in base and "uvicorn" not in base
    assert any(d.startswith("starlette") for d in extras["service"])
    assert any(d.startswith("uvicorn") for d in extras["service"])
    assert "k50core[service]" in extras["test"]
    first = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].splitlines()
    assert first[0].startswith("pip install '.[service]' && k50core serve --demo "), first[0]
    assert first[1].startswith("pip install '.[test]' && python -m pytest "), first[1]
