"""Compacted topics used the way Kafka Connect's distributed workers use
their config, offset and status topics (issue 22), with confluent-kafka
(librdkafka 2.16):

- created with `cleanup.policy=compact` (1, 25 and 5 partitions, as Connect
  creates them), which DescribeConfigs reports back (Connect refuses to start
  on internal topics that are not compacted);
- written with keyed JSON values, repeated updates and tombstones (null
  values) by an idempotent acks=all producer, as KafkaBasedLog writes;
- read from the beginning up to the end offsets ListOffsets gives, which
  rebuilds the latest value of every live key;
- a record without a key refused with INVALID_RECORD, as Kafka does on a
  compacted topic (KIP-467).

cxlkafka does not compact yet (the log keeps every update), so this shows the
access pattern works, not that old values are cleaned away."""

from __future__ import annotations

import json
import zlib

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

OP_TIMEOUT = 15
# Connect's internal topics: (name, partitions), as its defaults create them.
INTERNAL = [("configs", 1), ("offsets", 25), ("status", 5)]


def _read_to_end(bootstrap: str, topic: str, partitions: int) -> dict[bytes, bytes]:
    """KafkaBasedLog.readToEnd: every partition from the beginning up to the
    end offset asked for first; the latest value per key, tombstones removing
    the key."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=OP_TIMEOUT)[1]
                for p in range(partitions)}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        state: dict[bytes, bytes] = {}
        positions = {p: 0 for p in range(partitions)}
        while any(positions[p] < ends[p] for p in range(partitions)):
            msg = c.poll(10)
            assert msg is not None, f"no record within 10 s; at {positions}, ends {ends}"
            assert msg.error() is None, msg.error()
            positions[msg.partition()] = msg.offset() + 1
            if msg.value() is None:
                state.pop(msg.key(), None)
            else:
                state[msg.key()] = msg.value()
        return state
    finally:
        c.close()


def test_connect_style_internal_topics_work_when_created_compacted(start_gateway, topic_name):
    gw = start_gateway()
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    topics = {f"{topic_name}-{name}": partitions for name, partitions in INTERNAL}
    fs = admin.create_topics(
        [NewTopic(t, num_partitions=n, replication_factor=1,
                  config={"cleanup.policy": "compact"}) for t, n in topics.items()],
        operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    for f in fs.values():
        assert f.result(timeout=OP_TIMEOUT) is None
    described = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, t) for t in topics], request_timeout=OP_TIMEOUT)
    for resource, f in described.items():
        assert f.result(timeout=OP_TIMEOUT)["cleanup.policy"].value == "compact", resource

    p = Producer({"bootstrap.servers": gw.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5})
    failures = []
    expected: dict[str, dict[bytes, bytes]] = {t: {} for t in topics}
    for t, partitions in topics.items():
        for round_ in range(5):
            for k in range(200):
                key = f"connector-{k}".encode()
                # Connect's partitioner: the key's hash picks the partition.
                partition = zlib.crc32(key) % partitions
                if round_ == 4 and k % 10 == 0:
                    value = None  # a tombstone: the key is gone
                    expected[t].pop(key, None)
                else:
                    value = json.dumps({"round": round_, "key": k}).encode()
                    expected[t][key] = value
                p.produce(t, key=key, value=value, partition=partition,
                          on_delivery=lambda err, _msg: err and failures.append(err))
            p.poll(0)
    assert p.flush(60) == 0
    assert failures == [], failures[:5]

    for t, partitions in topics.items():
        state = _read_to_end(gw.bootstrap, t, partitions)
        assert state == expected[t], (t, len(state), len(expected[t]))
        assert len(state) == 180

    # A keyless record is refused on a compacted topic.
    refused = []
    plain = Producer({"bootstrap.servers": gw.bootstrap, "acks": "all", "retries": 0})
    plain.produce(f"{topic_name}-configs", value=b"{}", partition=0,
                  on_delivery=lambda err, _msg: refused.append(err))
    plain.flush(30)
    assert [e.code() for e in refused] == [KafkaError.INVALID_RECORD], refused
