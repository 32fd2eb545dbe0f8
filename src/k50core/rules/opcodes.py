"""Opcodes of compiled condition programs.

A condition compiles to a flat, pre-order list of nodes
``(op, slot, nkids, end, arg)``: children follow their parent, ``end`` is
the index just past a node's subtree, so the next sibling of child ``c`` is
``nodes[c][3]``. Every node tests one value ``v``: at the root ``v`` is the
attribute document, a FIELD node resolves a path and hands the result to its
one child. The same list drives the compiled VM (``_match.pyx``, a C switch)
and the reference VM (``_engine_py/match.py``); the numbers below are
mirrored by the ``OP_*`` enum in ``_match.pyx`` (exported as ``OPCODES``), and
tests/test_layout.py keeps them equal.
"""
from enum import IntEnum
from typing import Any


class Op(IntEnum):
    TRUE = 0
    FALSE = 1
    AND = 2          # all children hold for v
    OR = 3           # some child holds
    NOR = 4          # no child holds
    NOT = 5          # the one child fails
    FIELD_SLOT = 6   # v = attribute path of the engine's path table (slot), then the child
    FIELD_PATH = 7   # v = path arg (tuple of segments) inside v, then the child
    IS_NULL = 8      # v is None (missing)
    EQ_STR = 9       # v is a str equal to arg
    EQ_NUM = 10      # v is a number (not bool) equal to arg (float)
    EQ_BOOL = 11     # v is the bool arg
    EQ_DEEP = 12     # JSON-strict deep equality with a list / dict literal
    EQ_STR_I = 13    # v is a str equal to arg ignoring case (arg lowercased)
    CMP = 14         # JS relational comparison; arg = (literal, flag 0:< 1:<= 2:> 3:>=)
    VCMP = 15        # version comparison; arg = (padded literal, flag as CMP, 4:== 5:!=)
    IN = 16          # arg = (frozenset, has_true, has_false); list v: any element in
    NIN = 17
    INI = 18         # like IN on lowercased strings
    NINI = 19
    ALL = 20         # v is a list and every child holds for some element
    ELEM = 21        # v is a list and the child holds for some non-null element
    SIZE = 22        # v is a list and the child holds for its length
    EXISTS = 23      # arg True: v is not None; False: v is None
    TYPE = 24        # JSON type name of v equals arg
    REGEX = 25       # arg = (pattern.match or .search, required prefixes): v is a str that matches
    NREGEX = 26      # not REGEX (true for non-strings)
    GROUP = 27       # arg = (inset, v4 ranges, v6 ranges): IN, or v an IP inside the ranges
    NGROUP = 28
    CIDR = 29        # arg = (v4 ranges, v6 ranges): v an IP inside one of them
    HOST = 30        # arg = tuple of hosts: v equal to one or a subdomain of one (ignoring case)
    PREFIX = 31      # arg = tuple of str: v starts with one
    CONTAINS = 32    # arg = tuple of str: v contains one



# The same numbers as plain class attributes, for the compiler's and the rule index's inner loops:
# reading an IntEnum member (``Op.AND``) costs about 0.2 µs on CPython 3.11, a plain class
# attribute a tenth of that, and loading 100,000 rules reads them millions of times.
Code: Any = type("Code", (), {op.name: int(op) for op in Op})
