"""Consumer groups with real clients: confluent-kafka (librdkafka 2.16)
groups of three on a six-partition topic under steady production, one
member killed; the time from the first JoinGroup to a stable assignment;
kafka-python groups; kcat -G."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

HERE = Path(__file__).resolve().parent
GROUP_APIS = ("FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup",
              "OffsetCommit", "OffsetFetch")
SESSION_TIMEOUT_S = 6.0


def read_events(path: Path) -> tuple[list[tuple[float, list[int]]], list[tuple[int, int, str]]]:
    assigns, msgs = [], []
    if not path.exists():
        return assigns, msgs
    for line in path.read_text().splitlines():
        parts = line.split(" ")
        if parts[0] == "ASSIGN" and len(parts) >= 2:
            owned = [int(p) for p in parts[2].split(",")] if len(parts) > 2 and parts[2] else []
            assigns.append((float(parts[1]), owned))
        elif parts[0] == "MSG" and len(parts) == 4:
            msgs.append((int(parts[1]), int(parts[2]), parts[3]))
    return assigns, msgs


def current(path: Path) -> list[int]:
    assigns, _ = read_events(path)
    return assigns[-1][1] if assigns else []


def wait_for(condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - start


class SteadyProducer(threading.Thread):
    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        self.topic = topic
        self.sent = 0
        self.acked: set[str] = set()
        self.failed: list = []
        self.stop = threading.Event()

    def run(self) -> None:
        def done(err, msg):
            if err is None:
                self.acked.add(msg.value().decode())
            else:
                self.failed.append(err)
        while not self.stop.is_set():
            for _ in range(20):
                self.p.produce(self.topic, value=f"v{self.sent}".encode(),
                               key=str(self.sent).encode(), on_delivery=done)
                self.sent += 1
            self.p.poll(0)
            time.sleep(0.05)
        self.p.flush(30)


@pytest.mark.parametrize("assignor", ["range,roundrobin", "cooperative-sticky"])
def test_a_killed_consumer_s_partitions_move_and_nothing_is_lost(start_gateway, topic_name, tmp_path,
                                                                 assignor):
    gw = start_gateway(default_partitions=6, group_initial_rebalance_delay_ms=500)
    gw.require(*GROUP_APIS)
    group = f"g-{uuid.uuid4().hex[:8]}"
    producer = SteadyProducer(gw.bootstrap, topic_name)
    producer.start()
    outs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [subprocess.Popen([sys.executable, str(HERE / "group_worker.py"), gw.bootstrap,
                                 topic_name, group, str(out), assignor])
               for out in outs]
    try:
        wait_for(lambda: sorted(p for o in outs for p in current(o)) == list(range(6))
                 and all(len(current(o)) == 2 for o in outs), 40, "three members with two partitions each")
        time.sleep(2)
        victim = outs[0]
        lost = current(victim)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        killed_at = time.monotonic()
        survivors = outs[1:]
        moved = wait_for(lambda: sorted(p for o in survivors for p in current(o)) == list(range(6)),
                         SESSION_TIMEOUT_S + 10, "the survivors to own every partition")
        print(f"\n[{assignor}] partitions {lost} of the killed consumer reassigned {moved:.1f}s after "
              f"the kill (session.timeout.ms={SESSION_TIMEOUT_S * 1000:.0f})")
        assert moved <= SESSION_TIMEOUT_S + 4, f"reassigned after {moved:.1f}s"
        time.sleep(2)
        producer.stop.set()
        producer.join(40)
        assert producer.failed == [], producer.failed[:5]
        assert len(producer.acked) == producer.sent > 0

        def consumed() -> set[str]:
            return {v for o in outs for _, _, v in read_events(o)[1]}
        wait_for(lambda: producer.acked <= consumed(), 40, "every acknowledged message consumed")
        # At-least-once: duplicates only where the killed consumer's work was
        # redelivered from its last commit.
        seen: dict[tuple[int, int], int] = {}
        for o in outs:
            for partition, offset, _ in read_events(o)[1]:
                seen[(partition, offset)] = seen.get((partition, offset), 0) + 1
        twice = {p for (p, _), n in seen.items() if n > 1}
        assert twice <= set(lost), f"duplicates on {twice}, killed consumer owned {lost}"
        print(f"[{assignor}] {producer.sent} produced, all consumed; redelivered partitions {sorted(twice)}")
        assert killed_at > 0
    finally:
        producer.stop.set()
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
                w.wait(10)


@pytest.mark.parametrize("members", [1, 3])
def test_time_from_first_join_to_stable_assignment(start_gateway, topic_name, members):
    """A new group with the default group.initial.rebalance.delay.ms (3 s):
    the time from subscribe (the client's FindCoordinator and JoinGroup) to
    every member holding its assignment."""
    gw = start_gateway(default_partitions=6)
    gw.require(*GROUP_APIS)
    p = Producer({"bootstrap.servers": gw.bootstrap})
    p.produce(topic_name, b"x")
    p.flush(10)
    group = f"stable-{uuid.uuid4().hex[:8]}"
    assigned: dict[int, float] = {}
    consumers = []
    start = time.monotonic()
    for i in range(members):
        c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                      "session.timeout.ms": 6000, "auto.offset.reset": "earliest"})
        c.subscribe([topic_name], on_assign=lambda _c, parts, i=i: assigned.setdefault(i, time.monotonic()))
        consumers.append(c)
    try:
        deadline = start + 30
        while len(assigned) < members and time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.05)
        assert len(assigned) == members, f"only {len(assigned)} of {members} assigned in 30s"
        took = max(assigned.values()) - start
        print(f"\n{members} member(s): subscribe -> stable assignment in {took:.2f}s "
              f"(group.initial.rebalance.delay.ms=3000)")
        assert took < 3.0 + 3.0, took
        owned = sum(len(c.assignment()) for c in consumers)
        assert owned == 6
    finally:
        for c in consumers:
            c.close()


def test_commit_and_resume_in_one_group(start_gateway, topic_name):
    """Commits survive a consumer restart: a new consumer in the group starts
    at the committed offsets (read through OffsetFetch)."""
    gw = start_gateway(default_partitions=3, group_initial_rebalance_delay_ms=0)
    gw.require(*GROUP_APIS)
    p = Producer({"bootstrap.servers": gw.bootstrap})
    for i in range(300):
        p.produce(topic_name, f"m{i}".encode(), partition=i % 3)
    p.flush(10)
    group = f"resume-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": gw.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    c = Consumer(conf)
    c.subscribe([topic_name])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 150 and time.monotonic() < deadline:
        for m in c.consume(50, 0.5):
            if m.error() is None:
                got.append(m)
    c.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in
                 c.committed([TopicPartition(topic_name, i) for i in range(3)], timeout=10)}
    c.close()
    assert sum(max(o, 0) for o in committed.values()) == len(got)
    c2 = Consumer(conf)
    c2.subscribe([topic_name])
    rest = []
    deadline = time.monotonic() + 30
    while len(rest) < 300 - len(got) and time.monotonic() < deadline:
        for m in c2.consume(100, 0.5):
            if m.error() is None:
                rest.append(m)
    c2.close()
    values = sorted(m.value() for m in got + rest)
    assert values == sorted(f"m{i}".encode() for i in range(300)), "each message once"


def test_kafka_python_group(start_gateway, topic_name):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTP

    gw = start_gateway(default_partitions=4, group_initial_rebalance_delay_ms=1000)
    gw.require(*GROUP_APIS)
    p = KafkaProducer(bootstrap_servers=gw.bootstrap)
    for i in range(400):
        p.send(topic_name, f"k{i}".encode(), partition=i % 4)
    p.flush(30)
    p.close()
    group = f"kp-{uuid.uuid4().hex[:8]}"
    consumers = [KafkaConsumer(topic_name, bootstrap_servers=gw.bootstrap, group_id=group,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               consumer_timeout_ms=1000) for _ in range(2)]
    got: set[bytes] = set()
    owned: list = [set(), set()]
    deadline = time.monotonic() + 45
    # Single-threaded: each poll also runs that member's part of the
    # rebalance, so poll both until both hold partitions and all is read.
    while not (len(got) == 400 and all(owned)) and time.monotonic() < deadline:
        for i, c in enumerate(consumers):
            batch = c.poll(timeout_ms=200)
            for records in batch.values():
                got.update(r.value for r in records)
            if batch:
                c.commit()
            owned[i] = c.assignment()
    for c in consumers:
        c.close()
    assert got == {f"k{i}".encode() for i in range(400)}
    assert all(owned), f"both members got partitions: {owned}"
    assert sorted(tp.partition for o in owned for tp in o) == [0, 1, 2, 3]
    check = KafkaConsumer(bootstrap_servers=gw.bootstrap, group_id=group, enable_auto_commit=False)
    committed = [check.committed(KTP(topic_name, i)) for i in range(4)]
    check.close()
    assert committed == [100, 100, 100, 100]


def test_kcat_balanced_consumer(start_gateway, topic_name):
    gw = start_gateway(default_partitions=3, group_initial_rebalance_delay_ms=0)
    gw.require(*GROUP_APIS)
    lines = "".join(f"line{i}\n" for i in range(90))
    subprocess.run(["kcat", "-b", gw.bootstrap, "-P", "-t", topic_name], input=lines.encode(),
                   check=True, timeout=30)
    group = f"kcat-{uuid.uuid4().hex[:8]}"
    run = subprocess.run(["kcat", "-b", gw.bootstrap, "-G", group, "-o", "beginning", "-c", "90",
                          "-f", "%s\n", "-X", "auto.commit.interval.ms=100", topic_name],
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert sorted(run.stdout.decode().split()) == sorted(f"line{i}" for i in range(90))
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group})
    committed = c.committed([TopicPartition(topic_name, i) for i in range(3)], timeout=10)
    c.close()
    assert sum(tp.offset for tp in committed) == 90, committed
