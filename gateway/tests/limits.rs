//! Each connection limit over real sockets: what a client sees at the limit,
//! and that the gateway logs and counts it (`cxlkafka_limit_*_total`,
//! `cxlkafka_protocol_errors_total`) while serving everyone else.
//!
//! No assertion is on a duration: timeouts only bound how long a test waits
//! for something the gateway must do.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{api_versions_request, decode_response, request_frame, Client, TestGateway, PROMPTLY};
use cxlkafka_gateway::context::{GatewayContext, Limits};
use cxlkafka_gateway::dispatch::{
    ApiEntry, ApiRequest, DispatchTable, HandlerFuture, Reply, VersionPolicy,
};
use cxlkafka_gateway::telemetry;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{sleep, timeout};

/// The longest a test waits for the gateway to act on a limit.
const EVENTUALLY: Duration = Duration::from_secs(30);

/// One recorder for the whole test binary (it is process-wide).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        telemetry::prometheus_builder()
            .expect("builder")
            .install_recorder()
            .expect("install the recorder")
    })
}

/// The value of one counter series, 0 while it does not exist.
fn counter(name: &str, label: &str, value: &str) -> f64 {
    let series = format!("{name}{{{label}=\"{value}\"}} ");
    recorder()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// Waits (at most [`EVENTUALLY`]) until `name{label=value}` reaches `at_least`.
async fn counted(name: &str, label: &str, value: &str, at_least: f64) {
    let reached = timeout(EVENTUALLY, async {
        while counter(name, label, value) < at_least {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{name}{{{label}={value:?}}} stayed below {at_least}"
    );
}

async fn limits_counted(kind: &str, limit: &str, at_least: f64) {
    let name = match kind {
        "closes" => telemetry::LIMIT_CLOSES_TOTAL,
        _ => telemetry::LIMIT_WAITS_TOTAL,
    };
    counted(name, "limit", limit, at_least).await;
}

async fn start(limits: Limits, table: DispatchTable) -> TestGateway {
    recorder();
    TestGateway::start_with(limits, table).await
}

async fn expect_api_versions(client: &mut Client, correlation_id: i32) {
    let payload = client.read_frame().await.expect("an ApiVersions response");
    let (header, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!(header.correlation_id, correlation_id);
    assert_eq!(response.error_code, 0);
}

/// A client connected from `source` (any 127.0.0.0/8 address is loopback).
async fn connect_from(source: [u8; 4], gateway: SocketAddr) -> Client {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    let stream = timeout(PROMPTLY, socket.connect(gateway))
        .await
        .expect("connect in time")
        .expect("connect");
    Client { stream }
}

fn heartbeat(correlation_id: i32) -> Vec<u8> {
    request_frame(
        ApiKey::Heartbeat,
        4,
        4,
        correlation_id,
        &HeartbeatRequest::default(),
    )
}

/// ApiVersions plus a stand-in Heartbeat handled by `handler`.
fn with_heartbeat(handler: cxlkafka_gateway::dispatch::Handler) -> DispatchTable {
    let versions = ApiKey::Heartbeat.valid_versions();
    DispatchTable::empty()
        .with(cxlkafka_gateway::api::api_versions::ENTRY)
        .with(ApiEntry {
            key: ApiKey::Heartbeat,
            name: "Heartbeat",
            versions: VersionRange {
                min: versions.min,
                max: versions.max,
            },
            advertised_min: 0,
            version_policy: VersionPolicy::Strict,
            handler,
        })
}

#[tokio::test]
async fn a_frame_above_the_limit_closes_the_connection_from_its_prefix_and_is_counted() {
    let limits = Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    };
    let mut gateway = start(limits, DispatchTable::standard()).await;
    let before = counter(
        telemetry::PROTOCOL_ERRORS_TOTAL,
        "reason",
        "frame_too_large",
    );
    let mut bystander = gateway.client().await;
    let mut client = gateway.client().await;
    // Only the prefix and a few bytes: the gateway never waits for the rest.
    client.send(&1025_i32.to_be_bytes()).await;
    client.send(&[0; 16]).await;
    client.expect_closed().await;
    counted(
        telemetry::PROTOCOL_ERRORS_TOTAL,
        "reason",
        "frame_too_large",
        before + 1.0,
    )
    .await;
    bystander.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut bystander, 1).await;
    gateway.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_the_listener_waits_and_counts_it() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let mut gateway = start(limits, DispatchTable::standard()).await;
    let mut first = gateway.client().await;
    first.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut first, 1).await;
    limits_counted("waits", "max_connections", 1.0).await;

    // The kernel completes the handshake; the gateway serves it only once
    // the first connection is gone.
    let mut second = gateway.client().await;
    second.send(&api_versions_request(3, 2)).await;
    drop(first);
    expect_api_versions(&mut second, 2).await;
    gateway.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_closed_at_once() {
    let limits = Limits {
        max_connections_per_ip: 2,
        ..Limits::default()
    };
    let mut gateway = start(limits, DispatchTable::standard()).await;
    let before = counter(
        telemetry::LIMIT_CLOSES_TOTAL,
        "limit",
        "max_connections_per_ip",
    );
    let mut first = gateway.client().await;
    let mut second = gateway.client().await;
    for (client, id) in [(&mut first, 1), (&mut second, 2)] {
        client.send(&api_versions_request(3, id)).await;
        expect_api_versions(client, id).await;
    }

    let mut third = gateway.client().await;
    third.expect_closed().await;
    limits_counted("closes", "max_connections_per_ip", before + 1.0).await;

    // Another address is not affected, nor are the open connections.
    let mut elsewhere = connect_from([127, 0, 0, 2], gateway.addr).await;
    elsewhere.send(&api_versions_request(3, 3)).await;
    expect_api_versions(&mut elsewhere, 3).await;
    first.send(&api_versions_request(3, 4)).await;
    expect_api_versions(&mut first, 4).await;

    // A closed connection frees its address's slot (once its task ends).
    drop(second);
    let served = timeout(EVENTUALLY, async {
        loop {
            let mut retry = gateway.client().await;
            let request = api_versions_request(3, 5);
            if retry.stream.write_all(&request).await.is_ok() {
                if let Some(payload) = retry.read_frame().await {
                    return payload;
                }
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot is freed");
    assert_eq!(Client::correlation_id(&served), 5);
    gateway.stop().await;
}

/// Heartbeat handlers started so far.
static STARTED: AtomicUsize = AtomicUsize::new(0);
/// Deferred heartbeat responses wait for a permit of this.
static GATE: Semaphore = Semaphore::const_new(0);

/// A heartbeat whose response waits for [`GATE`].
fn gated(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    STARTED.fetch_add(1, Ordering::SeqCst);
    Box::pin(async move {
        let responder = request.responder();
        Ok(Reply::deferred(async move {
            GATE.acquire().await.expect("never closed").forget();
            responder.frame(&HeartbeatResponse::default()).map(Some)
        }))
    })
}

#[tokio::test]
async fn at_the_in_flight_cap_the_connection_stops_reading_until_a_response_is_written() {
    let limits = Limits {
        max_in_flight: 3,
        ..Limits::default()
    };
    let mut gateway = start(limits, with_heartbeat(gated)).await;
    let mut client = gateway.client().await;
    let burst: Vec<u8> = (0..10).flat_map(heartbeat).collect();
    client.send(&burst).await;

    // Three requests are read and handled; the fourth is not read.
    let three = timeout(EVENTUALLY, async {
        while STARTED.load(Ordering::SeqCst) < 3 {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(three.is_ok(), "three handlers start");
    limits_counted("waits", "max_in_flight", 1.0).await;
    assert_eq!(STARTED.load(Ordering::SeqCst), 3, "reading is paused");

    // Each response written frees a slot: all ten are answered, in order.
    GATE.add_permits(10);
    for correlation_id in 0..10 {
        let payload = client.read_frame().await.expect("a response");
        assert_eq!(Client::correlation_id(&payload), correlation_id);
    }
    assert_eq!(STARTED.load(Ordering::SeqCst), 10);
    gateway.stop().await;
}

#[tokio::test]
async fn a_connection_without_requests_for_the_idle_timeout_is_closed_and_counted() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut gateway = start(limits, DispatchTable::standard()).await;
    let before = counter(telemetry::LIMIT_CLOSES_TOTAL, "limit", "idle_timeout");
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut client, 1).await;
    client.expect_closed().await;
    limits_counted("closes", "idle_timeout", before + 1.0).await;
    // Half a frame does not count as activity either.
    let mut trickle = gateway.client().await;
    trickle.send(&api_versions_request(3, 2)[..6]).await;
    client = trickle;
    client.expect_closed().await;
    limits_counted("closes", "idle_timeout", before + 2.0).await;
    gateway.stop().await;
}

/// A heartbeat answered with a large body (an ApiVersions list of 4000
/// entries, about 28 KB), standing in for a big Fetch response.
fn large(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let mut body = ApiVersionsResponse::default();
        body.api_keys = (0..4000)
            .map(|key| {
                let mut version = ApiVersion::default();
                version.api_key = key;
                version
            })
            .collect();
        let frame = request.responder().frame_at(&body, 3)?;
        Ok(Reply::Ready(frame))
    })
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let limits = Limits {
        write_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let mut gateway = start(limits, with_heartbeat(large)).await;
    let before = counter(telemetry::LIMIT_CLOSES_TOTAL, "limit", "write_timeout");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("a small buffer");
    let stream: TcpStream = timeout(PROMPTLY, socket.connect(gateway.addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let (mut read_half, mut write_half) = stream.into_split();
    // About 28 MB of responses, far beyond any socket buffer; the client
    // never reads them. Its own writes stall once the gateway stops reading.
    let sender = tokio::spawn(async move {
        for correlation_id in 0..1000 {
            if write_half
                .write_all(&heartbeat(correlation_id))
                .await
                .is_err()
            {
                break;
            }
        }
        write_half
    });
    limits_counted("closes", "write_timeout", before + 1.0).await;

    // What was buffered drains, then the connection is closed.
    let drained = timeout(EVENTUALLY, async {
        let mut buf = vec![0; 64 * 1024];
        loop {
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the gateway closed the connection");
    sender.abort();
    // Other clients are still served.
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut client, 1).await;
    gateway.stop().await;
}
