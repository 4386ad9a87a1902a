"""Consumer groups with real clients: confluent-kafka (librdkafka 2.16)
groups of three on a six-partition topic under steady production, one
member killed; the time from the first JoinGroup to a stable assignment;
kafka-python groups; kcat -G; a kafkajs group of two under production; the
consumer lag gauge; committed offsets across a restart of every gateway; the
coordinator moving when its gateway is SIGKILLed; both group protocols
advertised."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import cxk_wire as wire

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
        # The figure is printed, not asserted: the machines are shared and
        # noisy. wait_for's bound above is only a liveness limit.
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
    # DescribeGroups shows the member's host as Kafka does: the
    # connection's address after a slash.
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(timeout=20)
    assert [m.host for m in described.members] == [f"/{gw.host}"], described.members
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
    # A partition the sticky partitioner left empty has no commit (-1001).
    assert sum(max(tp.offset, 0) for tp in committed) == 90, committed


# ------------------------------------------------------------------ kafkajs


def test_kafkajs_group_of_two_under_production(start_gateway, topic_name):
    """kafkajs 2.2.4 (compat-tests/kafkajs_group.js): two consumers of one
    group on a 4-partition topic while a kafkajs producer sends 2,000 keyed
    messages. Every message is consumed, the partitions end up split between
    the two members, and the commits kafkajs made are what OffsetFetch
    (confluent-kafka's committed()) returns: each partition's high watermark."""
    node = shutil.which("node")
    assert node, "node is not installed (compat-tests/run installs it)"
    assert (HERE / "node_modules" / "kafkajs").is_dir(), \
        "kafkajs is not installed: run compat-tests/run (npm ci)"
    gw = start_gateway(default_partitions=4, group_initial_rebalance_delay_ms=500)
    gw.require(*GROUP_APIS)
    gw.metadata([topic_name])  # auto-creates it with 4 partitions
    group = f"kjs-{uuid.uuid4().hex[:8]}"
    count = 2000
    run = subprocess.run([node, str(HERE / "kafkajs_group.js"), gw.bootstrap, topic_name, group,
                          str(count), "60"],
                         capture_output=True, timeout=80, cwd=HERE,
                         env=dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1"))
    out = run.stdout.decode().strip().splitlines()
    assert out, f"kafkajs_group.js printed nothing; stderr:\n{run.stderr.decode()[-3000:]}"
    result = json.loads(out[-1])
    print(f"\nkafkajs: {result}")
    assert run.returncode == 0 and result["ok"], \
        f"kafkajs group did not finish: {result}\nstderr:\n{run.stderr.decode()[-3000:]}"
    assert result["distinct"] == count and result["missing"] == [], result
    a, b = result["assignments"]
    assert a and b and not set(a) & set(b) and sorted(a + b) == [0, 1, 2, 3], \
        f"partitions not split between the two members: {a} / {b}"
    assert all(n > 0 for n in result["consumed"]), f"a member consumed nothing: {result['consumed']}"
    high = {int(p): hw for p, hw in result["high"].items()}
    assert sum(high.values()) == count, high
    assert {int(p): o for p, o in result["committed"].items() if high[int(p)]} == \
        {p: hw for p, hw in high.items() if hw}, "kafkajs' own commit events"
    # What the gateway answers to OffsetFetch from another client.
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group})
    committed = c.committed([TopicPartition(topic_name, p) for p in range(4)], timeout=10)
    c.close()
    assert {tp.partition: tp.offset for tp in committed if high[tp.partition]} == \
        {p: hw for p, hw in high.items() if hw}, committed


# ------------------------------------------------------------------ lag gauge


def scrape(gw) -> str:
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def lag_samples(text: str, group: str) -> dict[tuple[str, int], float]:
    """(topic, partition) -> value of cxlkafka_consumer_group_lag for `group`,
    whatever the order of the labels."""
    out = {}
    for m in re.finditer(r"^cxlkafka_consumer_group_lag\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if labels.get("group") == group:
            out[(labels["topic"], int(labels["partition"]))] = float(m.group(2))
    return out


def wait_for_lag(gw, group: str, want: dict[tuple[str, int], float], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        seen = lag_samples(scrape(gw), group)
        if all(seen.get(k) == v for k, v in want.items()):
            return
        assert time.monotonic() < deadline, \
            f"cxlkafka_consumer_group_lag for group {group}: want {want}, scraped {seen}"
        time.sleep(0.2)


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """A simple (generation -1) OffsetCommit of exactly these offsets."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                 asynchronous=False)
    finally:
        c.close()


def test_consumer_lag_gauge_per_group_topic_and_partition(start_gateway, topic_name):
    """docs/metrics.md: cxlkafka_consumer_group_lag{group, topic, partition}
    is the high watermark minus the committed offset. Produce 50 to
    partition 0 and 20 to partition 1, commit 30 and 20: lag 20 and 0;
    commit 50: 0; produce 7 more: 7. Another group's commits stay apart;
    once that group is deleted (DeleteGroups) its lag series reads 0."""
    gw = start_gateway(default_partitions=2, group_initial_rebalance_delay_ms=0)
    gw.require(*GROUP_APIS)
    p = Producer({"bootstrap.servers": gw.bootstrap, "acks": "all"})
    for i in range(50):
        p.produce(topic_name, f"a{i}".encode(), partition=0)
    for i in range(20):
        p.produce(topic_name, f"b{i}".encode(), partition=1)
    assert p.flush(15) == 0
    group, other = f"lag-{uuid.uuid4().hex[:8]}", f"lag-other-{uuid.uuid4().hex[:8]}"
    commit(gw.bootstrap, group, {(topic_name, 0): 30, (topic_name, 1): 20})
    commit(gw.bootstrap, other, {(topic_name, 0): 5})
    wait_for_lag(gw, group, {(topic_name, 0): 20.0, (topic_name, 1): 0.0})
    wait_for_lag(gw, other, {(topic_name, 0): 45.0})
    assert set(lag_samples(scrape(gw), other)) == {(topic_name, 0)}, "uncommitted partitions have no series"
    commit(gw.bootstrap, group, {(topic_name, 0): 50})
    wait_for_lag(gw, group, {(topic_name, 0): 0.0, (topic_name, 1): 0.0})
    for i in range(7):
        p.produce(topic_name, f"c{i}".encode(), partition=0)
    assert p.flush(15) == 0
    wait_for_lag(gw, group, {(topic_name, 0): 7.0, (topic_name, 1): 0.0})
    wait_for_lag(gw, other, {(topic_name, 0): 52.0})
    # A deleted group's offsets are gone: its series must not keep the last
    # value (the gauge cannot be unregistered, so it drops to 0).
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    for fut in admin.delete_consumer_groups([other], request_timeout=10).values():
        fut.result(timeout=15)
    wait_for_lag(gw, other, {(topic_name, 0): 0.0})
    wait_for_lag(gw, group, {(topic_name, 0): 7.0, (topic_name, 1): 0.0})


# ------------------------------------------------- restart every gateway


def stop_gracefully(gw) -> int:
    """SIGTERM and wait for the exit; returns the exit code."""
    gw.signal(signal.SIGTERM)
    rc = gw.proc.wait(timeout=30)
    if gw._log_file:
        gw._log_file.close()
        gw._log_file = None
    return rc


def restart_all(pool, gws) -> None:
    """SIGTERM every gateway, wait for every exit, then start each again with
    the same flags (same region, node id, port and --data-dir)."""
    codes = {g.name: stop_gracefully(g) for g in gws}
    assert all(rc == 0 for rc in codes.values()), f"exit codes after SIGTERM: {codes}"
    for g in gws:
        g.start()
    for g in gws:
        pool.wait_ready(g)
    ports = {g.port for g in gws}
    deadline = time.monotonic() + 20
    while True:
        views = {g.name: {b.port for b in g.metadata([], allow_auto_create=False).brokers}
                 for g in gws}
        if all(v == ports for v in views.values()):
            return
        assert time.monotonic() < deadline, \
            f"restarted gateways did not form the cluster again: ports {ports}, Metadata {views}"
        time.sleep(0.2)


def raw_fill(gws, topic: str, bytes_per_gateway: int) -> None:
    """Raw Produce of `bytes_per_gateway` to each gateway (256 KiB batches),
    so that every gateway's own arena takes that much."""
    value = b"f" * 4096
    batch = wire.build_batch([(1_700_000_000_000 + i, None, value, []) for i in range(64)])
    for g in gws:
        pv = g.api_versions.pick(wire.API_PRODUCE, 3, 7)
        with g.connect(timeout=30) as c:
            for _ in range(bytes_per_gateway // len(batch) + 1):
                res = wire.produce(c, pv, topic, {0: batch}, acks=-1)
                assert res[0].error_code == 0, f"filler produce to {g.name}: error {res[0].error_code}"


RESTART_PARTITIONS = 3
RESTART_COUNT = 300
RESTART_AT = {0: 37, 1: 50, 2: 71}  # the committed position per partition


def _restart_and_resume(pool, cluster, topic_name, wrap: bool) -> None:
    flags = {"default_partitions": RESTART_PARTITIONS, "group_initial_rebalance_delay_ms": 0}
    if wrap:
        flags.update(region_size="48MiB", max_gateways=2)
    gws = cluster(2, **flags)
    for g in gws:
        g.require(*GROUP_APIS, "Produce", "Fetch")
    bootstrap = ",".join(g.bootstrap for g in gws)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(RESTART_COUNT):
        p.produce(topic_name, f"m{i}".encode(), partition=i % RESTART_PARTITIONS)
    assert p.flush(20) == 0

    def value_at(partition: int, offset: int) -> bytes:
        return f"m{offset * RESTART_PARTITIONS + partition}".encode()

    group = f"restart-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "session.timeout.ms": 6000}
    # A group member reads past the positions, then commits exactly them.
    c = Consumer(conf)
    c.subscribe([topic_name])
    seen: dict[int, int] = {}
    deadline = time.monotonic() + 30
    while not all(seen.get(q, -1) >= RESTART_AT[q] for q in RESTART_AT):
        assert time.monotonic() < deadline, f"group consumer read only up to {seen}"
        for m in c.consume(100, 0.5):
            if m.error() is None:
                assert m.value() == value_at(m.partition(), m.offset())
                seen[m.partition()] = max(seen.get(m.partition(), -1), m.offset())
    c.commit(offsets=[TopicPartition(topic_name, q, o) for q, o in RESTART_AT.items()],
             asynchronous=False)
    before = {tp.partition: tp.offset for tp in
              c.committed([TopicPartition(topic_name, q) for q in RESTART_AT], timeout=10)}
    c.close()
    assert before == RESTART_AT

    if wrap:
        # Three arenas' worth through every gateway after the commit: the
        # region recycles the bytes of the commit and of the records.
        arena = max(int(float(m.group(1))) for g in gws
                    for m in [re.search(r"^cxlkafka_arena_size_bytes (\S+)$", scrape(g), re.M)] if m)
        filler = f"{topic_name}-filler"
        gws[0].metadata([filler])
        raw_fill(gws, filler, 3 * arena)

    restart_all(pool, gws)

    # OffsetFetch after the restart, through each gateway.
    for g in gws:
        check = Consumer({"bootstrap.servers": g.bootstrap, "group.id": group})
        after = {tp.partition: tp.offset for tp in
                 check.committed([TopicPartition(topic_name, q) for q in RESTART_AT], timeout=15)}
        check.close()
        assert after == RESTART_AT, f"committed offsets via {g.name} after the restart: {after}"
    # A new member of the group resumes exactly there and reads the rest.
    c2 = Consumer(conf)
    c2.subscribe([topic_name])
    per_partition = RESTART_COUNT // RESTART_PARTITIONS
    want = sum(per_partition - o for o in RESTART_AT.values())
    got: dict[int, list[int]] = {q: [] for q in RESTART_AT}
    deadline = time.monotonic() + 45
    try:
        while sum(map(len, got.values())) < want:
            assert time.monotonic() < deadline, \
                f"after the restart the group read {{p: first offsets}} " \
                f"{ {q: o[:3] for q, o in got.items()} }, {sum(map(len, got.values()))}/{want}"
            for m in c2.consume(100, 0.5):
                if m.error() is None:
                    assert m.value() == value_at(m.partition(), m.offset())
                    got[m.partition()].append(m.offset())
    finally:
        c2.close()
    for q, offsets in got.items():
        assert offsets == list(range(RESTART_AT[q], per_partition)), \
            f"partition {q}: resumed at {offsets[:1]}, committed {RESTART_AT[q]}"


@pytest.mark.cluster
@pytest.mark.timeout(150)
def test_commit_restart_every_gateway_resume_at_committed_offsets(_gateway_pool, cluster, topic_name):
    """Two gateways on one region; a group commits known positions; both
    gateways get SIGTERM and exit 0; both start again on the same region with
    the same --data-dir; OffsetFetch through each returns the same offsets and
    a new member of the group resumes exactly there."""
    _restart_and_resume(_gateway_pool, cluster, topic_name, wrap=False)


@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_commit_wrap_the_region_restart_every_gateway_resume(_gateway_pool, cluster, topic_name):
    """As above on a 48 MiB region (2 gateway slots, ~3.7 MiB arenas), with
    three arenas' worth of traffic through every gateway after the commit:
    the region alone no longer holds the commit (nor the records), so after
    the restart the offsets must come back from the gateways' disk tier
    (without one, and without a holder to copy it from, the gateway logs
    "offset commits left the region before this gateway applied them" and
    OffsetFetch answers -1001)."""
    _restart_and_resume(_gateway_pool, cluster, topic_name, wrap=True)


# ------------------------------------------------- coordinator failover


def fnv1a(key: str) -> int:
    h = 0xcbf29ce484222325
    for b in key.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def group_coordinated_by(node: int, live: list[int], prefix: str) -> str:
    """A fresh group id whose coordinator is `node` (gateway/src/groups:
    live[fnv1a(group) % len(live)], lowest slot first)."""
    while True:
        group = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if sorted(live)[fnv1a(group) % len(live)] == node:
            return group


@pytest.mark.cluster
@pytest.mark.timeout(150)
@pytest.mark.parametrize("victim", [1, 0], ids=["coordinator", "coordinator-and-sequencer"])
def test_coordinator_sigkilled_group_moves_and_keeps_its_offsets(cluster, topic_name, tmp_path, victim):
    """Two gateways; a group of two confluent-kafka members (group_worker.py,
    auto-commit) coordinated by gateway `victim` reads 400 messages and
    commits them; `victim` is SIGKILLed; the members find the other gateway
    as coordinator, rejoin there (a new assignment after the kill covering
    every partition), OffsetFetch still returns 100 per partition, and the
    200 messages produced after the kill are read once, nothing before them
    again. victim 0 also holds the sequencer lease."""
    partitions = 4
    gws = cluster(2, default_partitions=partitions, group_initial_rebalance_delay_ms=0)
    for g in gws:
        g.require(*GROUP_APIS)
    survivor = gws[1 - victim]
    group = group_coordinated_by(victim, [0, 1], "move")
    bootstrap = ",".join(g.bootstrap for g in gws)
    gws[0].metadata([topic_name])
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(400):
        p.produce(topic_name, f"v{i}".encode(), partition=i % partitions)
    assert p.flush(20) == 0
    outs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [subprocess.Popen([sys.executable, str(HERE / "group_worker.py"), bootstrap,
                                 topic_name, group, str(out)]) for out in outs]
    try:
        wait_for(lambda: sorted(q for o in outs for q in current(o)) == list(range(partitions))
                 and all(current(o) for o in outs), 40, "two members sharing the partitions")

        def committed_via(g) -> dict[int, int]:
            c = Consumer({"bootstrap.servers": g.bootstrap, "group.id": group})
            try:
                return {tp.partition: tp.offset for tp in
                        c.committed([TopicPartition(topic_name, q) for q in range(partitions)],
                                    timeout=10)}
            finally:
                c.close()

        wait_for(lambda: committed_via(survivor) == {q: 100 for q in range(partitions)}, 40,
                 "every message consumed and committed")
        gws[victim].kill()
        killed_at = time.monotonic()

        def rejoined() -> bool:
            assigns = [read_events(o)[0] for o in outs]
            return all(any(t > killed_at and owned for t, owned in a) for a in assigns) \
                and sorted(q for o in outs for q in current(o)) == list(range(partitions))
        wait_for(rejoined, SESSION_TIMEOUT_S + 30, "both members rejoined through the survivor")
        assert committed_via(survivor) == {q: 100 for q in range(partitions)}, \
            "committed offsets after the coordinator moved"
        p2 = Producer({"bootstrap.servers": survivor.bootstrap, "acks": "all"})
        for i in range(400, 600):
            p2.produce(topic_name, f"v{i}".encode(), partition=i % partitions)
        assert p2.flush(20) == 0
        wait_for(lambda: {v for o in outs for _, _, v in read_events(o)[1]}
                 >= {f"v{i}" for i in range(600)}, 40, "the messages produced after the kill")
        wait_for(lambda: committed_via(survivor) == {q: 150 for q in range(partitions)}, 40,
                 "the new messages committed through the new coordinator")
        msgs = [m for o in outs for m in read_events(o)[1]]
        per_position: dict[tuple[int, int], int] = {}
        for q, off, _ in msgs:
            per_position[(q, off)] = per_position.get((q, off), 0) + 1
        again = sorted(k for k, n in per_position.items() if n > 1)
        assert again == [], f"read twice after the coordinator moved: {again[:10]}"
        assert sorted(per_position) == [(q, o) for q in range(partitions) for o in range(150)]
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
                w.wait(10)


# ------------------------------------------- both group protocols advertised


CONSUMER_GROUP_HEARTBEAT = 68  # KIP-848
CONSUMER_GROUP_DESCRIBE = 69


def test_both_group_protocols_are_advertised(gateway):
    """ApiVersions (v0 and v3) lists the classic group APIs and KIP-848's
    ConsumerGroupHeartbeat and ConsumerGroupDescribe (v0-1), so clients may
    pick either group.protocol (test_consumer_protocol.py runs the other)."""
    with gateway.connect() as c:
        for v in (0, 3):
            av = wire.api_versions(c, v)
            assert av.error_code == 0
            assert av.apis.get(CONSUMER_GROUP_HEARTBEAT) == (0, 1), f"ApiVersions v{v}: {av.apis.get(CONSUMER_GROUP_HEARTBEAT)}"
            assert av.apis.get(CONSUMER_GROUP_DESCRIBE) == (0, 1), f"ApiVersions v{v}: {av.apis.get(CONSUMER_GROUP_DESCRIBE)}"
            assert all(wire.API_KEYS[a] in av.apis for a in GROUP_APIS), "classic group APIs advertised"
