#!/usr/bin/env python3
"""Transactional produce against the same producer without transactions,
same gateway, same run.

    compat-tests/.venv/bin/python bench/transactions.py               # 2 trials, 15 s each
    compat-tests/.venv/bin/python bench/transactions.py --seconds 20 --trials 3

For each measurement a fresh `cxlkafka serve` (release build, its own region
and data dir, defaults otherwise) and a 3-partition topic. Each trial runs,
alternating which goes first, confluent-kafka (librdkafka) producers of 1 KiB records with acks=all
for --seconds:

- idempotent: `enable.idempotence=true` (what a transactional producer
  implies), produce as fast as the client takes records;
- transactional: the same, with a `transactional.id`, one transaction per
  --commit-ms (begin, produce, commit_transaction, which also waits for
  every record of the transaction to be acknowledged).

Measured: bytes acknowledged per second (delivery reports without error,
from the first produce to the last acknowledgement). Prints one line per
trial, the medians and the ratio transactional / idempotent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECORD = 1024
PARTITIONS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_producer(bootstrap: str, topic: str, seconds: float, commit_ms: int | None) -> float:
    """Bytes acknowledged per second over `seconds` of producing."""
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1 << 20,
        "queue.buffering.max.kbytes": 256 * 1024,
    }
    if commit_ms is not None:
        conf["transactional.id"] = f"bench-{uuid.uuid4().hex[:8]}"
    p = Producer(conf)
    acked = [0]

    def delivered(err, _msg) -> None:
        if err is None:
            acked[0] += RECORD

    value = os.urandom(RECORD)
    if commit_ms is not None:
        p.init_transactions(30)
    start = time.monotonic()
    end = start + seconds
    partition = 0
    while time.monotonic() < end:
        window_end = time.monotonic() + (commit_ms or 100) / 1000
        if commit_ms is not None:
            p.begin_transaction()
        while time.monotonic() < window_end:
            for _ in range(256):
                try:
                    p.produce(topic, value=value, partition=partition, on_delivery=delivered)
                except BufferError:
                    p.poll(0.001)
                partition = (partition + 1) % PARTITIONS
            p.poll(0)
        if commit_ms is not None:
            p.commit_transaction(60)
    p.flush(120)
    took = time.monotonic() - start
    return acked[0] / took


class Gateway:
    """A fresh `cxlkafka serve` (own region and data dir) per measurement,
    so no run writes into a disk another left full."""

    def __init__(self, binary: str):
        self.work = Path(tempfile.mkdtemp(prefix="cxk-bench-txn-"))
        self.region = f"/dev/shm/cxk-bench-txn-{os.getpid()}"
        port = free_port()
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}", "--cluster", f"bt{os.getpid()}",
             "--region-path", self.region, "--data-dir", str(self.work / "data"),
             "--metrics-addr", f"127.0.0.1:{free_port()}", "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.bootstrap = f"127.0.0.1:{port}"
        time.sleep(2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        shutil.rmtree(self.work, ignore_errors=True)
        if os.path.exists(self.region):
            os.unlink(self.region)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--commit-ms", type=int, default=100)
    ap.add_argument("--binary", default=str(ROOT / "target/release/cxlkafka"))
    args = ap.parse_args()
    results: dict[str, list[float]] = {"idempotent": [], "transactional": []}
    for trial in range(args.trials):
        order = ["idempotent", "transactional"]
        if trial % 2:
            order.reverse()
        for mode in order:
            gateway = Gateway(args.binary)
            try:
                topic = f"bench-{mode}-{trial}"
                admin = AdminClient({"bootstrap.servers": gateway.bootstrap})
                admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
                rate = run_producer(gateway.bootstrap, topic, args.seconds,
                                    args.commit_ms if mode == "transactional" else None)
            finally:
                gateway.stop()
            results[mode].append(rate)
            print(f"trial {trial} {mode:13} {rate / 1e6:8.1f} MB/s", flush=True)
    idem = statistics.median(results["idempotent"])
    txn = statistics.median(results["transactional"])
    print(f"median idempotent {idem / 1e6:.1f} MB/s, transactional (commit every "
          f"{args.commit_ms} ms) {txn / 1e6:.1f} MB/s, ratio {txn / idem:.2f}")


if __name__ == "__main__":
    main()
