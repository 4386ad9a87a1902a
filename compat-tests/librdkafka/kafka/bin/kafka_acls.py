"""The subset of kafka-acls.sh that librdkafka's tests use, over the Admin API.

    kafka-acls.sh --bootstrap-server B --add|--remove [--force]
                  [--allow-principal P ...] [--deny-principal P ...]
                  [--allow-host H ...] [--deny-host H ...]
                  --operation OP [--operation OP ...]
                  (--topic T | --group G | --cluster) [--resource-pattern-type literal|prefixed]
    kafka-acls.sh --bootstrap-server B --list [--topic T | --group G | --cluster]

As the tool does, --add creates one binding per principal, host and
operation (hosts default to '*'); --remove deletes the bindings that match
exactly (--force: without asking, the only way here). Exits 0 on success and
1 with the error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import sys

from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation,
                                   AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType)

TIMEOUT_S = 30
CLUSTER_NAME = "kafka-cluster"


def operation(name: str) -> AclOperation:
    """Kafka's operation names as the tool takes them (All, Read, Describe,
    DescribeConfigs, ...), case-insensitive and without separators."""
    wanted = name.replace("_", "").replace("-", "").lower()
    for op in AclOperation:
        if op.name.replace("_", "").lower() == wanted:
            return op
    raise SystemExit(f"kafka-acls.sh: unknown operation {name!r}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kafka-acls.sh")
    p.add_argument("--bootstrap-server", required=True)
    action = p.add_mutually_exclusive_group(required=True)
    for a in ("add", "remove", "list"):
        action.add_argument(f"--{a}", action="store_true")
    p.add_argument("--force", action="store_true")
    for kind in ("allow", "deny"):
        p.add_argument(f"--{kind}-principal", action="append", default=[])
        p.add_argument(f"--{kind}-host", action="append", default=[])
    p.add_argument("--operation", action="append", default=[])
    resource = p.add_mutually_exclusive_group()
    resource.add_argument("--topic")
    resource.add_argument("--group")
    resource.add_argument("--cluster", action="store_true")
    p.add_argument("--resource-pattern-type", default="literal",
                   choices=["literal", "prefixed"])
    a = p.parse_args(argv)

    if a.topic is not None:
        kind, name = ResourceType.TOPIC, a.topic
    elif a.group is not None:
        kind, name = ResourceType.GROUP, a.group
    elif a.cluster:
        kind, name = ResourceType.BROKER, CLUSTER_NAME
    else:
        kind, name = None, None
    pattern = ResourcePatternType[a.resource_pattern_type.upper()]
    admin = AdminClient({"bootstrap.servers": a.bootstrap_server})

    if a.list:
        flt = AclBindingFilter(kind or ResourceType.ANY, name, pattern if kind else
                               ResourcePatternType.ANY, None, None, AclOperation.ANY,
                               AclPermissionType.ANY)
        for b in admin.describe_acls(flt, request_timeout=TIMEOUT_S).result(TIMEOUT_S):
            print(b)
        return 0

    if kind is None:
        print("kafka-acls.sh: one of --topic, --group or --cluster is needed", file=sys.stderr)
        return 1
    if a.remove and not a.force:
        print("kafka-acls.sh: --remove asks for confirmation; pass --force", file=sys.stderr)
        return 1
    operations = [operation(o) for o in a.operation] or [AclOperation.ALL]
    entries = []
    for permission, principals, hosts in (
            (AclPermissionType.ALLOW, a.allow_principal, a.allow_host),
            (AclPermissionType.DENY, a.deny_principal, a.deny_host)):
        for principal, host, op in itertools.product(principals, hosts or ["*"], operations):
            entries.append((principal, host, op, permission))
    if not entries:
        print("kafka-acls.sh: no --allow-principal or --deny-principal", file=sys.stderr)
        return 1

    rc = 0
    if a.add:
        bindings = [AclBinding(kind, name, pattern, principal, host, op, permission)
                    for principal, host, op, permission in entries]
        futures = admin.create_acls(bindings, request_timeout=TIMEOUT_S)
    else:
        filters = [AclBindingFilter(kind, name, pattern, principal, host, op, permission)
                   for principal, host, op, permission in entries]
        futures = admin.delete_acls(filters, request_timeout=TIMEOUT_S)
    for binding, future in futures.items():
        try:
            future.result(TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - report every error like the tool
            print(f"Error while executing ACL command: {binding}: {e}", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
