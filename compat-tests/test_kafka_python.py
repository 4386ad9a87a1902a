"""kafka-python (3.0, pure Python): producer with acks=all and a consumer
using assign() + seek_to_beginning() (no group), compared record by record.

kafka-python 3.0 turns idempotence on by default (KIP-679), which needs
InitProducerId; these tests turn it off explicitly because idempotent
producers are a separate issue. gzip is the codec kafka-python supports
without extra libraries."""

from __future__ import annotations

import dataclasses
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import cxk_clients as cc

PARTITIONS = 3
COUNT = 1500


@pytest.mark.parametrize("codec", [None, "gzip"])
def test_kafka_python_produce_and_consume(start_gateway, topic_name, codec):
    gw = start_gateway(default_partitions=PARTITIONS)
    gw.require("Metadata", "Produce", "Fetch", "ListOffsets")

    # kafka-python refuses a record whose key and value are both null.
    msgs = [m if m.key is not None or m.value is not None else dataclasses.replace(m, key=b"")
            for m in cc.make_messages(COUNT, PARTITIONS, seed=99 if codec else 98)]
    producer = KafkaProducer(
        bootstrap_servers=gw.bootstrap, acks="all", enable_idempotence=False,
        compression_type=codec, linger_ms=5, max_block_ms=20000,
        request_timeout_ms=15000, delivery_timeout_ms=30000,
        client_id="cxk-compat-kafka-python")
    try:
        futures = []
        for m in msgs:
            # kafka-python's headers are (str, bytes); it has no null header values.
            headers = [(k, v if v is not None else b"") for k, v in m.headers]
            futures.append(producer.send(topic_name, key=m.key, value=m.value,
                                         headers=headers, partition=m.partition,
                                         timestamp_ms=m.timestamp))
        producer.flush(timeout=45)
        acked = [f.get(timeout=10) for f in futures]
    finally:
        producer.close(timeout=5)
    for i, md in enumerate(acked):
        assert md.partition == msgs[i].partition and md.offset >= 0, md
    per_partition = {}
    for i, md in enumerate(acked):
        per_partition.setdefault(md.partition, []).append(md.offset)
    for p, offs in per_partition.items():
        assert offs == list(range(len(offs))), f"partition {p}: acknowledged offsets {offs[:10]}..."

    consumer = KafkaConsumer(
        bootstrap_servers=gw.bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=100,
        request_timeout_ms=15000, client_id="cxk-compat-kafka-python")
    got = {}
    try:
        tps = [TopicPartition(topic_name, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 45
        while sum(map(len, got.values())) < COUNT:
            assert time.monotonic() < deadline, \
                f"consumed {sum(map(len, got.values()))}/{COUNT} in 45s"
            for tp, recs in consumer.poll(timeout_ms=500, max_records=2000).items():
                got.setdefault(tp.partition, []).extend(recs)
    finally:
        consumer.close()

    assert sum(map(len, got.values())) == COUNT
    for i, md in enumerate(acked):
        m = msgs[i]
        recs = got[md.partition]
        r = recs[md.offset]
        assert r.offset == md.offset
        assert r.key == m.key, f"message {i}: key"
        assert r.value == m.value, f"message {i}: value"
        expected_headers = [(k, v if v is not None else b"") for k, v in m.headers]
        assert list(r.headers) == expected_headers, f"message {i}: headers {r.headers!r}"
        assert r.timestamp == m.timestamp and r.timestamp_type == 0, \
            f"message {i}: timestamp {r.timestamp} type {r.timestamp_type}"
