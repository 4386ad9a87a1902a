"""Connection limits under a flood: raw sockets open connections by the
hundred, or send frames far above --max-frame-bytes, while a well-behaved
confluent-kafka producer (acks=all) keeps producing. Every one of its
messages must be acknowledged, the gateway must stay up, and the limits
must show in its metrics.

The floods come from other loopback addresses (127.0.0.2, 127.0.0.3: all of
127/8 is loopback on Linux), as they would from other hosts, so that
--max-connections-per-ip throttles them and not the producer."""

from __future__ import annotations

import re
import resource
import socket
import struct
import threading
import time
import urllib.request

import cxk_clients as cc

COUNT = 3000
FLOOD_THREADS = 4


def counter(gw, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
        if not m:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


class Flood:
    """Threads running `attack(stop)` until stopped; counts their rounds."""

    def __init__(self, attack, threads: int = FLOOD_THREADS):
        self.stop = threading.Event()
        self.rounds = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(attack,), daemon=True)
                         for _ in range(threads)]

    def _run(self, attack) -> None:
        while not self.stop.is_set():
            try:
                attack(self.stop)
            except OSError as e:  # resets and refusals are the point
                with self._lock:
                    if len(self.errors) < 20:
                        self.errors.append(repr(e))
            with self._lock:
                self.rounds += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self._threads:
            t.join(timeout=30)


def connect_from(source: str, gw, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect((gw.host, gw.port))
    return s


def produce_during(gw, topic: str, flood: Flood) -> None:
    """Produces COUNT messages (acks=all) while `flood` runs; all must be acked."""
    msgs = cc.make_messages(COUNT, 1, seed=11)
    p, perrors = cc.producer(gw.bootstrap, **{"linger.ms": 2, "batch.num.messages": 100})
    tracker = cc.DeliveryTracker(COUNT)
    with flood:
        # Spread the produce over the flood rather than finish before it starts.
        for start in range(0, COUNT, 300):
            cc.produce_all(p, topic, msgs, tracker, start, start + 300)
            p.flush(5)
            time.sleep(0.05)
        cc.flush(p, tracker, timeout=60)
    assert flood.rounds > 0, "the flood ran"
    assert tracker.failures() == [], \
        f"delivery failures: {tracker.failures()[:5]}; client errors {perrors[:5]}"
    offsets = sorted(r[2] for r in tracker.results)
    assert offsets == list(range(COUNT)), "every message acknowledged once, in order"
    assert gw.alive(), "the gateway survived the flood"


def test_a_connection_flood_does_not_stop_a_producer(start_gateway, topic_name):
    per_ip = 64
    gw = start_gateway(max_connections_per_ip=per_ip, connections_max_idle_ms=2000)
    gw.require("Metadata", "Produce")
    raise_fd_limit(4096)
    held: list[socket.socket] = []
    held_lock = threading.Lock()

    def attack(stop: threading.Event) -> None:
        # Open connections and keep them (idle, or half a frame sent) until
        # twice the per-address limit is held, then drop the oldest.
        s = connect_from("127.0.0.2", gw)
        if len(held) % 3 == 0:
            s.sendall(struct.pack(">i", 1000) + b"\x00\x12")
        with held_lock:
            held.append(s)
            old = held.pop(0) if len(held) > 2 * per_ip else None
        if old is not None:
            old.close()

    flood = Flood(attack)
    try:
        produce_during(gw, topic_name, flood)
    finally:
        with held_lock:
            for s in held:
                s.close()
    assert counter(gw, "cxlkafka_limit_closes_total", limit="max_connections_per_ip") > 0, \
        "connections beyond the per-address limit were refused"
    # The producer's address was never limited: it still gets a new connection.
    probe = connect_from("127.0.0.1", gw)
    probe.close()


def test_an_oversize_frame_flood_does_not_stop_a_producer(start_gateway, topic_name):
    limit = 1 << 20
    gw = start_gateway(max_frame_bytes=limit)
    gw.require("Metadata", "Produce")
    junk = bytes(range(256)) * 256  # 64 KiB sent after the prefix

    def attack(stop: threading.Event) -> None:
        s = connect_from("127.0.0.3", gw)
        try:
            size = (limit + 1, 1 << 30, 0x7FFFFFFF)[attack.n % 3]
            attack.n += 1
            s.sendall(struct.pack(">i", size))
            try:
                s.sendall(junk)
                s.recv(1)  # the gateway closes without answering
            except OSError:
                pass
        finally:
            s.close()

    attack.n = 0
    flood = Flood(attack)
    produce_during(gw, topic_name, flood)
    refused = counter(gw, "cxlkafka_protocol_errors_total", reason="frame_too_large")
    assert refused >= 1, "oversize frames were refused from their prefix"


def rss_bytes(gw) -> int:
    with open(f"/proc/{gw.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_slow_partial_frames_hold_bounded_memory(start_gateway, topic_name):
    """A thousand connections each declare a 100 MiB frame and send 512 KiB
    of it, then stall: what the gateway holds of them stays within
    --queued-max-request-bytes plus 64 KiB per connection (a frame's share
    of the budget grows with the bytes that arrive, not with the size it
    declares), the stalled frames are closed after --frame-timeout-ms, and
    a producer is served throughout. Unbounded, the gateway took in all
    500 MB (525 MiB RSS was measured)."""
    budget = 104 << 20  # the least the default 100 MiB frame limit allows
    connections = 1000
    gw = start_gateway(queued_max_request_bytes=budget, frame_timeout_ms=3000,
                       max_connections_per_ip=2 * connections)
    gw.require("Metadata", "Produce")
    raise_fd_limit(4 * connections)
    junk = bytes(range(256)) * 256 * 8  # 512 KiB of each frame
    before = rss_bytes(gw)
    held = []
    try:
        for _ in range(connections):
            s = connect_from("127.0.0.4", gw)
            s.sendall(struct.pack(">i", 100 << 20) + junk)
            held.append(s)
        time.sleep(1)  # let the gateway read what it will
        grown = rss_bytes(gw) - before
        bound = budget + connections * (64 << 10) + (32 << 20)
        assert grown < bound, \
            f"gateway grew {grown >> 20} MiB for {connections} partial frames " \
            f"(bound {bound >> 20} MiB)"
        # The stalled frames are closed once the frame timeout passes.
        deadline = time.time() + 60
        while counter(gw, "cxlkafka_protocol_errors_total", reason="stalled_frame") < 1:
            assert time.time() < deadline, "stalled frames were never closed"
            time.sleep(0.2)
        flood = Flood(lambda stop: time.sleep(0.01), threads=1)
        produce_during(gw, topic_name, flood)
    finally:
        for s in held:
            s.close()
