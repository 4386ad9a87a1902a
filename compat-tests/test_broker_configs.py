"""Dynamic broker configs through confluent_kafka.admin (librdkafka 2.16):
IncrementalAlterConfigs and DescribeConfigs on BROKER resources, for one
gateway ("0") and for the cluster default (""), with Kafka's config
sources; a lowered message.max.bytes refusing a larger produce; and
auto.create.topics.enable turned off at runtime stopping Metadata's
auto-creation, on the gateway that took the change and on another one of
the same region.

librdkafka ("Invalid ConfigResource") and kafka-python ("Broker resource
names must be an integer") refuse a config resource with an empty name
before sending anything, so the cluster default ("") is altered with a raw
IncrementalAlterConfigs (cxk_wire) and read back through what each broker
describes to confluent-kafka."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, ConfigSource, ResourceType)

import cxk_wire as wire

OP_TIMEOUT = 15  # seconds, for every admin future
UNKNOWN_TOPIC_OR_PARTITION = 3


def _admin(gw) -> AdminClient:
    return AdminClient({"bootstrap.servers": gw.bootstrap, "socket.timeout.ms": 10000})


def _source(entry: ConfigEntry) -> int:
    """ConfigEntry.source as an int (the C extension may give an enum or an int)."""
    return entry.source.value if isinstance(entry.source, ConfigSource) else int(entry.source)


def _set(admin: AdminClient, broker: str, **configs: str) -> None:
    """IncrementalAlterConfigs SET on broker resource `broker`; config names
    are given with '_' for '.'."""
    resource = ConfigResource(ResourceType.BROKER, broker, incremental_configs=[
        ConfigEntry(name.replace("_", "."), value, incremental_operation=AlterConfigOpType.SET)
        for name, value in configs.items()])
    futures = admin.incremental_alter_configs([resource], request_timeout=OP_TIMEOUT)
    for future in futures.values():
        assert future.result(timeout=OP_TIMEOUT) is None


def _set_default(gw, **configs: str) -> None:
    """IncrementalAlterConfigs SET on the cluster-default broker resource
    (""), over the raw wire (see the module docstring)."""
    with gw.connect() as conn:
        code, message = wire.incremental_alter_configs(
            conn, 4, "", {name.replace("_", "."): value for name, value in configs.items()})
    assert code == 0, (code, message)


def _describe(admin: AdminClient, broker: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ResourceType.BROKER, broker)
    futures = admin.describe_configs([resource], request_timeout=OP_TIMEOUT)
    return next(iter(futures.values())).result(timeout=OP_TIMEOUT)


def _eventually(check, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def test_incremental_alter_of_a_broker_and_the_default_shows_their_sources(start_gateway):
    gw = start_gateway()
    gw.require("IncrementalAlterConfigs", "DescribeConfigs")
    admin = _admin(gw)

    before = _describe(admin, "0")
    assert before["log.retention.ms"].value is None
    assert not before["log.retention.ms"].is_read_only
    assert before["num.partitions"].is_read_only

    _set(admin, "0", log_retention_ms="3600000")
    _set_default(gw, message_max_bytes="2000000", log_retention_ms="60000")

    broker = _describe(admin, "0")
    own = broker["log.retention.ms"]
    assert (own.value, _source(own)) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    size = broker["message.max.bytes"]
    assert (size.value, _source(size)) == \
        ("2000000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert not size.is_default

    # Deleting this gateway's own value uncovers the default's.
    delete = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    for future in admin.incremental_alter_configs([delete]).values():
        assert future.result(timeout=OP_TIMEOUT) is None
    fallback = _describe(admin, "0")["log.retention.ms"]
    assert (fallback.value, _source(fallback)) == \
        ("60000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    # A static config is refused for the whole resource, as Kafka does.
    bad = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("num.partitions", "3", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as refused:
        next(iter(admin.incremental_alter_configs([bad]).values())).result(timeout=OP_TIMEOUT)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically" in refused.value.args[0].str()


def test_a_lowered_message_max_bytes_refuses_a_larger_produce(start_gateway, topic_name):
    gw = start_gateway()
    admin = _admin(gw)
    producer = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 0,
                         "message.timeout.ms": 10000})
    results = []

    def produce(size: int):
        producer.produce(topic_name, value=b"x" * size,
                         on_delivery=lambda err, msg: results.append(err))
        assert producer.flush(15) == 0
        return results.pop()

    assert produce(20_000) is None, "Kafka's default allows 1 MiB"
    _set_default(gw, message_max_bytes="10000")
    error = produce(20_000)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error
    assert produce(1_000) is None, "smaller batches still go in"


def test_auto_create_turned_off_at_runtime_stops_metadata_creation(cluster, topic_name):
    first, second = cluster(2)
    admin = _admin(first)
    created = first.metadata([f"{topic_name}-before"])
    assert created.topic(f"{topic_name}-before").error_code == 0

    _set_default(first, auto_create_topics_enable="false")
    for gw in (first, second):
        name = f"{topic_name}-after-{gw.node_id}"

        def refused():
            answer = gw.metadata([name]).topic(name)
            return answer is not None and answer.error_code == UNKNOWN_TOPIC_OR_PARTITION

        _eventually(refused, f"gateway {gw.node_id} refusing to auto-create")
        listed = admin.list_topics(timeout=10).topics
        assert name not in listed

    # The gateway's own value wins over the default.
    _set(_admin(second), str(second.node_id), auto_create_topics_enable="true")
    name = f"{topic_name}-own"
    assert second.metadata([name]).topic(name).error_code == 0
