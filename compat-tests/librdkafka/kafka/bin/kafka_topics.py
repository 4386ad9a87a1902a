"""The subset of kafka-topics.sh that librdkafka's tests use, over the Admin API.

    kafka-topics.sh --bootstrap-server B --create --topic T --partitions N
                    --replication-factor R [--config k=v ...]
    kafka-topics.sh --bootstrap-server B --alter --topic T --partitions N
    kafka-topics.sh --bootstrap-server B --delete --topic T
    kafka-topics.sh --bootstrap-server B --list
    kafka-topics.sh --bootstrap-server B --describe [--topic T]

Exits 0 on success and 1 with the error on stderr otherwise, like the tool.
"""

from __future__ import annotations

import argparse
import sys

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

TIMEOUT_S = 30


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kafka-topics.sh")
    p.add_argument("--bootstrap-server", required=True)
    action = p.add_mutually_exclusive_group(required=True)
    for a in ("create", "alter", "delete", "list", "describe"):
        action.add_argument(f"--{a}", action="store_true")
    p.add_argument("--topic")
    p.add_argument("--partitions", type=int)
    p.add_argument("--replication-factor", type=int, default=-1)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--if-not-exists", action="store_true")
    p.add_argument("--if-exists", action="store_true")
    a = p.parse_args(argv)

    admin = AdminClient({"bootstrap.servers": a.bootstrap_server})

    def wait(futures: dict) -> int:
        rc = 0
        for name, f in futures.items():
            try:
                f.result(TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - report every error like the tool
                print(f"Error while executing topic command: {name}: {e}", file=sys.stderr)
                rc = 1
        return rc

    if a.create:
        configs = dict(c.split("=", 1) for c in a.config)
        topic = NewTopic(a.topic, num_partitions=a.partitions or -1,
                         replication_factor=a.replication_factor, config=configs)
        rc = wait(admin.create_topics([topic], operation_timeout=TIMEOUT_S))
        if rc == 0:
            print(f"Created topic {a.topic}.")
        return rc
    if a.alter:
        return wait(admin.create_partitions([NewPartitions(a.topic, a.partitions)]))
    if a.delete:
        return wait(admin.delete_topics([a.topic], operation_timeout=TIMEOUT_S))
    md = admin.list_topics(topic=a.topic if a.describe else None, timeout=TIMEOUT_S)
    for name in sorted(md.topics):
        t = md.topics[name]
        if a.list:
            print(name)
        else:
            print(f"Topic: {name}\tPartitionCount: {len(t.partitions)}")
            for pid, part in sorted(t.partitions.items()):
                print(f"\tTopic: {name}\tPartition: {pid}\tLeader: {part.leader}"
                      f"\tReplicas: {','.join(map(str, part.replicas))}"
                      f"\tIsr: {','.join(map(str, part.isrs))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
