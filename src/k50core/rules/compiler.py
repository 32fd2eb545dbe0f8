"""Compile Mongo-style conditions (a superset of GrowthBook's) into programs.

Done once at load: regexes compiled, globs turned into regexes, CIDRs into
integer ranges, ``$in`` lists into hash sets, literals specialised by type.
The result is the flat node list described in ``opcodes.py``.

Two modes. ``strict`` (config files) reports every fault with its place
(``rules[3].when.geo.region: $in expects a list``). Lenient (``evaluate``,
GrowthBook compatibility) turns what GrowthBook evaluates as false — an
unknown operator, a bad regex — into a constant instead.
"""
from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import ConfigError, Problem
from . import ipranges
from .literal_regex import _REGEX_META, END, END_STRING, OPEN, literal_texts
from .opcodes import Code
from .values import padded_version

Node = tuple[int, int, int, int, Any]

LOGIC_KEYS = ("$or", "$nor", "$and")
TYPE_NAMES = ("string", "number", "boolean", "array", "object", "null")
_CMP = {"$lt": 0, "$lte": 1, "$gt": 2, "$gte": 3}
_VCMP = {"$vlt": 0, "$vlte": 1, "$vgt": 2, "$vgte": 3, "$veq": 4, "$vne": 5}
_REGEX = {"$regex": (0, False), "$regexi": (re.IGNORECASE, False),
          "$notRegex": (0, True), "$notRegexi": (re.IGNORECASE, True)}
_SETS = {"$in": (Code.IN, False), "$nin": (Code.NIN, False), "$ini": (Code.INI, True), "$nini": (Code.NINI, True)}
_STRING_LISTS = {"$host": Code.HOST, "$prefix": Code.PREFIX, "$contains": Code.CONTAINS}
EMPTY_GROUP: tuple[frozenset[Any], bool, bool, tuple[Any, ...], tuple[Any, ...]] = (frozenset(), False, False, (), ())


class T(NamedTuple):
    """A node of the condition tree before flattening."""
    op: int
    slot: int = -1
    arg: Any = None
    kids: tuple[T, ...] = ()


TRUE, FALSE = T(Code.TRUE), T(Code.FALSE)


class PathTable:
    """Dotted attribute paths interned to slots shared by all rules of an engine."""

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self.paths: list[tuple[str, ...]] = []

    def slot(self, path: str) -> int:
        found = self.slots.get(path)
        if found is None:
            found = self.slots[path] = len(self.paths)
            # interned: attribute dicts built from literals share these objects,
            # so lookups succeed on identity without comparing characters
            self.paths.append(tuple(sys.intern(seg) for seg in path.split(".")))
        return found


def is_operator_object(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for k in value:
        if not isinstance(k, str) or not k.startswith("$"):
            return False
    return True


def _empty_segment(path: str) -> bool:
    """``"" in path.split(".")`` without the list: a dot first, last or twice in a row."""
    return path.startswith(".") or path.endswith(".") or ".." in path


def make_inset(values: Sequence[Any], insensitive: bool = False) -> tuple[frozenset, bool, bool]:
    """(set of primitives, has True, has False): bools apart so True is not 1."""
    if not insensitive and all(type(v) is str for v in values):  # the usual list: strings only
        return frozenset(values), False, False
    items = set()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float, type(None))):
            continue
        items.add(v.lower() if insensitive and isinstance(v, str) else v)
    return frozenset(items), any(v is True for v in values), any(v is False for v in values)


def compile_groups(groups: Mapping[str, Any] | None, strict: bool,
                   place: str = "lists") -> tuple[dict[str, tuple], list[Problem]]:
    """Named lists (saved groups) → (inset, has_true, has_false, v4 ranges, v6 ranges).

    Entries that look like IP addresses or CIDRs also match any address
    inside them, so ``ip: {$inGroup: office}`` works with networks.
    """
    out: dict[str, tuple] = {}
    problems: list[Problem] = []
    for name, values in (groups or {}).items():
        if not isinstance(values, (list, tuple)):
            if strict:
                problems.append((f"{place}.{name}", "a list must be a list of values"))
            continue
        nets = []
        for i, entry in enumerate(values):
            if ipranges.looks_like_network(entry):
                try:
                    nets.append(ipranges.parse_network(entry))
                except ValueError as exc:
                    if strict:
                        problems.append((f"{place}.{name}[{i}]", str(exc)))
            elif strict and (isinstance(entry, (dict, list)) or entry is None):
                problems.append((f"{place}.{name}[{i}]", "list entries must be strings, numbers or booleans"))
        v4, v6 = ipranges.merge(nets)
        out[str(name)] = make_inset(values) + (v4, v6)
    return out, problems


class Compiler:
    """Compiles conditions of one rule set; collects every problem found."""

    def __init__(self, paths: PathTable | None = None, groups: Mapping[str, tuple] | None = None,
                 strict: bool = True) -> None:
        self.paths = paths if paths is not None else PathTable()
        self.groups = groups or {}
        self.strict = strict
        self.problems: list[Problem] = []
        self.nodes: list[Node] = []

    # -- public -------------------------------------------------------------
    def add(self, condition: Any, place: str = "") -> int:
        """Compile one condition; returns the index of its root node."""
        root = len(self.nodes)
        if not gc.isenabled():
            _flatten(self._doc(condition, place, top=True), self.nodes)
            return root
        # No cyclic collection while compiling (see bulk.py). Switched here, without a context
        # manager: its generator would be an allocation between two rules' pauses, and a loop of
        # adds that allocates nothing between them (Engine's) then runs without the collector.
        gc.disable()
        try:
            _flatten(self._doc(condition, place, top=True), self.nodes)
        finally:
            gc.enable()
        return root

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)

    # -- helpers ------------------------------------------------------------
    def _fault(self, place: str, message: str, lenient: T = FALSE) -> T:
        if self.strict:
            self.problems.append((place, message))
        return lenient

    def _doc(self, cond: Any, place: str, top: bool) -> T:
        if not isinstance(cond, dict):
            return self._fault(place, f"a condition must be a mapping, got {_kind(cond)}")
        parts = []
        for key, value in cond.items():
            here = _join(place, key)
            if key in LOGIC_KEYS:
                if not isinstance(value, list):
                    parts.append(self._fault(here, f"{key} expects a list of conditions"))
                    continue
                kids = tuple(self._doc(c, f"{here}[{i}]", top) for i, c in enumerate(value))
                if not kids:  # GrowthBook: an empty $or or $and passes, an empty $nor fails
                    parts.append(FALSE if key == "$nor" else TRUE)
                    continue
                op = {"$or": Code.OR, "$nor": Code.NOR, "$and": Code.AND}[key]
                parts.append(T(op, kids=kids))
            elif key == "$not":
                parts.append(T(Code.NOT, kids=(self._doc(value, here, top),)))
            elif not isinstance(key, str) or not key or (self.strict and _empty_segment(key)):
                parts.append(self._fault(here, f"bad attribute path {key!r}"))
            else:
                test = self._value(value, here)
                if top:
                    parts.append(T(Code.FIELD_SLOT, self.paths.slot(key), kids=(test,)))
                else:
                    parts.append(T(Code.FIELD_PATH, arg=tuple(key.split(".")), kids=(test,)))
        return _all(parts)

    def _value(self, cv: Any, place: str, insensitive: bool = False) -> T:
        if is_operator_object(cv):
            if len(cv) == 1:  # the usual one operator: no AND around it
                for k, v in cv.items():
                    return self._op(k, v, place)
            return _all([self._op(k, v, place) for k, v in cv.items()])
        return self._literal(cv, place, insensitive)

    def _literal(self, cv: Any, place: str, insensitive: bool = False, deep: bool = True) -> T:
        if isinstance(cv, str):
            return T(Code.EQ_STR_I, arg=cv.lower()) if insensitive else T(Code.EQ_STR, arg=cv)
        if cv is None:
            return T(Code.IS_NULL)
        if isinstance(cv, bool):
            return T(Code.EQ_BOOL, arg=cv)
        if isinstance(cv, (int, float)):
            try:
                return T(Code.EQ_NUM, arg=float(cv))
            except OverflowError:
                return T(Code.EQ_DEEP, arg=cv)
        if isinstance(cv, (list, dict)):
            if deep:
                return T(Code.EQ_DEEP, arg=cv)
            return self._fault(place, "$eq compares with a string, number, boolean or null")
        return self._fault(place, f"cannot compare with a value of type {_kind(cv)}")

    def _op(self, op: str, arg: Any, place: str) -> T:
        if op == "$eq":
            return self._literal(arg, place, deep=False)
        if op == "$ne":
            return T(Code.NOT, kids=(self._literal(arg, place, deep=False),))
        if op in _CMP:
            if self.strict and (isinstance(arg, bool) or not isinstance(arg, (str, int, float))):
                return self._fault(place, f"{op} compares with a string or a number, got {_kind(arg)}")
            return T(Code.CMP, arg=(arg, _CMP[op]))
        if op in _VCMP:
            if isinstance(arg, bool) or not isinstance(arg, (str, int, float)):
                return self._fault(place, f"{op} expects a version string",
                                   T(Code.TRUE if op == "$vne" else Code.FALSE))
            return T(Code.VCMP, arg=(padded_version(arg), _VCMP[op], isinstance(arg, str)))
        if op in _SETS:
            code, insensitive = _SETS[op]
            if not isinstance(arg, list):
                return self._fault(place, f"{op} expects a list")
            if self.strict:
                self._check_scalars(arg, place, op)
            return T(code, arg=make_inset(arg, insensitive))
        if op in ("$all", "$alli"):
            if not isinstance(arg, list):
                return self._fault(place, f"{op} expects a list")
            return T(Code.ALL, kids=tuple(self._value(c, f"{place}.{op}[{i}]", op == "$alli")
                                          for i, c in enumerate(arg)))
        if op == "$elemMatch":
            if not isinstance(arg, dict):
                return self._fault(place, "$elemMatch expects a condition")
            on_value = is_operator_object(arg) and not any(k in LOGIC_KEYS for k in arg)
            return T(Code.ELEM, kids=(self._value(arg, place) if on_value else self._doc(arg, place, top=False),))
        if op == "$size":
            if self.strict and not (is_operator_object(arg) or (isinstance(arg, int) and not isinstance(arg, bool))):
                return self._fault(place, "$size expects a whole number or a condition on it")
            return T(Code.SIZE, kids=(self._value(arg, place),))
        if op == "$exists":
            if self.strict and not isinstance(arg, bool):
                return self._fault(place, "$exists expects true or false")
            return T(Code.EXISTS, arg=_js_truthy(arg))
        if op == "$type":
            if self.strict and arg not in TYPE_NAMES:
                return self._fault(place, f"$type expects one of {', '.join(TYPE_NAMES)}")
            return T(Code.TYPE, arg=arg)
        if op == "$not":
            return T(Code.NOT, kids=(self._value(arg, place),))
        if op in _REGEX:
            flags, negated = _REGEX[op]
            plain = _plain_regex(arg) if not flags else None
            if plain is not None:  # "^/catalog" is a prefix test, "promo" a substring test
                test = T(plain[0], arg=(plain[1],))
                return T(Code.NOT, kids=(test,)) if negated else test
            try:
                if not isinstance(arg, str):
                    raise re.error(f"expected a pattern string, got {_kind(arg)}")
                node_arg = compile_regex(arg, flags)
            except (re.error, RecursionError, OverflowError) as exc:
                return self._fault(place, f"{op}: bad regular expression {arg!r}: {exc}",
                                   T(Code.TRUE if negated else Code.FALSE))
            return T(Code.NREGEX if negated else Code.REGEX, arg=node_arg)
        if op in ("$inGroup", "$notInGroup"):
            group = self.groups.get(arg) if isinstance(arg, str) else None
            if group is None:
                self._fault(place, f"{op}: unknown list {arg!r} (define it under lists:)")
                group = EMPTY_GROUP
            return T(Code.GROUP if op == "$inGroup" else Code.NGROUP, arg=group)
        if op == "$cidr":
            items = self._strings(arg, place, op)
            nets = []
            for i, text in enumerate(items):
                try:
                    nets.append(ipranges.parse_network(text))
                except ValueError as exc:
                    self._fault(f"{place}.$cidr[{i}]", str(exc))
            return T(Code.CIDR, arg=ipranges.merge(nets))
        if op in _STRING_LISTS:
            items = self._strings(arg, place, op)
            if op == "$host":
                items = tuple(h.lower().strip(".") for h in items)
            return T(_STRING_LISTS[op], arg=items)
        if op == "$glob":
            items = self._strings(arg, place, op)
            if len(items) == 1:  # the usual one glob: read without sre (tests compare the two)
                return T(Code.REGEX, arg=glob_arg(items[0]))
            return T(Code.REGEX, arg=regex_arg(re.compile("|".join(glob_regex(g) for g in items) or "(?!)")))
        return self._fault(place, f"unknown operator {op}")

    def _strings(self, arg: Any, place: str, op: str) -> tuple[str, ...]:
        items = [arg] if isinstance(arg, str) else arg
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            self._fault(place, f"{op} expects a string or a list of strings")
            return ()
        return tuple(items)

    def _check_scalars(self, values: list, place: str, op: str) -> None:
        for i, v in enumerate(values):
            if isinstance(v, (list, dict)):
                self.problems.append((f"{place}.{op}[{i}]", "list items must be strings, numbers, booleans or null"))


def regex_arg(pattern: re.Pattern[str]) -> tuple[Any, tuple[str, ...], tuple[tuple[str, int], ...], bool]:
    """(test function, required prefixes, texts, exact) of a regex node.

    A pattern anchored at the start runs with ``pattern.match`` (sre would
    otherwise retry ``^`` at every position), and the literal prefixes any
    match must begin with (``^/(sale|offer)/`` → "/sale/", "/offer/") let the
    VM reject most values with a startswith test, without calling sre. The
    texts, for the rule index, say more where they can: each literal a match
    starts with and whether the match must end right after it (``^/a(/|$)``
    → ("/a", END), ("/a/", OPEN)); empty when the pattern is past that. When
    the texts are the whole pattern (exact), they decide a match without sre.
    """
    try:
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # an internal API; without it just search
        return pattern.search, (), (), False
    return _regex_arg(parsed, pattern.flags, pattern.pattern, pattern)


RegexArg = tuple[Any, tuple[str, ...], tuple[tuple[str, int], ...], bool]


def compile_regex(source: str, flags: int) -> RegexArg:
    """``regex_arg(re.compile(source, flags))``, parsing the pattern once.

    A regex its literals decide (exact) is handed to sre only when a value
    needs it (a str subclass, the reference build): a rule set of 50,000
    path regexes then loads in half the time. Raises what re.compile raises.
    """
    if not flags:
        texts = literal_texts(source)
        if texts is not None:  # what sre's parse would have told, without it (a rule set's many)
            return LazyMatch(source, flags), tuple(sorted({t for t, _ in texts})), texts, True
    try:
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - an internal API
        return regex_arg(re.compile(source, flags))
    parsed = _parser.parse(source, flags)  # re.error for a bad pattern, as re.compile
    state = getattr(parsed, "state", None)
    return _regex_arg(parsed, getattr(state, "flags", flags) | flags, source, None)


class LazyMatch:
    """``re.compile(source, flags).match``, compiled at the first call (the compiled VM swaps in
    ``compiled()`` at its first use, so a lazy test costs no extra call after that)."""
    __slots__ = ("source", "flags", "match")

    def __init__(self, source: str, flags: int) -> None:
        self.source, self.flags = source, flags
        self.match: Callable[..., Any] | None = None

    def compiled(self) -> Callable[..., Any]:
        if self.match is None:
            self.match = re.compile(self.source, self.flags).match
        return self.match

    def __call__(self, value: str) -> Any:
        return (self.match or self.compiled())(value)


def glob_arg(glob: str) -> RegexArg:
    """``regex_arg(re.compile(glob_regex(glob)))`` of one glob, without sre at load: the literal
    text before its first wildcard is its prefix (the whole glob when it has none, then exact);
    sre compiles the pattern at the first value that has the prefix. A glob's pattern is all
    escaped literals and fixed classes, so compiling it later cannot fail where it would not now."""
    cut = min((at for at in (glob.find("*"), glob.find("?")) if at >= 0), default=-1)
    literal = glob if cut < 0 else glob[:cut]
    test = LazyMatch(glob_regex(glob), 0)
    if not literal:  # "" starts every value: no prefix to tell
        return test, (), (), False
    if cut < 0:  # no wildcard: the value is the glob (\Z: not before a last newline)
        return test, (literal,), ((literal, END_STRING),), True
    return test, (literal,), ((literal, OPEN),), False


def _regex_arg(parsed: Any, flags: int, source: str, pattern: re.Pattern[str] | None) -> RegexArg:
    items = list(parsed)
    if flags & re.MULTILINE or not items or str(items[0][0]) != "AT" or \
            str(items[0][1]) not in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        pattern = pattern or re.compile(source, flags)
        return pattern.search, (), (), False
    prefixes: tuple[str, ...] = ()
    texts: tuple[tuple[str, int], ...] = ()
    exact = False
    if not flags & re.IGNORECASE:
        walked = _walk(items[1:])
        if walked is not None and not any(t == "" for t, _ in walked[0]):
            texts = tuple(sorted(set(walked[0])))
            exact = walked[1]
            prefixes = tuple(sorted({t for t, _ in texts}))  # the same texts serve as prefixes
        else:
            found, _ = _literal_prefixes(items[1:])
            if "" not in found:
                prefixes = tuple(sorted(set(found)))
    if pattern is not None:
        return pattern.match, prefixes, texts, exact
    if exact:  # literals, groups, alternatives, ends: nothing re.compile could refuse
        return LazyMatch(source, flags), prefixes, texts, exact
    return re.compile(source, flags).match, prefixes, texts, exact


def _literal_prefixes(items: list[Any], limit: int = 16) -> tuple[list[str], bool]:
    """Literal texts a match of ``items`` starts with; True when they cover all of it."""
    prefixes = [""]
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            prefixes = [p + chr(av) for p in prefixes]
            continue
        if name == "IN" and all(str(o) == "LITERAL" for o, _ in av) and len(prefixes) * len(av) <= limit:
            prefixes = [p + chr(a) for p in prefixes for _, a in av]
            continue
        if name == "SUBPATTERN" and not av[1] and not av[2]:
            alternatives = [list(av[3])]
        elif name == "BRANCH":
            alternatives = [list(alt) for alt in av[1]]
        else:
            return prefixes, False
        grown: list[str] = []
        complete = True
        for alt in alternatives:
            sub, whole = _literal_prefixes(alt, limit)
            complete = complete and whole
            grown.extend(p + s for p in prefixes for s in sub)
        if len(grown) > limit:
            return prefixes, False
        prefixes = grown
        if not complete:
            return prefixes, False
    return prefixes, True




def _walk(items: Any, limit: int = 16) -> tuple[list[tuple[str, int]], bool] | None:
    """(texts a match of ``items`` starts with, each with what must follow it: OPEN, END or
    END_STRING; False when the reading stopped early, the texts then being prefixes), or None."""
    texts: list[tuple[str, int]] = [("", OPEN)]
    ended = False
    run: list[str] = []  # literals since the last other item, added at once (rules hold long ones)
    for op, av in items:
        name = getattr(op, "name", "")
        if ended:  # something after an end ("$\n"): past this reading
            return None
        if name == "LITERAL":
            run.append(chr(av))
            continue
        if run:
            tail = "".join(run)
            texts = [(t + tail, OPEN) for t, _ in texts]
            run = []
        if name == "AT" and getattr(av, "name", "") in ("AT_END", "AT_END_STRING"):
            texts = [(t, END if av.name == "AT_END" else END_STRING) for t, _ in texts]
            ended = True
            continue
        if name == "IN" and all(getattr(o, "name", "") == "LITERAL" for o, _ in av) and len(texts) * len(av) <= limit:
            texts = [(t + chr(a), OPEN) for t, _ in texts for _, a in av]
            continue
        if name == "SUBPATTERN" and not av[1] and not av[2]:
            alternatives = [av[3]]
        elif name == "BRANCH":
            alternatives = av[1]
        else:
            return texts, False  # anything may follow
        grown: list[tuple[str, int]] = []
        complete = True
        for alt in alternatives:
            sub = _walk(alt, limit)
            if sub is None:
                return None
            complete = complete and sub[1]
            grown.extend((t + u, whole) for t, _ in texts for u, whole in sub[0])
        if len(grown) > limit:
            return texts, False
        texts = grown
        ended = any(whole for _, whole in texts)
        if not complete:  # what follows the group may not follow every text
            return texts, False
    if run:
        tail = "".join(run)
        texts = [(t + tail, OPEN) for t, _ in texts]
    return texts, True


def _plain_regex(pattern: Any) -> tuple[int, str] | None:
    """(PREFIX or CONTAINS, literal) when a regex is just literal text, else None."""
    if not isinstance(pattern, str):
        return None
    body = pattern[1:] if pattern.startswith("^") else pattern
    if not body or not _REGEX_META.isdisjoint(body):
        return None
    return (Code.PREFIX if pattern.startswith("^") else Code.CONTAINS), body


def glob_regex(pattern: str) -> str:
    """``*`` any run without ``/``, ``**`` any run, ``?`` one character but ``/``."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return r"\A(?:" + "".join(out) + r")\Z"


def _all(parts: list[T]) -> T:
    if not parts:
        return TRUE
    if len(parts) == 1:
        return parts[0]
    return T(Code.AND, kids=tuple(parts))


def _flatten(t: T, out: list[Node]) -> None:
    op, slot, arg, kids = t
    i = len(out)
    if not kids:  # a leaf: no placeholder to fill in later
        out.append((int(op), slot, 0, i + 1, arg))
        return
    out.append((0, 0, 0, 0, None))  # placeholder until the subtree's end is known
    for kid in kids:
        _flatten(kid, out)
    out[i] = (int(op), slot, len(kids), len(out), arg)


def _join(place: str, key: Any) -> str:
    return f"{place}.{key}" if place else str(key)


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _js_truthy(v: Any) -> bool:
    if v is None or v is False or v == "":
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v == v and v != 0
    return True
