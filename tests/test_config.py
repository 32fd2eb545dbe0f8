"""Config loading: every fault is reported with its place, at load time."""
import json

import pytest

from k50core import ConfigError, Engine
from k50core.config import load_config

GOOD = {
    "site": {"default_number": "+74951234567"},
    "lists": {"office": ["203.0.113.0/24", "2001:db8::/32"]},
    "pools": {
        "msk": {"type": "dynamic", "numbers": ["+74950000001", "+74950000002"], "hold_seconds": 900,
                "cooldown_seconds": 300, "on_exhausted": "share"},
        "direct": {"type": "static", "numbers": ["+74950000100"]},
        "paper": {"type": "offline", "numbers": ["+78120000001"]},
    },
    "rules": [
        {"name": "office", "when": {"ip": {"$inGroup": "office"}}, "exclude": True},
        {"name": "msk-search", "when": {"geo.region": "RU-MOW", "traffic_type": "search"}, "pool": "msk"},
    ],
}


def with_rules(*rules, **extra):
    cfg = json.loads(json.dumps(GOOD))
    cfg["rules"] = list(rules)
    cfg.update(extra)
    return cfg


def problems(cfg):
    with pytest.raises(ConfigError) as info:
        Engine.from_config(cfg)
    return dict(info.value.problems), str(info.value)


def test_good_config_loads(build):
    engine = Engine.from_config(GOOD, implementation=build)
    assert engine.implementation == build
    assert [r.name for r in engine.rules] == ["(bots)", "office", "msk-search"]
    assert engine.config.pools["msk"].numbers == ("+74950000001", "+74950000002")


def test_in_expects_a_list():
    found, text = problems(with_rules({"name": "a", "when": {"geo.region": {"$in": "RU-MOW"}}, "pool": "msk"}))
    assert found == {"rules[0].when.geo.region": "$in expects a list"}
    assert "rules[0].when.geo.region: $in expects a list" in text


@pytest.mark.parametrize("when, place, words", [
    ({"a": {"$regx": "x"}}, "rules[0].when.a", "unknown operator $regx"),
    ({"a": {"$regex": "(unclosed"}}, "rules[0].when.a", "bad regular expression"),
    ({"ip": {"$cidr": ["10.0.0.0/33"]}}, "rules[0].when.ip.$cidr[0]", "bad IP network"),
    ({"ip": {"$inGroup": "ofice"}}, "rules[0].when.ip", "unknown list 'ofice'"),
    ({"$or": {"a": 1}}, "rules[0].when.$or", "$or expects a list"),
    ({"$and": [{"a": {"$size": "x"}}]}, "rules[0].when.$and[0].a", "$size expects"),
    ({"a": {"$type": "str"}}, "rules[0].when.a", "$type expects one of"),
    ({"a": {"$exists": "yes"}}, "rules[0].when.a", "$exists expects true or false"),
    ({"a": {"$gt": [1]}}, "rules[0].when.a", "$gt compares with a string or a number"),
    ({"a": {"$host": 5}}, "rules[0].when.a", "$host expects a string or a list of strings"),
    ({"a..b": 1}, "rules[0].when.a..b", "bad attribute path"),
])
def test_condition_faults(when, place, words):
    found, _ = problems(with_rules({"name": "r", "when": when, "pool": "msk"}))
    assert place in found, found
    assert words in found[place]


def test_pool_faults():
    cfg = json.loads(json.dumps(GOOD))
    cfg["pools"]["msk"]["numbers"].append("+7495")                 # malformed
    cfg["pools"]["direct"]["numbers"] = ["+74950000001"]            # already in msk
    cfg["pools"]["paper"]["type"] = "ofline"
    cfg["pools"]["msk"]["on_exhausted"] = "wait"
    cfg["pools"]["msk"]["hold_seconds"] = -5
    cfg["rules"].append({"name": "x", "pool": "mks"})
    cfg["rules"].append({"name": "x", "pool": "msk", "when": {}})
    found, _ = problems(cfg)
    assert "is not a valid phone number" in found["pools.msk.numbers[2]"]
    assert "already in pool 'msk'" in found["pools.direct.numbers[0]"]
    assert "expected one of dynamic, static, offline" in found["pools.paper.type"]
    assert "share, default" in found["pools.msk.on_exhausted"]
    assert ">= 1" in found["pools.msk.hold_seconds"]
    assert found["rules[2].pool"] == "unknown pool 'mks'"
    assert "duplicate rule name 'x'" in found["rules[3].name"]


def test_unknown_keys_and_offline_targets():
    cfg = with_rules({"name": "a", "pol": "msk"}, {"name": "b", "pool": "paper"})
    cfg["pooles"] = {}
    found, _ = problems(cfg)
    assert "unknown key" in found["pooles"]
    assert "unknown key" in found["rules[0].pol"]
    assert "offline" in found["rules[1].pool"]


def test_bad_list_cidr():
    found, _ = problems(with_rules(lists={"office": ["203.0.113.0/24", "10.1.2.300/8"]}))
    assert "bad IP network" in found["lists.office[1]"]


def test_numbers_normalised_to_e164():
    cfg = load_config({"pools": {"p": {"type": "dynamic", "numbers": ["8 (495) 000-00-01", "+7 495 000 00 02"]}}})
    assert cfg.pools["p"].numbers == ("+74950000001", "+74950000002")


@pytest.mark.parametrize("suffix, text", [
    (".yaml", "site: {default_number: '+74951234567'}\npools: {p: {type: static, numbers: ['+74950000100']}}\n"
              "rules:\n  - {name: r, when: {traffic_type: direct}, pool: p}\n"),
    (".json", json.dumps({"pools": {"p": {"type": "static", "numbers": ["+74950000100"]}},
                          "rules": [{"name": "r", "when": {"traffic_type": "direct"}, "pool": "p"}]})),
    (".toml", '[pools.p]\ntype = "static"\nnumbers = ["+74950000100"]\n\n[[rules]]\nname = "r"\npool = "p"\n'
              '[rules.when]\ntraffic_type = "direct"\n'),
])
def test_file_formats(tmp_path, suffix, text):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(text)
    engine = Engine.from_config(path)
    assert engine.match({"traffic_type": "direct", "device": {"type": "desktop"}}).rule == "r"


@pytest.mark.parametrize("name, text, words", [
    ("bad.yaml", "rules: [\n", "bad YAML"),
    ("bad.json", "{", "bad JSON"),
    ("bad.toml", "x = ", "bad TOML"),
    ("bad.ini", "", "unknown config format"),
    ("list.yaml", "- 1\n", "top level must be a mapping"),
])
def test_file_faults(tmp_path, name, text, words):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Engine.from_config(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        Engine.from_config(tmp_path / "nope.yaml")
