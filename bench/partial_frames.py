#!/usr/bin/env python3
"""Memory of a gateway under slow partial frames: starts `cxlkafka serve`,
opens 1000 connections (from 127.0.0.5) that each declare a 100 MiB frame
and send KIB64 x 64 KiB of it, and prints the gateway's RSS before and after.

    bench/partial_frames.py target/release/cxlkafka            # 64 KiB each
    KIB64=8 bench/partial_frames.py target/release/cxlkafka    # 512 KiB each

Extra arguments go to `cxlkafka serve` (e.g. --queued-max-request-bytes)."""

import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time

CONNECTIONS = 1000


def rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise SystemExit("no VmRSS")


def main() -> None:
    binary, extra = sys.argv[1], sys.argv[2:]
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    work = tempfile.mkdtemp()
    region = f"/dev/shm/partial-frames-{os.getpid()}"
    port = 19777
    gateway = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--metrics-addr", "127.0.0.1:19778",
         "--region-path", region, "--data-dir", os.path.join(work, "data"),
         "--max-connections-per-ip", str(4 * CONNECTIONS)] + extra,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    try:
        time.sleep(3)
        before = rss_mib(gateway.pid)
        junk = bytes(range(256)) * 256 * int(os.environ.get("KIB64", "1"))
        held = []
        for _ in range(CONNECTIONS):
            s = socket.socket()
            s.bind(("127.0.0.5", 0))
            s.connect(("127.0.0.1", port))
            s.sendall(struct.pack(">i", 100 << 20) + junk)
            held.append(s)
        time.sleep(2)
        print(f"RSS before {before} MiB, after {CONNECTIONS} partial frames of "
              f"{len(junk) >> 10} KiB: {rss_mib(gateway.pid)} MiB")
    finally:
        gateway.kill()
        if os.path.exists(region):
            os.remove(region)


if __name__ == "__main__":
    main()
