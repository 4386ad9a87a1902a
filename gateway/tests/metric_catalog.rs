//! docs/metrics.md cannot drift from what the gateway exports: every metric
//! named in gateway/src is catalogued, every metric a real scrape holds after
//! produce/fetch traffic is catalogued with the same type, and every catalog
//! entry that traffic should produce is in the scrape.
//!
//! One test only: the exporter installs a process-wide recorder.

mod common;
mod data_path;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{api_versions_request, Client, TestGateway, PROMPTLY};
use cxlkafka_gateway::telemetry;
use data_path::{batch, create_topic, fetch, produce};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// Catalogued metrics this test's traffic cannot produce, and why.
const NOT_PRODUCED_HERE: &[(&str, &str)] = &[
    (
        "cxlkafka_sasl_authentications_total",
        "needs a SASL listener (tests/security.rs)",
    ),
    (
        "cxlkafka_sasl_delayed_failures_total",
        "needs a failed SASL authentication (tests/security.rs)",
    ),
    (
        "cxlkafka_authorization_denied_total",
        "needs --authorizer (tests/security.rs)",
    ),
    ("cxlkafka_consumer_group_lag", "needs a consumer group"),
    (
        "cxlkafka_retention_log_start_moves_total",
        "the retention task starts in `cxlkafka serve` (passes: tests/durability.rs)",
    ),
    (
        "cxlkafka_retention_deleted_segments_total",
        "the retention task starts in `cxlkafka serve` (passes: tests/durability.rs)",
    ),
    (
        "cxlkafka_retention_deleted_bytes_total",
        "the retention task starts in `cxlkafka serve` (passes: tests/durability.rs)",
    ),
    ("cxlkafka_consumer_group_members", "needs a consumer group"),
    (
        "cxlkafka_consumer_group_epoch",
        "needs a consumer-protocol group (compat-tests/test_consumer_protocol.py)",
    ),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// name -> type, from the catalog table's rows.
fn catalog() -> BTreeMap<String, String> {
    let path = repo_root().join("docs/metrics.md");
    let text = std::fs::read_to_string(&path).expect("docs/metrics.md is readable");
    let mut entries = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `name` | type | labels | meaning |" splits into 6 cells.
        if cells.len() != 6 {
            continue;
        }
        let Some(name) = cells[1]
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue;
        };
        assert!(
            ["counter", "gauge", "histogram"].contains(&cells[2]),
            "catalog entry {name} has type {:?}",
            cells[2]
        );
        let previous = entries.insert(name.to_owned(), cells[2].to_owned());
        assert!(previous.is_none(), "{name} is catalogued twice");
    }
    assert!(entries.len() >= 20, "catalog table not found: {entries:?}");
    entries
}

/// Every `"cxlkafka_..."` string literal in gateway/src: the metric names
/// (the `__cxlkafka_order` topic and `cxlkafka-` thread names do not match).
fn names_in_source() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("readable source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("readable source");
                for (at, _) in text.match_indices("\"cxlkafka_") {
                    let name: String = text[at + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if text[at + 1 + name.len()..].starts_with('"') {
                        found.insert(name);
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo_root().join("gateway/src"), &mut found);
    // The crates' names are log targets (BROKER_LOGGER loggers), not
    // metrics.
    for target in ["cxlkafka_gateway", "cxlkafka_log", "cxlkafka_sequencer"] {
        found.remove(target);
    }
    found
}

fn free_local_addr() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address")
}

/// The exposition body (HTTP/1.0, so never chunked).
async fn scrape(addr: SocketAddr) -> String {
    let mut stream = timeout(PROMPTLY, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("metrics endpoint is up");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send scrape");
    let mut response = String::new();
    timeout(PROMPTLY, stream.read_to_string(&mut response))
        .await
        .expect("scrape in time")
        .expect("read scrape");
    assert!(response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"));
    let (_, body) = response.split_once("\r\n\r\n").expect("headers end");
    body.to_owned()
}

/// name -> type from `# TYPE` lines; asserts every sample belongs to one.
fn scraped_types(body: &str) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            types.insert(name.to_owned(), kind.to_owned());
        }
    }
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().expect("a sample name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample {line:?} has no # TYPE");
    }
    types
}

fn value_of(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{body}"))
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_matches_the_code_and_the_scrape() {
    let catalog = catalog();

    let missing: Vec<_> = names_in_source()
        .into_iter()
        .filter(|name| !catalog.contains_key(name))
        .collect();
    assert!(
        missing.is_empty(),
        "named in gateway/src but not in docs/metrics.md: {missing:?}"
    );
    for (name, _) in NOT_PRODUCED_HERE {
        assert!(catalog.contains_key(*name), "stale exception {name}");
    }

    let metrics_addr = free_local_addr();
    telemetry::install_prometheus(metrics_addr, telemetry::DEFAULT_IDLE_TIMEOUT)
        .expect("install the exporter");
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "catalogued").await;
    let records = batch(&[b"one", b"two", b"three"], 1, None);
    assert_eq!(
        produce(&mut client, "catalogued", 0, records.clone()).await,
        (0, 0)
    );
    let fetched = fetch(&mut client, "catalogued", 0, 0).await;
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.records.as_deref(), Some(&records[..]));
    // An error code (OFFSET_OUT_OF_RANGE) and a protocol error.
    assert_eq!(fetch(&mut client, "catalogued", 0, 999).await.error_code, 1);
    let mut bad = Client::connect(gateway.addr).await;
    bad.send(&(-7_i32).to_be_bytes()).await;
    bad.expect_closed().await;
    client.send(&api_versions_request(3, 9)).await;
    client.read_frame().await.expect("a response");
    // The partition gauges, which their reporter sets every 10 s.
    cxlkafka_gateway::partition_metrics::record_partitions(
        gateway.log.as_ref(),
        &mut Default::default(),
    );
    // Past a heartbeat (region gauges) and a process sample.
    sleep(telemetry::PROCESS_SAMPLE_INTERVAL + Duration::from_millis(300)).await;

    let body = scrape(metrics_addr).await;
    let scraped = scraped_types(&body);
    for (name, kind) in &scraped {
        assert!(
            name.starts_with("cxlkafka_"),
            "{name} lacks the cxlkafka_ prefix"
        );
        assert_eq!(
            catalog.get(name),
            Some(kind),
            "{name} ({kind}) is exported but docs/metrics.md says {:?}",
            catalog.get(name)
        );
    }
    let absent: Vec<_> = catalog
        .keys()
        .filter(|name| !scraped.contains_key(*name))
        .filter(|name| !NOT_PRODUCED_HERE.iter().any(|(n, _)| n == name))
        .collect();
    assert!(
        absent.is_empty(),
        "catalogued but not exported after traffic: {absent:?}\n{body}"
    );

    // The values are the traffic's, not just present.
    let partition = "{topic=\"catalogued\",partition=\"0\"}";
    assert_eq!(
        value_of(
            &body,
            &format!("cxlkafka_partition_log_end_offset{partition}")
        ),
        3.0
    );
    assert_eq!(
        value_of(
            &body,
            &format!("cxlkafka_partition_log_start_offset{partition}")
        ),
        0.0
    );
    assert_eq!(
        value_of(&body, &format!("cxlkafka_partition_size_bytes{partition}")),
        records.len() as f64
    );
    let topic = "{topic=\"catalogued\"}";
    let bytes = records.len() as f64;
    assert_eq!(
        value_of(&body, &format!("cxlkafka_bytes_in_total{topic}")),
        bytes
    );
    assert_eq!(
        value_of(&body, &format!("cxlkafka_records_in_total{topic}")),
        3.0
    );
    assert_eq!(
        value_of(&body, &format!("cxlkafka_bytes_out_total{topic}")),
        bytes
    );
    assert_eq!(
        value_of(&body, &format!("cxlkafka_records_out_total{topic}")),
        3.0
    );
    assert_eq!(
        value_of(
            &body,
            "cxlkafka_request_errors_total{api=\"Fetch\",code=\"1\"}"
        ),
        1.0
    );
    assert_eq!(value_of(&body, "cxlkafka_sequencer_lease_held"), 1.0);
    // Topic creation (a control record) and the data batch.
    assert!(value_of(&body, "cxlkafka_sequencer_batches_ordered_total") >= 2.0);
    assert!(value_of(&body, "cxlkafka_ordering_lag_seconds_count") >= 2.0);
    assert!(value_of(&body, "cxlkafka_sequencer_scan_passes_total") >= 2.0);
    assert!(value_of(&body, "cxlkafka_order_log_applied_sequence") >= 2.0);
    assert_eq!(value_of(&body, "cxlkafka_order_log_lag_entries"), 0.0);
    let region = value_of(&body, "cxlkafka_region_size_bytes");
    assert!(
        region > 0.0 && region <= f64::from(64_u32 << 20),
        "{region}"
    );
    let arena = value_of(&body, "cxlkafka_arena_size_bytes");
    assert!(arena > 0.0 && value_of(&body, "cxlkafka_arena_used_bytes") <= arena);
    assert!(value_of(&body, "cxlkafka_process_resident_memory_bytes") > 1e6);
    assert!(value_of(&body, "cxlkafka_process_cpu_seconds") > 0.0);
    assert!(value_of(&body, "cxlkafka_process_threads") >= 4.0);
    assert_eq!(
        value_of(
            &body,
            &format!(
                "cxlkafka_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );

    drop(client);
    gateway.stop().await;
}
