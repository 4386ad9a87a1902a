//! Framing, pipelining and connection lifecycle over real sockets.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{api_versions_request, decode_response, request_frame, Client, TestGateway, PROMPTLY};
use cxlkafka_gateway::context::{GatewayContext, Limits};
use cxlkafka_gateway::dispatch::{
    ApiEntry, ApiRequest, DispatchTable, HandlerFuture, Reply, VersionPolicy,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use tokio::io::AsyncWriteExt;
use tokio::time::sleep;

/// Heartbeat stands in for a slow API (an acks=all Produce, a long-poll
/// Fetch): its response is deferred by `(10 - correlation id) * 40 ms`, so
/// earlier requests finish last.
fn slow(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let responder = request.responder();
        let steps = u64::try_from(10 - request.header.correlation_id).unwrap_or(0);
        Ok(Reply::deferred(async move {
            sleep(Duration::from_millis(40 * steps)).await;
            responder.frame(&HeartbeatResponse::default()).map(Some)
        }))
    })
}

/// Order in which `ordered` handlers started, by correlation id.
static STARTED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Heartbeat standing in for a handler with ordered side effects: its
/// ordered part takes longer for earlier requests, then records itself.
fn ordered(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let steps = u64::try_from(5 - request.header.correlation_id).unwrap_or(0);
        sleep(Duration::from_millis(20 * steps)).await;
        STARTED
            .lock()
            .expect("no test panics while holding it")
            .push(request.header.correlation_id);
        request.respond(&HeartbeatResponse::default())
    })
}

/// Set once `announced` has received its request.
static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// Like `slow`, and says when its request has reached the handler.
fn announced(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    ANNOUNCED.store(true, Ordering::SeqCst);
    slow(ctx, request)
}

/// Produce standing in for acks=0: no response at all.
fn acks_zero(_ctx: Arc<GatewayContext>, _request: ApiRequest) -> HandlerFuture {
    Box::pin(async { Ok(Reply::NoResponse) })
}

fn entry(
    key: ApiKey,
    name: &'static str,
    handler: cxlkafka_gateway::dispatch::Handler,
) -> ApiEntry {
    let versions = key.valid_versions();
    ApiEntry {
        key,
        name,
        versions: VersionRange {
            min: versions.min,
            max: versions.max,
        },
        advertised_min: 0,
        version_policy: VersionPolicy::Strict,
        handler,
    }
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

/// ApiVersions plus a stand-in Heartbeat (the real one is in the standard
/// table, and a key cannot be registered twice).
fn stand_in(handler: cxlkafka_gateway::dispatch::Handler) -> DispatchTable {
    DispatchTable::empty()
        .with(cxlkafka_gateway::api::api_versions::ENTRY)
        .with(entry(ApiKey::Heartbeat, "Heartbeat", handler))
}

fn with_slow_heartbeat() -> DispatchTable {
    stand_in(slow)
}

async fn expect_api_versions(client: &mut Client, correlation_id: i32) {
    let payload = client.read_frame().await.expect("an ApiVersions response");
    let (header, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!(header.correlation_id, correlation_id);
    assert_eq!(response.error_code, 0);
}

#[tokio::test]
async fn pipelined_responses_come_back_in_request_order() {
    let mut gateway = TestGateway::start_with(Limits::default(), with_slow_heartbeat()).await;
    let mut client = gateway.client().await;
    // One write, slow and fast requests mixed: 0 waits 400 ms, 8 waits 80.
    let mut burst = Vec::new();
    for correlation_id in 0..10 {
        if correlation_id % 3 == 0 {
            burst.extend(api_versions_request(3, correlation_id));
        } else {
            burst.extend(heartbeat(correlation_id));
        }
    }
    client.send(&burst).await;
    for correlation_id in 0..10 {
        let payload = client.read_frame().await.expect("a response");
        assert_eq!(Client::correlation_id(&payload), correlation_id);
        if correlation_id % 3 != 0 {
            let (_, response): (_, HeartbeatResponse) =
                decode_response(payload, ApiKey::Heartbeat, 4, 4);
            assert_eq!(response.error_code, 0);
        }
    }
    gateway.stop().await;
}

#[tokio::test]
async fn handlers_start_in_request_order() {
    let table = stand_in(ordered);
    let mut gateway = TestGateway::start_with(Limits::default(), table).await;
    let mut client = gateway.client().await;
    let burst: Vec<u8> = (0..5).flat_map(heartbeat).collect();
    client.send(&burst).await;
    for correlation_id in 0..5 {
        let payload = client.read_frame().await.expect("a response");
        assert_eq!(Client::correlation_id(&payload), correlation_id);
    }
    assert_eq!(*STARTED.lock().expect("not poisoned"), vec![0, 1, 2, 3, 4]);
    gateway.stop().await;
}

#[tokio::test]
async fn the_in_flight_bound_throttles_without_deadlock() {
    let limits = Limits {
        max_in_flight: 2,
        ..Limits::default()
    };
    let mut gateway = TestGateway::start_with(limits, with_slow_heartbeat()).await;
    let mut client = gateway.client().await;
    let burst: Vec<u8> = (0..10).flat_map(heartbeat).collect();
    client.send(&burst).await;
    for correlation_id in 0..10 {
        let payload = client.read_frame().await.expect("a response");
        assert_eq!(Client::correlation_id(&payload), correlation_id);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn acks_zero_requests_get_no_response() {
    // The standard table routes a real Produce; this one stands in for it.
    let table = DispatchTable::empty()
        .with(cxlkafka_gateway::api::api_versions::ENTRY)
        .with(entry(ApiKey::Produce, "Produce", acks_zero));
    let mut gateway = TestGateway::start_with(Limits::default(), table).await;
    let mut client = gateway.client().await;
    let produce = request_frame(
        ApiKey::Produce,
        9,
        9,
        1,
        &kafka_protocol::messages::ProduceRequest::default(),
    );
    let mut burst = produce.clone();
    burst.extend(api_versions_request(3, 2));
    burst.extend(produce);
    burst.extend(api_versions_request(3, 4));
    client.send(&burst).await;
    expect_api_versions(&mut client, 2).await;
    expect_api_versions(&mut client, 4).await;
    client.expect_silence(Duration::from_millis(100)).await;
    gateway.stop().await;
}

#[tokio::test]
async fn an_unknown_api_key_closes_only_that_connection_after_earlier_responses() {
    let mut gateway = TestGateway::start().await;
    let mut bystander = gateway.client().await;
    let mut client = gateway.client().await;
    let mut unknown = api_versions_request(0, 2);
    unknown[4..6].copy_from_slice(&999_i16.to_be_bytes());
    let mut burst = api_versions_request(3, 1);
    burst.extend(unknown);
    burst.extend(api_versions_request(3, 3));
    client.send(&burst).await;
    expect_api_versions(&mut client, 1).await;
    client.expect_closed().await;

    bystander.send(&api_versions_request(3, 7)).await;
    expect_api_versions(&mut bystander, 7).await;
    let mut newcomer = gateway.client().await;
    newcomer.send(&api_versions_request(3, 8)).await;
    expect_api_versions(&mut newcomer, 8).await;
    gateway.stop().await;
}

#[tokio::test]
async fn an_api_we_do_not_serve_closes_the_connection() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    // KIP-932's share group heartbeat: not served, so not advertised either.
    client
        .send(&request_frame(
            ApiKey::ShareGroupHeartbeat,
            1,
            1,
            1,
            &kafka_protocol::messages::ShareGroupHeartbeatRequest::default(),
        ))
        .await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_strict_api_at_an_unsupported_version_closes_the_connection() {
    let mut gateway = TestGateway::start_with(Limits::default(), with_slow_heartbeat()).await;
    let mut client = gateway.client().await;
    client
        .send(&request_frame(
            ApiKey::Heartbeat,
            9,
            4,
            1,
            &HeartbeatRequest::default(),
        ))
        .await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_frame_above_the_limit_closes_the_connection() {
    let limits = Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    };
    let mut gateway = TestGateway::start_with(limits, DispatchTable::standard()).await;
    let mut client = gateway.client().await;
    client.send(&1025_i32.to_be_bytes()).await;
    client.expect_closed().await;
    // A frame within the limit is still served on a new connection.
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut client, 1).await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_negative_frame_size_closes_the_connection() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    client.send(&(-1_i32).to_be_bytes()).await;
    client.expect_closed().await;
    let mut client = gateway.client().await;
    client.send(&i32::MIN.to_be_bytes()).await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_truncated_frame_closes_the_connection() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let request = api_versions_request(3, 1);
    client.send(&request[..request.len() - 3]).await;
    client.stream.shutdown().await.expect("half close");
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_frame_too_short_for_a_header_closes_the_connection() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    client.send(&[0, 0, 0, 2, 0, 18]).await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let mut gateway = TestGateway::start_with(limits, DispatchTable::standard()).await;
    let mut first = gateway.client().await;
    first.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut first, 1).await;

    // The kernel completes the handshake, but the gateway does not serve it.
    let mut second = gateway.client().await;
    second.send(&api_versions_request(3, 2)).await;
    second.expect_silence(Duration::from_millis(300)).await;

    drop(first);
    expect_api_versions(&mut second, 2).await;
    gateway.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut gateway = TestGateway::start_with(limits, DispatchTable::standard()).await;
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut client, 1).await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn shutdown_delivers_owed_responses_then_closes() {
    let table = stand_in(announced);
    let mut gateway = TestGateway::start_with(Limits::default(), table).await;
    let mut client = gateway.client().await;
    // Correlation id 4: deferred by 240 ms.
    client.send(&heartbeat(4)).await;
    tokio::time::timeout(PROMPTLY, async {
        while !ANNOUNCED.load(Ordering::SeqCst) {
            sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the request reaches its handler");
    gateway.signal_stop();
    let payload = client.read_frame().await.expect("the owed response");
    assert_eq!(Client::correlation_id(&payload), 4);
    client.expect_closed().await;
    gateway.stopped().await;
    let refused =
        tokio::time::timeout(PROMPTLY, tokio::net::TcpStream::connect(gateway.addr)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_connections() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    expect_api_versions(&mut client, 1).await;
    gateway.stop().await;
    client.expect_closed().await;
}
