"""The pool semantics tests of test_pools.py, over pools kept in a real redis-server.

Each test below runs unchanged with ``Engine.from_config`` giving engines whose pools live in
Redis (a fresh namespace each, on the session's server; see tests/redisserver.py). Tests of the
shared segment's layout, forks and the compiled core's internals are not about the semantics and
stay with the segment.
"""
import inspect

import pytest
import test_pools as base

from k50core import Engine

SEMANTICS = [
    "test_returning_visitor_keeps_number",
    "test_hold_and_cooldown_to_the_second",
    "test_idle_longest_number_first",
    "test_exhaustion_share_counts_and_marks",
    "test_exhaustion_default",
    "test_static_excluded_and_bots_take_nothing",
    "test_bad_visits_and_tokens_never_raise",
    "test_lease_log_and_holders",
    "test_lease_sink_gets_batches",
    "test_checkpoint_interval_is_checked_config",
    "test_log_events_stored_with_their_start_are_not_written_again",
    "test_reload_keeps_live_leases",
    "test_a_reload_that_changes_the_hold_keeps_returning_visitors",
    "test_add_and_retire_numbers",
    "test_retiring_a_number_ends_its_lease",
    "test_shared_lease_of_an_ended_number_belongs_to_the_sharer",
    "test_returning_fast_path_matches_the_full_path",
    "test_assign_many_matches_assign",
    "test_a_join_is_not_the_holders_activity",
    "test_an_unrenewed_lease_passed_on_logs_nothing_more",
    "test_an_assignment_held_by_the_caller_never_changes",
    "test_assign_takes_its_arguments_every_way",
]


@pytest.fixture
def over_redis(monkeypatch, redis_server):
    made = []

    class RedisEngine:
        """Engine.from_config with the pools in Redis, in the build the test names (its returning
        visitors' path, RedisAssigner, is the core's)."""

        @staticmethod
        def from_config(source, implementation=None, **kw):
            engine = Engine.from_config(source, state_url=redis_server.url(), implementation=implementation, **kw)
            made.append(engine)
            return engine

    monkeypatch.setattr(base, "Engine", RedisEngine)
    yield RedisEngine
    for engine in made:
        engine.pools.close()


@pytest.mark.parametrize("name", SEMANTICS)
def test_pool_semantics_over_redis(name, over_redis, tmp_path, build):
    test = getattr(base, name)
    params = inspect.signature(test).parameters
    kwargs = {}
    if "engine" in params:
        kwargs["engine"] = over_redis.from_config(base.config(), implementation=build)
    if "build" in params:
        kwargs["build"] = build
    if "tmp_path" in params:
        kwargs["tmp_path"] = tmp_path
    test(**kwargs)
