"""Topic administration through confluent_kafka.admin (librdkafka 2.16):
CreateTopics, DescribeConfigs, IncrementalAlterConfigs, AlterConfigs,
CreatePartitions, DeleteTopics; list_topics (Metadata) reflects each change.

Kafka's admin operations are acknowledged before every broker's metadata
has caught up, so "reflects" means: within a few seconds, as Kafka clients
themselves poll for it."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, ResourceType)

OP_TIMEOUT = 15  # seconds, for every admin future


def _admin(gw) -> AdminClient:
    return AdminClient({"bootstrap.servers": gw.bootstrap, "socket.timeout.ms": 10000})


def _result(futures: dict, key):
    return futures[key].result(timeout=OP_TIMEOUT)


def _error_code(future) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(timeout=OP_TIMEOUT)
    return e.value.args[0].code()


def _wait_listing(admin, topic, predicate, what, timeout=10.0):
    """Polls list_topics until predicate(TopicMetadata or None) holds."""
    deadline = time.monotonic() + timeout
    while True:
        t = admin.list_topics(timeout=10).topics.get(topic)
        if predicate(t):
            return t
        assert time.monotonic() < deadline, \
            f"list_topics never showed {what} for {topic!r}: " \
            f"{None if t is None else (t.error, sorted(t.partitions))}"
        time.sleep(0.2)


def _source(entry: ConfigEntry) -> int:
    """ConfigEntry.source as an int (the C extension may give an enum or an int)."""
    return entry.source.value if isinstance(entry.source, ConfigSource) else int(entry.source)


DYNAMIC_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def _create(admin, topic, partitions, config=None):
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, config=config or {})],
                             operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    assert _result(fs, topic) is None


def test_create_topics_and_list(gateway, topic_name):
    gateway.require("Metadata", "CreateTopics")
    admin = _admin(gateway)
    names = [f"{topic_name}-{i}" for i in range(3)]
    fs = admin.create_topics([NewTopic(n, num_partitions=i + 1) for i, n in enumerate(names)],
                             operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    for n in names:
        assert _result(fs, n) is None
    for i, n in enumerate(names):
        t = _wait_listing(admin, n, lambda t: t is not None and t.error is None, "the new topic")
        assert sorted(t.partitions) == list(range(i + 1)), f"{n}: partitions {sorted(t.partitions)}"
    # Creating again is TOPIC_ALREADY_EXISTS; bad partition counts are refused.
    again = admin.create_topics([NewTopic(names[0], num_partitions=1)], request_timeout=OP_TIMEOUT)
    assert _error_code(again[names[0]]) == KafkaError.TOPIC_ALREADY_EXISTS
    bad = admin.create_topics([NewTopic(f"{topic_name}-bad", num_partitions=0)], request_timeout=OP_TIMEOUT)
    assert _error_code(bad[f"{topic_name}-bad"]) == KafkaError.INVALID_PARTITIONS


def test_create_topic_validate_only_creates_nothing(gateway, topic_name):
    gateway.require("Metadata", "CreateTopics")
    admin = _admin(gateway)
    fs = admin.create_topics([NewTopic(topic_name, num_partitions=2)], validate_only=True,
                             request_timeout=OP_TIMEOUT)
    assert _result(fs, topic_name) is None
    time.sleep(0.5)
    assert topic_name not in admin.list_topics(timeout=10).topics


def test_describe_and_alter_topic_configs(gateway, topic_name):
    gateway.require("Metadata", "CreateTopics", "DescribeConfigs", "IncrementalAlterConfigs")
    admin = _admin(gateway)
    _create(admin, topic_name, 2, {"retention.ms": "3600000"})
    _wait_listing(admin, topic_name, lambda t: t is not None and t.error is None, "the new topic")
    res = ConfigResource(ResourceType.TOPIC, topic_name)

    def describe() -> dict[str, ConfigEntry]:
        return _result(admin.describe_configs([res], request_timeout=OP_TIMEOUT), res)

    cfg = describe()
    for name in ("retention.ms", "cleanup.policy", "max.message.bytes", "retention.bytes"):
        assert name in cfg, f"DescribeConfigs lacks {name}; has {sorted(cfg)}"
    assert cfg["retention.ms"].value == "3600000"
    assert _source(cfg["retention.ms"]) == DYNAMIC_TOPIC
    assert not cfg["retention.ms"].is_default
    assert cfg["cleanup.policy"].value == "delete"

    # Incremental SET of one key leaves the others alone.
    alter = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2097152", incremental_operation=AlterConfigOpType.SET),
    ])
    assert _result(admin.incremental_alter_configs([alter], request_timeout=OP_TIMEOUT), alter) is None
    cfg = describe()
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["max.message.bytes"].value == "2097152"
    assert _source(cfg["max.message.bytes"]) == DYNAMIC_TOPIC

    # DELETE returns a key to its default.
    alter = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    assert _result(admin.incremental_alter_configs([alter], request_timeout=OP_TIMEOUT), alter) is None
    cfg = describe()
    assert cfg["retention.ms"].value != "7200000"
    assert _source(cfg["retention.ms"]) != DYNAMIC_TOPIC
    assert cfg["max.message.bytes"].value == "2097152", "DELETE of one key changed another"

    # Unknown topics and unknown keys are errors, as in Kafka.
    missing = ConfigResource(ResourceType.TOPIC, f"{topic_name}-missing")
    fs = admin.describe_configs([missing], request_timeout=OP_TIMEOUT)
    assert _error_code(fs[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    bad = ConfigResource(ResourceType.TOPIC, topic_name, incremental_configs=[
        ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)])
    fs = admin.incremental_alter_configs([bad], request_timeout=OP_TIMEOUT)
    assert _error_code(fs[bad]) == KafkaError.INVALID_CONFIG


def test_legacy_alter_configs_replaces_the_set(gateway, topic_name):
    """AlterConfigs (non-incremental) replaces the topic's whole dynamic set."""
    gateway.require("Metadata", "CreateTopics", "DescribeConfigs", "AlterConfigs")
    admin = _admin(gateway)
    _create(admin, topic_name, 1, {"retention.ms": "3600000"})
    res = ConfigResource(ResourceType.TOPIC, topic_name, set_config={"max.message.bytes": "500000"})
    fs = admin.alter_configs([res], request_timeout=OP_TIMEOUT)
    assert _result(fs, res) is None
    cfg = _result(admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic_name)],
                                         request_timeout=OP_TIMEOUT),
                  ConfigResource(ResourceType.TOPIC, topic_name))
    assert cfg["max.message.bytes"].value == "500000"
    assert _source(cfg["retention.ms"]) != DYNAMIC_TOPIC, \
        "AlterConfigs must replace the set: retention.ms should be back to its default"


def test_create_partitions(gateway, topic_name):
    gateway.require("Metadata", "CreateTopics", "CreatePartitions")
    admin = _admin(gateway)
    _create(admin, topic_name, 2)
    _wait_listing(admin, topic_name, lambda t: t is not None and len(t.partitions) == 2, "2 partitions")
    fs = admin.create_partitions([NewPartitions(topic_name, 5)], request_timeout=OP_TIMEOUT)
    assert _result(fs, topic_name) is None
    t = _wait_listing(admin, topic_name, lambda t: t is not None and len(t.partitions) == 5, "5 partitions")
    assert sorted(t.partitions) == list(range(5))
    for p in t.partitions.values():
        assert p.error is None and p.leader >= 0, p
    # Fewer (or as many) partitions than now is INVALID_PARTITIONS.
    fs = admin.create_partitions([NewPartitions(topic_name, 3)], request_timeout=OP_TIMEOUT)
    assert _error_code(fs[topic_name]) == KafkaError.INVALID_PARTITIONS
    fs = admin.create_partitions([NewPartitions(f"{topic_name}-missing", 3)], request_timeout=OP_TIMEOUT)
    assert _error_code(fs[f"{topic_name}-missing"]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_delete_topics(gateway, topic_name):
    gateway.require("Metadata", "CreateTopics", "DeleteTopics")
    admin = _admin(gateway)
    keep, drop = f"{topic_name}-keep", f"{topic_name}-drop"
    for n in (keep, drop):
        _create(admin, n, 1)
    for n in (keep, drop):
        _wait_listing(admin, n, lambda t: t is not None and t.error is None, "the new topic")
    old_id = gateway.metadata([drop], allow_auto_create=False).topic(drop).topic_id
    fs = admin.delete_topics([drop], operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    assert _result(fs, drop) is None
    _wait_listing(admin, drop, lambda t: t is None, "the topic gone")
    assert keep in admin.list_topics(timeout=10).topics
    fs = admin.delete_topics([drop], request_timeout=OP_TIMEOUT)
    assert _error_code(fs[drop]) == KafkaError.UNKNOWN_TOPIC_OR_PART
    # The name can be used again, for a new topic.
    _create(admin, drop, 2)
    t = _wait_listing(admin, drop, lambda t: t is not None and t.error is None, "the re-created topic")
    assert len(t.partitions) == 2
    new_id = gateway.metadata([drop], allow_auto_create=False).topic(drop).topic_id
    if old_id is not None:
        assert new_id != old_id, "a re-created topic must get a new topic id"
