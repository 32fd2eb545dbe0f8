"""What a newcomer meets first: the README's commands and examples run as written, the paths it names
exist, the licence the metadata claims is there."""
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

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
