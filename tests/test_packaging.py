"""pyproject lists its packages by hand (bindings/ is mapped in): every package must be in it."""
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    found |= {"k50core." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bindings").rglob("__init__.py")}
    assert found == listed, (found - listed, listed - found)
