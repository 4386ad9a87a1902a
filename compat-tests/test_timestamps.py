"""Message timestamps as topics configure them (issue 22), seen by real
clients:

- `message.timestamp.type=LogAppendTime`: the gateway stamps each batch as
  it publishes it; confluent-kafka (librdkafka 2.16) gets the stamp in its
  delivery reports and reads it back as TIMESTAMP_LOG_APPEND_TIME, whatever
  the producer put in its records and whatever the codec; offsets_for_times
  (ListOffsets by time) finds records by that stamp; the Java consumer sees
  LogAppendTime too.
- `message.timestamp.before.max.ms` / `after.max.ms` (KIP-937): a CreateTime
  record outside the window is refused with INVALID_TIMESTAMP, the others
  of the same producer are stored."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                             Consumer, KafkaError, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import cxk_clients as cc
from test_java import java_cp, run_java  # noqa: F401  (java_cp is a fixture)

OP_TIMEOUT = 15
HOUR_MS = 3_600_000


def _create(gw, topic: str, partitions: int, config: dict) -> None:
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, config=config)],
                             operation_timeout=OP_TIMEOUT, request_timeout=OP_TIMEOUT)
    assert fs[topic].result(timeout=OP_TIMEOUT) is None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _produce_with_reports(gw, topic: str, msgs: list[cc.Msg], **conf) -> dict[int, tuple]:
    """Produces `msgs` and returns, per message index, its delivery report:
    (error, partition, offset, timestamp type, timestamp)."""
    p, errors = cc.producer(gw.bootstrap, **conf)
    reports: dict[int, tuple] = {}

    def report(i):
        def on_delivery(err, msg):
            ts_type, ts = msg.timestamp()
            reports[i] = (err, msg.partition(), msg.offset(), ts_type, ts)
        return on_delivery

    for i, m in enumerate(msgs):
        p.produce(topic, value=m.value, key=m.key, partition=m.partition,
                  headers=list(m.headers), timestamp=m.timestamp, on_delivery=report(i))
        p.poll(0)
    assert p.flush(45) == 0, f"unflushed; client errors {errors[:5]}"
    assert len(reports) == len(msgs)
    return reports


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_log_append_time_is_stamped_reported_and_read_back(start_gateway, topic_name, codec):
    gw = start_gateway()
    partitions = 2
    _create(gw, topic_name, partitions, {"message.timestamp.type": "LogAppendTime"})
    count = 400
    # CreateTime in the records: a day ago, which the stamp must replace.
    msgs = cc.make_messages(count, partitions, seed=22, base_ts=_now_ms() - 24 * HOUR_MS)
    before = _now_ms()
    reports = _produce_with_reports(gw, topic_name, msgs, **{"compression.type": codec})
    after = _now_ms()

    failed = [(i, r[0]) for i, r in reports.items() if r[0] is not None]
    assert failed == [], failed[:5]
    for i, (_, _, _, ts_type, ts) in reports.items():
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, (i, ts_type)
        assert before <= ts <= after, (i, ts, before, after)

    got = cc.consume_from_beginning(gw.bootstrap, topic_name, partitions, count, timeout=45)
    at = {(g.partition, g.offset): g for recs in got.values() for g in recs}
    assert len(at) == count
    for i, (_, part, off, _, stamp) in reports.items():
        g = at[(part, off)]
        assert (g.key, g.value, g.headers) == (msgs[i].key, msgs[i].value, msgs[i].headers), i
        assert g.timestamp_type == TIMESTAMP_LOG_APPEND_TIME, (i, g.timestamp_type)
        assert g.timestamp == stamp, (i, g.timestamp, stamp)

    # ListOffsets by time: the first offset stamped at or after a time (the
    # stamps of one partition grow with its offsets: one gateway's clock).
    part = msgs[0].partition
    stamps = sorted((r[2], r[4]) for r in reports.values() if r[1] == part)
    assert [s for _, s in stamps] == sorted(s for _, s in stamps)
    asked = stamps[len(stamps) // 2][1]
    expected = min(off for off, s in stamps if s >= asked)
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": f"{topic_name}-times"})
    try:
        found = c.offsets_for_times([TopicPartition(topic_name, part, asked)], timeout=15)[0]
    finally:
        c.close()
    assert (found.error, found.offset) == (None, expected), (found, expected)


@pytest.mark.timeout(120)
def test_the_java_consumer_sees_log_append_time(java_cp, start_gateway, topic_name):  # noqa: F811
    gw = start_gateway(group_initial_rebalance_delay_ms=0)
    _create(gw, topic_name, 1, {"message.timestamp.type": "LogAppendTime"})
    count = 50
    msgs = cc.make_messages(count, 1, seed=23, base_ts=1_000)
    before = _now_ms()
    reports = _produce_with_reports(gw, topic_name, msgs)
    after = _now_ms()
    assert all(r[0] is None for r in reports.values())
    lines = run_java(java_cp, "JavaConsumer", gw.bootstrap, topic_name, f"{topic_name}-java",
                     count, 60)
    recs = [line.split(" ", 6) for line in lines if line.startswith("REC ")]
    assert len(recs) == count, lines[-5:]
    stamps = {r[2]: r[4] for r in reports.values()}
    for _, _, offset, ts_type, ts, _, _ in recs:
        assert ts_type == "LogAppendTime", (offset, ts_type)
        assert int(ts) == stamps[int(offset)] and before <= int(ts) <= after, (offset, ts)


def test_timestamps_outside_the_window_are_refused_with_invalid_timestamp(
        start_gateway, topic_name):
    gw = start_gateway()
    _create(gw, topic_name, 1, {"message.timestamp.before.max.ms": str(HOUR_MS),
                                "message.timestamp.after.max.ms": str(HOUR_MS)})
    now = _now_ms()
    timestamps = {"past": now - 2 * HOUR_MS, "recent": now - 60_000, "now": now,
                  "soon": now + 60_000, "future": now + 2 * HOUR_MS}
    # One record per request, so a refused one takes no other with it.
    p = Producer({"bootstrap.servers": gw.bootstrap, "linger.ms": 0, "acks": "all",
                  "enable.idempotence": False, "retries": 0})
    outcome: dict[str, tuple] = {}
    for name, ts in timestamps.items():
        def on_delivery(err, msg, name=name):
            outcome[name] = (err.code() if err else None, msg.offset(), msg.timestamp())
        p.produce(topic_name, key=name.encode(), value=b"v", partition=0, timestamp=ts,
                  on_delivery=on_delivery)
        assert p.flush(15) == 0
    assert outcome["past"][0] == KafkaError.INVALID_TIMESTAMP, outcome
    assert outcome["future"][0] == KafkaError.INVALID_TIMESTAMP, outcome
    for name in ("recent", "now", "soon"):
        assert outcome[name][0] is None, (name, outcome)
        assert outcome[name][2] == (TIMESTAMP_CREATE_TIME, timestamps[name]), (name, outcome)

    got = cc.consume_from_beginning(gw.bootstrap, topic_name, 1, 3, timeout=30)
    assert [(g.key, g.timestamp) for g in got[0]] == \
        [(name.encode(), timestamps[name]) for name in ("recent", "now", "soon")]
