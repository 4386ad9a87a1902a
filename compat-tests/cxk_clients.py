"""Shared helpers for the real-client tests: deterministic messages, a
confluent-kafka producer that tracks every delivery report, and a
confluent-kafka consumer that reads partitions from the beginning with
assign() (no consumer group protocol involved)."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer,
                             KafkaError, Producer, TopicPartition)


@dataclass(frozen=True)
class Msg:
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple  # ((str, bytes | None), ...)
    timestamp: int  # CreateTime, ms


@dataclass(frozen=True)
class Got:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple
    timestamp_type: int
    timestamp: int

    def content(self):
        return (self.key, self.value, self.headers, self.timestamp)


def make_messages(count: int, partitions: int, seed: int, base_ts: int | None = None) -> list[Msg]:
    """Keys (some null), values of every shape (empty, null, text that
    compresses, random bytes that do not, up to ~16 KiB), headers (duplicate
    names, empty and null values, binary), distinct CreateTime timestamps."""
    rng = random.Random(seed)
    base_ts = base_ts if base_ts is not None else int(time.time() * 1000) - 3_600_000
    words = [b"cxl", b"kafka", b"region", b"sequencer", b"gateway", b"batch", b"offset"]
    out = []
    for i in range(count):
        kind = i % 7
        if kind == 0:
            value = None
        elif kind == 1:
            value = b""
        elif kind in (2, 3):
            value = b" ".join(rng.choices(words, k=rng.randrange(1, 400)))
        elif kind == 4:
            value = rng.randbytes(rng.randrange(1, 16384))
        else:
            value = f"message {i} ".encode() * rng.randrange(1, 30)
        key = None if i % 11 == 5 else f"key-{i}".encode()
        headers = [("seq", str(i).encode()), ("dup", b"a"), ("dup", b"b")]
        if i % 3 == 0:
            headers.append(("empty", b""))
        if i % 5 == 0:
            headers.append(("null", None))
        if i % 4 == 0:
            headers.append(("bin", bytes(range(256))[rng.randrange(256):]))
        out.append(Msg(i % partitions, key, value, tuple(headers), base_ts + i))
    return out


class DeliveryTracker:
    """Delivery reports by message index."""

    def __init__(self, n: int):
        self.results: list = [None] * n  # (err, partition, offset)

    def callback(self, i):
        def on_delivery(err, msg):
            self.results[i] = (err, msg.partition(), msg.offset() if err is None else None)
        return on_delivery

    def pending(self) -> int:
        return sum(1 for r in self.results if r is None)

    def failures(self) -> list:
        return [(i, r[0]) for i, r in enumerate(self.results) if r is not None and r[0] is not None]

    def acked(self) -> dict[int, tuple[int, int]]:
        return {i: (r[1], r[2]) for i, r in enumerate(self.results) if r is not None and r[0] is None}


def producer(bootstrap: str, **conf) -> tuple[Producer, list]:
    errors: list = []
    base = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "error_cb": errors.append,
    }
    base.update(conf)
    return Producer(base), errors


def produce_all(p: Producer, topic: str, msgs: list[Msg], tracker: DeliveryTracker,
                start: int = 0, stop: int | None = None) -> None:
    stop = len(msgs) if stop is None else stop
    for i in range(start, stop):
        m = msgs[i]
        while True:
            try:
                p.produce(topic, value=m.value, key=m.key, partition=m.partition,
                          headers=list(m.headers), timestamp=m.timestamp,
                          on_delivery=tracker.callback(i))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)


def flush(p: Producer, tracker: DeliveryTracker, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while tracker.pending() and time.monotonic() < deadline:
        p.flush(min(1.0, max(0.0, deadline - time.monotonic())))
    assert tracker.pending() == 0, \
        f"{tracker.pending()} of {len(tracker.results)} messages have no delivery report after {timeout}s"


def consumer(bootstrap: str, **conf) -> tuple[Consumer, list]:
    errors: list = []
    base = {
        "bootstrap.servers": bootstrap,
        # confluent-kafka insists on a group.id even for assign(); nothing is
        # committed and no group is joined.
        "group.id": f"cxk-compat-unused-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "error_cb": errors.append,
    }
    base.update(conf)
    return Consumer(base), errors


def consume_from_beginning(bootstrap: str, topic: str, partitions: int, expected: int,
                           timeout: float = 30.0, **conf) -> dict[int, list[Got]]:
    """Reads every partition from offset 0 until `expected` messages arrived
    and every partition reported EOF after its last message."""
    c, errors = consumer(bootstrap, **conf)
    got: dict[int, list[Got]] = {p: [] for p in range(partitions)}
    eof: set[int] = set()
    bad = []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        total = 0
        while not (total >= expected and len(eof) == partitions):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"consumed {total}/{expected} from {topic} via {bootstrap} in {timeout}s; "
                    f"EOF on {sorted(eof)}; message errors {bad[:5]}; client errors {errors[:5]}")
            for msg in c.consume(num_messages=1000, timeout=0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add(msg.partition())
                    else:
                        bad.append(err)
                        assert not err.fatal(), err
                    continue
                p = msg.partition()
                eof.discard(p)
                ts_type, ts = msg.timestamp()
                got[p].append(Got(p, msg.offset(), msg.key(), msg.value(),
                                  tuple(msg.headers() or ()), ts_type, ts))
                total += 1
    finally:
        c.close()
    assert not [e for e in errors if e.fatal()], errors
    return got


def check_round_trip(msgs: list[Msg], tracker: DeliveryTracker,
                     got: dict[int, list[Got]], allow_duplicates: bool = False) -> None:
    """Every acknowledged message is at its acknowledged partition/offset with
    identical key, value, headers and CreateTime; per partition, offsets
    increase and (without duplicates) production order is kept."""
    at = {(g.partition, g.offset): g for recs in got.values() for g in recs}
    acked = tracker.acked()
    for i, (p, off) in acked.items():
        m = msgs[i]
        assert p == m.partition, f"message {i} acknowledged on partition {p}, sent to {m.partition}"
        g = at.get((p, off))
        assert g is not None, f"acknowledged message {i} missing at {p}/{off}"
        assert g.key == m.key, f"message {i}: key {g.key!r} != {m.key!r}"
        assert g.value == m.value, f"message {i}: value differs ({len(g.value or b'')} vs {len(m.value or b'')} bytes)"
        assert g.headers == m.headers, f"message {i}: headers {g.headers!r} != {m.headers!r}"
        assert (g.timestamp_type, g.timestamp) == (TIMESTAMP_CREATE_TIME, m.timestamp), \
            f"message {i}: timestamp {(g.timestamp_type, g.timestamp)} != CreateTime {m.timestamp}"
    for p, recs in got.items():
        offs = [g.offset for g in recs]
        assert offs == sorted(set(offs)), f"partition {p}: offsets not strictly increasing"
        if not allow_duplicates:
            assert len(recs) == sum(1 for q, _ in acked.values() if q == p), \
                f"partition {p}: {len(recs)} records, {sum(1 for q, _ in acked.values() if q == p)} acknowledged"
            assert offs == list(range(len(recs))), f"partition {p}: offsets not contiguous from 0"
            seqs = [int(dict(g.headers)["seq"]) for g in recs]
            assert seqs == sorted(seqs), f"partition {p}: records out of production order"
