"""Debian's kcat (1.7.1, librdkafka 2.0.2): 100,000 keyed messages with
headers, produced from a file and consumed back byte-identical, in order per
partition."""

from __future__ import annotations

import random
import subprocess
import zlib
from collections import defaultdict

import pytest

COUNT = 100_000
PARTITIONS = 3
HEADERS = [("k", "v"), ("lang", "fr-é✓")]
# Characters that cannot be confused with kcat's delimiters in either
# direction (':' key delimiter on input, '|' and ',' in our output format).
ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            " .-_/+*#@!?()[]{}<>~^&%$;'\"" "éàü✓€漢字")


def _messages(seed: int = 4242) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(COUNT):
        key = f"key-{i:06d}-{rng.randrange(1 << 30):x}"
        size = rng.choice((1, 8, 40, 120, 300)) + rng.randrange(20)
        value = "".join(rng.choices(ALPHABET, k=size)).strip() or "x"
        out.append((key, value))
    return out


def _run(argv, *, timeout, input_path=None):
    stdin = open(input_path, "rb") if input_path else subprocess.DEVNULL
    try:
        return subprocess.run(argv, stdin=stdin, capture_output=True, timeout=timeout)
    finally:
        if input_path:
            stdin.close()


@pytest.mark.timeout(240)
def test_kcat_100k_keyed_messages_with_headers_round_trip(start_gateway, topic_name, tmp_path):
    gw = start_gateway(default_partitions=PARTITIONS)
    gw.require("Metadata", "Produce", "Fetch", "ListOffsets")

    msgs = _messages()
    src = tmp_path / "input.txt"
    src.write_bytes("".join(f"{k}:{v}\n" for k, v in msgs).encode())

    header_args = [a for name, value in HEADERS for a in ("-H", f"{name}={value}")]
    prod = _run(["kcat", "-P", "-b", gw.bootstrap, "-t", topic_name, "-K:", *header_args,
                 "-X", "acks=all", "-X", "linger.ms=5", "-X", "message.timeout.ms=60000"],
                input_path=src, timeout=120)
    prod_err = prod.stderr.decode(errors="replace")
    assert prod.returncode == 0, f"kcat -P exited {prod.returncode}: {prod_err[-3000:]}"
    assert "Delivery failed" not in prod_err and "% ERROR" not in prod_err, prod_err[-3000:]

    cons = _run(["kcat", "-C", "-b", gw.bootstrap, "-t", topic_name, "-o", "beginning",
                 "-e", "-q", "-f", "%p|%o|%k|%s|%h\n"], timeout=120)
    cons_err = cons.stderr.decode(errors="replace")
    assert cons.returncode == 0, f"kcat -C exited {cons.returncode}: {cons_err[-3000:]}"

    lines = cons.stdout.split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == COUNT, f"consumed {len(lines)} messages, produced {COUNT}; stderr: {cons_err[-2000:]}"

    expected_headers = ",".join(f"{n}={v}" for n, v in HEADERS).encode()
    by_partition: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
    for line in lines:
        p, o, key, rest = line.split(b"|", 3)
        value, headers = rest.rsplit(b"|", 1)
        assert headers == expected_headers, f"headers {headers!r} on {key!r}"
        by_partition[int(p)].append((int(o), key, value))

    assert set(by_partition) <= set(range(PARTITIONS)), sorted(by_partition)
    index = {k.encode(): i for i, (k, _) in enumerate(msgs)}
    seen = 0
    for p, recs in sorted(by_partition.items()):
        offsets = [o for o, _, _ in recs]
        assert offsets == list(range(len(recs))), \
            f"partition {p}: offsets not contiguous from 0 (first gaps near " \
            f"{[o for n, o in enumerate(offsets) if o != n][:5]})"
        order = [index.get(k) for _, k, _ in recs]
        assert None not in order, f"partition {p}: unknown key consumed"
        assert order == sorted(order), f"partition {p}: messages out of production order"
        for _, key, value in recs:
            i = index[key]
            assert value == msgs[i][1].encode(), f"value of {key!r} differs"
            # librdkafka's default partitioner (consistent_random) is CRC32(key) % n.
            assert zlib.crc32(key) % PARTITIONS == p, f"{key!r} in partition {p}"
        seen += len(recs)
    assert seen == COUNT
