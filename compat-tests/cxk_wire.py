"""A deliberately small Kafka wire client for the compat suite.

Real clients decide for themselves which broker they talk to and which
versions they use. Some checks need more control than that: the fixtures'
readiness probe (one ApiVersions/Metadata round trip on a fresh socket),
exact Metadata fields (topic ids, leader epochs), KIP-511's version fallback,
and cxlkafka's "any gateway accepts any partition", which no real client can
be told to exercise. This module speaks just enough of the protocol for
those: ApiVersions v0/v3, Metadata v1-v12, Produce v3-v7 and Fetch v4-v6.
Record batches are built and parsed with kafka-python's record classes, so
the batch format (CRC32C, varints, headers) is not re-implemented here.

Every call has a socket timeout: nothing here can block a test forever.
"""

from __future__ import annotations

import itertools
import socket
import struct
import uuid
from dataclasses import dataclass, field

from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_API_VERSIONS = 18

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata",
    8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator",
    11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 32: "DescribeConfigs",
    33: "AlterConfigs", 36: "SaslAuthenticate", 37: "CreatePartitions",
    44: "IncrementalAlterConfigs", 47: "OffsetDelete", 60: "DescribeCluster",
    65: "DescribeTransactions", 66: "ListTransactions",
    68: "ConsumerGroupHeartbeat", 69: "ConsumerGroupDescribe",
}
API_KEYS = {name: key for key, name in API_NAMES.items()}

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_LEADER_NOT_AVAILABLE = 5
ERR_UNSUPPORTED_VERSION = 35

_correlation = itertools.count(1)


class WireError(Exception):
    """The peer answered something this module cannot accept."""


# ---------------------------------------------------------------- encoding


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s: str | None) -> bytes:
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def compact_string(s: str | None) -> bytes:
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def nbytes(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: list[bytes] | None) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def compact_array(items: list[bytes] | None) -> bytes:
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = uvarint(0)


# ---------------------------------------------------------------- decoding


class Reader:
    """Cursor over a response body; every read checks the bounds."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError(
                f"response truncated: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def i8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def bool(self) -> bool:
        return self.i8() != 0

    def i16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self._take(16))

    def uvarint(self) -> int:
        shift = value = 0
        while True:
            b = self._take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise WireError("varint too long")

    def string(self, compact: bool = False) -> str | None:
        n = self.uvarint() - 1 if compact else self.i16()
        if n < 0:
            return None
        return self._take(n).decode()

    def nbytes(self, compact: bool = False) -> bytes | None:
        n = self.uvarint() - 1 if compact else self.i32()
        if n < 0:
            return None
        return self._take(n)

    def array_len(self, compact: bool = False) -> int:
        return self.uvarint() - 1 if compact else self.i32()

    def array(self, item, compact: bool = False) -> list | None:
        n = self.array_len(compact)
        if n < 0:
            return None
        return [item() for _ in range(n)]

    def tagged_fields(self) -> dict[int, bytes]:
        fields = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            fields[tag] = self._take(self.uvarint())
        return fields


# ---------------------------------------------------------------- transport


class Connection:
    """One TCP connection to a broker, with request/response framing."""

    def __init__(self, host: str, port: int, timeout: float = 10.0,
                 client_id: str = "cxk-compat-wire"):
        self.client_id = client_id
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise WireError("connection closed by the broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(i32(len(payload)) + payload)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        if size < 4 or size > 256 << 20:
            raise WireError(f"implausible response size {size}")
        return self._recv_exact(size)

    def request(self, api_key: int, version: int, body: bytes, *,
                flexible_request: bool, flexible_response: bool) -> Reader:
        """Sends one request and returns a reader positioned on the body."""
        corr = next(_correlation) & 0x7FFFFFFF
        header = i16(api_key) + i16(version) + i32(corr) + string(self.client_id)
        if flexible_request:
            header += NO_TAGS  # request header v2
        self.send_raw(header + body)
        r = Reader(self.recv_frame())
        got = r.i32()
        if got != corr:
            raise WireError(f"correlation id {got}, expected {corr}")
        if flexible_response:
            r.tagged_fields()  # response header v1
        return r


# ------------------------------------------------- IncrementalAlterConfigs

API_INCREMENTAL_ALTER_CONFIGS = 44


def incremental_alter_configs(conn: Connection, resource_type: int, name: str,
                              configs: dict[str, str | None]) -> tuple[int, str | None]:
    """IncrementalAlterConfigs v0 of one resource: SET for a value, DELETE
    for None. Returns (error code, message). Real clients refuse a resource
    named "" (the cluster-default broker), which Kafka itself accepts."""
    ops = [string(key) + i8(0 if value is not None else 1) + string(value)
           for key, value in configs.items()]
    body = array([i8(resource_type) + string(name) + array(ops)]) + i8(0)
    r = conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, body,
                     flexible_request=False, flexible_response=False)
    r.i32()  # throttle
    results = r.array(lambda: (r.i16(), r.string(), r.i8(), r.string()))
    code, message, _, _ = results[0]
    return code, message


# ---------------------------------------------------------------- ApiVersions


@dataclass
class ApiVersions:
    error_code: int
    apis: dict[int, tuple[int, int]]
    throttle_time_ms: int = 0
    trailing_tags: dict[int, bytes] = field(default_factory=dict)
    entry_tags: dict[int, dict[int, bytes]] = field(default_factory=dict)
    leftover: int = 0

    def max_version(self, key: int) -> int | None:
        r = self.apis.get(key)
        return r[1] if r else None

    def pick(self, key: int, lo: int, hi: int) -> int | None:
        """Highest version in [lo, hi] that the broker also serves."""
        r = self.apis.get(key)
        if not r:
            return None
        v = min(hi, r[1])
        return v if v >= max(lo, r[0]) else None


def parse_api_versions_v0(r: Reader) -> ApiVersions:
    err = r.i16()
    apis = {}
    for _ in range(r.array_len()):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
    return ApiVersions(err, apis, leftover=r.remaining())


def api_versions(conn: Connection, version: int = 0) -> ApiVersions:
    """ApiVersions v0 (plain) or v3 (flexible body, header v0 response)."""
    if version == 0:
        r = conn.request(API_API_VERSIONS, 0, b"",
                         flexible_request=False, flexible_response=False)
        return parse_api_versions_v0(r)
    if version != 3:
        raise ValueError("only ApiVersions v0 and v3 are implemented")
    body = compact_string("cxk-compat") + compact_string("1.0") + NO_TAGS
    r = conn.request(API_API_VERSIONS, 3, body,
                     flexible_request=True, flexible_response=False)
    err = r.i16()
    if err == ERR_UNSUPPORTED_VERSION:
        # KIP-511: the fallback answer is a v0 body.
        r.pos -= 2
        return parse_api_versions_v0(r)
    apis, entry_tags = {}, {}
    for _ in range(r.array_len(compact=True)):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        apis[k] = (lo, hi)
        tags = r.tagged_fields()
        if tags:
            entry_tags[k] = tags
    throttle = r.i32()
    trailing = r.tagged_fields()
    return ApiVersions(err, apis, throttle, trailing, entry_tags, r.remaining())


# ---------------------------------------------------------------- Metadata


@dataclass
class PartitionMeta:
    error_code: int
    index: int
    leader: int
    leader_epoch: int | None
    replicas: list[int]
    isr: list[int]


@dataclass
class TopicMeta:
    error_code: int
    name: str | None
    topic_id: uuid.UUID | None
    is_internal: bool
    partitions: list[PartitionMeta]


@dataclass
class Broker:
    node_id: int
    host: str
    port: int
    rack: str | None


@dataclass
class Metadata:
    version: int
    brokers: list[Broker]
    cluster_id: str | None
    controller_id: int
    topics: list[TopicMeta]

    def topic(self, name: str) -> TopicMeta | None:
        for t in self.topics:
            if t.name == name:
                return t
        return None


def metadata(conn: Connection, version: int, topics: list[str] | None,
             allow_auto_create: bool = True) -> Metadata:
    """Metadata at any version from 1 to 12; `topics=None` asks for all."""
    if not 1 <= version <= 12:
        raise ValueError("Metadata v1..v12 only")
    flex = version >= 9
    arr = compact_array if flex else array
    entries = None
    if topics is not None:
        entries = []
        for name in topics:
            e = b""
            if version >= 10:
                e += b"\0" * 16  # topic_id: zero, ask by name
            e += compact_string(name) if flex else string(name)
            if flex:
                e += NO_TAGS
            entries.append(e)
    body = arr(entries)
    if version >= 4:
        body += i8(1 if allow_auto_create else 0)
    if 8 <= version <= 10:
        body += i8(0)  # include_cluster_authorized_operations
    if version >= 8:
        body += i8(0)  # include_topic_authorized_operations
    if flex:
        body += NO_TAGS
    r = conn.request(API_METADATA, version, body,
                     flexible_request=flex, flexible_response=flex)

    if version >= 3:
        r.i32()  # throttle_time_ms

    def broker() -> Broker:
        node = r.i32()
        host = r.string(flex)
        port = r.i32()
        rack = r.string(flex)
        if flex:
            r.tagged_fields()
        return Broker(node, host, port, rack)

    brokers = r.array(broker, flex) or []
    cluster_id = r.string(flex) if version >= 2 else None
    controller = r.i32()

    def int_array() -> list[int]:
        return r.array(r.i32, flex) or []

    def partition() -> PartitionMeta:
        err = r.i16()
        idx = r.i32()
        leader = r.i32()
        epoch = r.i32() if version >= 7 else None
        replicas = int_array()
        isr = int_array()
        if version >= 5:
            int_array()  # offline replicas
        if flex:
            r.tagged_fields()
        return PartitionMeta(err, idx, leader, epoch, replicas, isr)

    def topic() -> TopicMeta:
        err = r.i16()
        name = r.string(flex)
        tid = r.uuid() if version >= 10 else None
        internal = r.bool()
        parts = r.array(partition, flex) or []
        if version >= 8:
            r.i32()  # topic_authorized_operations
        if flex:
            r.tagged_fields()
        return TopicMeta(err, name, tid, internal, parts)

    topics_out = r.array(topic, flex) or []
    if 8 <= version <= 10:
        r.i32()  # cluster_authorized_operations
    if flex:
        r.tagged_fields()
    if r.remaining():
        raise WireError(f"{r.remaining()} unexpected bytes after Metadata v{version}")
    return Metadata(version, brokers, cluster_id, controller, topics_out)


# ---------------------------------------------------------------- records


@dataclass
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def build_batch(records: list[tuple[int, bytes | None, bytes | None, list]]) -> bytes:
    """One uncompressed v2 batch of (timestamp_ms, key, value, headers)."""
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=64 << 20)
    for ts, key, value, headers in records:
        if builder.append(ts, key, value, headers) is None:
            raise ValueError("batch full")
    builder.close()
    return bytes(builder.buffer())


def parse_records(data: bytes | None) -> list[Record]:
    out = []
    if not data:
        return out
    recs = MemoryRecords(data)
    while recs.has_next():
        batch = recs.next_batch()
        if batch is None:
            break
        if getattr(batch, "is_control_batch", False):
            continue
        for rec in batch:
            out.append(Record(rec.offset, rec.timestamp, rec.key, rec.value,
                              list(rec.headers)))
    return out


# ---------------------------------------------------------------- Produce / Fetch


@dataclass
class ProducePartitionResult:
    error_code: int
    base_offset: int


def produce(conn: Connection, version: int, topic: str,
            batches: dict[int, bytes], acks: int = -1,
            timeout_ms: int = 15000) -> dict[int, ProducePartitionResult]:
    """Produce v3..v7: one batch per partition, one topic."""
    if not 3 <= version <= 7:
        raise ValueError("Produce v3..v7 only")
    parts = [i32(p) + nbytes(b) for p, b in sorted(batches.items())]
    body = string(None) + i16(acks) + i32(timeout_ms) + array([string(topic) + array(parts)])
    r = conn.request(API_PRODUCE, version, body,
                     flexible_request=False, flexible_response=False)
    out = {}
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            err = r.i16()
            base = r.i64()
            r.i64()  # log_append_time_ms (v2+)
            if version >= 5:
                r.i64()  # log_start_offset
            out[p] = ProducePartitionResult(err, base)
    r.i32()  # throttle_time_ms
    return out


@dataclass
class FetchPartitionResult:
    error_code: int
    high_watermark: int
    records: list[Record]


def fetch(conn: Connection, version: int, topic: str, offsets: dict[int, int],
          max_wait_ms: int = 100, min_bytes: int = 1,
          max_bytes: int = 32 << 20,
          partition_max_bytes: int = 8 << 20) -> dict[int, FetchPartitionResult]:
    """Fetch v4..v6 (no sessions, no topic ids) of one topic."""
    if not 4 <= version <= 6:
        raise ValueError("Fetch v4..v6 only")
    parts = []
    for p, off in sorted(offsets.items()):
        e = i32(p) + i64(off)
        if version >= 5:
            e += i64(-1)  # log_start_offset (followers only)
        e += i32(partition_max_bytes)
        parts.append(e)
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(0)
            + array([string(topic) + array(parts)]))
    r = conn.request(API_FETCH, version, body,
                     flexible_request=False, flexible_response=False)
    r.i32()  # throttle
    out = {}
    for _ in range(r.array_len()):
        r.string()
        for _ in range(r.array_len()):
            p = r.i32()
            err = r.i16()
            hw = r.i64()
            r.i64()  # last_stable_offset
            if version >= 5:
                r.i64()  # log_start_offset
            r.array(lambda: (r.i64(), r.i64()))  # aborted transactions
            data = r.nbytes()
            out[p] = FetchPartitionResult(err, hw, parse_records(data))
    return out


def fetch_all(conn: Connection, version: int, topic: str, partitions: list[int],
              deadline_s: float) -> dict[int, list[Record]]:
    """Reads every partition from offset 0 to its high watermark.

    A fetch may return a whole batch that starts before the requested
    offset (Kafka semantics): records below it are dropped, as clients do.
    """
    import time

    next_off = {p: 0 for p in partitions}
    hwm = {p: None for p in partitions}
    got: dict[int, list[Record]] = {p: [] for p in partitions}
    end = time.monotonic() + deadline_s
    while True:
        todo = {p: o for p, o in next_off.items() if hwm[p] is None or o < hwm[p]}
        if not todo:
            return got
        if time.monotonic() > end:
            raise WireError(f"fetch did not reach the high watermarks in {deadline_s}s: "
                            f"next={next_off} hwm={hwm}")
        res = fetch(conn, version, topic, todo)
        for p, pr in res.items():
            if pr.error_code:
                raise WireError(f"Fetch {topic}/{p} at {todo.get(p)}: error {pr.error_code}")
            hwm[p] = pr.high_watermark
            for rec in pr.records:
                if rec.offset >= next_off[p]:
                    got[p].append(rec)
                    next_off[p] = rec.offset + 1
