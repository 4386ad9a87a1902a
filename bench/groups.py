#!/usr/bin/env python3
"""Rebalance cost of the two consumer group protocols, same gateway, same run.

    compat-tests/.venv/bin/python bench/groups.py                # 5 trials each
    compat-tests/.venv/bin/python bench/groups.py --trials 3 --heartbeat-ms 1000

One `cxlkafka serve` (fresh region and data dir) and a producer writing to
every partition of a 12-partition topic every 20 ms. Each trial, alternating
the protocol first: member A of a new group consumes until it owns every
partition, then member B joins. Measured:

- join-to-consume: from B's subscribe to B's first record;
- pause seen by A: the longest gap between A's records from B's subscribe
  until 2 s after B's first record (A's normal gap is about the producer's
  20 ms); a stop-the-world rebalance shows here;
- whether A was left with no partition at some point.

Classic: librdkafka's default assignors (range,roundrobin: eager, every
partition revoked on a rebalance), `heartbeat.interval.ms` = --heartbeat-ms.
Consumer (KIP-848): `group.protocol=consumer`, the gateway's
`--group-consumer-heartbeat-interval-ms` = --heartbeat-ms. Prints one line per
trial and the medians; needs confluent-kafka (compat-tests/.venv).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Member(threading.Thread):
    def __init__(self, bootstrap: str, topic: str, group: str, protocol: str, heartbeat_ms: int):
        super().__init__(daemon=True)
        conf = {"bootstrap.servers": bootstrap, "group.id": group,
                "auto.offset.reset": "latest", "enable.auto.commit": True,
                "fetch.wait.max.ms": 50}
        if protocol == "consumer":
            conf["group.protocol"] = "consumer"
        else:
            conf["heartbeat.interval.ms"] = heartbeat_ms
            conf["session.timeout.ms"] = max(6000, 3 * heartbeat_ms)
        self.consumer = Consumer(conf)
        self.topic = topic
        self.owned: set[int] = set()
        self.emptied = False
        self.times: list[float] = []
        self.subscribed_at = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        def assigned(_c, parts):
            self.owned.update(tp.partition for tp in parts)

        def revoked(_c, parts):
            self.owned.difference_update(tp.partition for tp in parts)
            if not self.owned:
                self.emptied = True

        self.subscribed_at = time.monotonic()
        self.consumer.subscribe([self.topic], on_assign=assigned, on_revoke=revoked,
                                on_lost=revoked)
        while not self.stop.is_set():
            for msg in self.consumer.consume(num_messages=1000, timeout=0.05):
                if msg.error() is None:
                    self.times.append(time.monotonic())
        self.consumer.close()


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def trial(bootstrap: str, topic: str, protocol: str, heartbeat_ms: int, n: int) -> dict:
    group = f"bench-{protocol}-{n}-{os.getpid()}"
    a = Member(bootstrap, topic, group, protocol, heartbeat_ms)
    a.start()
    if not wait_for(lambda: len(a.owned) == PARTITIONS and a.times, 60):
        raise SystemExit(f"{protocol}: A never owned every partition")
    time.sleep(1)
    a.emptied = False
    b = Member(bootstrap, topic, group, protocol, heartbeat_ms)
    b.start()
    if not wait_for(lambda: b.times, 60):
        raise SystemExit(f"{protocol}: B never consumed")
    join = b.times[0] - b.subscribed_at
    time.sleep(2)
    window = [t for t in a.times if t >= b.subscribed_at and t <= b.times[0] + 2]
    points = [b.subscribed_at] + window + [b.times[0] + 2]
    pause = max(y - x for x, y in zip(points, points[1:]))
    emptied = a.emptied
    for m in (a, b):
        m.stop.set()
    for m in (a, b):
        m.join(30)
    return {"protocol": protocol, "join_s": join, "pause_s": pause, "emptied": emptied}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    ap.add_argument("--binary", default=str(ROOT / "target/release/cxlkafka"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cxk-bench-groups-"))
    port = free_port()
    region = f"/dev/shm/cxk-bench-groups-{os.getpid()}"
    gateway = subprocess.Popen(
        [args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--cluster", f"bg{os.getpid()}",
         "--region-path", region, "--region-size", "256MiB", "--data-dir", str(work / "data"),
         "--metrics-addr", f"127.0.0.1:{free_port()}", "--log-level", "warn",
         "--group-initial-rebalance-delay-ms", "0",
         "--group-consumer-heartbeat-interval-ms", str(args.heartbeat_ms)],
        stdout=open(work / "gateway.log", "w"), stderr=subprocess.STDOUT)
    bootstrap = f"127.0.0.1:{port}"
    stop = threading.Event()
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = "bench-groups"
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        def produce() -> None:
            p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
            i = 0
            while not stop.is_set():
                for part in range(PARTITIONS):
                    p.produce(topic, value=b"x" * 100, partition=part)
                i += 1
                p.poll(0)
                time.sleep(0.02)
            p.flush(10)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        results = []
        for n in range(args.trials):
            order = ["classic", "consumer"] if n % 2 == 0 else ["consumer", "classic"]
            for protocol in order:
                r = trial(bootstrap, topic, protocol, args.heartbeat_ms, n)
                results.append(r)
                print(f"trial {n} {protocol:8} join-to-consume {r['join_s']:6.2f} s  "
                      f"pause seen by A {r['pause_s']:6.2f} s  A left with nothing: {r['emptied']}",
                      flush=True)
        print(f"\nmedians over {args.trials} trials, heartbeat interval {args.heartbeat_ms} ms:")
        print("| protocol | join-to-consume (s) | pause seen by A (s) | A emptied |")
        print("|---|---|---|---|")
        for protocol in ("classic", "consumer"):
            mine = [r for r in results if r["protocol"] == protocol]
            print(f"| {protocol} | {statistics.median(r['join_s'] for r in mine):.2f} | "
                  f"{statistics.median(r['pause_s'] for r in mine):.2f} | "
                  f"{sum(r['emptied'] for r in mine)}/{len(mine)} |")
    finally:
        stop.set()
        gateway.terminate()
        gateway.wait(30)
        shutil.rmtree(work, ignore_errors=True)
        Path(region).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
