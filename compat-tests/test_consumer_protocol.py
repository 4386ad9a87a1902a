"""The KIP-848 consumer group protocol (group.protocol=consumer) with
confluent-kafka (librdkafka 2.16): three members join and leave a
12-partition topic under steady production, and every record is consumed
exactly once; partitions move incrementally (a member only gives up what
goes to another); the admin client lists and describes the group as a
consumer group; a classic group is upgraded when a consumer-protocol member
joins and downgraded when it leaves; a commit from outside a live consumer
group is refused."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


PARTITIONS = 12
# A member moves a partition within about two heartbeats.
HEARTBEAT_MS = 300
FLAGS = {"group_consumer_heartbeat_interval_ms": HEARTBEAT_MS, "default_partitions": PARTITIONS}


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)


class SteadyProducer(threading.Thread):
    """Keyless values v0, v1, ... to every partition in turn, acks=all."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = PARTITIONS):
        super().__init__(daemon=True)
        self.partitions = partitions
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                                  "enable.idempotence": True})
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
            for _ in range(self.partitions):
                self.producer.produce(self.topic, value=f"v{self.sent}".encode(),
                                      partition=self.sent % self.partitions, on_delivery=done)
                self.sent += 1
            self.producer.poll(0)
            time.sleep(0.02)
        assert self.producer.flush(30) == 0


class Member(threading.Thread):
    """One group.protocol=consumer member; records what it consumed and
    every change of its assignment. Offsets are stored after processing
    and committed every 100 ms and on close, so a clean leave hands its
    partitions over from exactly where it stopped."""

    def __init__(self, bootstrap: str, topic: str, group: str, name: str,
                 protocol: str = "consumer"):
        super().__init__(daemon=True)
        self.name = name
        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": protocol,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 100,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 100,
        }
        if protocol == "classic":
            conf.update({"heartbeat.interval.ms": HEARTBEAT_MS, "session.timeout.ms": 6000})
        self.consumer = Consumer(conf)
        self.topic = topic
        self.records: list[tuple[int, int, str]] = []
        self.owned: set[int] = set()
        self.revoked: list[set[int]] = []
        self.errors: list = []
        self.stop = threading.Event()
        self.closed = threading.Event()

    def run(self) -> None:
        def assigned(_consumer, partitions):
            self.owned.update(tp.partition for tp in partitions)

        def revoked(_consumer, partitions):
            gone = {tp.partition for tp in partitions}
            self.revoked.append(gone)
            self.owned.difference_update(gone)

        self.consumer.subscribe([self.topic], on_assign=assigned, on_revoke=revoked, on_lost=revoked)
        while not self.stop.is_set():
            for msg in self.consumer.consume(num_messages=500, timeout=0.1):
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self.errors.append(msg.error())
                    continue
                self.records.append((msg.partition(), msg.offset(), msg.value().decode()))
                self.consumer.store_offsets(message=msg)
        self.consumer.close()
        self.closed.set()

    def leave(self) -> None:
        self.stop.set()
        assert self.closed.wait(30), f"{self.name} closed"


def test_members_join_and_leave_under_production_and_every_record_is_consumed_once(
        start_gateway, topic_name):
    gw = start_gateway(**FLAGS)
    create_topic(gw.bootstrap, topic_name)
    producer = SteadyProducer(gw.bootstrap, topic_name)
    producer.start()
    group = f"{topic_name}-group"
    members = [Member(gw.bootstrap, topic_name, group, "m1")]
    members[0].start()
    wait_for(lambda: len(members[0].owned) == PARTITIONS, 30, "m1 to own all 12 partitions")
    for name in ("m2", "m3"):
        before = len(members[0].records)
        member = Member(gw.bootstrap, topic_name, group, name)
        members.append(member)
        member.start()
        wait_for(lambda: all(len(m.owned) == PARTITIONS // len(members) for m in members), 30,
                 f"{name} to take its share: {[sorted(m.owned) for m in members]}")
        wait_for(lambda: len(members[0].records) > before, 10, "m1 to keep consuming")
    # Every partition owned by exactly one member.
    owners = [p for m in members for p in m.owned]
    assert sorted(owners) == list(range(PARTITIONS))
    # Incremental: m1 only ever gave up partitions that went to another
    # member, never its whole assignment at once.
    for gone in members[0].revoked:
        assert len(gone) < PARTITIONS, f"m1 lost everything at once: {members[0].revoked}"
        assert not gone & members[0].owned, f"m1 gave up {gone} and got some back"
    # A clean leave: m2's partitions go to the others from its commits.
    leaving = members[1]
    leaving.leave()
    rest = [members[0], members[2]]
    wait_for(lambda: sorted(p for m in rest for p in m.owned) == list(range(PARTITIONS)), 30,
             f"m2's partitions to move: {[sorted(m.owned) for m in rest]}")
    time.sleep(1)
    producer.stop.set()
    producer.join(60)
    assert not producer.failed, producer.failed[:3]
    wait_for(lambda: {v for m in members for _, _, v in m.records} >= producer.acked, 60,
             "every acknowledged record to be consumed")
    for member in rest:
        member.leave()
    seen: dict[tuple[int, int], list[str]] = defaultdict(list)
    for member in members:
        assert not member.errors, f"{member.name}: {member.errors[:3]}"
        for partition, offset, _ in member.records:
            seen[(partition, offset)].append(member.name)
    twice = {key: names for key, names in seen.items() if len(names) > 1}
    assert not twice, f"{len(twice)} records consumed twice, e.g. {list(twice.items())[:5]}"
    values = [v for m in members for _, _, v in m.records]
    assert len(values) == len(set(values)) and set(values) >= producer.acked


def test_the_admin_client_lists_and_describes_a_consumer_group(start_gateway, topic_name):
    from confluent_kafka import ConsumerGroupType
    gw = start_gateway(**FLAGS)
    create_topic(gw.bootstrap, topic_name, 4)
    group = f"{topic_name}-group"
    member = Member(gw.bootstrap, topic_name, group, "m1")
    member.start()
    try:
        wait_for(lambda: len(member.owned) == 4, 30, "the member to own all 4 partitions")
        admin = AdminClient({"bootstrap.servers": gw.bootstrap})
        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(30)
        assert group in [g.group_id for g in listed.valid]
        classic = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(30)
        assert group not in [g.group_id for g in classic.valid]
        described = admin.describe_consumer_groups([group])[group].result(30)
        assert described.type == ConsumerGroupType.CONSUMER
        assert str(described.state).endswith("STABLE"), described.state
        assert len(described.members) == 1
        owned = described.members[0].assignment.topic_partitions
        assert sorted(tp.partition for tp in owned) == [0, 1, 2, 3]
        assert {tp.topic for tp in owned} == {topic_name}
    finally:
        member.leave()


def test_a_classic_group_is_upgraded_when_a_consumer_member_joins_and_downgraded_when_it_leaves(
        start_gateway, topic_name):
    """Kafka's online migration: a classic confluent-kafka member (eager
    range assignor) owns all 4 partitions; a group.protocol=consumer member
    joins: the group becomes a consumer group (ConsumerGroupDescribe shows
    one classic and one consumer member), the classic member is made to
    rejoin and gives up half; when the consumer member leaves, the group is
    classic again and the classic member owns everything. Under steady
    production every record is consumed exactly once."""
    gw = start_gateway(**FLAGS)
    create_topic(gw.bootstrap, topic_name, 4)
    producer = SteadyProducer(gw.bootstrap, topic_name, 4)
    producer.start()
    group = f"{topic_name}-group"
    old = Member(gw.bootstrap, topic_name, group, "classic", protocol="classic")
    old.start()
    new = None
    try:
        wait_for(lambda: len(old.owned) == 4, 30, "the classic member to own all 4 partitions")
        new = Member(gw.bootstrap, topic_name, group, "consumer")
        new.start()
        wait_for(lambda: len(old.owned) == 2 and len(new.owned) == 2, 60,
                 f"the partitions to be shared: {sorted(old.owned)} {sorted(new.owned)}")
        admin = AdminClient({"bootstrap.servers": gw.bootstrap})
        from confluent_kafka import ConsumerGroupType
        described = admin.describe_consumer_groups([group])[group].result(30)
        assert described.type == ConsumerGroupType.CONSUMER
        assert len(described.members) == 2
        new.leave()
        wait_for(lambda: len(old.owned) == 4, 60,
                 f"the classic member to own everything again: {sorted(old.owned)}")
        described = admin.describe_consumer_groups([group])[group].result(30)
        assert described.type == ConsumerGroupType.CLASSIC, described.type
        time.sleep(1)
        producer.stop.set()
        producer.join(60)
        assert not producer.failed, producer.failed[:3]
        assert len(producer.acked) > 100, f"only {len(producer.acked)} records acknowledged"
        members = [old, new]
        wait_for(lambda: {v for m in members for _, _, v in m.records} >= producer.acked, 60,
                 "every acknowledged record to be consumed")
    finally:
        producer.stop.set()
        old.leave()
        if new is not None and not new.closed.is_set():
            new.leave()
    seen: dict[tuple[int, int], list[str]] = defaultdict(list)
    for member in (old, new):
        assert not member.errors, f"{member.name}: {member.errors[:3]}"
        for partition, offset, _ in member.records:
            seen[(partition, offset)].append(member.name)
    twice = {key: names for key, names in seen.items() if len(names) > 1}
    assert not twice, f"{len(twice)} records consumed twice, e.g. {list(twice.items())[:5]}"


def test_a_commit_from_outside_a_live_consumer_group_is_refused(start_gateway, topic_name):
    gw = start_gateway(**FLAGS)
    create_topic(gw.bootstrap, topic_name, 2)
    group = f"{topic_name}-group"
    member = Member(gw.bootstrap, topic_name, group, "m1")
    member.start()
    try:
        wait_for(lambda: len(member.owned) == 2, 30, "the member to own both partitions")
        # Outside the group (no member id, epoch -1) while it has members.
        consumer = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                             "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition(topic_name, 0, 1)], asynchronous=False)
            raise AssertionError("a commit from outside a non-empty consumer group was accepted")
        except Exception as error:  # KafkaException carrying the broker's error
            assert "UNKNOWN_MEMBER_ID" in str(error), error
        finally:
            consumer.close()
    finally:
        member.leave()
