"""The pool segment's layout is written once per build: the two builds and pools.py must agree."""
from conftest import both_cores

from k50core import pools
from k50core._engine_py import pool as reference


def test_both_builds_lay_out_the_segment_alike():
    compiled, ref = both_cores()
    assert compiled.LAYOUT == ref.LAYOUT == reference.LAYOUT
    assert compiled.table_bytes(1000) == ref.table_bytes(1000)


def test_pools_takes_its_constants_from_the_builds():
    for name in ("HEAD_SIZE", "SLOT_SIZE", "HOLDER_MAX", "SESSION_MAX", "NEVER", "CLAIMING", "LEASED", "RETIRED"):
        assert getattr(pools, name) == reference.LAYOUT[name], name
    assert pools.TAG_KEY_AT + pools.KEY_SIZE <= pools.REGISTRY  # the keys sit before the pool registry


def test_the_build_says_whether_it_uses_cpython_internals():
    """K50CORE_NO_CPYTHON_TRICKS=1 at build time turns them off (CI builds and tests once so, with
    the variable set for both); a free-threaded CPython never has them; the reference never does."""
    import os
    import platform
    import sysconfig

    from k50core import _engine_py
    from k50core._impl import available

    assert _engine_py.CPYTHON_TRICKS is False
    compiled = available().get("compiled")
    if compiled is None:
        return  # a K50CORE_NO_EXTENSIONS install: the reference's check above is the test
    expected = (os.environ.get("K50CORE_NO_CPYTHON_TRICKS") != "1" and platform.python_implementation() == "CPython"
                and not sysconfig.get_config_var("Py_GIL_DISABLED"))
    assert compiled.CPYTHON_TRICKS is expected


def test_the_compiled_vm_numbers_its_opcodes_as_the_compiler():
    """rules/opcodes.py is the source of the numbers; the compiled VM's switch must use the same."""
    from k50core._impl import available
    from k50core.rules.opcodes import Op

    compiled = available().get("compiled")
    if compiled is None:
        return
    assert compiled.OPCODES == {op.name: op.value for op in Op}
