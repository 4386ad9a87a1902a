//! ApiVersions over a real socket, as clients negotiate it.

mod common;

use std::sync::Arc;

use common::{api_versions_request, decode_response, request_frame, Client, TestGateway};
use cxlkafka_gateway::api::api_versions;
use cxlkafka_gateway::context::{GatewayContext, Limits};
use cxlkafka_gateway::dispatch::{
    ApiEntry, ApiRequest, DispatchTable, HandlerFuture, Reply, VersionPolicy,
};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

fn find(response: &ApiVersionsResponse, key: ApiKey) -> Option<(i16, i16)> {
    response
        .api_keys
        .iter()
        .find(|v| v.api_key == key as i16)
        .map(|v| (v.min_version, v.max_version))
}

#[tokio::test]
async fn every_supported_version_round_trips() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    for version in 0..=api_versions::VERSIONS.max {
        let correlation_id = 100 + i32::from(version);
        client
            .send(&api_versions_request(version, correlation_id))
            .await;
        let payload = client.read_frame().await.expect("a response");
        let (header, response): (_, ApiVersionsResponse) =
            decode_response(payload, ApiKey::ApiVersions, version, version);
        assert_eq!(header.correlation_id, correlation_id, "v{version}");
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(
            find(&response, ApiKey::ApiVersions),
            Some((0, api_versions::VERSIONS.max)),
            "v{version}"
        );
        assert_eq!(response.throttle_time_ms, 0);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn flexible_responses_carry_no_tagged_fields() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    for version in 3..=api_versions::VERSIONS.max {
        client.send(&api_versions_request(version, 1)).await;
        let payload = client.read_frame().await.expect("a response");
        // Decoding reads every tagged field there is into these fields, and
        // the header at v0 (correlation id only) even though the request was
        // flexible: ApiVersions responses never use header v1.
        let (_, response): (_, ApiVersionsResponse) =
            decode_response(payload.clone(), ApiKey::ApiVersions, version, version);
        assert!(response.supported_features.is_empty());
        assert!(response.finalized_features.is_empty());
        assert_eq!(response.finalized_features_epoch, -1);
        assert!(!response.zk_migration_ready);
        assert!(response.unknown_tagged_fields.is_empty());
        // The body ends with an empty tagged-field section.
        assert_eq!(payload.last(), Some(&0), "v{version}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_version_above_ours_gets_a_v0_unsupported_version_with_the_full_list() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    for (version, correlation_id) in [
        (api_versions::VERSIONS.max + 1, 5),
        (99, 6),
        (i16::MAX, 7),
        (-1, 8),
    ] {
        client
            .send(&api_versions_request(version, correlation_id))
            .await;
        let payload = client.read_frame().await.expect("a response");
        // KIP-511: v0 body, v0 header, whatever the request's version.
        let (header, response): (_, ApiVersionsResponse) =
            decode_response(payload, ApiKey::ApiVersions, 0, 0);
        assert_eq!(header.correlation_id, correlation_id, "v{version}");
        assert_eq!(response.error_code, 35, "v{version}");
        assert_eq!(
            response.api_keys,
            DispatchTable::standard().advertised(),
            "v{version}"
        );
    }
    // The connection stays usable: the client retries at a version we know.
    client.send(&api_versions_request(3, 9)).await;
    let payload = client.read_frame().await.expect("a response");
    let (header, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!((header.correlation_id, response.error_code), (9, 0));
    gateway.stop().await;
}

#[tokio::test]
async fn an_invalid_client_software_name_is_invalid_request() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let mut body = ApiVersionsRequest::default();
    body.client_software_name = StrBytes::from_static_str("bad name!");
    body.client_software_version = StrBytes::from_static_str("1.0");
    client
        .send(&request_frame(ApiKey::ApiVersions, 3, 3, 11, &body))
        .await;
    let payload = client.read_frame().await.expect("a response");
    let (_, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!(response.error_code, 42);
    assert!(response.api_keys.is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn a_malformed_body_closes_the_connection() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    // v3 header, then a compact string claiming 50 bytes that are not there.
    let mut frame = request_frame(
        ApiKey::ApiVersions,
        3,
        0,
        12,
        &ApiVersionsRequest::default(),
    );
    frame.push(51);
    let size = i32::try_from(frame.len() - 4).expect("small");
    frame[..4].copy_from_slice(&size.to_be_bytes());
    client.send(&frame).await;
    client.expect_closed().await;
    gateway.stop().await;
}

/// A stand-in Produce handler: answers nothing, as for acks=0.
fn silent(_ctx: Arc<GatewayContext>, _request: ApiRequest) -> HandlerFuture {
    Box::pin(async { Ok(Reply::NoResponse) })
}

#[tokio::test]
async fn the_list_is_the_dispatch_table_and_produce_is_advertised_from_v0() {
    let produce = ApiEntry {
        key: ApiKey::Produce,
        name: "Produce",
        versions: VersionRange { min: 3, max: 11 },
        advertised_min: 0,
        version_policy: VersionPolicy::Strict,
        handler: silent,
    };
    // ApiVersions and a stand-in Produce only (the standard table routes a
    // real Produce already).
    let table = DispatchTable::empty()
        .with(api_versions::ENTRY)
        .with(produce);
    let mut gateway = TestGateway::start_with(Limits::default(), table).await;
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 1)).await;
    let payload = client.read_frame().await.expect("a response");
    let (_, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!(find(&response, ApiKey::Produce), Some((0, 11)));
    assert_eq!(
        find(&response, ApiKey::Fetch),
        None,
        "not routed, not advertised"
    );
    assert_eq!(response.api_keys.len(), 2);
    gateway.stop().await;
}

#[tokio::test]
async fn the_standard_list_names_only_routed_apis() {
    let mut gateway = TestGateway::start().await;
    let mut client = Client::connect(gateway.addr).await;
    client.send(&api_versions_request(2, 1)).await;
    let payload = client.read_frame().await.expect("a response");
    let (_, response): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 2, 2);
    let table = DispatchTable::standard();
    for listed in &response.api_keys {
        let entry = table
            .get(listed.api_key)
            .expect("advertised APIs are routed");
        assert_eq!(listed.max_version, entry.versions.max);
    }
    assert_eq!(response.api_keys.len(), table.entries().count());
    gateway.stop().await;
}
