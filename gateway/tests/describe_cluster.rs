//! DescribeCluster over a real socket against a gateway on a real region.

mod admin;
mod common;

use admin::Admin;
use common::TestGateway;
use cxlkafka_gateway::api::describe_cluster;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
};

#[tokio::test]
async fn every_version_agrees_with_metadata() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let metadata: MetadataResponse = admin
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await;
    for version in describe_cluster::VERSIONS.min..=describe_cluster::VERSIONS.max {
        for authorized in [false, true] {
            let request = DescribeClusterRequest::default()
                .with_include_cluster_authorized_operations(authorized);
            let response: DescribeClusterResponse =
                admin.call(ApiKey::DescribeCluster, version, &request).await;
            assert_eq!(response.error_code, 0, "v{version}");
            assert_eq!(response.error_message, None);
            assert_eq!(Some(&response.cluster_id), metadata.cluster_id.as_ref());
            assert_eq!(response.cluster_id.len(), 22, "Kafka's base64 form");
            assert_eq!(response.controller_id, metadata.controller_id);
            assert_eq!(response.controller_id.0, 0);
            assert_eq!(response.brokers.len(), 1);
            let broker = &response.brokers[0];
            assert_eq!(broker.broker_id.0, 0);
            assert_eq!(broker.host.as_str(), gateway.addr.ip().to_string());
            assert_eq!(broker.port, i32::from(gateway.addr.port()));
            assert_eq!(broker.rack, None);
            assert!(!broker.is_fenced);
            let expected = if authorized { 8096 } else { i32::MIN };
            assert_eq!(
                response.cluster_authorized_operations, expected,
                "v{version}"
            );
            if version >= 1 {
                assert_eq!(response.endpoint_type, 1);
            }
        }
    }
    gateway.stop().await;
}

#[tokio::test]
async fn controller_endpoints_are_not_served_by_brokers() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for (endpoint, code) in [(2, 114), (7, 115)] {
        let request = DescribeClusterRequest::default().with_endpoint_type(endpoint);
        let response: DescribeClusterResponse =
            admin.call(ApiKey::DescribeCluster, 1, &request).await;
        assert_eq!(response.error_code, code);
        assert!(response.brokers.is_empty());
        assert!(response.error_message.is_some());
    }
    gateway.stop().await;
}
