"""Three gateways on one region form one cluster.

- Every gateway gives the same Metadata (brokers, cluster id, topic id,
  partition leaders spread over the gateways).
- A producer bootstrapped on gateway 0 and consumers bootstrapped on
  gateways 1 and 2 see the same records in the same order.
- Any gateway accepts a produce and serves a fetch for any partition
  (cxlkafka's rule; a Kafka broker would answer NOT_LEADER_OR_FOLLOWER).
- Gateway 0 (the lowest slot, so also the sequencer) is SIGKILLed while a
  producer and a consumer run: both finish on the other gateways and no
  acknowledged record is lost.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

import cxk_clients as cc
import cxk_wire as wire

pytestmark = pytest.mark.cluster

GATEWAYS = 3
PARTITIONS = 3
NEEDED = ("Metadata", "Produce", "Fetch", "ListOffsets")


def _require(gws):
    for g in gws:
        g.require(*NEEDED)


def _settled_topic(gws, topic, timeout=15.0) -> dict[str, wire.Metadata]:
    """Auto-creates `topic` through gateway 0, then waits until every
    gateway's Metadata shows it with no errors and all agree."""
    deadline = time.monotonic() + timeout
    gws[0].metadata([topic])
    while True:
        mds = {g.name: g.metadata([topic], allow_auto_create=False) for g in gws}
        views = {}
        for name, md in mds.items():
            t = md.topic(topic)
            ok = t is not None and t.error_code == 0 and all(p.error_code == 0 for p in t.partitions)
            views[name] = (ok, t and t.topic_id,
                           t and tuple(sorted((p.index, p.leader) for p in t.partitions)),
                           tuple(sorted((b.node_id, b.host, b.port) for b in md.brokers)), md.cluster_id)
        if all(v[0] for v in views.values()) and len({v[1:] for v in views.values()}) == 1:
            return mds
        assert time.monotonic() < deadline, f"gateways disagree on {topic!r} after {timeout}s: {views}"
        time.sleep(0.2)


def test_cluster_metadata_agrees_and_spreads_leaders(cluster, topic_name):
    gws = cluster(GATEWAYS, default_partitions=PARTITIONS)
    for g in gws:
        g.require("Metadata")
    mds = _settled_topic(gws, topic_name)
    md = mds[gws[0].name]
    assert sorted(b.port for b in md.brokers) == sorted(g.port for g in gws)
    assert sorted(b.node_id for b in md.brokers) == list(range(GATEWAYS)), \
        "node ids must be the --node-id of each gateway"
    t = md.topic(topic_name)
    assert t.topic_id is None or t.topic_id.int != 0
    leaders = [p.leader for p in t.partitions]
    assert len(set(leaders)) == min(PARTITIONS, GATEWAYS), \
        f"partition leaders not spread over the gateways: {leaders}"


def test_produce_on_gateway0_consume_on_gateways_1_and_2(cluster, topic_name):
    gws = cluster(GATEWAYS, default_partitions=PARTITIONS)
    _require(gws)
    _settled_topic(gws, topic_name)

    count = 3000
    msgs = cc.make_messages(count, PARTITIONS, seed=31)
    p, perrors = cc.producer(gws[0].bootstrap)
    tracker = cc.DeliveryTracker(count)
    cc.produce_all(p, topic_name, msgs, tracker)
    cc.flush(p, tracker, timeout=45)
    assert tracker.failures() == [], f"{tracker.failures()[:5]}; client errors {perrors[:5]}"

    seen = {}
    for g in gws[1:]:
        got = cc.consume_from_beginning(g.bootstrap, topic_name, PARTITIONS, count, timeout=45)
        cc.check_round_trip(msgs, tracker, got)
        seen[g.name] = {q: [(r.offset, r.content()) for r in recs] for q, recs in got.items()}
    a, b = seen.values()
    assert a == b, "gateways 1 and 2 served different records or orders"

    # Each gateway also serves every partition directly, whoever leads it.
    for g in gws:
        with g.connect() as c:
            v = g.api_versions.pick(wire.API_FETCH, 4, 6)
            assert v is not None, "Fetch v4..v6 not served"
            raw = wire.fetch_all(c, v, topic_name, list(range(PARTITIONS)), deadline_s=30)
        for q in range(PARTITIONS):
            assert [(r.offset, r.key, r.value) for r in raw[q]] == \
                [(off, content[0], content[1]) for off, content in a[q]], \
                f"gateway {g.name} partition {q} differs"


def test_any_gateway_accepts_and_serves_any_partition(cluster, topic_name):
    gws = cluster(GATEWAYS, default_partitions=PARTITIONS)
    _require(gws)
    _settled_topic(gws, topic_name)
    per_batch = 10
    expected = {q: [] for q in range(PARTITIONS)}
    for gi, g in enumerate(gws):
        pv = g.api_versions.pick(wire.API_PRODUCE, 3, 7)
        assert pv is not None, "Produce v3..v7 not served"
        batches, contents = {}, {}
        for q in range(PARTITIONS):
            recs = [(1_700_000_000_000 + gi * 100 + i, f"g{gi}-p{q}-{i}".encode(),
                     f"value from gateway {gi} partition {q} #{i}".encode(), [("gw", str(gi).encode())])
                    for i in range(per_batch)]
            batches[q] = wire.build_batch(recs)
            contents[q] = recs
        with g.connect() as c:
            res = wire.produce(c, pv, topic_name, batches, acks=-1)
        for q in range(PARTITIONS):
            assert res[q].error_code == 0, f"produce to {g.name} partition {q}: error {res[q].error_code}"
            assert res[q].base_offset == gi * per_batch, \
                f"produce to {g.name} partition {q}: base offset {res[q].base_offset}, expected {gi * per_batch}"
            expected[q] += [(gi * per_batch + i, k, v, ts) for i, (ts, k, v, _) in enumerate(contents[q])]
    for g in gws:
        fv = g.api_versions.pick(wire.API_FETCH, 4, 6)
        with g.connect() as c:
            raw = wire.fetch_all(c, fv, topic_name, list(range(PARTITIONS)), deadline_s=20)
        for q in range(PARTITIONS):
            assert [(r.offset, r.key, r.value, r.timestamp) for r in raw[q]] == expected[q], \
                f"fetch from {g.name} partition {q}"


@pytest.mark.timeout(180)
def test_gateway_killed_mid_run_loses_nothing_acknowledged(cluster, topic_name):
    gws = cluster(GATEWAYS, default_partitions=PARTITIONS)
    _require(gws)
    _settled_topic(gws, topic_name)
    all_brokers = ",".join(g.bootstrap for g in gws)
    fast_meta = {"topic.metadata.refresh.interval.ms": 1000, "reconnect.backoff.max.ms": 1000,
                 "retry.backoff.ms": 100}

    # A consumer reading live through the kill.
    live: dict[tuple[int, int], tuple] = {}
    stop = threading.Event()
    live_errors: list = []

    def consume_live():
        c, errs = cc.consumer(all_brokers, **fast_meta)
        try:
            c.assign([TopicPartition(topic_name, q, OFFSET_BEGINNING) for q in range(PARTITIONS)])
            while not stop.is_set():
                for m in c.consume(num_messages=500, timeout=0.3):
                    if m.error() is None:
                        live[(m.partition(), m.offset())] = (m.key(), m.value())
                    elif m.error().code() != KafkaError._PARTITION_EOF:
                        live_errors.append(m.error())
        except Exception as e:  # surfaced by the main thread
            live_errors.append(e)
        finally:
            live_errors.extend(e for e in errs if e.fatal())
            c.close()

    reader = threading.Thread(target=consume_live, daemon=True)
    reader.start()
    try:
        _kill_mid_run(gws, topic_name, all_brokers, fast_meta, live, live_errors)
    finally:
        stop.set()
        reader.join(timeout=10)


def _kill_mid_run(gws, topic_name, all_brokers, fast_meta, live, live_errors):
    count = 6000
    third = count // 3
    msgs = cc.make_messages(count, PARTITIONS, seed=57)
    p, perrors = cc.producer(all_brokers, **fast_meta, **{"message.timeout.ms": 90000})
    tracker = cc.DeliveryTracker(count)
    # First third acknowledged; then SIGKILL gateway 0 with the second third
    # in flight; then the rest.
    cc.produce_all(p, topic_name, msgs, tracker, 0, third)
    deadline = time.monotonic() + 30
    while len(tracker.acked()) < third and time.monotonic() < deadline:
        p.poll(0.1)
    assert len(tracker.acked()) == third, \
        f"before the kill: {len(tracker.acked())}/{third} acknowledged; {tracker.failures()[:3]}; {perrors[:3]}"
    cc.produce_all(p, topic_name, msgs, tracker, third, 2 * third)
    gws[0].kill()
    killed_at = time.monotonic()
    cc.produce_all(p, topic_name, msgs, tracker, 2 * third, count)
    cc.flush(p, tracker, timeout=100)
    acked = tracker.acked()
    assert tracker.failures() == [], \
        f"{len(tracker.failures())} deliveries failed after the kill, e.g. {tracker.failures()[:3]}"
    assert len(acked) == count

    # The survivors stop listing gateway 0 and lead all partitions themselves.
    survivors = gws[1:]
    deadline = killed_at + 30
    while True:
        views = {}
        for g in survivors:
            md = g.metadata([topic_name], allow_auto_create=False)
            t = md.topic(topic_name)
            views[g.name] = ({b.node_id for b in md.brokers},
                             t and sorted(pm.leader for pm in t.partitions))
        if all(0 not in brokers and leaders and 0 not in leaders for brokers, leaders in views.values()):
            break
        assert time.monotonic() < deadline, f"gateway 0 still in Metadata 30s after its death: {views}"
        time.sleep(0.3)

    # Fresh consumers on each survivor: everything acknowledged, identically.
    seen = {}
    for g in survivors:
        got = cc.consume_from_beginning(g.bootstrap, topic_name, PARTITIONS, count, timeout=45)
        cc.check_round_trip(msgs, tracker, got, allow_duplicates=True)
        seen[g.name] = {q: [(r.offset, r.content()) for r in recs] for q, recs in got.items()}
    a, b = seen.values()
    assert a == b, "the surviving gateways served different records or orders"

    # The live consumer rode through the kill and saw every acknowledged record.
    positions = set(acked.values())
    deadline = time.monotonic() + 30
    while not positions <= set(live) and time.monotonic() < deadline:
        time.sleep(0.2)
    missing = positions - set(live)
    assert not missing, f"live consumer missed {len(missing)} acknowledged records, e.g. " \
                        f"{sorted(missing)[:5]}; its errors {live_errors[:5]}"
    assert not [e for e in live_errors if not isinstance(e, KafkaError)], live_errors[:3]
    for i, pos in acked.items():
        assert live[pos] == (msgs[i].key, msgs[i].value), f"live consumer: message {i} differs at {pos}"
