"""ApiVersions and Metadata as real clients depend on them.

Raw-socket checks (cxk_wire) for the fields clients never surface, then the
same facts through confluent-kafka (librdkafka 2.16) and Debian's kcat.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

import cxk_wire as wire

DEFAULT_PARTITIONS = 3


def test_api_versions_v0_and_v3_agree_and_v3_has_no_tagged_fields(gateway):
    """librdkafka 2.0.2 (Debian's kcat) misparses any tagged field in the
    ApiVersions v3 response, so there must be none; v0 and v3 must list the
    same ranges; Produce must be advertised from v0 (KAFKA-18659)."""
    with gateway.connect() as c:
        v0 = wire.api_versions(c, 0)
        assert v0.error_code == 0
        assert v0.leftover == 0, "ApiVersions v0 response has trailing bytes"
        assert v0.apis.get(wire.API_API_VERSIONS, (None, None))[0] == 0
        assert v0.apis[wire.API_API_VERSIONS][1] >= 3
        v3 = wire.api_versions(c, 3)
    assert v3.error_code == 0
    assert v3.apis == v0.apis
    assert v3.entry_tags == {}, f"tagged fields in api_keys entries: {v3.entry_tags}"
    assert v3.trailing_tags == {}, f"tagged fields after throttle_time_ms: {v3.trailing_tags}"
    assert v3.leftover == 0
    if wire.API_PRODUCE in v0.apis:
        assert v0.apis[wire.API_PRODUCE][0] == 0, "Produce must be advertised from v0 (KAFKA-18659)"


def test_api_versions_above_maximum_gets_v0_unsupported_version(gateway):
    """KIP-511: a client newer than the broker sends ApiVersions at a version
    the broker does not know (flexible header v2); the answer is a v0 body
    with UNSUPPORTED_VERSION (35) that still lists ApiVersions' own range."""
    with gateway.connect() as c:
        top = wire.api_versions(c, 0).apis[wire.API_API_VERSIONS][1]
        body = wire.compact_string("cxk-compat") + wire.compact_string("9.9") + wire.NO_TAGS
        r = c.request(wire.API_API_VERSIONS, top + 1, body,
                      flexible_request=True, flexible_response=False)
        answer = wire.parse_api_versions_v0(r)
        assert answer.error_code == wire.ERR_UNSUPPORTED_VERSION
        assert answer.apis.get(wire.API_API_VERSIONS) == (0, top)
        # The connection stays usable: the client retries at a version we serve.
        assert wire.api_versions(c, 3).error_code == 0


def _wait_topic(gw, topic, *, allow_auto_create=True, timeout=10.0) -> wire.TopicMeta:
    """Metadata until the topic has no error. Kafka itself answers
    LEADER_NOT_AVAILABLE on the call that auto-creates a topic."""
    deadline = time.monotonic() + timeout
    while True:
        t = gw.metadata([topic], allow_auto_create=allow_auto_create).topic(topic)
        assert t is not None, f"Metadata response does not mention {topic!r}"
        if t.error_code == 0 and t.partitions and all(p.error_code == 0 for p in t.partitions):
            return t
        assert t.error_code in (0, wire.ERR_LEADER_NOT_AVAILABLE), \
            f"Metadata for {topic!r}: error {t.error_code}"
        assert time.monotonic() < deadline, f"topic {topic!r} not ready: {t}"
        time.sleep(0.1)


def _check_brokers(md: wire.Metadata, expected_ports: set[int]) -> None:
    addrs = [(b.host, b.port) for b in md.brokers]
    ids = [b.node_id for b in md.brokers]
    assert len(addrs) == len(set(addrs)), f"duplicate broker addresses: {addrs}"
    assert len(ids) == len(set(ids)), f"duplicate broker node ids: {ids}"
    assert {b.port for b in md.brokers} == expected_ports, md.brokers
    assert all(b.host == "127.0.0.1" for b in md.brokers), \
        f"brokers must advertise the loopback address they listen on: {addrs}"


def test_auto_created_topic_has_default_partitions_stable_id_and_no_epochs(start_gateway, topic_name):
    gw = start_gateway(default_partitions=DEFAULT_PARTITIONS)
    gw.require("Metadata")
    version = gw.api_versions.pick(wire.API_METADATA, 1, 12)
    assert version >= 10, f"Metadata max v{version}: topic ids need v10+ (Fetch v13+ and Java 4 use them)"

    t = _wait_topic(gw, topic_name)
    assert sorted(p.index for p in t.partitions) == list(range(DEFAULT_PARTITIONS))
    assert not t.is_internal
    assert t.topic_id is not None and t.topic_id.int != 0, "auto-created topic has no topic id"

    md = gw.metadata([topic_name])
    _check_brokers(md, {gw.port})
    node_ids = {b.node_id for b in md.brokers}
    for p in md.topic(topic_name).partitions:
        assert p.leader in node_ids, f"partition {p.index} leader {p.leader} is not a listed broker"
        assert p.leader_epoch == -1, f"partition {p.index} leader_epoch {p.leader_epoch}, expected -1"
        assert set(p.replicas) <= node_ids and set(p.isr) <= node_ids, p
        assert p.leader in p.replicas, p

    # Stable: the same id on later calls, on new connections, at every version.
    ids = set()
    for v in sorted({10, version}):
        for _ in range(3):
            ids.add(gw.metadata([topic_name], version=v).topic(topic_name).topic_id)
    all_topics = gw.metadata(None).topic(topic_name)
    assert all_topics is not None, "topic missing from an all-topics Metadata"
    ids.add(all_topics.topic_id)
    assert ids == {t.topic_id}, f"topic id changed across calls: {ids}"
    # And a second auto-create request does not re-create it.
    assert len(gw.metadata([topic_name]).topic(topic_name).partitions) == DEFAULT_PARTITIONS


def test_old_metadata_versions_still_work(start_gateway, topic_name):
    """kafka-python and old tools still send Metadata v1 (all topics = null)."""
    gw = start_gateway(default_partitions=DEFAULT_PARTITIONS)
    gw.require("Metadata")
    _wait_topic(gw, topic_name)
    with gw.connect() as c:
        md = wire.metadata(c, 1, None)
    t = md.topic(topic_name)
    assert t is not None and len(t.partitions) == DEFAULT_PARTITIONS
    _check_brokers(md, {gw.port})


def test_unknown_topic_without_auto_create(gateway, topic_name):
    gateway.require("Metadata")
    v = gateway.api_versions.pick(wire.API_METADATA, 4, 12)
    assert v is not None, "Metadata v4+ (allow_auto_topic_creation) not served"
    t = gateway.metadata([topic_name], version=v, allow_auto_create=False).topic(topic_name)
    assert t is not None and t.error_code == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION, t
    # ... and it was not created as a side effect.
    assert gateway.metadata(None, version=v).topic(topic_name) is None


def test_auto_create_disabled_by_flag(start_gateway, topic_name):
    gw = start_gateway(auto_create_topics=False)
    gw.require("Metadata")
    t = gw.metadata([topic_name], allow_auto_create=True).topic(topic_name)
    assert t is not None and t.error_code == wire.ERR_UNKNOWN_TOPIC_OR_PARTITION, t


def test_confluent_kafka_sees_auto_created_topic_and_cluster(start_gateway, topic_name):
    """librdkafka's view: the producer's topic Metadata auto-creates the topic
    with the default partition count; DescribeCluster lists the gateway."""
    gw = start_gateway(default_partitions=DEFAULT_PARTITIONS)
    gw.require("Metadata")
    errors = []
    p = Producer({"bootstrap.servers": gw.bootstrap, "error_cb": errors.append,
                  "topic.metadata.refresh.interval.ms": 1000})
    deadline = time.monotonic() + 15
    while True:
        md = p.list_topics(topic=topic_name, timeout=5)
        t = md.topics.get(topic_name)
        if t is not None and t.error is None and len(t.partitions) == DEFAULT_PARTITIONS:
            break
        assert t is None or t.error is None or t.error.code() == KafkaError.LEADER_NOT_AVAILABLE, \
            f"list_topics({topic_name!r}): {t.error if t else 'missing'}"
        assert time.monotonic() < deadline, f"topic not visible to librdkafka: {t and t.partitions}"
        time.sleep(0.2)
    brokers = md.brokers
    assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", gw.port)], brokers
    # librdkafka reports -1 while the answer came over the bootstrap
    # connection (its node id not yet learned), as it does against Kafka.
    assert md.orig_broker_id == -1 or md.orig_broker_id in brokers
    for part in t.partitions.values():
        assert part.leader in brokers
    assert not [e for e in errors if e.fatal()], errors

    gw.require("DescribeCluster")
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    desc = admin.describe_cluster(request_timeout=10).result(timeout=15)
    assert [(n.host, n.port) for n in desc.nodes] == [("127.0.0.1", gw.port)]
    assert desc.controller is not None and desc.controller.id in brokers
    assert desc.cluster_id, "DescribeCluster returned no cluster id"


def test_kcat_lists_metadata(start_gateway, topic_name):
    """Debian's kcat (librdkafka 2.0.2) can read the broker list and a topic."""
    gw = start_gateway(default_partitions=DEFAULT_PARTITIONS)
    gw.require("Metadata")
    _wait_topic(gw, topic_name)
    out = subprocess.run(["kcat", "-b", gw.bootstrap, "-L", "-J", "-t", topic_name,
                          "-m", "10"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"kcat -L failed ({out.returncode}): {out.stderr}"
    md = json.loads(out.stdout)
    assert [(b["name"]) for b in md["brokers"]] == [f"127.0.0.1:{gw.port}"], md["brokers"]
    [t] = md["topics"]
    assert t["topic"] == topic_name and "error" not in t, t
    assert len(t["partitions"]) == DEFAULT_PARTITIONS
    assert "Read underflow" not in out.stderr, out.stderr
