#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder (cxlkafka-*.json).

The JSON files are this script's output, committed so they can be imported
as they are; edit this script and rerun it (`python3 dashboards/generate.py`)
rather than editing the JSON. compat-tests/test_metrics.py checks that the
committed JSON is what this script writes, and that every metric its
expressions use is in a real gateway's /metrics.

Every dashboard is importable (Dashboards > New > Import): the datasource is
the `${DS_PROMETHEUS}` input Grafana asks for, and the variables `cluster`
(the label dashboards/prometheus.yml puts on every target), `instance` (one
gateway) and, where it applies, `topic` or `group` filter every panel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'cluster=~"$cluster",instance=~"$instance"'
RATE = "$__rate_interval"


def variable(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"var-{name}"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


CLUSTER = variable("cluster", "Cluster", "label_values(cxlkafka_build_info, cluster)")
INSTANCE = variable("instance", "Gateway",
                    'label_values(cxlkafka_build_info{cluster=~"$cluster"}, instance)')
TOPIC = variable("topic", "Topic",
                 'label_values(cxlkafka_records_in_total{cluster=~"$cluster"}, topic)')
GROUP = variable("group", "Group",
                 'label_values(cxlkafka_consumer_group_members{cluster=~"$cluster"}, group)')


def panel(title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int,
          w: int = 12, h: int = 8, kind: str = "timeseries", description: str = "") -> dict:
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "calcs": ["mean", "max", "lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [
            {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if kind == "table":
        p["options"] = {"showHeader": True}
        for t in p["targets"]:
            t["instant"] = True
            t["format"] = "table"
    return p


def row(title: str, y: int) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def dashboard(uid: str, title: str, description: str, variables: list[dict],
              panels: list[dict]) -> dict:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "__inputs": [{
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": "The Prometheus that scrapes the gateways (dashboards/prometheus.yml)",
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
        ],
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["cxlkafka"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["cxlkafka"], "asDropdown": True,
                   "title": "cxlkafka", "includeVars": True, "keepTime": True}],
        "templating": {"list": variables},
        "panels": panels,
    }


def quantiles(metric: str, by: str, extra: str = "") -> list[tuple[str, str]]:
    sel = SEL + extra
    out = []
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        by_le = f"{by}, le" if by else "le"
        legend = f"{{{{{by}}}}} {name}" if by else name
        out.append((f"histogram_quantile({q}, sum by ({by_le}) "
                    f"(rate({metric}_bucket{{{sel}}}[{RATE}])))", legend))
    return out


def overview() -> dict:
    t = SEL + ',topic=~"$topic"'
    panels = [
        row("Throughput", 0),
        panel("Bytes in / s by topic",
              [(f"sum by (topic) (rate(cxlkafka_bytes_in_total{{{t}}}[{RATE}]))", "{{topic}}")],
              "Bps", 0, 1, description="Record batch bytes produced and ordered."),
        panel("Bytes out / s by topic",
              [(f"sum by (topic) (rate(cxlkafka_bytes_out_total{{{t}}}[{RATE}]))", "{{topic}}")],
              "Bps", 12, 1, description="Record batch bytes returned by Fetch."),
        panel("Records in / s by topic",
              [(f"sum by (topic) (rate(cxlkafka_records_in_total{{{t}}}[{RATE}]))", "{{topic}}")],
              "rps", 0, 9),
        panel("Records out / s by topic",
              [(f"sum by (topic) (rate(cxlkafka_records_out_total{{{t}}}[{RATE}]))", "{{topic}}")],
              "rps", 12, 9),
        row("Requests", 17),
        panel("Requests / s by API",
              [(f"sum by (api) (rate(cxlkafka_requests_total{{{SEL}}}[{RATE}]))", "{{api}}")],
              "reqps", 0, 18),
        panel("Error codes / s by API and code",
              [(f"sum by (api, code) (rate(cxlkafka_request_errors_total{{{SEL}}}[{RATE}]))",
                "{{api}} code {{code}}")],
              "reqps", 12, 18,
              description="Non-zero Kafka error codes in responses (code is Kafka's numeric code)."),
        panel("Request latency p50 / p99 by API",
              quantiles("cxlkafka_request_duration_seconds", "api"), "s", 0, 26, w=24,
              description="From a request frame read to its response ready (histogram_quantile)."),
        row("Connections and process", 34),
        panel("Open connections by gateway",
              [(f"sum by (instance) (cxlkafka_connections{{{SEL}}})", "{{instance}}")],
              "short", 0, 35, w=8),
        panel("Connections accepted and closed for bad input / s",
              [(f"sum by (instance) (rate(cxlkafka_connections_total{{{SEL}}}[{RATE}]))",
                "accepted {{instance}}"),
               (f"sum by (reason) (rate(cxlkafka_protocol_errors_total{{{SEL}}}[{RATE}]))",
                "bad input: {{reason}}")],
              "cps", 8, 35, w=8),
        panel("Gateway process",
              [(f"deriv(cxlkafka_process_cpu_seconds{{{SEL}}}[{RATE}])", "CPU cores {{instance}}"),
               (f"cxlkafka_process_threads{{{SEL}}}", "threads {{instance}}")],
              "short", 16, 35, w=8),
        panel("Resident memory by gateway",
              [(f"cxlkafka_process_resident_memory_bytes{{{SEL}}}", "{{instance}}")],
              "bytes", 0, 43, w=12),
        panel("Gateways up (version)",
              [(f"sum by (version) (cxlkafka_build_info{{{SEL}}})", "{{version}}")],
              "short", 12, 43, w=12, kind="stat"),
        row("Partitions", 51),
        panel("Size by topic",
              [(f"sum by (topic) (max by (topic, partition) (cxlkafka_partition_size_bytes{{{t}}}))",
                "{{topic}}")],
              "bytes", 0, 52,
              description="Bytes of each partition's batches from its log start on, summed per "
                          "topic (every gateway reports every partition: max over gateways)."),
        panel("Log end offset by partition",
              [(f"max by (topic, partition) (cxlkafka_partition_log_end_offset{{{t}}})",
                "{{topic}} {{partition}}"),
               (f"max by (topic, partition) (cxlkafka_partition_log_start_offset{{{t}}})",
                "start {{topic}} {{partition}}")],
              "short", 12, 52,
              description="Log end and start offsets; a start moving up is retention or "
                          "DeleteRecords."),
    ]
    return dashboard("cxlkafka-overview", "cxlkafka / Overview",
                     "Throughput, requests, latency and errors of cxlkafka gateways.",
                     [CLUSTER, INSTANCE, TOPIC], panels)


def sequencer() -> dict:
    panels = [
        row("Sequencer", 0),
        panel("Batches ordered / answered per second",
              [(f"sum (rate(cxlkafka_sequencer_batches_ordered_total{{{SEL}}}[{RATE}]))", "ordered"),
               (f"sum (rate(cxlkafka_sequencer_batches_answered_total{{{SEL}}}[{RATE}]))",
                "answered without ordering")],
              "ops", 0, 1, description="Only the gateway holding the sequencer lease orders."),
        panel("Ordering lag p50 / p99 (publish to completion)",
              quantiles("cxlkafka_ordering_lag_seconds", "instance"), "s", 12, 1),
        panel("Sequencer scan passes / s",
              [(f"sum by (instance) (rate(cxlkafka_sequencer_scan_passes_total{{{SEL}}}[{RATE}]))",
                "passes {{instance}}"),
               (f"sum by (instance) (rate(cxlkafka_sequencer_order_log_full_passes_total"
                f"{{{SEL}}}[{RATE}]))", "order log full {{instance}}")],
              "ops", 0, 9),
        panel("Sequencer lease holder",
              [(f"cxlkafka_sequencer_lease_held{{{SEL}}}", "{{instance}}")],
              "short", 12, 9, description="1 on the gateway holding the lease."),
        row("Region", 17),
        panel("Arena use by gateway",
              [(f"cxlkafka_arena_used_bytes{{{SEL}}} / cxlkafka_arena_size_bytes{{{SEL}}}",
                "{{instance}}")],
              "percentunit", 0, 18,
              description="Share of the gateway's arena holding batches not yet consumed by the sequencer."),
        panel("Arena bytes used and region size",
              [(f"cxlkafka_arena_used_bytes{{{SEL}}}", "arena used {{instance}}"),
               (f"cxlkafka_arena_size_bytes{{{SEL}}}", "arena size {{instance}}"),
               (f"max (cxlkafka_region_size_bytes{{{SEL}}})", "region size")],
              "bytes", 12, 18),
        panel("Order log: entries applied / s",
              [(f"deriv(cxlkafka_order_log_applied_sequence{{{SEL}}}[{RATE}])", "{{instance}}")],
              "ops", 0, 26),
        panel("Order log lag (entries not yet applied)",
              [(f"cxlkafka_order_log_lag_entries{{{SEL}}}", "{{instance}}")],
              "short", 12, 26),
    ]
    return dashboard("cxlkafka-sequencer-region", "cxlkafka / Sequencer and region",
                     "The sequencer's ordering rate and lag, arena and order-log use per gateway.",
                     [CLUSTER, INSTANCE], panels)


def groups() -> dict:
    g = SEL + ',group=~"$group"'
    panels = [
        row("Consumer groups", 0),
        panel("Lag by group and topic",
              [(f"sum by (group, topic) (cxlkafka_consumer_group_lag{{{g}}})", "{{group}} {{topic}}")],
              "short", 0, 1,
              description="High watermark minus committed offset, summed over partitions."),
        panel("Members by group",
              [(f"sum by (group) (cxlkafka_consumer_group_members{{{g}}})", "{{group}}")],
              "short", 12, 1),
        panel("Rebalances by group (consumer protocol)",
              [(f"sum by (group) (delta(cxlkafka_consumer_group_epoch{{{g}}}[{RATE}]))",
                "{{group}}")],
              "short", 0, 9,
              description="Group epoch moves of KIP-848 (group.protocol=consumer) groups over "
                          "the window: one per member joining or leaving, subscription change "
                          "or subscribed topic change."),
        panel("Group epoch (consumer protocol)",
              [(f"max by (group) (cxlkafka_consumer_group_epoch{{{g}}})", "{{group}}")],
              "short", 12, 9),
        panel("Lag by partition",
              [(f"sum by (group, topic, partition) (cxlkafka_consumer_group_lag{{{g}}})", "")],
              "short", 0, 17, w=24, kind="table"),
        row("Transactions", 25),
        panel("Open transactions",
              [(f"sum by (instance) (cxlkafka_transactions_open{{{SEL}}})", "{{instance}}")],
              "short", 0, 26,
              description="Ongoing or completing transactions among the transactional ids each "
                          "gateway coordinates. One that stays open holds back the last stable "
                          "offset of its partitions (read_committed consumers wait): find it "
                          "with kafka-transactions.sh list / describe."),
        panel("Transactions ended",
              [(f"sum by (result) (rate(cxlkafka_transactions_ended_total{{{SEL}}}[{RATE}]))",
                "{{result}}")],
              "ops", 8, 26),
        panel("Transactions aborted by timeout",
              [(f"sum by (instance) (rate(cxlkafka_transactions_timed_out_total{{{SEL}}}[{RATE}]))",
                "{{instance}}")],
              "ops", 16, 26,
              description="Transactions a coordinator aborted because they passed their "
                          "transaction.timeout.ms: a producer that died or stalled mid-transaction."),
    ]
    return dashboard("cxlkafka-consumer-groups", "cxlkafka / Consumer groups and transactions",
                     "Lag and membership of the consumer groups the gateways coordinate; "
                     "the transactions they coordinate.",
                     [CLUSTER, INSTANCE, GROUP], panels)


def durability() -> dict:
    panels = [
        row("Disk tier", 0),
        panel("Bytes copied to disk / s",
              [(f"sum by (instance) (rate(cxlkafka_replica_copied_bytes_total{{{SEL}}}[{RATE}]))",
                "{{instance}}")],
              "Bps", 0, 1,
              description="Payload bytes each gateway copies from the region into its segments."),
        panel("Replica durable lag (entries ordered, not yet fsynced)",
              [(f"cxlkafka_replica_durable_lag_entries{{{SEL}}}", "{{instance}}")],
              "short", 12, 1,
              description="acks=all waits for this to pass a batch on replication_factor - 1 gateways."),
        panel("Group-commit fsync p50 / p99",
              quantiles("cxlkafka_replica_fsync_seconds", "instance"), "s", 0, 9),
        panel("fsyncs / s",
              [(f"sum by (instance) (rate(cxlkafka_replica_fsyncs_total{{{SEL}}}[{RATE}]))",
                "{{instance}}")],
              "ops", 12, 9),
        panel("Segment bytes by gateway",
              [(f"cxlkafka_segment_bytes{{{SEL}}}", "{{instance}}")], "bytes", 0, 17),
        panel("Disk tier errors and missed entries",
              [(f"sum by (instance) (increase(cxlkafka_replica_write_errors_total{{{SEL}}}[{RATE}]))",
                "write/fsync errors {{instance}}"),
               (f"sum by (instance) (increase(cxlkafka_replica_missed_entries_total{{{SEL}}}[{RATE}]))",
                "entries missed {{instance}}")],
              "short", 12, 17,
              description="Any write error stops the gateway's disk tier; missed entries were recycled "
                          "while the gateway was down or paused (it copies them from a holder at its next start)."),
        row("Copies", 25),
        panel("Under-replicated partitions",
              [(f"max (cxlkafka_under_replicated_partitions{{{SEL}}})", "partitions")],
              "short", 0, 26, w=8,
              description="Partitions whose replication factor asks for more complete disk copies than "
                          "live gateways hold."),
        panel("Where each gateway's copy starts (holds_from)",
              [(f"cxlkafka_replica_holds_from_sequence{{{SEL}}}", "{{instance}}")],
              "short", 8, 26, w=8,
              description="A gateway above the others lacks entries (joined late without a holder to copy "
                          "from, or missed entries while paused): it leads nothing until it copies them."),
        panel("Peer copies: entries / s",
              [(f"sum by (instance) (rate(cxlkafka_peer_copy_entries_total{{{SEL}}}[{RATE}]))",
                "copied in {{instance}}"),
               (f"sum by (instance) (rate(cxlkafka_peer_served_entries_total{{{SEL}}}[{RATE}]))",
                "served {{instance}}"),
               (f"sum by (instance, reason) (rate(cxlkafka_peer_copy_refused_total{{{SEL}}}[{RATE}]))",
                "refused {{instance}} {{reason}}")],
              "ops", 16, 26, w=8),
        row("Retention", 34),
        panel("Log starts moved by retention / s",
              [(f"sum (rate(cxlkafka_retention_log_start_moves_total{{{SEL}}}[{RATE}]))", "moves")],
              "ops", 0, 35),
        panel("Segment bytes deleted by retention / s",
              [(f"sum by (instance) (rate(cxlkafka_retention_deleted_bytes_total{{{SEL}}}[{RATE}]))",
                "{{instance}}"),
               (f"sum by (instance) (rate(cxlkafka_retention_deleted_segments_total{{{SEL}}}[{RATE}]))",
                "segments {{instance}}")],
              "Bps", 12, 35),
    ]
    return dashboard("cxlkafka-durability", "cxlkafka / Durability and retention",
                     "The disk tier: copies, fsyncs, durable lag, segment bytes, retention deletions.",
                     [CLUSTER, INSTANCE], panels)


DASHBOARDS = {
    "cxlkafka-durability.json": durability,
    "cxlkafka-overview.json": overview,
    "cxlkafka-sequencer-region.json": sequencer,
    "cxlkafka-consumer-groups.json": groups,
}


def render(build) -> str:
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(render(build))
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
