//! Metrics the gateway's protocol layer exports, and the Prometheus exporter.
//!
//! Every metric is recorded through the `metrics` crate macros, so the code
//! that records stays independent of the exporter; `cxlkafka serve` installs
//! the Prometheus exporter ([`install_prometheus`]) and tests install a plain
//! recorder built by [`prometheus_builder`] to read the exposition directly.
//!
//! The catalog of every metric (name, type, labels, meaning) is
//! `docs/metrics.md`; `gateway/tests/metric_catalog.rs` fails when a metric
//! named anywhere in `gateway/src` is missing from it, or when traffic
//! produces a metric the catalog does not list.
//!
//! `api` values are Kafka's own API names (`ApiVersions`, `Produce`, ...), as
//! Kafka's `kafka.network:type=RequestMetrics,request=...` uses them, so the
//! dashboards read the same for both.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kafka_protocol::ResponseError;
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;

use crate::counter_keeper::KeptRecorder;
use crate::error::CloseReason;

/// Requests decoded and handed to a handler, by `api`.
pub const REQUESTS_TOTAL: &str = "cxlkafka_requests_total";
/// Responses carrying a Kafka error code, by `api` and `code`.
pub const REQUEST_ERRORS_TOTAL: &str = "cxlkafka_request_errors_total";
/// Request latency, by `api`.
pub const REQUEST_DURATION_SECONDS: &str = "cxlkafka_request_duration_seconds";
/// Open client connections.
pub const CONNECTIONS: &str = "cxlkafka_connections";
/// Client connections accepted.
pub const CONNECTIONS_TOTAL: &str = "cxlkafka_connections_total";
/// Connections closed because of bad input, by `reason`.
pub const PROTOCOL_ERRORS_TOTAL: &str = "cxlkafka_protocol_errors_total";
/// Failed `accept()` calls.
pub const ACCEPT_ERRORS_TOTAL: &str = "cxlkafka_accept_errors_total";
/// Connections the gateway closed because they reached a limit, by `limit`
/// (see [`crate::limits`]).
pub const LIMIT_CLOSES_TOTAL: &str = "cxlkafka_limit_closes_total";
/// Times a limit made the gateway wait (stop accepting, stop reading a
/// connection) instead of failing anything, by `limit`.
pub const LIMIT_WAITS_TOTAL: &str = "cxlkafka_limit_waits_total";
/// Record batch bytes produced and ordered, by `topic`.
pub const BYTES_IN_TOTAL: &str = "cxlkafka_bytes_in_total";
/// Records produced and ordered, by `topic`.
pub const RECORDS_IN_TOTAL: &str = "cxlkafka_records_in_total";
/// Record batch bytes returned by Fetch, by `topic`.
pub const BYTES_OUT_TOTAL: &str = "cxlkafka_bytes_out_total";
/// Records in the batches Fetch returned, by `topic`.
pub const RECORDS_OUT_TOTAL: &str = "cxlkafka_records_out_total";

/// High watermark minus committed offset, by `group`, `topic`, `partition`.
pub const CONSUMER_GROUP_LAG: &str = "cxlkafka_consumer_group_lag";
/// Members of a consumer group, by `group`.
pub const CONSUMER_GROUP_MEMBERS: &str = "cxlkafka_consumer_group_members";
/// Group epoch of a consumer-protocol group (KIP-848), by `group`: it
/// moves once per rebalance.
pub const CONSUMER_GROUP_EPOCH: &str = "cxlkafka_consumer_group_epoch";
/// Open transactions (ongoing or being completed) among the transactional
/// ids this gateway coordinates.
pub const TRANSACTIONS_OPEN: &str = "cxlkafka_transactions_open";
/// Transactions this gateway's coordinator ended, by `result` (`commit`,
/// `abort`).
pub const TRANSACTIONS_ENDED_TOTAL: &str = "cxlkafka_transactions_ended_total";
/// Transactions this gateway's coordinator aborted because they passed
/// their `transaction.timeout.ms`.
pub const TRANSACTIONS_TIMED_OUT_TOTAL: &str = "cxlkafka_transactions_timed_out_total";
/// A partition's log end offset (its high watermark), by `topic` and
/// `partition`.
pub const PARTITION_LOG_END_OFFSET: &str = "cxlkafka_partition_log_end_offset";
/// A partition's log start offset, by `topic` and `partition`.
pub const PARTITION_LOG_START_OFFSET: &str = "cxlkafka_partition_log_start_offset";
/// Bytes of a partition's batches from its log start on, by `topic` and
/// `partition`.
pub const PARTITION_SIZE_BYTES: &str = "cxlkafka_partition_size_bytes";

/// Batches the sequencer gave a place in the total order (lease holder only).
pub const SEQUENCER_BATCHES_ORDERED_TOTAL: &str = "cxlkafka_sequencer_batches_ordered_total";
/// Slots the sequencer answered without ordering (duplicates, refusals).
pub const SEQUENCER_BATCHES_ANSWERED_TOTAL: &str = "cxlkafka_sequencer_batches_answered_total";
/// Scans of every gateway's ring by the sequencer, empty ones included.
pub const SEQUENCER_SCAN_PASSES_TOTAL: &str = "cxlkafka_sequencer_scan_passes_total";
/// Scans cut short because a live gateway lags a whole order log behind.
pub const SEQUENCER_ORDER_LOG_FULL_TOTAL: &str = "cxlkafka_sequencer_order_log_full_passes_total";
/// 1 while this gateway holds the sequencer lease, else 0.
pub const SEQUENCER_LEASE_HELD: &str = "cxlkafka_sequencer_lease_held";
/// Publish (batch header written) to completion seen by this gateway.
pub const ORDERING_LAG_SECONDS: &str = "cxlkafka_ordering_lag_seconds";
/// Bytes of the shared region's layout.
pub const REGION_SIZE_BYTES: &str = "cxlkafka_region_size_bytes";
/// This gateway's payload arena capacity.
pub const ARENA_SIZE_BYTES: &str = "cxlkafka_arena_size_bytes";
/// This gateway's arena bytes reserved and not yet released.
pub const ARENA_USED_BYTES: &str = "cxlkafka_arena_used_bytes";
/// Last order-log sequence this gateway's index applied.
pub const ORDER_LOG_APPLIED_SEQUENCE: &str = "cxlkafka_order_log_applied_sequence";
/// Order-log entries the sequencer wrote that this gateway has not applied.
pub const ORDER_LOG_LAG_ENTRIES: &str = "cxlkafka_order_log_lag_entries";
/// 1 once this gateway found the region it mapped unlinked, replaced or
/// formatted again (it then acknowledges nothing and exits), else 0.
pub const REGION_FENCED: &str = "cxlkafka_region_fenced";
/// Publishes refused because the ring or arena stayed full until the deadline.
pub const REGION_FULL_TOTAL: &str = "cxlkafka_region_full_total";
/// Offset commits recycled before this gateway could read them.
pub const OFFSET_COMMITS_LOST_TOTAL: &str = "cxlkafka_offset_commits_lost_total";
/// SASL authentications finished, by mechanism and outcome.
pub const SASL_AUTHENTICATIONS_TOTAL: &str = "cxlkafka_sasl_authentications_total";
/// Failed SASL authentications answered after
/// `--connection-failed-authentication-delay-ms`, by mechanism.
pub const SASL_DELAYED_FAILURES_TOTAL: &str = "cxlkafka_sasl_delayed_failures_total";
/// TLS handshakes that failed or timed out.
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "cxlkafka_tls_handshake_failures_total";
/// Operations the authorizer denied, by API.
pub const AUTHORIZATION_DENIED_TOTAL: &str = "cxlkafka_authorization_denied_total";
/// User or ACL changes recycled before this gateway could read them.
pub const SECURITY_RECORDS_LOST_TOTAL: &str = "cxlkafka_security_records_lost_total";
/// Dynamic broker config changes recycled before this gateway could read
/// them.
pub const BROKER_CONFIG_RECORDS_LOST_TOTAL: &str = "cxlkafka_broker_config_records_lost_total";
/// Payload bytes the disk tier copied from the region into segments.
pub const REPLICA_COPIED_BYTES_TOTAL: &str = "cxlkafka_replica_copied_bytes_total";
/// Ordered entries this gateway's segments lack (gone from the region first).
pub const REPLICA_MISSED_ENTRIES_TOTAL: &str = "cxlkafka_replica_missed_entries_total";
/// Segment writes or fsyncs that failed.
pub const REPLICA_WRITE_ERRORS_TOTAL: &str = "cxlkafka_replica_write_errors_total";
/// 1 while the disk tier writes data files with O_DIRECT, 0 when the
/// filesystem refused it and they go through the page cache.
pub const REPLICA_DIRECT_IO: &str = "cxlkafka_replica_direct_io";
/// Lowest order sequence from which this gateway's disk holds every entry.
pub const REPLICA_HOLDS_FROM_SEQUENCE: &str = "cxlkafka_replica_holds_from_sequence";
/// Entries this gateway copied into its segments from a peer's segments
/// (over the peer-copy listener) because they had left the region.
pub const PEER_COPY_ENTRIES_TOTAL: &str = "cxlkafka_peer_copy_entries_total";
/// Payload bytes of those entries.
pub const PEER_COPY_BYTES_TOTAL: &str = "cxlkafka_peer_copy_bytes_total";
/// Entries this gateway's peer-copy listener sent to peers.
pub const PEER_SERVED_ENTRIES_TOTAL: &str = "cxlkafka_peer_served_entries_total";
/// Peer-copy connections refused or cut, by `reason`.
pub const PEER_COPY_REFUSED_TOTAL: &str = "cxlkafka_peer_copy_refused_total";
/// Partitions with fewer complete disk copies on live gateways than their
/// replication factor asks for.
pub const UNDER_REPLICATED_PARTITIONS: &str = "cxlkafka_under_replicated_partitions";
/// Group-commit fsyncs of the disk tier.
pub const REPLICA_FSYNCS_TOTAL: &str = "cxlkafka_replica_fsyncs_total";
/// Time one group-commit fsync took.
pub const REPLICA_FSYNC_SECONDS: &str = "cxlkafka_replica_fsync_seconds";
/// Highest global sequence durable on this gateway's disk.
pub const REPLICA_DURABLE_SEQUENCE: &str = "cxlkafka_replica_durable_sequence";
/// Entries ordered but not yet durable on this gateway's disk.
pub const REPLICA_DURABLE_LAG_ENTRIES: &str = "cxlkafka_replica_durable_lag_entries";
/// Bytes of this gateway's segment files.
pub const SEGMENT_BYTES: &str = "cxlkafka_segment_bytes";
/// Log starts retention moved (DeleteRecords it published).
pub const RETENTION_LOG_START_MOVES_TOTAL: &str = "cxlkafka_retention_log_start_moves_total";
/// Segment files retention deleted.
pub const RETENTION_DELETED_SEGMENTS_TOTAL: &str = "cxlkafka_retention_deleted_segments_total";
/// Bytes of the segment files retention deleted.
pub const RETENTION_DELETED_BYTES_TOTAL: &str = "cxlkafka_retention_deleted_bytes_total";
/// Resident set size of the gateway process.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "cxlkafka_process_resident_memory_bytes";
/// User plus system CPU time of the gateway process since start.
pub const PROCESS_CPU_SECONDS: &str = "cxlkafka_process_cpu_seconds";
/// Threads of the gateway process.
pub const PROCESS_THREADS: &str = "cxlkafka_process_threads";
/// Always 1, labelled with the gateway's version.
pub const BUILD_INFO: &str = "cxlkafka_build_info";

/// How often [`install_prometheus`]'s task samples `/proc/self`.
pub const PROCESS_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Histogram buckets for the ordering lag, in seconds: from 5 µs (sequencer
/// and completion thread both spinning) to 2.5 s (a lease handover).
pub const ORDERING_LAG_BUCKETS_SECONDS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Histogram buckets for request latency, in seconds.
///
/// From 50 µs (an ApiVersions or Metadata answered from memory on loopback)
/// to 30 s (the longest a long-poll Fetch or an acks=all Produce should ever
/// wait); roughly 2-2.5x apart so p99 is readable in every decade.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A Prometheus builder with our histogram buckets, no exporter attached.
///
/// Every `*_seconds` histogram gets [`LATENCY_BUCKETS_SECONDS`]; without
/// explicit buckets the exporter would render summaries, which cannot be
/// aggregated across gateways.
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    // A full-name matcher wins over a suffix matcher in the exporter.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            LATENCY_BUCKETS_SECONDS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(ORDERING_LAG_SECONDS.to_owned()),
            ORDERING_LAG_BUCKETS_SECONDS,
        )
}

/// How long a gauge or counter not touched stays in the scrape by default
/// (`--metrics-idle-timeout-ms`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs the global Prometheus recorder and serves `/metrics` over HTTP on
/// `addr`.
///
/// A gauge or counter that is not touched for `idle_timeout` leaves the
/// scrape: that is how the series of a deleted topic or group, or of a
/// group now coordinated elsewhere, go away (the `metrics` facade cannot
/// unregister a series). Every gauge that describes something still there
/// is set again well within it: the heartbeat's region gauges, the
/// replicator's and syncer's, the sequencer lease loop's,
/// [`record_process`] (process, build and connection gauges) and the group
/// and partition reporters (`groups::GroupRegistry::ensure_reporter`,
/// `partition_metrics`). Counters are touched by
/// [`crate::counter_keeper`], all but those of deleted topics. Histograms
/// never leave.
///
/// Must run inside a Tokio runtime: the HTTP listener and the recorder's
/// upkeep task are spawned onto it. Fails if the address cannot be bound or a
/// global recorder is already installed.
pub fn install_prometheus(addr: SocketAddr, idle_timeout: Duration) -> Result<(), String> {
    let (recorder, exporter) = prometheus_builder()
        .map_err(|error| error.to_string())?
        .idle_timeout(
            MetricKindMask::GAUGE | MetricKindMask::COUNTER,
            Some(idle_timeout),
        )
        .with_http_listener(addr)
        .build()
        .map_err(|error| error.to_string())?;
    metrics::set_global_recorder(KeptRecorder::new(recorder))
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
    tokio::spawn(exporter);
    describe();
    export_error_counters_at_zero();
    tokio::spawn(async {
        let mut interval = tokio::time::interval(PROCESS_SAMPLE_INTERVAL);
        loop {
            interval.tick().await;
            record_process();
        }
    });
    Ok(())
}

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat`: the
/// kernel exports them in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// Samples RSS, threads and CPU time of this process from `/proc/self`
/// (metrics-exporter-prometheus has no process collector). Does nothing
/// where `/proc` is unreadable.
pub fn record_process() {
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(CONNECTIONS).set(OPEN_CONNECTIONS.load(Ordering::Relaxed) as f64);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
        };
        if let Some(kib) = field("VmRSS:") {
            metrics::gauge!(PROCESS_RESIDENT_MEMORY_BYTES).set((kib * 1024) as f64);
        }
        if let Some(threads) = field("Threads:") {
            metrics::gauge!(PROCESS_THREADS).set(threads as f64);
        }
    }
    if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(cpu_ticks)
    {
        metrics::gauge!(PROCESS_CPU_SECONDS).set(ticks as f64 / USER_HZ);
    }
}

/// utime + stime from the text of `/proc/<pid>/stat`. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last
/// `)`: state is field 3, utime 14, stime 15.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Registers help text and units for every metric above, so the exposition
/// carries `# HELP` lines even before a metric is first recorded.
pub fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Kafka requests decoded and handed to a handler, by API."
    );
    describe_counter!(
        REQUEST_ERRORS_TOTAL,
        Unit::Count,
        "Kafka responses carrying a non-zero error code, by API and numeric code."
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request frame being read to its response being ready, by API."
    );
    describe_gauge!(CONNECTIONS, Unit::Count, "Open client connections.");
    describe_counter!(
        CONNECTIONS_TOTAL,
        Unit::Count,
        "Client connections accepted since start."
    );
    describe_counter!(
        PROTOCOL_ERRORS_TOTAL,
        Unit::Count,
        "Connections closed because of malformed or unsupported input, by reason."
    );
    describe_counter!(
        ACCEPT_ERRORS_TOTAL,
        Unit::Count,
        "Failed accept() calls on the Kafka listener."
    );
    describe_counter!(
        LIMIT_CLOSES_TOTAL,
        Unit::Count,
        "Connections closed because they reached a limit (max_connections_per_ip, idle_timeout, write_timeout)."
    );
    describe_counter!(
        LIMIT_WAITS_TOTAL,
        Unit::Count,
        "Times a limit paused the gateway instead of failing: accepting (max_connections) or reading a connection (max_in_flight)."
    );
    describe_counter!(
        BYTES_IN_TOTAL,
        Unit::Bytes,
        "Record batch bytes produced and ordered, by topic."
    );
    describe_counter!(
        RECORDS_IN_TOTAL,
        Unit::Count,
        "Records produced and ordered, by topic."
    );
    describe_counter!(
        BYTES_OUT_TOTAL,
        Unit::Bytes,
        "Record batch bytes returned to fetching clients, by topic."
    );
    describe_counter!(
        RECORDS_OUT_TOTAL,
        Unit::Count,
        "Records in the batches returned to fetching clients, by topic."
    );
    describe_gauge!(
        CONSUMER_GROUP_LAG,
        Unit::Count,
        "High watermark minus committed offset, for groups this gateway coordinates."
    );
    describe_gauge!(
        CONSUMER_GROUP_MEMBERS,
        Unit::Count,
        "Members of a consumer group this gateway coordinates."
    );
    describe_gauge!(
        CONSUMER_GROUP_EPOCH,
        Unit::Count,
        "Group epoch of a consumer-protocol (KIP-848) group this gateway coordinates; it moves once per rebalance."
    );
    describe_gauge!(
        TRANSACTIONS_OPEN,
        Unit::Count,
        "Open transactions (ongoing or being completed) among the transactional ids this gateway coordinates."
    );
    describe_counter!(
        TRANSACTIONS_ENDED_TOTAL,
        Unit::Count,
        "Transactions this gateway's coordinator ended, by result (commit, abort)."
    );
    describe_counter!(
        TRANSACTIONS_TIMED_OUT_TOTAL,
        Unit::Count,
        "Transactions this gateway's coordinator aborted because they passed their transaction.timeout.ms."
    );
    describe_gauge!(
        PARTITION_LOG_END_OFFSET,
        Unit::Count,
        "A partition's log end offset (high watermark)."
    );
    describe_gauge!(
        PARTITION_LOG_START_OFFSET,
        Unit::Count,
        "A partition's log start offset."
    );
    describe_gauge!(
        PARTITION_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of a partition's batches from its log start on."
    );
    describe_counter!(
        SEQUENCER_BATCHES_ORDERED_TOTAL,
        Unit::Count,
        "Batches the sequencer on this gateway gave a place in the total order."
    );
    describe_counter!(
        SEQUENCER_BATCHES_ANSWERED_TOTAL,
        Unit::Count,
        "Ring slots the sequencer on this gateway answered without ordering (duplicates, refusals)."
    );
    describe_counter!(
        SEQUENCER_SCAN_PASSES_TOTAL,
        Unit::Count,
        "Passes of the sequencer on this gateway over every gateway's ring, empty ones included."
    );
    describe_counter!(
        SEQUENCER_ORDER_LOG_FULL_TOTAL,
        Unit::Count,
        "Sequencer passes cut short because a live gateway had not applied the order log."
    );
    describe_gauge!(
        SEQUENCER_LEASE_HELD,
        Unit::Count,
        "1 while this gateway holds the sequencer lease, else 0."
    );
    describe_histogram!(
        ORDERING_LAG_SECONDS,
        Unit::Seconds,
        "Time from publishing a batch to the region to seeing its completion, for this gateway's batches."
    );
    describe_gauge!(
        REGION_FENCED,
        Unit::Count,
        "1 once this gateway found the region it mapped unlinked, replaced or formatted again, \
         or itself overtaken by a whole order log while paused (it then acknowledges nothing \
         and exits to be restarted), else 0."
    );
    describe_gauge!(
        REGION_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of the shared region's layout."
    );
    describe_gauge!(
        ARENA_SIZE_BYTES,
        Unit::Bytes,
        "Capacity of this gateway's payload arena in the region."
    );
    describe_gauge!(
        ARENA_USED_BYTES,
        Unit::Bytes,
        "Bytes of this gateway's arena holding batches the sequencer has not consumed."
    );
    describe_gauge!(
        ORDER_LOG_APPLIED_SEQUENCE,
        Unit::Count,
        "Last order-log sequence this gateway's index applied."
    );
    describe_gauge!(
        ORDER_LOG_LAG_ENTRIES,
        Unit::Count,
        "Order-log entries checkpointed by the sequencer that this gateway has not applied yet."
    );
    describe_counter!(
        REGION_FULL_TOTAL,
        Unit::Count,
        "Produce batches refused because this gateway's ring or arena stayed full until the deadline."
    );
    describe_counter!(
        OFFSET_COMMITS_LOST_TOTAL,
        Unit::Count,
        "Offset commits whose bytes left the region before this gateway applied them and that its disk tier could not copy from a holder either (it applies those it could as soon as it copied them)."
    );
    describe_counter!(
        SASL_AUTHENTICATIONS_TOTAL,
        Unit::Count,
        "SASL authentications finished, by mechanism and outcome (success, failure)."
    );
    describe_counter!(
        SASL_DELAYED_FAILURES_TOTAL,
        Unit::Count,
        "Failed SASL authentications answered only after --connection-failed-authentication-delay-ms, by mechanism (unsupported: a refused SaslHandshake)."
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES_TOTAL,
        Unit::Count,
        "TLS handshakes on the TLS listener that failed or timed out."
    );
    describe_counter!(
        AUTHORIZATION_DENIED_TOTAL,
        Unit::Count,
        "Operations the ACL authorizer denied, by API."
    );
    describe_counter!(
        SECURITY_RECORDS_LOST_TOTAL,
        Unit::Count,
        "User or ACL changes whose bytes were recycled before this gateway applied them."
    );
    describe_counter!(
        BROKER_CONFIG_RECORDS_LOST_TOTAL,
        Unit::Count,
        "Dynamic broker config changes whose bytes were recycled before this gateway applied them."
    );
    describe_counter!(
        REPLICA_COPIED_BYTES_TOTAL,
        Unit::Bytes,
        "Payload bytes the disk tier copied from the region into this gateway's segments."
    );
    describe_counter!(
        REPLICA_MISSED_ENTRIES_TOTAL,
        Unit::Count,
        "Ordered entries this gateway's segments lack because they left the region before it copied them and no live holder could give them."
    );
    describe_counter!(
        REPLICA_WRITE_ERRORS_TOTAL,
        Unit::Count,
        "Segment writes or fsyncs that failed (a failed fsync stops the disk tier)."
    );
    describe_gauge!(
        REPLICA_DIRECT_IO,
        Unit::Count,
        "1 while the disk tier writes data batches with O_DIRECT straight from the region, 0 when the data dir's filesystem refused O_DIRECT and they go through the page cache."
    );
    describe_counter!(
        PEER_COPY_ENTRIES_TOTAL,
        Unit::Count,
        "Entries this gateway copied from a peer's segments when it joined, restarted empty or had a gap: what had left the region before it could copy it."
    );
    describe_counter!(
        PEER_COPY_BYTES_TOTAL,
        Unit::Bytes,
        "Payload bytes of the entries copied from a peer's segments."
    );
    describe_counter!(
        PEER_SERVED_ENTRIES_TOTAL,
        Unit::Count,
        "Entries this gateway's peer-copy listener sent to peers that lacked them."
    );
    describe_counter!(
        PEER_COPY_REFUSED_TOTAL,
        Unit::Count,
        "Peer-copy connections refused or cut, by reason (wrong_region: the peer mapped another region; malformed; io)."
    );
    describe_gauge!(
        REPLICA_HOLDS_FROM_SEQUENCE,
        Unit::Count,
        "Lowest order sequence from which this gateway's disk holds every entry; above its peers' when it joined late, restarted empty or missed entries no holder could give it: it then leads no partition and coordinates no group."
    );
    describe_gauge!(
        UNDER_REPLICATED_PARTITIONS,
        Unit::Count,
        "Partitions whose replication factor asks for more disk copies than there are live gateways holding every entry (the region is one copy)."
    );
    describe_counter!(
        REPLICA_FSYNCS_TOTAL,
        Unit::Count,
        "Group-commit fsyncs of this gateway's disk tier."
    );
    describe_histogram!(
        REPLICA_FSYNC_SECONDS,
        Unit::Seconds,
        "Time one group-commit fsync of the disk tier took."
    );
    describe_gauge!(
        REPLICA_DURABLE_SEQUENCE,
        Unit::Count,
        "Highest global sequence durable on this gateway's disk."
    );
    describe_gauge!(
        REPLICA_DURABLE_LAG_ENTRIES,
        Unit::Count,
        "Entries the sequencer ordered that are not yet durable on this gateway's disk."
    );
    describe_gauge!(
        SEGMENT_BYTES,
        Unit::Bytes,
        "Bytes of this gateway's segment files."
    );
    describe_counter!(
        RETENTION_LOG_START_MOVES_TOTAL,
        Unit::Count,
        "Partition log starts moved by retention.ms or retention.bytes (on the gateway that publishes them)."
    );
    describe_counter!(
        RETENTION_DELETED_SEGMENTS_TOTAL,
        Unit::Count,
        "Segment files retention deleted on this gateway."
    );
    describe_counter!(
        RETENTION_DELETED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes of the segment files retention deleted on this gateway."
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident set size of the gateway process (VmRSS)."
    );
    describe_gauge!(
        PROCESS_CPU_SECONDS,
        Unit::Seconds,
        "User plus system CPU time of the gateway process since it started; rate() gives cores busy."
    );
    describe_gauge!(
        PROCESS_THREADS,
        Unit::Count,
        "Threads of the gateway process."
    );
    describe_gauge!(
        BUILD_INFO,
        Unit::Count,
        "Always 1; the version label names the gateway build."
    );
}

/// The error codes clients most often see from the busiest APIs, by API:
/// their `cxlkafka_request_errors_total` series exist at 0 from the start,
/// so `increase()` and alerts see the first one (a series born at 1 shows
/// no increase). Other codes appear when first returned.
const WATCHED_ERRORS: &[(&str, &[ResponseError])] = &[
    (
        "Produce",
        &[
            ResponseError::NotLeaderOrFollower,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::RequestTimedOut,
            ResponseError::NotEnoughReplicas,
            ResponseError::KafkaStorageError,
            ResponseError::CorruptMessage,
            ResponseError::MessageTooLarge,
            ResponseError::InvalidRecord,
            ResponseError::OutOfOrderSequenceNumber,
            ResponseError::TopicAuthorizationFailed,
        ],
    ),
    (
        "Fetch",
        &[
            ResponseError::NotLeaderOrFollower,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::OffsetOutOfRange,
            ResponseError::KafkaStorageError,
            ResponseError::TopicAuthorizationFailed,
        ],
    ),
    (
        "OffsetCommit",
        &[
            ResponseError::NotCoordinator,
            ResponseError::RebalanceInProgress,
            ResponseError::IllegalGeneration,
            ResponseError::UnknownMemberId,
        ],
    ),
    (
        "Heartbeat",
        &[
            ResponseError::RebalanceInProgress,
            ResponseError::IllegalGeneration,
            ResponseError::UnknownMemberId,
        ],
    ),
];

/// Exports the error counters at 0: per-API error codes of
/// [`WATCHED_ERRORS`], every protocol-error reason and connection limit,
/// and the unlabelled error counters.
pub fn export_error_counters_at_zero() {
    for (api, codes) in WATCHED_ERRORS {
        for code in *codes {
            metrics::counter!(REQUEST_ERRORS_TOTAL, "api" => *api, "code" => code.code().to_string())
                .absolute(0);
        }
    }
    for reason in CloseReason::LABELS {
        metrics::counter!(PROTOCOL_ERRORS_TOTAL, "reason" => reason).absolute(0);
    }
    for limit in crate::limits::WAITING_LIMITS {
        metrics::counter!(LIMIT_WAITS_TOTAL, "limit" => limit).absolute(0);
    }
    for limit in crate::limits::CLOSING_LIMITS {
        metrics::counter!(LIMIT_CLOSES_TOTAL, "limit" => limit).absolute(0);
    }
    for counter in [
        ACCEPT_ERRORS_TOTAL,
        REGION_FULL_TOTAL,
        OFFSET_COMMITS_LOST_TOTAL,
        SECURITY_RECORDS_LOST_TOTAL,
        BROKER_CONFIG_RECORDS_LOST_TOTAL,
        TLS_HANDSHAKE_FAILURES_TOTAL,
    ] {
        metrics::counter!(counter).absolute(0);
    }
}

/// Counts a Kafka error code returned to a client by `api`.
///
/// Handlers call this for every non-zero error code they put in a response
/// (top-level or per partition), so `cxlkafka_request_errors_total` answers
/// "which errors are clients seeing" without decoding responses.
pub fn record_error_code(api: &'static str, code: i16) {
    if code != 0 {
        metrics::counter!(REQUEST_ERRORS_TOTAL, "api" => api, "code" => code.to_string())
            .increment(1);
    }
}

/// Counts a produced batch once it is ordered.
pub fn record_produced(topic: &str, bytes: usize, records: u32) {
    let topic = topic.to_owned();
    metrics::counter!(BYTES_IN_TOTAL, "topic" => topic.clone()).increment(bytes as u64);
    metrics::counter!(RECORDS_IN_TOTAL, "topic" => topic).increment(u64::from(records));
}

/// Counts the batches a Fetch returns for one partition of `topic`.
pub fn record_fetched(topic: &str, bytes: usize, records: u64) {
    let topic = topic.to_owned();
    metrics::counter!(BYTES_OUT_TOTAL, "topic" => topic.clone()).increment(bytes as u64);
    metrics::counter!(RECORDS_OUT_TOTAL, "topic" => topic).increment(records);
}

/// Client connections open now (`cxlkafka_connections`), kept here so the
/// gauge can be set again while nothing changes.
static OPEN_CONNECTIONS: AtomicI64 = AtomicI64::new(0);

/// Counts a client connection opened.
pub fn connection_opened() {
    let open = OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!(CONNECTIONS).set(open as f64);
}

/// Counts a client connection closed.
pub fn connection_closed() {
    let open = OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed) - 1;
    metrics::gauge!(CONNECTIONS).set(open as f64);
}

/// Counts a connection closed because of bad input.
pub fn record_protocol_error(reason: &'static str) {
    metrics::counter!(PROTOCOL_ERRORS_TOTAL, "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn cpu_ticks_skips_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (cx (l) kafka) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("no parenthesis"), None);
        assert_eq!(cpu_ticks("1 (x) S 1"), None);
    }
}
