"""The Engine: config → compiled rules; visit → attributes → decision."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from . import _impl
from .config import Config, Rule, Source, parse, read_config
from .enrich import Enricher, SourceCatalogue
from .errors import ConfigError, Problem
from .rules import index
from .rules.compiler import Compiler, PathTable, compile_groups

BOT_RULE = "(bots)"  # the implicit first rule excluding bots when bots.exclude is on


def _compile_rules(config: Config) -> Tuple[List[Rule], Compiler, List[int], List[Problem]]:
    """The rules (bot exclusion first), their compiled programs, and every fault found."""
    rules: List[Rule] = list(config.rules)
    if config.exclude_bots:
        rules.insert(0, Rule(BOT_RULE, {"device.type": "bot"}, None, True, "bots"))
    groups, problems = compile_groups(config.lists, strict=True)
    compiler = Compiler(PathTable(), groups, strict=True)
    roots = [compiler.add(rule.when, rule.place) for rule in rules]
    return rules, compiler, roots, problems + compiler.problems


class Decision(NamedTuple):
    """What a visit gets: the rule that matched and its outcome.

    ``kind`` is "pool" (a number from ``pool``), "exclude" (the page keeps
    its own number and nothing is taken from any pool) or "none" (no rule
    matched: the page keeps its own number).
    """
    rule: Optional[str]
    kind: str
    pool: Optional[str]


NO_MATCH = Decision(None, "none", None)


class Engine:
    """Compiled rules plus enrichment. Build with ``Engine.from_config``."""

    def __init__(self, config: Config, *, core: ModuleType, geoip: Any = None) -> None:
        self.config = config
        self.core = core
        self.implementation = "compiled" if core is not _impl.available()["reference"] else "reference"
        rules, compiler, roots, problems = _compile_rules(config)
        try:
            catalogue = SourceCatalogue(config.sources)
        except ConfigError as exc:
            problems.extend(exc.problems)
            catalogue = SourceCatalogue()
        if geoip is None:
            try:
                geoip = core.GeoIP(config.geoip_path)
            except (OSError, ValueError) as exc:
                problems.append(("geoip.path", str(exc)))
        if problems:
            raise ConfigError(problems)
        anchors, always = index.build(compiler.nodes, roots)
        self.rules = rules
        self.matcher = core.Matcher(compiler.nodes, compiler.paths.paths, roots, anchors, always)
        self.enrich = Enricher(geoip, catalogue, core)
        self.geoip = geoip
        self._outcomes = tuple(
            Decision(r.name, "exclude", None) if r.exclude else Decision(r.name, "pool", r.pool) for r in rules
        )

    @classmethod
    def from_config(cls, source: Source, *, implementation: Optional[str] = None, geoip: Any = None) -> "Engine":
        """An engine from a dict or a YAML / JSON / TOML file.

        ``implementation`` picks "compiled" or "reference" (default: the
        active one, see ``k50core.IMPLEMENTATION``). Raises ConfigError
        listing every problem with its place.
        """
        config, problems = parse(read_config(source))
        if problems:  # report the conditions' faults too, all in one go
            raise ConfigError(problems + _compile_rules(config)[3])
        core = _impl.by_name(implementation) if implementation else _impl.core
        return cls(config, core=core, geoip=geoip)

    # -- visit → attributes → decision ------------------------------------------
    def attributes(self, visit: Any, now: Optional[float] = None) -> Dict[str, Any]:
        """The attribute dict rules look at (see ``k50core.enrich``)."""
        return self.enrich(visit, now)

    def match(self, attributes: Any) -> Decision:
        r = self.matcher.first_match(attributes)
        return NO_MATCH if r < 0 else self._outcomes[r]

    def match_many(self, batch: Iterable[Any]) -> List[Decision]:
        return self.matcher.pick_many(batch, self._outcomes, NO_MATCH)

    def decide(self, visit: Any, now: Optional[float] = None) -> Decision:
        return self.match(self.enrich(visit, now))

    def decide_many(self, visits: Iterable[Any], now: Optional[float] = None) -> List[Decision]:
        enrich = self.enrich
        return self.matcher.pick_many([enrich(v, now) for v in visits], self._outcomes, NO_MATCH)
