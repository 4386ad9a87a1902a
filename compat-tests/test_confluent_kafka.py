"""confluent-kafka (librdkafka 2.16): a producer per compression codec with
acks=all, and a consumer (assign + beginning, no group) reading back
identical keys, values, headers and timestamps at the acknowledged offsets.

The gateway stores batches as produced (it never decompresses), so every
codec must come back exactly as librdkafka compressed it."""

from __future__ import annotations

import zlib

import pytest

import cxk_clients as cc

PARTITIONS = 3
COUNT = 3000


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_and_consume_every_codec(start_gateway, topic_name, codec):
    gw = start_gateway(default_partitions=PARTITIONS)
    gw.require("Metadata", "Produce", "Fetch", "ListOffsets")

    msgs = cc.make_messages(COUNT, PARTITIONS, seed=zlib.crc32(codec.encode()))
    p, perrors = cc.producer(gw.bootstrap, **{"compression.type": codec})
    tracker = cc.DeliveryTracker(COUNT)
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=45)
    assert tracker.failures() == [], f"delivery failures: {tracker.failures()[:5]}; client errors {perrors[:5]}"

    got = cc.consume_from_beginning(gw.bootstrap, topic_name, PARTITIONS, COUNT, timeout=45)
    cc.check_round_trip(msgs, tracker, got)


def test_acks_1_and_acks_0_are_stored_too(start_gateway, topic_name):
    """acks=1 gets offsets; acks=0 gets no response (and no offsets) but the
    records are still appended, in order, after the acks=1 ones."""
    gw = start_gateway(default_partitions=1)
    gw.require("Metadata", "Produce", "Fetch", "ListOffsets")
    n = 500
    msgs = cc.make_messages(2 * n, 1, seed=7)

    p1, _ = cc.producer(gw.bootstrap, acks="1")
    t1 = cc.DeliveryTracker(2 * n)
    cc.produce_all(p1, topic_name, msgs, t1, 0, n)
    assert p1.flush(30) == 0, "acks=1 messages still queued after 30s"
    assert all(r is not None and r[0] is None for r in t1.results[:n]), t1.results[:3]
    assert [t1.results[i][2] for i in range(n)] == list(range(n))

    p0, _ = cc.producer(gw.bootstrap, acks="0")
    cc.produce_all(p0, topic_name, msgs, t1, n, 2 * n)
    assert p0.flush(30) == 0
    # With acks=0 librdkafka reports success with offset -1 (no response).
    assert all(r is not None and r[0] is None for r in t1.results[n:])

    got = cc.consume_from_beginning(gw.bootstrap, topic_name, 1, 2 * n, timeout=30)
    recs = got[0]
    assert [g.offset for g in recs] == list(range(2 * n))
    assert [g.content() for g in recs] == [(m.key, m.value, m.headers, m.timestamp) for m in msgs]


def test_consume_from_the_middle_of_a_batch(start_gateway, topic_name):
    """A fetch at an offset inside a batch returns the whole batch; the client
    must still start exactly at the requested offset."""
    from confluent_kafka import TopicPartition

    gw = start_gateway(default_partitions=1)
    gw.require("Metadata", "Produce", "Fetch", "ListOffsets")
    msgs = cc.make_messages(1000, 1, seed=11)
    p, _ = cc.producer(gw.bootstrap, **{"linger.ms": 50, "batch.num.messages": 1000})
    tracker = cc.DeliveryTracker(len(msgs))
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=30)
    assert tracker.failures() == []

    c, _ = cc.consumer(gw.bootstrap)
    try:
        c.assign([TopicPartition(topic_name, 0, 537)])
        first = None
        for _ in range(60):
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                first = m
                break
        assert first is not None, "nothing consumed from offset 537"
        assert first.offset() == 537
        assert first.value() == msgs[537].value
    finally:
        c.close()
