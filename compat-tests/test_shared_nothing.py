"""Gateways that share nothing but the region (each its own data dir, as on
separate hosts), after the region recycled what was produced first: a
fourth gateway joins with an empty data dir, and one of the first three is
SIGKILLed and restarted with its data dir wiped.

- With peer copies (the default), both copy what left the region from a
  gateway that holds everything before they join: then all four lead
  partitions, and each one answers a fetch of every acknowledged record
  itself, byte for byte.
- With `--peer-listen off` (no gateway serves copies), Metadata sends
  clients only to gateways that hold every entry (the two untouched ones),
  and a gateway that lacks older data answers a fetch with
  NOT_LEADER_OR_FOLLOWER (never an empty read) and says what it lacks in
  `cxlkafka_replica_holds_from_sequence`.
- Either way, a consumer bootstrapped on any of the four gateways reads back
  every acknowledged record, and every committed offset.

A gateway SIGSTOPped while the region recycles what is produced copies what
it missed from a holder as soon as it resumes, without a restart.
"""

from __future__ import annotations

import re
import shutil
import signal
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


class _Scenario:
    """Three gateways, records and committed offsets, a region recycled
    past them, a late fourth gateway and an emptied second one."""

    def __init__(self, pool, topic: str, **flags):
        flags = {**FLAGS, **flags}
        gws = pool.cluster(3, **flags)
        region = (gws[0].region_path, gws[0].cluster_name)
        bootstrap = ",".join(g.bootstrap for g in gws)

        self.topic = topic
        self.msgs = cc.make_messages(RECORDS, PARTITIONS, seed=91)
        p, perrors = cc.producer(bootstrap, **{"message.timeout.ms": 60000})
        self.tracker = cc.DeliveryTracker(RECORDS)
        cc.produce_all(p, topic, self.msgs, self.tracker)
        cc.flush(p, self.tracker, timeout=90)
        assert self.tracker.failures() == [], (self.tracker.failures()[:3], perrors[:3])

        self.group = f"{topic}-readers"
        self.committed = {q: 10 + 7 * q for q in range(PARTITIONS)}
        c, _ = cc.consumer(bootstrap, **{"group.id": self.group})
        c.commit(offsets=[TopicPartition(topic, q, o) for q, o in self.committed.items()],
                 asynchronous=False)
        c.close()

        _fill(bootstrap, f"{topic}-filler", 64)

        self.late = pool.start(region=region, node_id=3, **flags)
        self.emptied = gws[1]
        self.emptied.kill()
        shutil.rmtree(self.emptied.data_dir)
        self.emptied.data_dir.mkdir()
        self.emptied.start()
        pool.wait_ready(self.emptied)
        _wait_listed(gws[0], {0, 1, 2, 3})
        self.complete = [gws[0], gws[2]]
        self.everyone = [gws[0], self.emptied, gws[2], self.late]

    def wait_leaders_among(self, nodes: set[int]) -> None:
        for gw in self.everyone:
            deadline = time.monotonic() + 20
            while set(_leaders(gw, self.topic)) - nodes:
                assert time.monotonic() < deadline, \
                    f"{gw.name} sends clients to a gateway outside {nodes}: {_leaders(gw, self.topic)}"
                time.sleep(0.3)

    def assert_read_back_through_everyone(self) -> None:
        for gw in self.everyone:
            got = cc.consume_from_beginning(gw.bootstrap, self.topic, PARTITIONS, RECORDS,
                                            timeout=60)
            cc.check_round_trip(self.msgs, self.tracker, got)
            c, _ = cc.consumer(gw.bootstrap, **{"group.id": self.group})
            try:
                back = c.committed([TopicPartition(self.topic, q) for q in range(PARTITIONS)],
                                   timeout=20)
            finally:
                c.close()
            assert {tp.partition: tp.offset for tp in back} == self.committed, f"via {gw.name}"

    def assert_served_directly(self, gw) -> None:
        """A fetch straight to `gw` (not through Metadata) answers every
        acknowledged record from offset 0 itself."""
        with gw.connect() as conn:
            got = wire.fetch_all(conn, 4, self.topic, list(range(PARTITIONS)), 60)
        at = {(p, rec.offset): rec for p, recs in got.items() for rec in recs}
        for i, (p, off) in self.tracker.acked().items():
            rec = at.get((p, off))
            assert rec is not None, f"{gw.name}: acknowledged message {i} missing at {p}/{off}"
            assert (rec.key, rec.value) == (self.msgs[i].key, self.msgs[i].value), \
                f"{gw.name}: message {i} differs at {p}/{off}"


def test_late_and_emptied_gateways_copy_from_a_holder_and_serve_everything(
        _gateway_pool, topic_name):
    scenario = _Scenario(_gateway_pool, topic_name)
    scenario.wait_leaders_among({0, 1, 2, 3})
    leaders = set(_leaders(scenario.complete[0], topic_name))
    assert leaders & {1, 3}, f"the copying gateways lead no partition: {leaders}"
    reference = _metric(scenario.complete[0], "cxlkafka_replica_holds_from_sequence")
    for copier in (scenario.late, scenario.emptied):
        assert _metric(copier, "cxlkafka_peer_copy_entries_total") > 0, copier.name
        assert _metric(copier, "cxlkafka_replica_holds_from_sequence") == reference, copier.name
    for gw in scenario.everyone:
        scenario.assert_served_directly(gw)
    scenario.assert_read_back_through_everyone()


def test_without_peer_copies_clients_go_only_to_complete_gateways(
        _gateway_pool, topic_name):
    scenario = _Scenario(_gateway_pool, topic_name, peer_listen="off")
    scenario.wait_leaders_among({0, 2})
    scenario.assert_read_back_through_everyone()
    for lacking in (scenario.late, scenario.emptied):
        assert _metric(lacking, "cxlkafka_replica_holds_from_sequence") > \
            _metric(scenario.complete[0], "cxlkafka_replica_holds_from_sequence"), lacking.name
        _assert_fetch_refused(lacking, topic_name)


def test_a_paused_gateway_fills_its_gap_from_a_holder_while_it_runs(
        _gateway_pool, topic_name):
    """A gateway SIGSTOPped past its lease while records are produced and
    the region recycles them finds them gone when it resumes, and copies
    them from a holder into its running chain: no entry missed, its copy
    still complete, and it serves every one of them itself."""
    gws = _gateway_pool.cluster(3, **FLAGS)
    paused = gws[1]
    others = ",".join(g.bootstrap for g in (gws[0], gws[2]))
    reference = _metric(gws[0], "cxlkafka_replica_holds_from_sequence")
    paused.signal(signal.SIGSTOP)
    try:
        _wait_listed(gws[0], {0, 2})
        msgs = cc.make_messages(RECORDS, PARTITIONS, seed=93)
        p, perrors = cc.producer(others, **{"message.timeout.ms": 60000})
        tracker = cc.DeliveryTracker(RECORDS)
        cc.produce_all(p, topic_name, msgs, tracker)
        cc.flush(p, tracker, timeout=90)
        assert tracker.failures() == [], (tracker.failures()[:3], perrors[:3])
        _fill(others, f"{topic_name}-filler", 64)
    finally:
        paused.signal(signal.SIGCONT)
    _wait_listed(gws[0], {0, 1, 2})
    deadline = time.monotonic() + 60
    while _metric(paused, "cxlkafka_replica_durable_lag_entries") > 0 or \
            _metric(paused, "cxlkafka_peer_copy_entries_total") == 0:
        assert time.monotonic() < deadline, "the resumed gateway never caught up"
        time.sleep(0.3)
    assert _metric(paused, "cxlkafka_replica_missed_entries_total") == 0
    assert _metric(paused, "cxlkafka_replica_holds_from_sequence") == reference
    assert _metric(gws[0], "cxlkafka_peer_served_entries_total") + \
        _metric(gws[2], "cxlkafka_peer_served_entries_total") > 0
    with paused.connect() as conn:
        got = wire.fetch_all(conn, 4, topic_name, list(range(PARTITIONS)), 60)
    at = {(q, rec.offset): rec for q, recs in got.items() for rec in recs}
    for i, (q, off) in tracker.acked().items():
        rec = at.get((q, off))
        assert rec is not None, f"acknowledged message {i} missing at {q}/{off}"
        assert (rec.key, rec.value) == (msgs[i].key, msgs[i].value), f"message {i} at {q}/{off}"


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
