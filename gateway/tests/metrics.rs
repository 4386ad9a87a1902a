//! The metrics the protocol layer promises exist on the real Prometheus
//! endpoint, with the names and labels the dashboards use.
//!
//! One test only: the exporter installs a process-wide recorder.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::{api_versions_request, Client, TestGateway, PROMPTLY};
use cxlkafka_gateway::telemetry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

/// A port that was free a moment ago (the exporter needs a fixed address).
fn free_local_addr() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address")
}

async fn scrape(addr: SocketAddr) -> String {
    let mut stream = timeout(PROMPTLY, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("metrics endpoint is up");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send scrape");
    let mut response = String::new();
    timeout(PROMPTLY, stream.read_to_string(&mut response))
        .await
        .expect("scrape in time")
        .expect("read scrape");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_metrics_are_exported() {
    let metrics_addr = free_local_addr();
    telemetry::install_prometheus(metrics_addr, telemetry::DEFAULT_IDLE_TIMEOUT)
        .expect("install the exporter");

    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    client.read_frame().await.expect("a response");
    client.send(&api_versions_request(99, 2)).await;
    client.read_frame().await.expect("a response");
    let mut bad = gateway.client().await;
    let mut unknown = api_versions_request(0, 3);
    unknown[4..6].copy_from_slice(&999_i16.to_be_bytes());
    bad.send(&unknown).await;
    bad.expect_closed().await;
    let mut bad = Client::connect(gateway.addr).await;
    bad.send(&(-7_i32).to_be_bytes()).await;
    bad.expect_closed().await;
    // Let the closed connections' tasks finish and record.
    sleep(Duration::from_millis(100)).await;

    let text = scrape(metrics_addr).await;
    for expected in [
        "# TYPE cxlkafka_requests_total counter",
        "cxlkafka_requests_total{api=\"ApiVersions\"} 2",
        "cxlkafka_request_errors_total{api=\"ApiVersions\",code=\"35\"} 1",
        "# TYPE cxlkafka_request_duration_seconds histogram",
        "cxlkafka_request_duration_seconds_bucket{api=\"ApiVersions\",le=\"0.00005\"}",
        "cxlkafka_request_duration_seconds_bucket{api=\"ApiVersions\",le=\"30\"} 2",
        "cxlkafka_request_duration_seconds_count{api=\"ApiVersions\"} 2",
        "# TYPE cxlkafka_connections gauge",
        "cxlkafka_connections 1",
        "cxlkafka_connections_total 3",
        "cxlkafka_protocol_errors_total{reason=\"unknown_api_key\"} 1",
        "cxlkafka_protocol_errors_total{reason=\"negative_frame_size\"} 1",
        "# HELP cxlkafka_protocol_errors_total",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }

    drop(client);
    gateway.stop().await;
}
