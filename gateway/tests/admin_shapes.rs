//! The admin APIs' request shapes (`cxlkafka_gateway::shape`) mirror
//! `kafka-protocol`'s encodings: for every served version, a request with
//! every field populated (nulls and unknown tagged fields included) is
//! walked to exactly its last byte; and a frame whose array count promises
//! billions of elements closes the connection without the gateway
//! allocating for them, while the gateway keeps serving.

mod common;

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use common::{request_frame, TestGateway};
use cxlkafka_gateway::api::configs::{alter_configs, describe_configs, incremental_alter_configs};
use cxlkafka_gateway::api::describe_cluster;
use cxlkafka_gateway::api::topics::{create_partitions, create_topics, delete_topics};
use cxlkafka_gateway::shape::{self, Field};
use kafka_protocol::messages::{
    alter_configs_request as legacy, create_partitions_request as partitions,
    create_topics_request as create, delete_topics_request as delete,
    describe_configs_request as describe, incremental_alter_configs_request as incremental,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn tags(flexible: bool) -> BTreeMap<i32, Bytes> {
    let mut tags = BTreeMap::new();
    if flexible {
        tags.insert(99, Bytes::from_static(b"\x05\x06"));
    }
    tags
}

fn assert_walked<T: Encodable>(api: ApiKey, fields: &[Field], request: &T, version: i16) {
    let mut body = BytesMut::new();
    request
        .encode(&mut body, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version} encodes: {e}"));
    let flexible = api.request_header_version(version) >= 2;
    let walked = shape::check(fields, &body, version, flexible)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
    assert_eq!(walked, body.len(), "{api:?} v{version} walked to its end");
}

#[test]
fn create_topics_shapes_match_the_codec() {
    for version in create_topics::VERSIONS.min..=create_topics::VERSIONS.max {
        let flexible = version >= 5;
        let topic = create::CreatableTopic::default()
            .with_name(name("orders"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![create::CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(0), BrokerId(1)])
                .with_unknown_tagged_fields(tags(flexible))])
            .with_configs(vec![
                create::CreatableTopicConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("1000")))
                    .with_unknown_tagged_fields(tags(flexible)),
                create::CreatableTopicConfig::default()
                    .with_name(text("cleanup.policy"))
                    .with_value(None),
            ])
            .with_unknown_tagged_fields(tags(flexible));
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic.clone(), topic])
            .with_timeout_ms(5)
            .with_validate_only(true)
            .with_unknown_tagged_fields(tags(flexible));
        assert_walked(
            ApiKey::CreateTopics,
            create_topics::REQUEST,
            &request,
            version,
        );
    }
}

#[test]
fn delete_topics_shapes_match_the_codec() {
    for version in delete_topics::VERSIONS.min..=delete_topics::VERSIONS.max {
        let flexible = version >= 4;
        let mut request = DeleteTopicsRequest::default()
            .with_timeout_ms(5)
            .with_unknown_tagged_fields(tags(flexible));
        if version >= 6 {
            request = request.with_topics(vec![
                delete::DeleteTopicState::default()
                    .with_name(Some(name("a")))
                    .with_unknown_tagged_fields(tags(flexible)),
                delete::DeleteTopicState::default().with_topic_id(Uuid::from_bytes([3; 16])),
            ]);
        } else {
            request = request.with_topic_names(vec![name("a"), name("bb"), name("")]);
        }
        assert_walked(
            ApiKey::DeleteTopics,
            delete_topics::REQUEST,
            &request,
            version,
        );
    }
}

#[test]
fn create_partitions_shapes_match_the_codec() {
    for version in create_partitions::VERSIONS.min..=create_partitions::VERSIONS.max {
        let flexible = version >= 2;
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                partitions::CreatePartitionsTopic::default()
                    .with_name(name("a"))
                    .with_count(4)
                    .with_assignments(Some(vec![partitions::CreatePartitionsAssignment::default(
                    )
                    .with_broker_ids(vec![BrokerId(0), BrokerId(2)])
                    .with_unknown_tagged_fields(tags(flexible))]))
                    .with_unknown_tagged_fields(tags(flexible)),
                partitions::CreatePartitionsTopic::default()
                    .with_name(name("b"))
                    .with_assignments(None),
            ])
            .with_timeout_ms(5)
            .with_unknown_tagged_fields(tags(flexible));
        assert_walked(
            ApiKey::CreatePartitions,
            create_partitions::REQUEST,
            &request,
            version,
        );
    }
}

#[test]
fn config_api_shapes_match_the_codec() {
    for version in describe_configs::VERSIONS.min..=describe_configs::VERSIONS.max {
        let flexible = version >= 4;
        let request = DescribeConfigsRequest::default()
            .with_resources(vec![
                describe::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text("a"))
                    .with_configuration_keys(Some(vec![text("retention.ms"), text("")]))
                    .with_unknown_tagged_fields(tags(flexible)),
                describe::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_configuration_keys(None),
            ])
            .with_include_synonyms(true)
            .with_include_documentation(version >= 3)
            .with_unknown_tagged_fields(tags(flexible));
        assert_walked(
            ApiKey::DescribeConfigs,
            describe_configs::REQUEST,
            &request,
            version,
        );
    }
    for version in alter_configs::VERSIONS.min..=alter_configs::VERSIONS.max {
        let flexible = version >= 2;
        let request = AlterConfigsRequest::default()
            .with_resources(vec![legacy::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text("a"))
                .with_configs(vec![
                    legacy::AlterableConfig::default()
                        .with_name(text("retention.ms"))
                        .with_value(Some(text("1")))
                        .with_unknown_tagged_fields(tags(flexible)),
                    legacy::AlterableConfig::default()
                        .with_name(text("x"))
                        .with_value(None),
                ])
                .with_unknown_tagged_fields(tags(flexible))])
            .with_validate_only(true)
            .with_unknown_tagged_fields(tags(flexible));
        assert_walked(
            ApiKey::AlterConfigs,
            alter_configs::REQUEST,
            &request,
            version,
        );
    }
    for version in incremental_alter_configs::VERSIONS.min..=incremental_alter_configs::VERSIONS.max
    {
        let flexible = version >= 1;
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![incremental::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(text("a"))
                .with_configs(vec![
                    incremental::AlterableConfig::default()
                        .with_name(text("cleanup.policy"))
                        .with_config_operation(2)
                        .with_value(Some(text("compact")))
                        .with_unknown_tagged_fields(tags(flexible)),
                    incremental::AlterableConfig::default()
                        .with_name(text("retention.ms"))
                        .with_config_operation(1)
                        .with_value(None),
                ])
                .with_unknown_tagged_fields(tags(flexible))])
            .with_validate_only(true)
            .with_unknown_tagged_fields(tags(flexible));
        assert_walked(
            ApiKey::IncrementalAlterConfigs,
            incremental_alter_configs::REQUEST,
            &request,
            version,
        );
    }
    for version in describe_cluster::VERSIONS.min..=describe_cluster::VERSIONS.max {
        let mut request = DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(true)
            .with_unknown_tagged_fields(tags(true));
        if version >= 1 {
            request = request.with_endpoint_type(1);
        }
        if version >= 2 {
            request = request.with_include_fenced_brokers(true);
        }
        assert_walked(
            ApiKey::DescribeCluster,
            describe_cluster::REQUEST,
            &request,
            version,
        );
    }
}

/// A frame for `api` v`version` whose body is `body`.
fn raw_frame(api: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 9;
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, api.request_header_version(version))
        .expect("header encodes");
    payload.put_slice(body);
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(payload.len()).expect("small"));
    frame.put_slice(&payload);
    frame.to_vec()
}

#[tokio::test]
async fn a_count_of_billions_closes_the_connection_and_the_gateway_keeps_serving() {
    let mut gateway = TestGateway::start().await;
    // Each body declares i32::MAX elements (compact: a 5-byte varint) in its
    // first array, then ends.
    let classic_huge = i32::MAX.to_be_bytes().to_vec();
    let compact_huge = vec![0xff, 0xff, 0xff, 0xff, 0x07];
    let cases = [
        (ApiKey::CreateTopics, 4, classic_huge.clone()),
        (ApiKey::CreateTopics, 7, compact_huge.clone()),
        (ApiKey::DeleteTopics, 3, classic_huge.clone()),
        (ApiKey::DeleteTopics, 6, compact_huge.clone()),
        (ApiKey::CreatePartitions, 1, classic_huge.clone()),
        (ApiKey::DescribeConfigs, 4, compact_huge.clone()),
        (ApiKey::AlterConfigs, 0, classic_huge.clone()),
        (ApiKey::IncrementalAlterConfigs, 1, compact_huge),
    ];
    for (api, version, body) in cases {
        let mut client = gateway.client().await;
        client.send(&raw_frame(api, version, &body)).await;
        client.expect_closed().await;
    }
    // Still serving: a well-formed DescribeConfigs is answered.
    let mut client = gateway.client().await;
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(text("0"))
            .with_configuration_keys(Some(vec![text("num.partitions")])),
    ]);
    client
        .send(&request_frame(ApiKey::DescribeConfigs, 4, 4, 3, &request))
        .await;
    let payload = client.read_frame().await.expect("a response");
    let (_, response): (_, DescribeConfigsResponse) =
        common::decode_response(payload, ApiKey::DescribeConfigs, 4, 4);
    assert_eq!(response.results[0].error_code, 0);
    assert_eq!(response.results[0].configs.len(), 1);
    gateway.stop().await;
}
