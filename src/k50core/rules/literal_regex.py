"""Anchored regexes made only of literals, groups of alternatives and ends, read without sre.

A rule set holds thousands of path regexes like ``^/catalog/section7(/|$)``; sre's parser costs
~40 µs each, this reading a few. ``literal_texts`` gives what ``compiler._walk`` finds from sre's
parse (tests/test_literal_regex.py compares the two on generated patterns), or None for anything
else, which then goes the general way.
"""
from __future__ import annotations

import re
from functools import lru_cache

OPEN, END, END_STRING = 0, 1, 2  # after a text: anything, "$" (the end or a last "\n"), "\Z"

_REGEX_META = frozenset(".^$*+?{}[]\\|()")
# what _literal_seq reads as plain text: all but the metacharacters, escapes, "#" and ASCII whitespace
_PLAIN_RUN = re.compile(r"[^.^$*+?{}\[\]\\|()#\n\r\t\v\f ]+")


def literal_texts(source: str, limit: int = 16) -> tuple[tuple[str, int], ...] | None:
    """The texts ``_walk`` finds for an anchored regex made only of literals, groups of
    alternatives and ends (``^/catalog/section7(/|$)``), read without sre's parser; None for
    anything else, which then goes the general way. Rule sets hold thousands of these, and sre's
    parser costs ~40 µs each (tests compare the two on generated patterns)."""
    if source.startswith("^"):
        at = 1
    elif source.startswith("\\A"):
        at = 2
    else:
        return None
    head = _PLAIN_RUN.match(source, at)
    if head is not None and source.startswith("(", head.end()):
        # "/catalog/section7" then "(/|$)": what follows the literal head recurs across a rule set,
        # so it is read once; the head only goes before each of its texts
        tail = _tail_texts(source[head.end():], limit)
        if tail is None:
            return None
        found = [(head.group() + t, end) for t, end in tail]
    else:
        seq = _literal_seq(source, at, limit, top=True)
        if seq is None or seq[1] != len(source):
            return None
        found = seq[0]
    texts = tuple(sorted(set(found)))
    return texts if texts and all(t for t, _ in texts) else None


@lru_cache(maxsize=256)
def _tail_texts(tail: str, limit: int) -> tuple[tuple[str, int], ...] | None:
    """``_literal_seq`` of a whole pattern tail: each text's reading only appends to it, so a
    pattern's texts are its literal head before each of its tail's."""
    seq = _literal_seq(tail, 0, limit, top=True)
    return None if seq is None or seq[1] != len(tail) else tuple(seq[0])


def _literal_seq(src: str, i: int, limit: int, top: bool = False) -> tuple[list[tuple[str, int]], int] | None:
    """Reads a sequence from src[i] up to ``|``, ``)`` or the end: (texts, where it stopped)."""
    texts: list[tuple[str, int]] = [("", OPEN)]
    ended = False
    n = len(src)
    while i < n:
        run = _PLAIN_RUN.match(src, i)
        if run is not None:  # a run of plain characters at once (rules hold long ones)
            if ended:
                return None  # something after an end
            tail = run.group()
            texts = [(t + tail, OPEN) for t, _ in texts]
            i = run.end()
            continue
        c = src[i]
        if c in "|)":
            if top:
                return None  # a top-level "|" puts the anchor in one branch only
            break
        if ended:
            return None  # something after an end
        if c == "(":
            if src.startswith("(?:", i):
                i += 3
            elif src.startswith("(?", i):
                return None
            else:
                i += 1
            grown: list[tuple[str, int]] = []
            while True:
                sub = _literal_seq(src, i, limit)
                if sub is None:
                    return None
                grown.extend((t + u, whole) for t, _ in texts for u, whole in sub[0])
                i = sub[1]
                if len(grown) > limit or i >= n:
                    return None
                if src[i] == ")":
                    i += 1
                    break
                i += 1  # "|"
            texts = grown
            ended = any(whole for _, whole in texts)
            continue
        if c == "$":
            texts = [(t, END) for t, _ in texts]
            ended = True
            i += 1
            continue
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = src[i + 1]
            if nxt == "Z":
                texts = [(t, END_STRING) for t, _ in texts]
                ended = True
                i += 2
                continue
            if nxt.isalnum() or not nxt.isascii() or nxt in "\n\r\t\v\f":
                return None  # classes, backreferences, escapes of letters: the general way
            c = nxt
            i += 1
        elif c in _REGEX_META or c in "#\n\r\t\v\f ":
            return None
        texts = [(t + c, OPEN) for t, _ in texts]
        i += 1
    return texts, i
