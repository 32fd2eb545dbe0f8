"""The compiled core's .pxd files: shipped with the package, and what they declare is what was built.

A Cython project outside k50core cimports the core's classes, inline helpers and C declarations;
the module it builds checks at import that each class it cimports has the size its .pxd gives
(Cython's type import), and reads the fields through the declared layout, so a .pxd that
disagreed with the built module would fail here.
"""
import os
import subprocess
import sys
import tarfile
from array import array
from pathlib import Path

import pytest

import k50core
from k50core._impl import available

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "k50core"

DOWNSTREAM = '''
# cython: language_level=3
from libc.stdint cimport uint64_t

from k50core._csrc.atomics cimport k50_load
from k50core._csrc.bounds cimport SHARED_BIT
from k50core._device cimport _dev_lookup
from k50core._enrich cimport Enricher
from k50core._geoip cimport GeoIP
from k50core._match cimport Matcher
from k50core._pool cimport HEAD_SIZE, KIND_LEASED, SLOT_SIZE, Assigner, ReturnCache, SlotTable, _gen, _kind, _until


def state(SlotTable t, Py_ssize_t i):
    cdef uint64_t s = k50_load(t._state(i))
    return _kind(s), <long long>_gen(s), (s & SHARED_BIT) != 0, <long long>_until(s)


def table_shape(SlotTable t):
    return t.capacity, t.heads + t.capacity * HEAD_SIZE == t.base, t.renewed


def cached(ReturnCache cache, Assigner assigner):
    return cache.capacity, cache.rets.used, assigner.cache is cache


def matcher_shape(Matcher m):
    return m.nroots, m.nslots, m.probe is not None


def geoip_path(GeoIP g):
    return g.path


def device(ua):
    return _dev_lookup(ua)


def enricher_shape(Enricher e):
    return e.cache_size, e.classifier.catalogue is e.catalogue, e.cgeo is e.geoip, len(e.urls)


LEASED = KIND_LEASED
SLOT_BYTES = SLOT_SIZE
'''

BUILD = '''
import sys
from Cython.Build import cythonize
from setuptools import Extension, setup

src, package = sys.argv.pop(1), sys.argv.pop(1)
setup(ext_modules=cythonize([Extension("downstream", ["downstream.pyx"], include_dirs=[package],
                                       extra_compile_args=["-O0"])],
                            include_path=[src], quiet=True),
      script_args=["build_ext", "--inplace", "-q"])
'''


def _package_files(patterns: list[str]) -> set[Path]:
    return {p for pattern in patterns for p in PACKAGE.glob(pattern)}


def test_the_package_data_takes_every_pxd_and_header():
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["k50core"]
    wanted = set(PACKAGE.glob("*.pxd")) | set(PACKAGE.glob("_csrc/*.pxd")) | set(PACKAGE.glob("_csrc/*.h"))
    assert {p.name for p in PACKAGE.glob("*.pxd")} >= {"_pool.pxd", "_match.pxd", "_geoip.pxd", "_device.pxd",
                                                          "_enrich.pxd"}
    assert wanted - _package_files(patterns) == set()


def test_the_sdist_ships_every_pxd_and_header(tmp_path):
    env = dict(os.environ, K50CORE_NO_EXTENSIONS="1")
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    (sdist,) = tmp_path.glob("k50core-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in tar.getnames()}
    wanted = {p.relative_to(ROOT).as_posix() for p in
              [*PACKAGE.glob("*.pxd"), *PACKAGE.glob("*.pxi"), *PACKAGE.glob("_csrc/*.pxd"), *PACKAGE.glob("_csrc/*.h")]}
    assert wanted - names == set()


@pytest.fixture(scope="module")
def downstream(tmp_path_factory):
    compiled = available().get("compiled")
    if compiled is None:
        pytest.skip("a K50CORE_NO_EXTENSIONS install has no compiled core to cimport")
    work = tmp_path_factory.mktemp("downstream")
    (work / "downstream.pyx").write_text(DOWNSTREAM)
    (work / "build.py").write_text(BUILD)
    package = Path(k50core.__file__).parent
    done = subprocess.run([sys.executable, "build.py", str(package.parent), str(package)], cwd=work,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    sys.path.insert(0, str(work))
    try:
        import downstream as module
    finally:
        sys.path.remove(str(work))
    return compiled, module


def test_a_cython_module_reads_a_slot_table_through_the_pxd(downstream):
    compiled, module = downstream
    table = compiled.SlotTable(bytearray(compiled.table_bytes(8) + 8), 0, 8)
    slots = array("i", range(8))
    for i in range(8):
        table.setup(i, 74950000000 + i, 0)
    claimed = table.claim(slots, 0, 1_000, 60_000, 0, 1, 42, b"visitor", b"")
    assert claimed is not None
    slot, gen = claimed
    assert module.state(table, slot) == table.state(slot)
    assert module.state(table, slot)[0] == module.LEASED == compiled.LAYOUT["LEASED"]
    assert module.SLOT_BYTES == compiled.LAYOUT["SLOT_SIZE"]
    assert module.table_shape(table) == (8, True, table.renewed)
    for other in range(8):
        assert module.state(table, other) == table.state(other)

    cache = compiled.ReturnCache(table, 1234)
    assigner = compiled.Assigner(cache, lambda visit, now, token: None)
    assert module.cached(cache, assigner) == (1234, 0, True)


def test_a_cython_module_uses_the_matcher_geoip_and_device_cache(downstream):
    compiled, module = downstream
    from k50core.rules import index
    from k50core.rules.compiler import Compiler, PathTable

    compiler = Compiler(PathTable(), {}, strict=False)
    roots = [compiler.add({"a": "x"}), compiler.add({"b.c": {"$in": ["y", "z"]}})]
    ix, always = index.build(compiler.nodes, roots)
    matcher = compiled.Matcher(compiler.nodes, compiler.paths.paths, roots, ix, always)
    assert module.matcher_shape(matcher) == (2, len(compiler.paths.paths), True)
    assert matcher.first_match({"b": {"c": "z"}}) == 1

    geoip = compiled.GeoIP()
    assert module.geoip_path(geoip) == geoip.path

    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    assert module.device(ua) == compiled.device_info(ua)
    assert module.device(ua)[0] == compiled.device_type(ua) == "mobile"


def test_a_cython_module_reads_an_enricher_through_the_pxd(downstream):
    compiled, module = downstream
    from k50core.enrich import SourceCatalogue

    geoip = compiled.GeoIP()
    enricher = compiled.Enricher(geoip, SourceCatalogue(), 77)
    assert module.enricher_shape(enricher) == (77, True, True, 0)
    enricher({"url": "https://a.ru/x"}, 1.0)
    assert module.enricher_shape(enricher) == (77, True, True, 1) and enricher.cache_sizes()["urls"] == 1
