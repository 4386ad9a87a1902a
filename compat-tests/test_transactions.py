"""Transactions with confluent-kafka (librdkafka): commits and aborts
mixed, read_committed and read_uncommitted consumers counting exactly what
they should, a zombie fenced by its successor, a transaction left open past
its timeout aborted by the coordinator, kafkajs transactions (with
sendOffsets), and a consume-transform-produce
loop that ends with every input record in the output exactly once after
the coordinator's gateway is SIGKILLed mid-transaction."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition, OFFSET_BEGINNING)

import cxk_wire as wire

PARTITIONS = 3


def txn_producer(bootstrap: str, transactional_id: str, **conf) -> Producer:
    base = {
        "bootstrap.servers": bootstrap,
        "transactional.id": transactional_id,
        "linger.ms": 5,
        "transaction.timeout.ms": 60000,
        "message.timeout.ms": 30000,
    }
    base.update(conf)
    return Producer(base)


def read_all(bootstrap: str, topic: str, partitions: int, isolation: str,
             timeout: float = 30.0) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record up to each partition's end,
    as a consumer with this isolation level sees them."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"cxk-txn-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "fetch.wait.max.ms": 100,
    })
    got = []
    eof: set[int] = set()
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while len(eof) < partitions:
            assert time.monotonic() < deadline, f"no EOF on every partition in {timeout}s: {sorted(eof)}"
            for msg in c.consume(num_messages=500, timeout=0.5):
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    eof.add(msg.partition())
                    continue
                eof.discard(msg.partition())
                got.append((msg.partition(), msg.offset(), msg.value()))
    finally:
        c.close()
    return got


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "cxk-txn-offsets",
                  "isolation.level": isolation})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        c.close()


def test_commits_and_aborts_mixed_read_committed_and_uncommitted(start_gateway, topic_name):
    gw = start_gateway(default_partitions=PARTITIONS)
    gw.require("InitProducerId", "AddPartitionsToTxn", "EndTxn")
    p = txn_producer(gw.bootstrap, f"mixed-{topic_name}")
    p.init_transactions(30)
    committed, aborted = [], []
    for txn in range(10):
        p.begin_transaction()
        values = [f"t{txn}-m{i}".encode() for i in range(30)]
        for i, value in enumerate(values):
            p.produce(topic_name, value=value, partition=i % PARTITIONS)
        p.flush(30)
        if txn % 3 == 1:
            p.abort_transaction(30)
            aborted += values
        else:
            p.commit_transaction(30)
            committed += values
    committed_seen = read_all(gw.bootstrap, topic_name, PARTITIONS, "read_committed")
    assert sorted(v for _, _, v in committed_seen) == sorted(committed)
    everything = read_all(gw.bootstrap, topic_name, PARTITIONS, "read_uncommitted")
    assert sorted(v for _, _, v in everything) == sorted(committed + aborted)
    # Markers take offsets: one per transaction and partition, never data.
    ends = end_offsets(gw.bootstrap, topic_name, PARTITIONS, "read_committed")
    assert sum(ends) == len(committed) + len(aborted) + 10 * PARTITIONS
    assert ends == end_offsets(gw.bootstrap, topic_name, PARTITIONS, "read_uncommitted")


def test_an_open_transaction_holds_read_committed_consumers_back(start_gateway, topic_name):
    gw = start_gateway(default_partitions=1)
    p = txn_producer(gw.bootstrap, f"open-{topic_name}")
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic_name, value=b"first", partition=0)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic_name, value=f"pending-{i}".encode(), partition=0)
    p.flush(30)
    # Last stable offset: after the first transaction's marker.
    assert end_offsets(gw.bootstrap, topic_name, 1, "read_committed") == [2]
    assert end_offsets(gw.bootstrap, topic_name, 1, "read_uncommitted") == [7]
    assert [v for _, _, v in read_all(gw.bootstrap, topic_name, 1, "read_committed")] == [b"first"]
    assert len(read_all(gw.bootstrap, topic_name, 1, "read_uncommitted")) == 6
    p.commit_transaction(30)
    assert end_offsets(gw.bootstrap, topic_name, 1, "read_committed") == [8]
    assert len(read_all(gw.bootstrap, topic_name, 1, "read_committed")) == 6


def test_a_zombie_is_fenced_by_its_successor(start_gateway, topic_name):
    gw = start_gateway(default_partitions=1)
    tid = f"zombie-{topic_name}"
    zombie = txn_producer(gw.bootstrap, tid)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(topic_name, value=b"zombie", partition=0)
    zombie.flush(30)
    successor = txn_producer(gw.bootstrap, tid)
    successor.init_transactions(30)
    successor.begin_transaction()
    successor.produce(topic_name, value=b"successor", partition=0)
    successor.commit_transaction(30)
    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic_name, value=b"late", partition=0)
        zombie.flush(10)
        zombie.commit_transaction(30)
    assert raised.value.args[0].fatal() or raised.value.args[0].code() in (
        KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH), raised.value
    assert [v for _, _, v in read_all(gw.bootstrap, topic_name, 1, "read_committed")] == [b"successor"]


def test_a_transaction_past_its_timeout_is_aborted(start_gateway, topic_name):
    gw = start_gateway(default_partitions=1)
    p = txn_producer(gw.bootstrap, f"timeout-{topic_name}",
                     **{"transaction.timeout.ms": 2000, "message.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic_name, value=f"never-{i}".encode(), partition=0)
    p.flush(30)
    deadline = time.monotonic() + 20
    while end_offsets(gw.bootstrap, topic_name, 1, "read_committed") != [11]:
        assert time.monotonic() < deadline, "the open transaction was never aborted"
        time.sleep(0.25)
    assert read_all(gw.bootstrap, topic_name, 1, "read_committed") == []
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert read_all(gw.bootstrap, topic_name, 1, "read_committed") == []


def transaction_coordinator(gw, transactional_id: str) -> int:
    """The node id FindCoordinator (key type TRANSACTION) names."""
    body = wire.string(transactional_id) + wire.i8(1)
    with gw.connect() as conn:
        reader = conn.request(wire.API_KEYS["FindCoordinator"], 1, body,
                              flexible_request=False, flexible_response=False)
        reader.i32()  # throttle
        error = reader.i16()
        reader.string()
        node = reader.i32()
    assert error == 0, f"FindCoordinator error {error}"
    return node


class TransformApp:
    """One instance of a consume-transform-produce service: a read_committed
    group consumer and a transactional producer sharing one id."""

    def __init__(self, bootstrap: str, group: str, transactional_id: str, source: str, sink: str):
        self.source, self.sink = source, sink
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 6000,
            "fetch.wait.max.ms": 100,
        })
        self.consumer.subscribe([source])
        self.producer = txn_producer(bootstrap, transactional_id)
        self.producer.init_transactions(60)

    def poll_batch(self, timeout: float = 1.0):
        return [m for m in self.consumer.consume(num_messages=200, timeout=timeout)
                if m.error() is None]

    def transform(self, msgs) -> None:
        """Begins a transaction and produces the outputs of `msgs` into it."""
        self.producer.begin_transaction()
        for m in msgs:
            self.producer.produce(self.sink, key=m.key(), value=m.value().upper())
        self.producer.flush(30)

    def commit(self) -> None:
        self.producer.send_offsets_to_transaction(
            self.consumer.position(self.consumer.assignment()),
            self.consumer.consumer_group_metadata(), 60)
        self.producer.commit_transaction(60)

    def abandon(self) -> None:
        """The process dies: nothing is committed, nothing flushed."""
        self.producer.purge()
        self.consumer.close()


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_consume_transform_produce_is_exactly_once_across_a_killed_coordinator(cluster, topic_name):
    gws = cluster(2, default_partitions=PARTITIONS)
    source, sink = f"{topic_name}-in", f"{topic_name}-out"
    bootstrap = ",".join(g.bootstrap for g in gws)
    total = 3000
    feeder = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(total):
        feeder.produce(source, key=str(i).encode(), value=f"record-{i}".encode(), partition=i % PARTITIONS)
        if i % 500 == 0:
            feeder.poll(0)
    assert feeder.flush(30) == 0
    tid, group = f"ctp-{topic_name}", f"ctp-group-{topic_name}"

    app = TransformApp(bootstrap, group, tid, source, sink)
    done = 0
    # Inputs whose transaction committed: each counted once if the loop is
    # exactly-once (duplicates in the output are caught below).
    committed_inputs = 0
    killed = None
    deadline = time.monotonic() + 180
    while committed_inputs < total:
        assert time.monotonic() < deadline, \
            f"{committed_inputs} of {total} inputs committed in 180 s (killed: {killed is not None})"
        msgs = app.poll_batch()
        if not msgs:
            continue
        app.transform(msgs)
        if killed is None and done >= 5:
            # Mid-transaction: the coordinator's gateway dies, and so does
            # this instance of the application; a new one takes over.
            coordinator = transaction_coordinator(gws[0], tid)
            killed = next(g for g in gws if g.node_id == coordinator)
            killed.kill()
            app.abandon()
            survivor = next(g for g in gws if g is not killed)
            app = TransformApp(survivor.bootstrap, group, tid, source, sink)
            continue
        app.commit()
        done += 1
        committed_inputs += len(msgs)
    assert killed is not None, "the input ran out before the coordinator was killed"
    app.consumer.close()
    survivor = next(g for g in gws if g is not killed)
    out = read_all(survivor.bootstrap, sink, PARTITIONS, "read_committed", timeout=60)
    values = sorted(v for _, _, v in out)
    assert len(values) == total, f"{len(values)} outputs for {total} inputs"
    assert values == sorted(f"RECORD-{i}".encode() for i in range(total))


@pytest.mark.timeout(120)
def test_kafkajs_transactions_and_read_committed(start_gateway, topic_name):
    """kafkajs 2.2.4 (compat-tests/kafkajs_transactions.js): 9 transactions
    of 30 messages over 3 partitions, every third aborted; sendOffsets in a
    committed transaction reaches the group, in an aborted one it does not;
    its read_committed consumer reads exactly the committed messages, its
    readUncommitted one all of them."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    here = Path(__file__).resolve().parent
    node = shutil.which("node")
    assert node, "node is not installed (compat-tests/run installs it)"
    assert (here / "node_modules" / "kafkajs").is_dir(), \
        "kafkajs is not installed: run compat-tests/run (npm ci)"
    gw = start_gateway()
    run = subprocess.run([node, str(here / "kafkajs_transactions.js"), gw.bootstrap, topic_name,
                          f"kafkajs-txn-{topic_name}", "80"], capture_output=True, timeout=100)
    out = run.stdout.decode().strip().splitlines()
    assert out, f"kafkajs_transactions.js printed nothing; stderr:\n{run.stderr.decode()[-3000:]}"
    result = json.loads(out[-1])
    assert result["ok"], f"{result}\nstderr:\n{run.stderr.decode()[-3000:]}"
    assert result["expected"] == [180, 270]
    assert result["committed"] == 180, result
    assert result["uncommitted"] == 270, result
    assert result["groupOffset"] == "5", result
