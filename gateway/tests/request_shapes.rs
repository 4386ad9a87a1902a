//! The request shapes that bound array counts before decoding
//! (`cxlkafka_gateway::shape`) mirror `kafka-protocol`'s encodings: for every
//! served version, a request with every field populated (tagged fields,
//! nulls and unknown tags included) is walked to exactly its last byte, and
//! a frame declaring billions of elements is refused over a real socket
//! without the gateway allocating for them.

mod common;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use common::{api_versions_request, TestGateway};
use cxlkafka_gateway::api::{fetch, init_producer_id, list_offsets, metadata, produce};
use cxlkafka_gateway::shape::{self, Field};
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, InitProducerIdRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, RequestHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

fn unknown_tags(flexible: bool) -> BTreeMap<i32, Bytes> {
    let mut tags = BTreeMap::new();
    if flexible {
        tags.insert(77, Bytes::from_static(b"\x01\x02\x03"));
    }
    tags
}

/// Encodes `request` at `version` and walks it with `fields`.
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
fn metadata_shapes_match_the_codec() {
    for version in metadata::VERSIONS.min..=metadata::VERSIONS.max {
        let flexible = version >= 9;
        let topic = |text: &str| {
            let mut topic = MetadataRequestTopic::default();
            topic.name = Some(name(text));
            if version >= 10 {
                topic.topic_id = Uuid::from_bytes([7; 16]);
            }
            topic.unknown_tagged_fields = unknown_tags(flexible);
            topic
        };
        let mut request = MetadataRequest::default();
        request.topics = Some(vec![topic("orders"), topic("a.b-c_d")]);
        request.allow_auto_topic_creation = true;
        request.include_topic_authorized_operations = version >= 8;
        request.include_cluster_authorized_operations = (8..=10).contains(&version);
        request.unknown_tagged_fields = unknown_tags(flexible);
        assert_walked(ApiKey::Metadata, metadata::REQUEST, &request, version);
        if version >= 1 {
            request.topics = None;
            assert_walked(ApiKey::Metadata, metadata::REQUEST, &request, version);
        }
    }
}

#[test]
fn produce_shapes_match_the_codec() {
    for version in produce::VERSIONS.min..=produce::VERSIONS.max {
        let flexible = version >= 9;
        let partition = |index, records: Option<Bytes>| {
            let mut data = PartitionProduceData::default();
            data.index = index;
            data.records = records;
            data.unknown_tagged_fields = unknown_tags(flexible);
            data
        };
        let topic = |text: &str| {
            let mut data = TopicProduceData::default();
            if version >= 13 {
                data.topic_id = Uuid::from_bytes([9; 16]);
            } else {
                data.name = name(text);
            }
            data.partition_data = vec![
                partition(0, Some(Bytes::from(vec![5; 70]))),
                partition(1, None),
            ];
            data.unknown_tagged_fields = unknown_tags(flexible);
            data
        };
        let mut request = ProduceRequest::default();
        request.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx")));
        request.acks = -1;
        request.timeout_ms = 30_000;
        request.topic_data = vec![topic("t1"), topic("t2")];
        request.unknown_tagged_fields = unknown_tags(flexible);
        assert_walked(ApiKey::Produce, produce::REQUEST, &request, version);
    }
}

#[test]
fn fetch_shapes_match_the_codec() {
    for version in fetch::VERSIONS.min..=fetch::VERSIONS.max {
        let flexible = version >= 12;
        let partition = |index| {
            let mut data = FetchPartition::default();
            data.partition = index;
            data.fetch_offset = 42;
            data.partition_max_bytes = 1 << 20;
            if version >= 9 {
                data.current_leader_epoch = 3;
            }
            if version >= 12 {
                data.last_fetched_epoch = 2;
            }
            if version >= 17 {
                data.replica_directory_id = Uuid::from_bytes([3; 16]);
            }
            if version >= 18 {
                data.high_watermark = 99;
            }
            data.unknown_tagged_fields = unknown_tags(flexible);
            data
        };
        let mut topic = FetchTopic::default();
        if version >= 13 {
            topic.topic_id = Uuid::from_bytes([1; 16]);
        } else {
            topic.topic = name("events");
        }
        topic.partitions = vec![partition(0), partition(1)];
        topic.unknown_tagged_fields = unknown_tags(flexible);
        let mut request = FetchRequest::default();
        if version <= 14 {
            request.replica_id = (-1).into();
        } else {
            let mut state = ReplicaState::default();
            state.replica_id = (4).into();
            state.replica_epoch = 5;
            request.replica_state = state;
        }
        request.max_wait_ms = 500;
        request.min_bytes = 1;
        request.max_bytes = 50 << 20;
        request.isolation_level = 1;
        request.topics = vec![topic.clone(), topic];
        if version >= 7 {
            request.session_id = 12;
            request.session_epoch = 3;
            let mut forgotten = ForgottenTopic::default();
            if version >= 13 {
                forgotten.topic_id = Uuid::from_bytes([2; 16]);
            } else {
                forgotten.topic = name("gone");
            }
            forgotten.partitions = vec![1, 2, 3];
            forgotten.unknown_tagged_fields = unknown_tags(flexible);
            request.forgotten_topics_data = vec![forgotten];
        }
        if version >= 11 {
            request.rack_id = StrBytes::from_static_str("rack-a");
        }
        if version >= 12 {
            request.cluster_id = Some(StrBytes::from_static_str("cluster"));
        }
        request.unknown_tagged_fields = unknown_tags(flexible);
        assert_walked(ApiKey::Fetch, fetch::REQUEST, &request, version);
    }
}

#[test]
fn list_offsets_shapes_match_the_codec() {
    for version in list_offsets::VERSIONS.min..=list_offsets::VERSIONS.max {
        let flexible = version >= 6;
        let partition = |index| {
            let mut data = ListOffsetsPartition::default();
            data.partition_index = index;
            data.timestamp = -2;
            data.current_leader_epoch = if version >= 4 { 1 } else { -1 };
            data.unknown_tagged_fields = unknown_tags(flexible);
            data
        };
        let mut topic = ListOffsetsTopic::default();
        topic.name = name("offsets");
        topic.partitions = vec![partition(0), partition(1)];
        topic.unknown_tagged_fields = unknown_tags(flexible);
        let mut request = ListOffsetsRequest::default();
        request.replica_id = (-1).into();
        request.isolation_level = if version >= 2 { 1 } else { 0 };
        request.topics = vec![topic.clone(), topic];
        request.timeout_ms = if version >= 10 { 1_000 } else { 0 };
        request.unknown_tagged_fields = unknown_tags(flexible);
        assert_walked(
            ApiKey::ListOffsets,
            list_offsets::REQUEST,
            &request,
            version,
        );
    }
}

#[test]
fn init_producer_id_shapes_match_the_codec() {
    for version in init_producer_id::VERSIONS.min..=init_producer_id::VERSIONS.max {
        for transactional_id in [None, Some("tx-1")] {
            let mut request = InitProducerIdRequest::default();
            request.transactional_id =
                transactional_id.map(|id| TransactionalId(StrBytes::from_static_str(id)));
            request.transaction_timeout_ms = 60_000;
            if version >= 3 {
                request.producer_id = (17).into();
                request.producer_epoch = 2;
            }
            request.unknown_tagged_fields = unknown_tags(version >= 2);
            assert_walked(
                ApiKey::InitProducerId,
                init_producer_id::REQUEST,
                &request,
                version,
            );
        }
    }
}

/// A Produce v3 body that claims `count` topics and carries none.
fn lying_produce(count: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend((-1_i16).to_be_bytes()); // null transactional id
    body.extend(1_i16.to_be_bytes()); // acks
    body.extend(1_000_i32.to_be_bytes()); // timeout
    body.extend(count.to_be_bytes()); // topics
    body
}

/// A request frame with a correct header and `body` as is.
fn raw_frame(api: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 1;
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, api.request_header_version(version))
        .expect("header encodes");
    payload.extend_from_slice(body);
    let mut frame = i32::try_from(payload.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(&payload);
    frame
}

#[tokio::test]
async fn a_frame_declaring_billions_of_elements_closes_only_its_connection() {
    let mut gateway = TestGateway::start().await;
    for (api, version, body) in [
        (ApiKey::Produce, 3, lying_produce(i32::MAX)),
        (ApiKey::Produce, 3, lying_produce(1_000)),
        (
            ApiKey::Metadata,
            1,
            // 2^31-1 topics, nothing after.
            i32::MAX.to_be_bytes().to_vec(),
        ),
        (
            ApiKey::Fetch,
            12,
            // replica, wait, min, max, isolation, session id and epoch, then
            // a compact array count of u32::MAX - 1.
            [
                &[0xff; 4][..],
                &[0; 4],
                &[0; 4],
                &[0; 4],
                &[0],
                &[0; 4],
                &[0; 4],
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
            ]
            .concat(),
        ),
    ] {
        let mut client = gateway.client().await;
        client.send(&raw_frame(api, version, &body)).await;
        client.expect_closed().await;
    }
    // The gateway is alive and serving.
    let mut client = gateway.client().await;
    client.send(&api_versions_request(3, 9)).await;
    let payload = client.read_frame().await.expect("still serving");
    assert_eq!(common::Client::correlation_id(&payload), 9);
    gateway.stop().await;
}
