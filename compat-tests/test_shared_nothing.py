"""Gateways that share nothing but the region (each its own data dir, as on
separate hosts), after the region recycled what was produced first:

- a fourth gateway joins with an empty data dir, and one of the first three
  is SIGKILLed and restarted with its data dir wiped;
- Metadata sends clients only to gateways that hold every entry (the two
  untouched ones): no partition is led by a gateway that lacks older data;
- a consumer bootstrapped on any of the four gateways reads back every
  acknowledged record, and every committed offset, byte for byte;
- a gateway that lacks older data answers a fetch with
  NOT_LEADER_OR_FOLLOWER (never an empty read), and says what it lacks in
  `cxlkafka_replica_holds_from_sequence`.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request

import pytest
from confluent_kafka import TopicPartition

import cxk_clients as cc
import cxk_wire as wire

pytestmark = pytest.mark.cluster

PARTITIONS = 4
RECORDS = 4000
# A small region, so a few tens of MB recycle its arenas and order log.
FLAGS = {"region_size": "64MiB", "max_gateways": 4, "default_partitions": PARTITIONS,
         "lease_timeout_ms": 1500}


def _metric(gw, name: str) -> float:
    text = urllib.request.urlopen(gw.metrics_url, timeout=5).read().decode()
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not exported by {gw.name}"
    return float(match.group(1))


def _leaders(gw, topic: str) -> list[int]:
    t = gw.metadata([topic], allow_auto_create=False).topic(topic)
    assert t is not None and t.error_code == 0, t
    return sorted(p.leader for p in t.partitions)


def _fill(bootstrap: str, topic: str, megabytes: int) -> None:
    """Produces `megabytes` MiB of filler, acks=all, so the region recycles."""
    p, errors = cc.producer(bootstrap)
    value = b"f" * 16384
    done = {"acked": 0}

    def acked(err, _msg):
        assert err is None, err
        done["acked"] += 1

    count = megabytes * 64
    for _ in range(count):
        while True:
            try:
                p.produce(topic, value=value, on_delivery=acked)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(120)
    assert done["acked"] == count, (done, errors[:3])


def test_late_and_emptied_gateways_send_clients_to_complete_copies(cluster, start_gateway, topic_name):
    gws = cluster(3, **FLAGS)
    region = (gws[0].region_path, gws[0].cluster_name)
    bootstrap = ",".join(g.bootstrap for g in gws)

    msgs = cc.make_messages(RECORDS, PARTITIONS, seed=91)
    p, perrors = cc.producer(bootstrap, **{"message.timeout.ms": 60000})
    tracker = cc.DeliveryTracker(RECORDS)
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=90)
    assert tracker.failures() == [], (tracker.failures()[:3], perrors[:3])

    group = f"{topic_name}-readers"
    committed = {q: 10 + 7 * q for q in range(PARTITIONS)}
    c, _ = cc.consumer(bootstrap, **{"group.id": group})
    c.commit(offsets=[TopicPartition(topic_name, q, o) for q, o in committed.items()],
             asynchronous=False)
    c.close()

    _fill(bootstrap, f"{topic_name}-filler", 64)

    late = start_gateway(region=region, node_id=3, **FLAGS)
    emptied = gws[1]
    emptied.kill()
    shutil.rmtree(emptied.data_dir)
    emptied.data_dir.mkdir()
    emptied.start()
    _wait_listed(gws[0], {0, 1, 2, 3})
    everyone = [gws[0], emptied, gws[2], late]

    complete = {0, 2}
    for gw in everyone:
        deadline = time.monotonic() + 20
        while set(_leaders(gw, topic_name)) - complete:
            assert time.monotonic() < deadline, \
                f"{gw.name} still sends clients to a gateway that lacks data: {_leaders(gw, topic_name)}"
            time.sleep(0.3)

    for gw in everyone:
        got = cc.consume_from_beginning(gw.bootstrap, topic_name, PARTITIONS, RECORDS, timeout=60)
        cc.check_round_trip(msgs, tracker, got)
        c, _ = cc.consumer(gw.bootstrap, **{"group.id": group})
        try:
            back = c.committed([TopicPartition(topic_name, q) for q in range(PARTITIONS)], timeout=20)
        finally:
            c.close()
        assert {tp.partition: tp.offset for tp in back} == committed, f"via {gw.name}"

    for lacking in (late, emptied):
        assert _metric(lacking, "cxlkafka_replica_holds_from_sequence") > \
            _metric(gws[0], "cxlkafka_replica_holds_from_sequence"), lacking.name
        _assert_fetch_refused(lacking, topic_name)


def _wait_listed(gw, nodes: set[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while {b.node_id for b in gw.metadata([], allow_auto_create=False).brokers} != nodes:
        assert time.monotonic() < deadline, f"Metadata never listed {nodes}"
        time.sleep(0.3)


def _assert_fetch_refused(gw, topic: str) -> None:
    """A fetch straight to a gateway that lacks older entries is refused
    with NOT_LEADER_OR_FOLLOWER (6), so the client asks Metadata again."""
    with gw.connect() as conn:
        answer = wire.fetch(conn, 4, topic, {0: 0})[0]
    assert answer.error_code == 6, f"{gw.name} answered {answer}"
