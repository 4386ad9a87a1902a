//! Metrics the gateway's protocol layer exports, and the Prometheus exporter.
//!
//! Every metric is recorded through the `metrics` crate macros, so the code
//! that records stays independent of the exporter; `cxlkafka serve` installs
//! the Prometheus exporter ([`install_prometheus`]) and tests install a plain
//! recorder built by [`prometheus_builder`] to read the exposition directly.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `cxlkafka_requests_total` | counter | `api` | requests decoded and handed to a handler |
//! | `cxlkafka_request_errors_total` | counter | `api`, `code` | responses carrying a non-zero Kafka error code (`code` is the numeric code) |
//! | `cxlkafka_request_duration_seconds` | histogram | `api` | time from a request's frame being read to its response being ready |
//! | `cxlkafka_connections` | gauge | | client connections currently open |
//! | `cxlkafka_connections_total` | counter | | client connections accepted since start |
//! | `cxlkafka_protocol_errors_total` | counter | `reason` | connections closed because of bad input (see [`CloseReason`](crate::error::CloseReason)) |
//! | `cxlkafka_accept_errors_total` | counter | | failed `accept()` calls (file-descriptor exhaustion and the like) |
//! | `cxlkafka_bytes_in_total` | counter | `topic` | record batch bytes produced and ordered |
//! | `cxlkafka_records_in_total` | counter | `topic` | records produced and ordered |
//! | `cxlkafka_bytes_out_total` | counter | `topic` | record batch bytes returned by Fetch |
//! | `cxlkafka_records_out_total` | counter | `topic` | records in the batches Fetch returned |
//!
//! `api` values are Kafka's own API names (`ApiVersions`, `Produce`, ...), as
//! Kafka's `kafka.network:type=RequestMetrics,request=...` uses them, so the
//! dashboards read the same for both.

use std::net::SocketAddr;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};

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
/// Record batch bytes produced and ordered, by `topic`.
pub const BYTES_IN_TOTAL: &str = "cxlkafka_bytes_in_total";
/// Records produced and ordered, by `topic`.
pub const RECORDS_IN_TOTAL: &str = "cxlkafka_records_in_total";
/// Record batch bytes returned by Fetch, by `topic`.
pub const BYTES_OUT_TOTAL: &str = "cxlkafka_bytes_out_total";
/// Records in the batches Fetch returned, by `topic`.
pub const RECORDS_OUT_TOTAL: &str = "cxlkafka_records_out_total";

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
    PrometheusBuilder::new().set_buckets_for_metric(
        Matcher::Suffix("_seconds".to_owned()),
        LATENCY_BUCKETS_SECONDS,
    )
}

/// Installs the global Prometheus recorder and serves `/metrics` over HTTP on
/// `addr`.
///
/// Must run inside a Tokio runtime: the HTTP listener and the recorder's
/// upkeep task are spawned onto it. Fails if the address cannot be bound or a
/// global recorder is already installed.
pub fn install_prometheus(addr: SocketAddr) -> Result<(), BuildError> {
    prometheus_builder()?.with_http_listener(addr).install()?;
    describe();
    Ok(())
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

/// Counts a connection closed because of bad input.
pub fn record_protocol_error(reason: &'static str) {
    metrics::counter!(PROTOCOL_ERRORS_TOTAL, "reason" => reason).increment(1);
}
