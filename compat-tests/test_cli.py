"""The admin CLI (`cxlkafka topic|group|cluster|acl`, docs/cli.md) against
live gateways: every command with `--format json`, its output parsed and
checked against what the broker holds; errors exit 1 naming Kafka's error.

Keyed records must land where the Java client would put them: the CLI's
partitions are compared with librdkafka's `murmur2_random` partitioner (the
Java-compatible one) for the same keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer

from conftest import gateway_binary

PARTITIONS = 3
RECORDS = 100


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXLKAFKA_")}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def cli(gw, *args, stdin: str | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `cxlkafka <args> -b <gateway>`; never raises on a failure."""
    argv = [gateway_binary(), *args]
    if gw is not None:
        argv += ["-b", gw.bootstrap]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=_env(env))


def ok(gw, *args, **kw) -> subprocess.CompletedProcess:
    done = cli(gw, *args, **kw)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stderr}{done.stdout}"
    assert "panicked" not in done.stderr
    return done


def js(gw, *args, **kw) -> dict:
    """Runs with --format json; the one JSON document on stdout."""
    return json.loads(ok(gw, *args, "--format", "json", **kw).stdout)


def fails(gw, *args, error: str, **kw) -> str:
    """Runs expecting exit 1 with `error` (a Kafka error name or phrase) on
    stderr; returns stderr."""
    done = cli(gw, *args, **kw)
    assert done.returncode == 1, f"{args}: exit {done.returncode}\n{done.stderr}{done.stdout}"
    assert error in done.stderr, done.stderr
    assert "panicked" not in done.stderr
    return done.stderr


def consume_json(gw, topic, *args) -> list[dict]:
    out = ok(gw, "topic", "consume", topic, "--format", "json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def wait_for(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.2)


def keyed_lines() -> list[tuple[str, str]]:
    return [(f"key-{i:03d}", f"value {i}") for i in range(RECORDS)]


def librdkafka_partitions(gw, topic: str, keys: list[str]) -> dict[str, int]:
    """Where librdkafka's Java-compatible partitioner puts each key."""
    placed = {}
    p = Producer({"bootstrap.servers": gw.bootstrap, "partitioner": "murmur2_random"})

    def delivered(err, msg):
        assert err is None, err
        placed[msg.key().decode()] = msg.partition()

    for key in keys:
        p.produce(topic, key=key.encode(), value=b"x", on_delivery=delivered)
    assert p.flush(30) == 0
    return placed


def test_topic_create_list_describe_and_errors(gateway, topic_name):
    created = js(gateway, "topic", "create", topic_name, "--partitions", str(PARTITIONS),
                 "--config", "retention.ms=3600000")
    assert created == {"topic": topic_name, "partitions": PARTITIONS,
                       "replication_factor": created["replication_factor"]}
    assert created["replication_factor"] >= 1

    listed = {t["name"]: t for t in js(gateway, "topic", "list")["topics"]}
    assert listed[topic_name]["partitions"] == PARTITIONS
    assert listed[topic_name]["internal"] is False
    assert not any(t["internal"] for t in listed.values()), "internal topics only with --internal"
    internal = js(gateway, "topic", "list", "--internal")["topics"]
    assert any(t["internal"] and t["name"] == "__cxlkafka_order" for t in internal)

    described = js(gateway, "topic", "describe", topic_name)
    assert described["topic"] == topic_name
    assert described["configs"] == {"retention.ms": "3600000"}
    assert [p["partition"] for p in described["partitions"]] == list(range(PARTITIONS))
    brokers = {b["id"] for b in js(gateway, "cluster", "info")["brokers"]}
    for p in described["partitions"]:
        assert p["leader"] in brokers and p["leader"] in p["replicas"], p
        assert set(p["isr"]) <= set(p["replicas"]), p
        assert (p["log_start_offset"], p["high_watermark"]) == (0, 0), p
        assert p["error"] is None

    # Errors: Kafka's name, what it is about, a hint; exit status 1.
    err = fails(gateway, "topic", "create", topic_name, error="TOPIC_ALREADY_EXISTS")
    assert f'topic "{topic_name}"' in err and "topic describe" in err
    fails(gateway, "topic", "describe", f"{topic_name}-missing",
          error="UNKNOWN_TOPIC_OR_PARTITION")
    fails(gateway, "topic", "consume", topic_name, "--partition", "9", "-e",
          error="UNKNOWN_TOPIC_OR_PARTITION")
    fails(gateway, "topic", "produce", f"{topic_name}-missing", stdin="x\n",
          error="UNKNOWN_TOPIC_OR_PARTITION")
    fails(gateway, "topic", "add-partitions", topic_name, "--total", "2",
          error="INVALID_PARTITIONS")
    fails(gateway, "topic", "alter-config", topic_name, error="nothing to change")
    # Nothing listens on a closed port: a connection error, not a panic.
    dead = cli(None, "topic", "list", "-b", "127.0.0.1:1", "--timeout-ms", "2000")
    assert dead.returncode == 1 and "cannot connect" in dead.stderr, dead.stderr

    # The flags' variables work as the flags do (CXLKAFKA_* everywhere).
    via_env = cli(None, "topic", "list", env={"CXLKAFKA_BOOTSTRAP": gateway.bootstrap,
                                             "CXLKAFKA_FORMAT": "json"})
    assert via_env.returncode == 0, via_env.stderr
    assert topic_name in {t["name"] for t in json.loads(via_env.stdout)["topics"]}


def test_produce_consume_group_offsets_seek_and_delete(gateway, topic_name):
    ok(gateway, "topic", "create", topic_name, "--partitions", str(PARTITIONS))
    lines = keyed_lines()
    produced = ok(gateway, "topic", "produce", topic_name, "--key-separator", "=",
                  "--format", "json", stdin="".join(f"{k}={v}\n" for k, v in lines))
    summary = json.loads(produced.stdout)
    assert summary["records"] == RECORDS
    assert sum(p["records"] for p in summary["partitions"]) == RECORDS
    assert f"produced {RECORDS} records" in produced.stderr

    # Partitions are the Java client's (librdkafka murmur2_random agrees).
    ok(gateway, "topic", "create", f"{topic_name}-ref", "--partitions", str(PARTITIONS))
    reference = librdkafka_partitions(gateway, f"{topic_name}-ref", [k for k, _ in lines])

    group = f"{topic_name}-g"
    records = consume_json(gateway, topic_name, "--from-beginning", "--count", str(RECORDS),
                           "--group", group)
    assert len(records) == RECORDS
    assert {(r["key"], r["value"]) for r in records} == set(lines)
    per_partition = defaultdict(list)
    for r in records:
        assert r["topic"] == topic_name
        assert r["partition"] == reference[r["key"]], r
        per_partition[r["partition"]].append(r)
    assert len(per_partition) > 1, "keys spread over partitions"
    for p, recs in per_partition.items():
        assert [r["offset"] for r in recs] == list(range(len(recs))), p
        # In the order produced: keys ascend within a partition.
        assert [r["key"] for r in recs] == sorted(r["key"] for r in recs), p
        assert all(r["timestamp"] > 1_600_000_000_000 for r in recs)
    counts = {p: len(recs) for p, recs in per_partition.items()}

    described = js(gateway, "topic", "describe", topic_name)
    assert {p["partition"]: p["high_watermark"] for p in described["partitions"]
            if p["high_watermark"]} == counts

    # The group committed where it stopped: lag 0 everywhere.
    g = js(gateway, "group", "describe", group)
    assert g["group"] == group and g["state"] == "Empty" and g["members"] == []
    offsets = {o["partition"]: o for o in g["offsets"] if o["topic"] == topic_name}
    assert sorted(offsets) == list(range(PARTITIONS))
    for p, o in offsets.items():
        assert o["committed_offset"] == counts.get(p, 0), o
        assert o["log_end_offset"] == counts.get(p, 0), o
        assert o["lag"] == 0, o
    assert group in {x["group"] for x in js(gateway, "group", "list")["groups"]}

    # Seek to earliest: everything is lag again.
    seek = js(gateway, "group", "seek", group, "--topic", topic_name, "--to", "earliest")
    assert {o["partition"]: o["offset"] for o in seek["offsets"]} == \
        {p: 0 for p in range(PARTITIONS)}
    g = js(gateway, "group", "describe", group)
    assert sum(o["lag"] for o in g["offsets"]) == RECORDS
    # offset:N on one partition; timestamp in the future is the end.
    busiest = max(counts, key=counts.get)
    js(gateway, "group", "seek", group, "--topic", topic_name, "--to", "offset:2",
       "--partition", str(busiest))
    g = js(gateway, "group", "describe", group)
    assert {o["partition"]: o["committed_offset"] for o in g["offsets"]}[busiest] == 2
    future = js(gateway, "group", "seek", group, "--topic", topic_name,
                "--to", f"timestamp:{int(time.time() * 1000) + 3_600_000}")
    assert {o["partition"]: o["offset"] for o in future["offsets"]} == \
        {p: counts.get(p, 0) for p in range(PARTITIONS)}

    # Consuming with the group resumes at its committed offsets: seek back to
    # 2 on the busiest partition and read the rest of it.
    js(gateway, "group", "seek", group, "--topic", topic_name, "--to", "offset:2",
       "--partition", str(busiest))
    rest = consume_json(gateway, topic_name, "--group", group, "--exit-at-end")
    assert [(r["partition"], r["offset"]) for r in rest] == \
        [(busiest, o) for o in range(2, counts[busiest])]
    g = js(gateway, "group", "describe", group)
    assert all(o["lag"] == 0 for o in g["offsets"]), g

    # kcat-style format string.
    out = ok(gateway, "topic", "consume", topic_name, "--partition", str(busiest),
             "--offset", "0", "--count", "2", "--format", "%t|%p|%o|%k|%v\\n").stdout
    first = per_partition[busiest][:2]
    assert out == "".join(f"{topic_name}|{busiest}|{r['offset']}|{r['key']}|{r['value']}\n"
                          for r in first)

    deleted = js(gateway, "group", "delete", group)
    assert deleted == {"results": [{"group": group, "error": None}]}
    assert group not in {x["group"] for x in js(gateway, "group", "list")["groups"]}


def test_add_partitions_alter_config_trim_and_delete(gateway, topic_name):
    ok(gateway, "topic", "create", topic_name, "--partitions", "1")
    ok(gateway, "topic", "produce", topic_name, "--partition", "0", "--acks", "1",
       stdin="".join(f"line {i}\n" for i in range(10)))

    assert js(gateway, "topic", "add-partitions", topic_name, "--total", "4")["partitions"] == 4
    wait_for(lambda: len(js(gateway, "topic", "describe", topic_name)["partitions"]) == 4,
             "4 partitions")

    js(gateway, "topic", "alter-config", topic_name, "--set", "retention.ms=7200000",
       "--set", "cleanup.policy=delete")
    configs = js(gateway, "topic", "describe", topic_name)["configs"]
    assert configs == {"retention.ms": "7200000", "cleanup.policy": "delete"}
    js(gateway, "topic", "alter-config", topic_name, "--delete", "retention.ms")
    assert js(gateway, "topic", "describe", topic_name)["configs"] == {"cleanup.policy": "delete"}

    trimmed = js(gateway, "topic", "trim", topic_name, "--partition", "0", "--before", "4")
    assert trimmed == {"topic": topic_name, "partition": 0, "log_start_offset": 4}
    p0 = js(gateway, "topic", "describe", topic_name)["partitions"][0]
    assert (p0["log_start_offset"], p0["high_watermark"]) == (4, 10)
    left = consume_json(gateway, topic_name, "--partition", "0", "--from-beginning", "-e")
    assert [(r["offset"], r["value"]) for r in left] == [(i, f"line {i}") for i in range(4, 10)]

    result = js(gateway, "topic", "delete", topic_name)
    assert result == {"results": [{"topic": topic_name, "error": None}]}
    wait_for(lambda: topic_name not in {t["name"] for t in js(gateway, "topic", "list")["topics"]},
             "the topic gone from topic list")
    fails(gateway, "topic", "describe", topic_name, error="UNKNOWN_TOPIC_OR_PARTITION")
    # Deleting what is not there: reported per topic, exit 1.
    done = cli(gateway, "topic", "delete", topic_name, "--format", "json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["results"][0]["error"] == "UNKNOWN_TOPIC_OR_PARTITION"


def test_group_with_members_is_described_and_not_seeked(start_gateway, topic_name):
    gw = start_gateway(group_initial_rebalance_delay_ms=0)
    ok(gw, "topic", "create", topic_name, "--partitions", "2")
    group = f"{topic_name}-live"
    consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                         "client.id": "cli-test-consumer", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name])
        wait_for(lambda: consumer.poll(0.2) is None and consumer.assignment(),
                 "the consumer's assignment", timeout=30)
        g = wait_for(lambda: (d := js(gw, "group", "describe", group))["state"] == "Stable"
                     and d, "a Stable group")
        assert g["protocol_type"] == "consumer" and g["protocol"] in ("range", "roundrobin",
                                                                     "cooperative-sticky")
        [member] = g["members"]
        assert member["client_id"] == "cli-test-consumer"
        # As Kafka answers: "/<client ip>" of the member's connection.
        assert member["host"] == f"/{gw.host}", member
        assert member["assignment"] == [{"topic": topic_name, "partitions": [0, 1]}]
        listed = {x["group"]: x for x in js(gw, "group", "list")["groups"]}
        assert listed[group]["state"] == "Stable"

        err = fails(gw, "group", "seek", group, "--topic", topic_name, "--to", "earliest",
                    error="active member")
        assert "stop them" in err
        fails(gw, "group", "delete", group, error="NON_EMPTY_GROUP")
    finally:
        consumer.close()


@pytest.mark.cluster
def test_cluster_info_health_and_leader_routing(cluster, topic_name):
    gws = cluster(2)
    info = js(gws[0], "cluster", "info")
    assert info["cxlkafka"] is True and info["cluster_id"]
    assert sorted((b["host"], b["port"]) for b in info["brokers"]) == \
        sorted((g.host, g.port) for g in gws)
    assert info["controller_id"] in {b["id"] for b in info["brokers"]}

    health = js(gws[1], "cluster", "health")
    assert health["healthy"] is True
    assert all(b["answers"] for b in health["brokers"]) and len(health["brokers"]) == 2
    assert health["offline_partitions"] == [] and health["under_replicated_partitions"] == []
    assert health["gateways_behind"] == []
    assert cli(gws[1], "cluster", "health").returncode == 0

    # Leaders spread over both gateways; produce and consume go to each.
    ok(gws[0], "topic", "create", topic_name, "--partitions", "4")
    leaders = {p["leader"] for p in js(gws[0], "topic", "describe", topic_name)["partitions"]}
    assert len(leaders) == 2, leaders
    lines = keyed_lines()
    ok(gws[1], "topic", "produce", topic_name, "-K", "=",
       stdin="".join(f"{k}={v}\n" for k, v in lines))
    got = consume_json(gws[0], topic_name, "--from-beginning", "--count", str(RECORDS))
    assert sorted((r["key"], r["value"]) for r in got) == lines


def test_acl_create_list_delete(start_gateway, topic_name):
    gw = start_gateway(authorizer=True, super_users="User:ANONYMOUS")
    created = js(gw, "acl", "create", "--principal", "User:alice", "--operation", "read",
                 "--operation", "describe", "--topic", topic_name)
    assert sorted(a["operation"] for a in created["created"]) == ["DESCRIBE", "READ"]
    js(gw, "acl", "create", "--principal", "User:bob", "--operation", "read",
       "--group", "team-", "--pattern", "prefixed", "--deny")

    alice = js(gw, "acl", "list", "--principal", "User:alice")["acls"]
    assert sorted((a["resource_type"], a["resource_name"], a["pattern_type"], a["host"],
                   a["operation"], a["permission"]) for a in alice) == [
        ("TOPIC", topic_name, "LITERAL", "*", "DESCRIBE", "ALLOW"),
        ("TOPIC", topic_name, "LITERAL", "*", "READ", "ALLOW"),
    ]
    everything = js(gw, "acl", "list")["acls"]
    assert {(a["principal"], a["resource_type"], a["pattern_type"], a["permission"])
            for a in everything} >= {("User:bob", "GROUP", "PREFIXED", "DENY"),
                                     ("User:alice", "TOPIC", "LITERAL", "ALLOW")}

    deleted = js(gw, "acl", "delete", "--principal", "User:alice", "--topic", topic_name)
    assert sorted(a["operation"] for a in deleted["deleted"]) == ["DESCRIBE", "READ"]
    assert js(gw, "acl", "list", "--principal", "User:alice")["acls"] == []
    assert [a["principal"] for a in js(gw, "acl", "list")["acls"]] == ["User:bob"]
    fails(gw, "acl", "delete", error="will not delete every ACL")
    fails(gw, "acl", "create", "--principal", "alice", "--operation", "read", "--cluster",
          error="TYPE:NAME")


@pytest.mark.cluster
def test_cluster_health_fails_while_a_broker_does_not_answer(cluster):
    # A long lease keeps the paused gateway listed in Metadata, as a hung
    # Kafka broker stays registered until its session expires.
    gws = cluster(2, lease_timeout_ms=6000)
    assert js(gws[0], "cluster", "health")["healthy"] is True
    gws[1].signal(signal.SIGSTOP)
    try:
        done = cli(gws[0], "cluster", "health", "--format", "json", "--timeout-ms", "1500")
    finally:
        gws[1].signal(signal.SIGCONT)
    assert done.returncode == 1, done.stderr
    health = json.loads(done.stdout)
    assert health["healthy"] is False
    answers = {b["address"]: b["answers"] for b in health["brokers"]}
    assert answers == {gws[0].bootstrap: True, gws[1].bootstrap: False}, health
    wait_for(lambda: cli(gws[0], "cluster", "health").returncode == 0,
             "health again once the gateway answers")


def test_offsets_interoperate_with_a_kafka_consumer(start_gateway, topic_name):
    """A group the CLI seeks is read from there by librdkafka, and what
    librdkafka commits is what `group describe` reports."""
    gw = start_gateway(group_initial_rebalance_delay_ms=0)
    ok(gw, "topic", "create", topic_name, "--partitions", "1")
    ok(gw, "topic", "produce", topic_name, stdin="".join(f"m{i}\n" for i in range(10)))
    group = f"{topic_name}-interop"
    js(gw, "group", "seek", group, "--topic", topic_name, "--to", "offset:7")

    consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append((msg.offset(), msg.value().decode()))
        assert got == [(7, "m7"), (8, "m8"), (9, "m9")]
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    g = js(gw, "group", "describe", group)
    assert [(o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"])
            for o in g["offsets"]] == [(0, 10, 10, 0)]


def test_the_admin_tools_log_in_to_a_sasl_listener(_gateway_pool, tmp_path, topic_name):
    """A SASL_PLAINTEXT listener: the tools log in with SCRAM (either hash)
    or PLAIN from a password file, and a wrong password is refused with the
    Kafka error's name. The user is made through a PLAINTEXT gateway of the
    same region, as README's security section does it."""
    region = _gateway_pool.new_region()
    plain = _gateway_pool.start(region=region, node_id=0)
    password = tmp_path / "admin.password"
    password.write_text("s3cret-of-admin\n")
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        ok(None, "user", "add", "admin", "--mechanism", mechanism, "--password-file",
           str(password), "--bootstrap", plain.bootstrap)
    # Its readiness is probed with the tool itself: the pool's probe does
    # not log in.
    secured = _gateway_pool.start(region=region, node_id=1, listen_protocol="SASL_PLAINTEXT",
                                  wait_ready=False)

    def as_admin(mechanism: str, secret=password) -> list[str]:
        return ["--sasl-mechanism", mechanism, "--sasl-username", "admin",
                "--sasl-password-file", str(secret)]

    wait_for(lambda: cli(secured, "cluster", "info", *as_admin("SCRAM-SHA-256")).returncode == 0,
             "the SASL gateway answering a logged-in tool", timeout=30)

    ok(secured, "topic", "create", topic_name, "--partitions", "2", *as_admin("SCRAM-SHA-512"))
    for mechanism in ("SCRAM-SHA-256", "PLAIN"):
        listed = js(secured, "topic", "list", *as_admin(mechanism))
        assert topic_name in [t["name"] for t in listed["topics"]], listed

    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n")
    err = fails(secured, "topic", "list", *as_admin("SCRAM-SHA-256", wrong),
                error="SASL_AUTHENTICATION_FAILED")
    assert "--sasl-password-file" in err, "says what to check"
    fails(secured, "topic", "list", "--sasl-mechanism", "PLAIN", error="--sasl-username")
    # Without a login the listener answers nothing but ApiVersions and
    # SaslHandshake: the tool fails rather than hang or panic.
    assert cli(secured, "topic", "list", timeout=60).returncode == 1
