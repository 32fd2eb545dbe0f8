"""Adapters from k50core to its hosts (installed as ``k50core.bindings``): the HTTP service, ..."""

# One import path: bindings/ is installed (and mapped by an editable install) as k50core.bindings. Imported
# as a top-level ``bindings`` from a checkout, its modules would load a second time, with classes of their own.
if __name__ != "k50core.bindings":
    raise ImportError(f"bindings/ is the package k50core.bindings, imported here as {__name__!r}: "
                      "import k50core.bindings (pip install -e . makes it importable from a checkout)")
