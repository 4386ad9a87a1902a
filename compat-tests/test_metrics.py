"""Prometheus metrics of a real `cxlkafka serve` after confluent-kafka traffic:
the exposition passes `promtool check metrics`, every metric the Grafana
dashboards and the alerting rules in dashboards/ use is in it (and they take
`rate()`, `irate()` and `increase()` of counters only), the rules pass
`promtool check rules` and their unit tests (`dashboards/alerts_test.yml`),
and a real Prometheus server scraping the gateway answers
`sum(cxlkafka_bytes_in_total)` with exactly the bytes the test produced and
evaluates every rule without error.

"The bytes produced", exactly: the gateway counts whole v2 record batches as
the client sent them (61-byte batch header and per-record framing included),
and it stores those batches unchanged (only the base offset is rewritten). So
the test reads every stored batch back with raw Fetch requests and sums their
sizes: that sum must equal the gateway's own counter and Prometheus's query.
Independently of the broker, it must lie between the payload bytes (keys +
values) and the payload plus 61 bytes per batch and 16 bytes of record
framing per record (length, attributes, timestamp and offset deltas, key and
value lengths, header count: varints, small for 1 KiB values sent within
seconds)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer

import cxk_clients as cc
import cxk_wire as wire
from conftest import HOST, free_port

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
ALERTS = DASHBOARDS / "alerts.yml"
ALERTS_TEST = DASHBOARDS / "alerts_test.yml"
PARTITIONS = 2
COUNT = 400
VALUE_BYTES = 1024
BATCH_OVERHEAD = 61
RECORD_FRAMING_MAX = 16


def scrape(gw) -> str:
    with urllib.request.urlopen(gw.metrics_url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def families(text: str) -> dict[str, str]:
    """name -> type from the # TYPE lines."""
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M)}


def sample(text: str, series: str) -> float:
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    assert m, f"no sample {series} in the scrape"
    return float(m.group(1))


def raw_fetch(conn: wire.Connection, topic: str, partition: int, offset: int) -> bytes:
    """Fetch v4 of one partition; the record set bytes as stored."""
    body = (wire.i32(-1) + wire.i32(100) + wire.i32(1) + wire.i32(32 << 20) + wire.i8(0)
            + wire.array([wire.string(topic) + wire.array(
                [wire.i32(partition) + wire.i64(offset) + wire.i32(8 << 20)])]))
    r = conn.request(wire.API_FETCH, 4, body, flexible_request=False, flexible_response=False)
    r.i32()  # throttle
    assert r.array_len() == 1
    r.string()
    assert r.array_len() == 1
    assert r.i32() == partition
    err = r.i16()
    assert err == 0, f"Fetch {topic}/{partition}@{offset}: error {err}"
    r.i64()  # high watermark
    r.i64()  # last stable offset
    r.array(lambda: (r.i64(), r.i64()))
    return r.nbytes() or b""


def stored_batches(gw, topic: str, partitions: int) -> list[int]:
    """Sizes of every stored batch of `topic`, read back from offset 0."""
    sizes = []
    with gw.connect() as conn:
        for p in range(partitions):
            offset = 0
            while True:
                data = raw_fetch(conn, topic, p, offset)
                if not data:
                    break
                at = 0
                while at + 12 <= len(data):
                    base, length = struct.unpack_from(">qi", data, at)
                    if at + 12 + length > len(data):
                        break  # a partial batch: fetch it whole next time
                    (last_delta,) = struct.unpack_from(">i", data, at + 23)
                    sizes.append(12 + length)
                    offset = base + last_delta + 1
                    at += 12 + length
    assert sizes, f"no batch of {topic} read back"
    return sizes


def run_traffic(start_gateway, topic: str):
    """A gateway; COUNT 1 KiB records produced (acks=all, uncompressed) and
    consumed through a committed consumer group; an out-of-range Fetch and a
    malformed frame so that error metrics exist. Returns (gateway, payload
    bytes)."""
    gw = start_gateway(default_partitions=PARTITIONS, group_initial_rebalance_delay_ms=0)
    gw.require("Metadata", "Produce", "Fetch", "FindCoordinator", "JoinGroup", "OffsetCommit")
    p, perrors = cc.producer(gw.bootstrap, **{"compression.type": "none"})
    tracker = cc.DeliveryTracker(COUNT)
    payload = 0
    for i in range(COUNT):
        key = f"k{i}".encode()
        value = bytes([i % 251]) * VALUE_BYTES
        payload += len(key) + len(value)
        p.produce(topic, key=key, value=value, partition=i % PARTITIONS,
                  on_delivery=tracker.callback(i))
        p.poll(0)
    cc.flush(p, tracker, timeout=30)
    assert tracker.failures() == [], f"{tracker.failures()[:3]}; client errors {perrors[:3]}"

    group = f"metrics-{topic}"[:200]
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        got, deadline = 0, time.monotonic() + 30
        while got < COUNT and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got += 1
        assert got == COUNT, f"consumed {got} of {COUNT}"
        c.commit(asynchronous=False)
    finally:
        c.close()
    # A KIP-848 group too (group.protocol=consumer), for its epoch gauge.
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": f"{group}-848",
                  "group.protocol": "consumer", "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        assert c.assignment(), "the consumer-protocol member got no assignment"
    finally:
        c.close()

    with gw.connect() as conn:
        res = wire.fetch(conn, 4, topic, {0: 10**9})
        assert res[0].error_code == 1  # OFFSET_OUT_OF_RANGE
    with socket.create_connection((HOST, gw.port), timeout=5) as s:
        s.sendall(struct.pack(">i", -7))
        assert s.recv(16) == b""  # closed for bad input
    # The group lag reporter and the process sampler run every second.
    deadline = time.monotonic() + 10
    while "cxlkafka_consumer_group_lag{" not in scrape(gw):
        assert time.monotonic() < deadline, "no consumer group lag exported"
        time.sleep(0.2)
    return gw, payload


def dashboard_files() -> list[Path]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert len(files) >= 3, files
    return files


def expressions(node) -> list[str]:
    """Every PromQL string of a dashboard: panel targets and variable queries."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("expr", "definition") and isinstance(v, str):
                out.append(v)
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                out.append(v["query"])
            else:
                out += expressions(v)
    elif isinstance(node, list):
        for v in node:
            out += expressions(v)
    return out


def base_name(name: str, types: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)]
    return name


def counter_functions_on_non_counters(expr: str, types: dict[str, str]) -> list[str]:
    """`rate(x)`, `irate(x)` or `increase(x)` where x is not a counter (nor a
    histogram's `_bucket`/`_sum`/`_count`): a gauge wants `deriv()` or
    `delta()`, since these functions read every decrease as a reset."""
    wrong = []
    for fn, name in re.findall(r"\b(rate|irate|increase)\s*\(\s*(cxlkafka_[a-z_]+)", expr):
        base = base_name(name, types)
        kind = types.get(base)
        if not (kind == "counter" or (kind == "histogram" and base != name)):
            wrong.append(f"{fn}({name}) on a {kind}")
    return wrong


def test_promtool_finds_nothing_and_the_dashboards_use_only_exported_metrics(
        start_gateway, topic_name):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: compat-tests/run installs Debian's prometheus"
    gw, _ = run_traffic(start_gateway, topic_name)
    text = scrape(gw)

    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
    report = (check.stdout + check.stderr).decode()
    assert check.returncode == 0 and report.strip() == "", \
        f"promtool check metrics exit {check.returncode}:\n{report}"

    types = families(text)
    assert all(n.startswith("cxlkafka_") for n in types), sorted(types)
    assert types.get("cxlkafka_request_duration_seconds") == "histogram"
    assert types.get("cxlkafka_ordering_lag_seconds") == "histogram"

    spec = importlib.util.spec_from_file_location("cxk_dashboards", DASHBOARDS / "generate.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    used = {}
    for path in dashboard_files():
        committed = path.read_text()
        assert committed == generator.render(generator.DASHBOARDS[path.name]), \
            f"{path.name} is not what dashboards/generate.py writes: rerun it"
        board = json.loads(committed)
        assert board["__inputs"][0]["name"] == "DS_PROMETHEUS"
        variables = {v["name"] for v in board["templating"]["list"]}
        assert {"cluster", "instance"} <= variables, (path.name, variables)
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
                assert panel["targets"], panel["title"]
        for expr in expressions(board):
            for name in re.findall(r"cxlkafka_[a-z_]+", expr):
                used.setdefault(base_name(name, types), set()).add(path.name)
            wrong = counter_functions_on_non_counters(expr, types)
            assert not wrong, f"{path.name}: {wrong} in {expr}"
    missing = {n: sorted(f) for n, f in used.items() if n not in types}
    assert not missing, f"dashboard metrics absent from the scrape: {missing}"
    assert "cxlkafka_consumer_group_lag" in used and "cxlkafka_bytes_in_total" in used


def test_the_alerting_rules_use_only_exported_metrics(start_gateway, topic_name):
    """Every `cxlkafka_*` name in dashboards/alerts.yml (expressions and the
    descriptions that tell the operator what to look at) is in a real
    gateway's scrape after traffic, and counter functions take counters."""
    gw, _ = run_traffic(start_gateway, topic_name)
    types = families(scrape(gw))
    text = ALERTS.read_text()
    names = {base_name(n, types) for n in re.findall(r"cxlkafka_[a-z_]+", text)}
    assert len(names) >= 8, sorted(names)
    missing = sorted(n for n in names if n not in types)
    assert not missing, f"alerts.yml names metrics absent from the scrape: {missing}"
    wrong = counter_functions_on_non_counters(text, types)
    assert not wrong, f"alerts.yml: {wrong}"
    # Besides the gateway's own metrics, only Prometheus's `up` of the job
    # dashboards/prometheus.yml defines.
    assert 'up{job="cxlkafka"} == 0' in text


def test_promtool_accepts_the_alerting_rules_and_their_unit_tests():
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: compat-tests/run installs Debian's prometheus"
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", str(ALERTS_TEST)],
                 ["check", "config", str(DASHBOARDS / "prometheus.yml")]):
        run = subprocess.run([promtool, *args], capture_output=True, timeout=60)
        assert run.returncode == 0, \
            f"promtool {' '.join(args)}: exit {run.returncode}\n{(run.stdout + run.stderr).decode()}"


def test_bytes_in_counts_the_stored_batches(start_gateway, topic_name):
    gw, payload = run_traffic(start_gateway, topic_name)
    sizes = stored_batches(gw, topic_name, PARTITIONS)
    stored = sum(sizes)
    text = scrape(gw)
    series = f'{{topic="{topic_name}"}}'
    assert sample(text, "cxlkafka_bytes_in_total" + series) == stored
    assert sample(text, "cxlkafka_records_in_total" + series) == COUNT
    assert sample(text, "cxlkafka_bytes_out_total" + series) >= stored  # consumer + raw reads
    assert payload < stored <= payload + BATCH_OVERHEAD * len(sizes) + RECORD_FRAMING_MAX * COUNT, \
        (payload, stored, len(sizes))


def prometheus_query(port: int, query: str) -> dict:
    url = f"http://{HOST}:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as resp:
        answer = json.load(resp)
    assert answer["status"] == "success", answer
    return answer["data"]


def test_a_prometheus_server_scrapes_the_bytes_produced(start_gateway, topic_name, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: compat-tests/run installs Debian's prometheus"
    gw, payload = run_traffic(start_gateway, topic_name)
    stored = sum(stored_batches(gw, topic_name, PARTITIONS))

    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - '{ALERTS}'\n"
        "scrape_configs:\n  - job_name: cxlkafka\n    static_configs:\n"
        f"      - targets: ['{HOST}:{gw.metrics_port}']\n        labels:\n          cluster: test\n")
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address={HOST}:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        value = None
        query = f'sum(cxlkafka_bytes_in_total{{cluster="test",topic="{topic_name}"}})'
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                result = prometheus_query(port, query)["result"]
            except OSError:
                result = []
            if result:
                value = float(result[0]["value"][1])
                if value == stored:
                    break
            time.sleep(0.5)
        assert value == stored, f"Prometheus says {value}, the stored batches are {stored} bytes"
        assert payload < value

        # Every dashboard expression is valid PromQL to this Prometheus, and
        # the unfiltered overview/sequencer queries return series.
        for path in dashboard_files():
            for expr in expressions(json.loads(path.read_text())):
                if expr.startswith("label_values("):
                    inner = expr[len("label_values("):expr.rindex(",")]
                    expr = f"count({inner})"
                promql = (expr.replace("$__rate_interval", "5s")
                          .replace("$cluster", ".*").replace("$instance", ".*")
                          .replace("$topic", ".*").replace("$group", ".*"))
                prometheus_query(port, promql)
        # A rate needs two scrapes of the counter.
        deadline = time.monotonic() + 10
        while not prometheus_query(
                port, 'sum(rate(cxlkafka_requests_total{cluster="test"}[5s]))')["result"]:
            assert time.monotonic() < deadline, "no request rate after 10 s of scrapes"
            time.sleep(0.5)

        # The alerting rules load and evaluate against this gateway's series
        # without error, and none fires on a healthy gateway.
        deadline = time.monotonic() + 15
        while True:
            url = f"http://{HOST}:{port}/api/v1/rules"
            with urllib.request.urlopen(url, timeout=10) as resp:
                groups = json.load(resp)["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            if rules and all(r["health"] != "unknown" for r in rules):
                break
            assert time.monotonic() < deadline, f"rules not evaluated after 15 s: {rules}"
            time.sleep(0.5)
        assert len(rules) == ALERTS.read_text().count("- alert: "), rules
        bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        assert not bad, f"alerting rules failing to evaluate: {bad}"
        firing = [(r["name"], a["labels"]) for r in rules for a in r.get("alerts", [])
                  if a["state"] == "firing"]
        assert not firing, f"alerts firing on a healthy gateway: {firing}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_error_counters_exist_at_zero_before_any_error(start_gateway):
    """A fresh gateway exports its error counters at 0, so the first error
    is an increase an alert sees (a series born at 1 shows none)."""
    gw = start_gateway()
    text = scrape(gw)
    for series in ('cxlkafka_protocol_errors_total{reason="frame_too_large"}',
                   'cxlkafka_protocol_errors_total{reason="malformed_request"}',
                   'cxlkafka_limit_closes_total{limit="idle_timeout"}',
                   'cxlkafka_limit_waits_total{limit="max_in_flight"}',
                   'cxlkafka_request_errors_total{api="Produce",code="6"}',
                   'cxlkafka_request_errors_total{api="Produce",code="19"}',
                   'cxlkafka_request_errors_total{api="Fetch",code="1"}',
                   'cxlkafka_region_full_total',
                   'cxlkafka_offset_commits_lost_total'):
        assert sample(text, series) == 0, series


def gauge_series(text: str, types: dict[str, str]) -> list[str]:
    """Every sample line of a gauge family, as `name{labels}`."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series = line.rsplit(" ", 1)[0]
        if types.get(series.split("{", 1)[0]) == "gauge":
            out.append(series)
    return out


def test_series_of_a_deleted_topic_and_group_leave_and_live_gauges_stay(start_gateway, topic_name):
    """Gauges and counters of a deleted topic and group leave the scrape
    after the idle timeout; every other gauge is set again by its keeper and
    stays, and so does every other counter, idle or not."""
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient

    gw = start_gateway(metrics_idle_timeout_ms=15000, group_initial_rebalance_delay_ms=0)
    group = f"gone-{topic_name}"
    p = Producer({"bootstrap.servers": gw.bootstrap})
    for i in range(10):
        p.produce(topic_name, f"v{i}".encode())
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": gw.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic_name])
    got, deadline = 0, time.monotonic() + 30
    while got < 10 and time.monotonic() < deadline:
        got += sum(1 for m in c.consume(10, 0.5) if m.error() is None)
    assert got == 10
    c.commit(asynchronous=False)
    c.close()

    mine = (f'topic="{topic_name}"', f'group="{group}"')
    deadline = time.monotonic() + 20
    while True:  # the partition gauges are set every 10 s, the lag every second
        text = scrape(gw)
        types = families(text)
        present = [s for s in gauge_series(text, types) if any(m in s for m in mine)]
        if {s.split("{")[0] for s in present} >= {"cxlkafka_partition_log_end_offset",
                                                  "cxlkafka_consumer_group_lag"}:
            break
        assert time.monotonic() < deadline, f"no partition or lag gauges: {present}"
        time.sleep(0.5)
    assert sample(text, f'cxlkafka_partition_log_end_offset{{topic="{topic_name}",partition="0"}}') == 10
    before = {s.split("{")[0] for s in gauge_series(text, types)}

    admin = AdminClient({"bootstrap.servers": gw.bootstrap})
    admin.delete_consumer_groups([group])[group].result(timeout=20)
    admin.delete_topics([topic_name])[topic_name].result(timeout=20)

    assert sample(text, f'cxlkafka_bytes_in_total{{topic="{topic_name}"}}') > 0
    deadline = time.monotonic() + 45
    while True:
        text = scrape(gw)
        left = [line.rsplit(" ", 1)[0] for line in text.splitlines()
                if not line.startswith("#") and any(m in line for m in mine)]
        if not left:
            break
        assert time.monotonic() < deadline, f"series of the deleted topic and group stay: {left}"
        time.sleep(1)
    # Counters that did not move for longer than the idle timeout stay.
    assert sample(text, 'cxlkafka_protocol_errors_total{reason="frame_too_large"}') == 0
    assert sample(text, 'cxlkafka_requests_total{api="Produce"}') > 0
    # Past the idle timeout: every gauge family that describes something
    # still there is in the scrape.
    after = {s.split("{")[0] for s in gauge_series(text, families(text))}
    gone = sorted(before - after - {"cxlkafka_consumer_group_lag",
                                    "cxlkafka_consumer_group_members",
                                    "cxlkafka_consumer_group_epoch",
                                    "cxlkafka_partition_log_end_offset",
                                    "cxlkafka_partition_log_start_offset",
                                    "cxlkafka_partition_size_bytes"})
    assert not gone, f"live gauges left the scrape: {gone}"
    assert {"cxlkafka_connections", "cxlkafka_build_info", "cxlkafka_sequencer_lease_held",
            "cxlkafka_region_fenced", "cxlkafka_replica_direct_io"} <= after
