"""One confluent-kafka group consumer in its own process, for
test_groups.py: it can be killed like a crashed application.

Usage: group_worker.py BOOTSTRAP TOPIC GROUP OUTFILE [ASSIGNOR]

Writes one line per event to OUTFILE, flushed as it goes:
  ASSIGN <monotonic> <p,p,...>   after each rebalance (the full assignment)
  MSG <partition> <offset> <value>
Offsets are stored after processing and auto-committed every 200 ms, so a
killed worker's partitions are redelivered from its last commit only."""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer


def main() -> None:
    bootstrap, topic, group, outfile = sys.argv[1:5]
    assignor = sys.argv[5] if len(sys.argv) > 5 else "range,roundrobin"
    out = open(outfile, "a", buffering=1)
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "partition.assignment.strategy": assignor,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 200,
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 100,
    })

    owned: set[int] = set()

    def report() -> None:
        out.write(f"ASSIGN {time.monotonic():.3f} {','.join(map(str, sorted(owned)))}\n")

    def assigned(_consumer, partitions):
        # Eager assignors hand over the full assignment, cooperative ones
        # the increment; revocations come first either way.
        owned.update(tp.partition for tp in partitions)
        report()

    def revoked(_consumer, partitions):
        owned.difference_update(tp.partition for tp in partitions)
        report()

    c.subscribe([topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
    while True:
        for msg in c.consume(num_messages=500, timeout=0.2):
            if msg.error() is not None:
                continue
            out.write(f"MSG {msg.partition()} {msg.offset()} {msg.value().decode()}\n")
            c.store_offsets(message=msg)


if __name__ == "__main__":
    main()
