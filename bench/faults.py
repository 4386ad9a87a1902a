"""A Jepsen-style fault schedule: real gateways, real idempotent acks=all
producers, and faults in random order; at the end every acknowledged record
is looked for. Run by bench/faults (which installs confluent-kafka).

Three gateways share one region file in /dev/shm; each has its own data dir
(as on separate hosts), gateway 2's on a small tmpfs so its disk can fill.
Producers (confluent-kafka, enable.idempotence, acks=all) write unique
values to a topic of several partitions for the whole run. Faults, drawn
with a seeded RNG until the duration is up:

  kill       SIGKILL a gateway; restarted a few seconds later (same data dir)
  wipe       SIGKILL a gateway and delete its data dir, as a host replaced
             with an empty disk; restarted a few seconds later, it copies
             what it lacks from a gateway that holds everything
  pause      SIGSTOP a gateway for 5-20 s, then SIGCONT
  unlink     delete the region file under the running gateways; they must
             notice and stop (a fenced gateway exits), and are restarted,
             rebuilding the region from their segments
  disk-full  fill gateway 2's tmpfs data dir for 5-15 s, then free it

A supervisor restarts any gateway that exited. At the end the producers
flush, every gateway is restarted cleanly, and a consumer reads every
partition from the beginning through each live gateway. The last line:

  N acknowledged, L lost, D duplicated (values stored twice)

Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

HOST = "127.0.0.1"
PARTITIONS = 6
TOPIC = "faults"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Gateway:
    def __init__(self, binary: str, node: int, region: Path, cluster: str, data_dir: Path,
                 log_dir: Path):
        self.node = node
        self.port = free_port()
        self.metrics_port = free_port()
        self.data_dir = data_dir
        self.argv = [
            binary, "serve", "--listen", f"{HOST}:{self.port}",
            "--metrics-addr", f"{HOST}:{self.metrics_port}", "--region-path", str(region),
            "--region-size", "256MiB", "--max-gateways", "4", "--cluster", cluster,
            "--data-dir", str(data_dir), "--node-id", str(node),
            "--default-partitions", str(PARTITIONS), "--lease-timeout-ms", "2000",
            "--log-level", "warn",
        ]
        self.log_path = log_dir / f"gateway-{node}.log"
        self.proc: subprocess.Popen | None = None
        self.paused_until = 0.0
        self.down_until = 0.0
        self.exits: list[int] = []

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> None:
        out = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.proc.pid, sig)

    def wait_exit(self, timeout: float) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        self.wait_exit(15)


class Producers:
    """Idempotent acks=all producers writing unique values all run long."""

    def __init__(self, bootstrap: str, count: int):
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.failed = 0
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(bootstrap, n), daemon=True)
                        for n in range(count)]

    def run(self, bootstrap: str, n: int) -> None:
        p = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 5, "message.timeout.ms": 120000,
            "topic.metadata.refresh.interval.ms": 2000, "reconnect.backoff.max.ms": 1000,
        })
        rng = random.Random(n)

        def delivered(err, msg):
            with self.lock:
                if err is None:
                    self.acked[msg.value()[:24]] = (msg.partition(), msg.offset())
                else:
                    self.failed += 1

        seq = 0
        while not self.stop.is_set():
            value = f"p{n:02d}-{seq:012d}-".encode().ljust(24, b"-")[:24] + rng.randbytes(1000)
            try:
                p.produce(TOPIC, value=value, partition=seq % PARTITIONS, on_delivery=delivered)
                seq += 1
                with self.lock:
                    self.sent += 1
            except BufferError:
                p.poll(0.05)
            p.poll(0)
            if seq % 100 == 0:
                # A steady load (about 2 MB/s per producer), not a flood: the
                # faults, not the disks, should be what the run is about.
                time.sleep(0.05)
        p.flush(180)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=200)


def read_back(bootstrap: str, expected: int, timeout: float) -> dict[bytes, list[tuple[int, int]]]:
    c = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"faults-check-{time.time_ns()}",
        "enable.auto.commit": False, "enable.partition.eof": True,
        "auto.offset.reset": "error", "fetch.wait.max.ms": 100,
    })
    seen: dict[bytes, list[tuple[int, int]]] = {}
    eof: set[int] = set()
    total = 0
    deadline = time.monotonic() + timeout
    c.assign([TopicPartition(TOPIC, q, OFFSET_BEGINNING) for q in range(PARTITIONS)])
    try:
        while not (total >= expected and len(eof) == PARTITIONS) and time.monotonic() < deadline:
            for m in c.consume(num_messages=2000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                    continue
                eof.discard(m.partition())
                seen.setdefault(m.value()[:24], []).append((m.partition(), m.offset()))
                total += 1
    finally:
        c.close()
    return seen


def fill_disk(path: Path, seconds: float) -> None:
    """Fills the tmpfs under `path` to the last byte for `seconds`."""
    filler = path / "filler"
    try:
        with open(filler, "wb") as f:
            block = b"\0" * (1 << 20)
            while True:
                f.write(block)
    except OSError:
        pass
    log(f"  data dir {path} full for {seconds:.0f} s")
    time.sleep(seconds)
    filler.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parent.parent
                                                / "target/release/cxlkafka"))
    parser.add_argument("--work", default=None, help="where data dirs and logs go")
    parser.add_argument("--faults", default="kill,wipe,pause,unlink,disk-full",
                        help="comma-separated kinds to draw from")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = args.faults.split(",")
    work = Path(args.work or tempfile.mkdtemp(prefix="cxlkafka-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    cluster = f"faults{os.getpid()}"[:16]
    region = Path(f"/dev/shm/cxlkafka-{cluster}")
    small = work / "small-disk"
    small.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6g", "tmpfs", str(small)],
                             capture_output=True).returncode == 0
    if not mounted and "disk-full" in kinds:
        log("cannot mount a tmpfs (not root?): no disk-full faults")
        kinds.remove("disk-full")
    gateways = []
    for node in range(3):
        data = (small if node == 2 and mounted else work / f"disk-{node}") / "data"
        data.mkdir(parents=True, exist_ok=True)
        gateways.append(Gateway(args.binary, node, region, cluster, data, work))
    for gw in gateways:
        gw.start()
        time.sleep(0.5)
    time.sleep(2)
    bootstrap = ",".join(g.bootstrap for g in gateways)
    producers = Producers(bootstrap, args.producers)
    producers.start()
    log(f"3 gateways, {args.producers} idempotent acks=all producers, faults {kinds}, "
        f"{args.minutes} min, seed {args.seed}, work {work}")
    counts = {kind: 0 for kind in kinds}
    end = time.monotonic() + args.minutes * 60
    next_fault = time.monotonic() + 10
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            for gw in gateways:
                if gw.paused_until and now >= gw.paused_until:
                    gw.signal(signal.SIGCONT)
                    gw.paused_until = 0.0
                if not gw.alive() and now >= gw.down_until:
                    if gw.proc is not None:
                        gw.exits.append(gw.proc.returncode)
                    gw.start()
            if now >= next_fault:
                kind = rng.choice(kinds)
                counts[kind] += 1
                victim = rng.choice(gateways)
                if kind == "kill":
                    log(f"kill -9 gateway {victim.node}")
                    victim.signal(signal.SIGKILL)
                    victim.down_until = now + rng.uniform(1, 6)
                elif kind == "wipe":
                    log(f"kill -9 gateway {victim.node} and delete its data dir")
                    victim.signal(signal.SIGKILL)
                    if victim.proc is not None:
                        victim.proc.wait()
                    for item in victim.data_dir.iterdir():
                        if item.is_dir():
                            shutil.rmtree(item, ignore_errors=True)
                        else:
                            item.unlink(missing_ok=True)
                    victim.down_until = now + rng.uniform(1, 6)
                elif kind == "pause":
                    seconds = rng.uniform(5, 20)
                    log(f"SIGSTOP gateway {victim.node} for {seconds:.0f} s")
                    victim.signal(signal.SIGSTOP)
                    victim.paused_until = now + seconds
                elif kind == "unlink":
                    log("unlink the region file")
                    region.unlink(missing_ok=True)
                elif kind == "disk-full":
                    threading.Thread(target=fill_disk, args=(small / "data", rng.uniform(5, 15)),
                                     daemon=True).start()
                next_fault = now + rng.uniform(15, 40)
            time.sleep(0.2)
        for gw in gateways:
            gw.signal(signal.SIGCONT)
        (small / "data" / "filler").unlink(missing_ok=True)
        log("faults over; producers flush")
        time.sleep(10)
        for gw in gateways:
            if not gw.alive():
                gw.start()
        time.sleep(5)
        producers.finish()
        acked = dict(producers.acked)
        log(f"sent {producers.sent}, acknowledged {len(acked)}, failed {producers.failed}")
        lost_any = None
        duplicated = 0
        for gw in gateways:
            if not gw.alive():
                gw.start()
                time.sleep(3)
            seen = read_back(gw.bootstrap, len(acked), timeout=300)
            lost = [value for value in acked if value not in seen]
            duplicated = max(duplicated, sum(1 for places in seen.values() if len(places) > 1))
            log(f"through gateway {gw.node}: {len(seen)} values read, {len(lost)} acknowledged lost")
            lost_any = len(lost) if lost_any is None else max(lost_any, len(lost))
        exits = {gw.node: gw.exits for gw in gateways}
        log(f"faults: {counts}; gateway exits (codes): {exits}")
        print(f"{len(acked)} acknowledged, {lost_any} lost, {duplicated} duplicated "
              f"(values stored twice)", flush=True)
        sys.exit(1 if lost_any else 0)
    finally:
        producers.stop.set()
        for gw in gateways:
            gw.stop()
        region.unlink(missing_ok=True)
        if mounted:
            subprocess.run(["umount", str(small)], capture_output=True)


if __name__ == "__main__":
    main()
