"""One base for every error k50core raises for a caller's input."""
import pytest

import k50core
from k50core import CallError, ConfigError, Engine, Error, SegmentError, StoreError, UnreachableTarget
from k50core.bindings.telephony.payloads import PayloadError
from k50core.bindings.telephony.signing import SignatureError
from k50core.sizing import recommend


def test_every_error_is_a_k50core_error_and_exported():
    for cls in (CallError, ConfigError, SegmentError, StoreError, UnreachableTarget, PayloadError, SignatureError):
        assert issubclass(cls, Error), cls
    assert {"Error", "CallError", "ConfigError", "SegmentError", "StoreError", "UnreachableTarget"} <= set(k50core.__all__)


def test_a_users_mistakes_raise_k50core_errors(tmp_path):
    engine = Engine.from_config({"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"]}},
                                 "rules": [{"name": "all", "pool": "p"}]})
    with pytest.raises(Error, match="pools.nope: unknown pool"):
        engine.add_numbers("nope", ["+74950000002"])
    with pytest.raises(Error):
        engine.attribute({"call_id": "c1", "number": "not a number"})
    with pytest.raises(Error):
        Engine.from_config({"rules": [{"name": "r", "when": {"x": {"$nope": 1}}}]})
    with pytest.raises(Error):
        recommend(1000, 4.0, target_accuracy=0.9999999)
    garbage = tmp_path / "garbage.seg"
    garbage.write_bytes(b"\xff" * 8192)
    with pytest.raises(Error, match="not a k50core pool segment"):
        Engine.from_config({"pools": {"p": {"type": "dynamic", "numbers": ["+74950000001"]}}},
                           state_path=str(garbage))
