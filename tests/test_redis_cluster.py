"""Pools in a three-master Redis Cluster on loopback (``redis-cli --cluster create``), the pools'
hash tags spread over the masters: each function call touches one slot, and the engine works
through the cluster client as through one server."""
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster, key_slot
from redisserver import RedisServer, free_cluster_port

from k50core import Engine


@pytest.fixture(scope="module")
def cluster():
    nodes = [RedisServer(extra=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                "--cluster-node-timeout", "2000"], port=free_cluster_port()) for _ in range(3)]
    try:
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while any(redis.Redis(port=n.port).cluster("info")["cluster_state"] != "ok" for n in nodes):
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def pools_on_every_master(client, namespace, count=6):
    """Pool names whose hash tags land on each of the three masters (two each)."""
    by_node, names, i = {}, [], 0
    while len(names) < count:
        name = f"pool{i}"
        i += 1
        node = client.get_node_from_key(f"{{{namespace}:{name}}}").name
        if by_node.get(node, 0) < count // 3:
            by_node[node] = by_node.get(node, 0) + 1
            names.append(name)
    return names, by_node


def test_pools_spread_over_a_three_master_cluster(cluster):
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in cluster[:2]) + "/?namespace=cl"
    client = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    names, by_node = pools_on_every_master(client, "cl")
    assert len(by_node) == 3
    cfg = {"site": {"default_number": "+74951234567"},
           "pools": {name: {"type": "dynamic", "numbers": [f"+749520{k}{j:04d}" for j in range(3)],
                            "hold_seconds": 60, "cooldown_seconds": 30, "on_exhausted": "default"}
                     for k, name in enumerate(names)},
           "rules": [{"name": name, "when": {"query.utm_campaign": name}, "pool": name} for name in names]}
    a = Engine.from_config(cfg, state_url=url)
    b = Engine.from_config(cfg, state_url=url)  # a second host on the same cluster
    t = 1_700_000_000.0
    got = {}
    for name in names:
        for j in range(4):
            visit = {"visitor_id": f"{name}-v{j}", "url": f"https://shop.example.ru/?utm_campaign={name}"}
            got[name, j] = (a if j % 2 else b).assign(visit, now=t)
        numbers = [got[name, j].number for j in range(3)]
        assert len(set(numbers)) == 3 and all(n.startswith("+74952") for n in numbers)
        assert got[name, 3].number == "+74951234567"  # three numbers: the fourth visitor gets the default
    # each host finds the other's visitors (by visitor id and by token) in the right slot
    for name in names:
        back = a.assign({"visitor_id": f"{name}-v0"}, now=t + 1)
        assert back.number == got[name, 0].number
        assert b.heartbeat(got[name, 1].token, now=t + 2)
    stats = a.stats(now=t + 2)["pools"]
    assert all(stats[name]["leased"] == 3 and stats[name]["claims"] == 3 for name in names)
    for name in names:  # every key of a pool in its tag's slot
        slots = {key_slot(k) for k in client.scan_iter(match=f"{{cl:{name}}}*")}
        assert len(slots) == 1
    a.close()
    b.close()
