"""Adapters from k50core to its hosts (installed as ``k50core.bindings``): the HTTP service, ..."""
