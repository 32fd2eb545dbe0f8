"""The pool segment's layout is written once per build: the two builds and pools.py must agree."""
from k50core import pools
from k50core._engine_py import pool as reference

from conftest import both_cores


def test_both_builds_lay_out_the_segment_alike():
    compiled, ref = both_cores()
    assert compiled.LAYOUT == ref.LAYOUT == reference.LAYOUT
    assert compiled.table_bytes(1000) == ref.table_bytes(1000)


def test_pools_takes_its_constants_from_the_builds():
    for name in ("HEAD_SIZE", "SLOT_SIZE", "HOLDER_MAX", "SESSION_MAX", "NEVER", "CLAIMING", "LEASED", "RETIRED"):
        assert getattr(pools, name) == reference.LAYOUT[name], name
    assert pools.TAG_KEY_AT + pools.KEY_SIZE <= pools.REGISTRY  # the keys sit before the pool registry
