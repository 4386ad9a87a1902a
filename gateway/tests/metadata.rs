//! Metadata over a real socket: brokers, cluster id, auto-creation, stable
//! topic ids, lookups by id, name validation, every version.

mod common;
mod data_path;

use common::{api_versions_request, decode_response, Client, TestGateway};
use cxlkafka_gateway::api::metadata;
use cxlkafka_gateway::api_support::brokers::cluster_id;
use cxlkafka_gateway::context::{Limits, TopicDefaults};
use cxlkafka_gateway::DispatchTable;
use data_path::{call, create_topic, metadata_request};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse};
use uuid::Uuid;

#[tokio::test]
async fn auto_creation_gives_a_stable_topic_id_and_this_gateway_as_broker() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "orders").await;
    assert_eq!(created.brokers.len(), 1);
    let broker = &created.brokers[0];
    assert_eq!(broker.node_id.0, 0);
    assert_eq!(broker.host.as_str(), gateway.addr.ip().to_string());
    assert_eq!(broker.port, i32::from(gateway.addr.port()));
    assert_eq!(broker.rack, None);
    assert_eq!(created.controller_id.0, 0);
    assert_eq!(
        created.cluster_id.as_deref(),
        Some(cluster_id("test").as_str())
    );
    let topic = &created.topics[0];
    assert_eq!(topic.name.as_deref().map(|n| n.as_str()), Some("orders"));
    assert_ne!(topic.topic_id, Uuid::nil());
    assert!(!topic.is_internal);
    assert_eq!(topic.topic_authorized_operations, i32::MIN);
    assert_eq!(topic.partitions.len(), 1);
    let partition = &topic.partitions[0];
    assert_eq!(partition.partition_index, 0);
    assert_eq!(partition.leader_id.0, 0);
    assert_eq!(partition.leader_epoch, -1);
    assert_eq!(partition.replica_nodes.len(), 1, "one live gateway");
    assert_eq!(partition.isr_nodes, partition.replica_nodes);
    assert!(partition.offline_replicas.is_empty());

    // Asked again, on another connection and for all topics: same id.
    let mut other = gateway.client().await;
    let again: MetadataResponse = call(
        &mut other,
        ApiKey::Metadata,
        12,
        2,
        &metadata_request(&["orders"]),
    )
    .await;
    assert_eq!(again.topics[0].topic_id, topic.topic_id);
    let mut all = MetadataRequest::default();
    all.topics = None;
    let listed: MetadataResponse = call(&mut other, ApiKey::Metadata, 12, 3, &all).await;
    let user_topics: Vec<_> = listed.topics.iter().filter(|t| !t.is_internal).collect();
    assert_eq!(user_topics.len(), 1);
    assert_eq!(user_topics[0].topic_id, topic.topic_id);
    // Besides user topics, the read-only total order is always listed.
    let internal: Vec<_> = listed.topics.iter().filter(|t| t.is_internal).collect();
    assert_eq!(internal.len(), 1);
    assert_eq!(
        internal[0].name.as_ref().map(|n| n.as_str()),
        Some("__cxlkafka_order")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn every_version_lists_brokers_and_topics() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "everywhere").await;
    for version in metadata::VERSIONS.min..=metadata::VERSIONS.max {
        let mut request = MetadataRequest::default();
        // v0 lists everything for an empty list, later versions for null.
        request.topics = if version == 0 { Some(Vec::new()) } else { None };
        request.allow_auto_topic_creation = version < 4;
        let response: MetadataResponse =
            call(&mut client, ApiKey::Metadata, version, 10, &request).await;
        assert_eq!(response.brokers.len(), 1, "v{version}");
        // "everywhere" and the internal __cxlkafka_order.
        assert_eq!(response.topics.len(), 2, "v{version}");
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("everywhere"))
            .unwrap_or_else(|| panic!("v{version} lists the topic"));
        assert_eq!(topic.error_code, 0, "v{version}");
        assert_eq!(topic.partitions.len(), 1, "v{version}");
        if version >= 10 {
            assert_ne!(topic.topic_id, Uuid::nil(), "v{version}");
        }
    }
    gateway.stop().await;
}

#[tokio::test]
async fn unknown_topics_are_not_created_when_the_request_or_the_gateway_says_no() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let mut request = metadata_request(&["nope"]);
    request.allow_auto_topic_creation = false;
    let response: MetadataResponse = call(&mut client, ApiKey::Metadata, 9, 1, &request).await;
    assert_eq!(response.topics[0].error_code, 3);
    assert!(response.topics[0].partitions.is_empty());
    let mut all = MetadataRequest::default();
    all.topics = None;
    let listed: MetadataResponse = call(&mut client, ApiKey::Metadata, 9, 2, &all).await;
    assert!(
        listed.topics.iter().all(|t| t.is_internal),
        "nothing was created: {:?}",
        listed
            .topics
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    );
    gateway.stop().await;

    let no_auto_create = TopicDefaults {
        auto_create: false,
        ..TopicDefaults::default()
    };
    let mut gateway = TestGateway::start_with_topics(
        Limits::default(),
        DispatchTable::standard(),
        no_auto_create,
    )
    .await;
    let mut client = gateway.client().await;
    let response: MetadataResponse = call(
        &mut client,
        ApiKey::Metadata,
        12,
        3,
        &metadata_request(&["nope"]),
    )
    .await;
    assert_eq!(response.topics[0].error_code, 3);
    gateway.stop().await;
}

#[tokio::test]
async fn illegal_names_are_invalid_topics_and_duplicates_are_answered_once() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let long = "x".repeat(250);
    let names = ["has space", "..", "", long.as_str(), "ok", "ok"];
    let response: MetadataResponse = call(
        &mut client,
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&names),
    )
    .await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![17, 17, 17, 17, 0]);
    gateway.stop().await;
}

#[tokio::test]
async fn topics_can_be_named_by_id() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "by-id").await;
    let id = created.topics[0].topic_id;
    let unknown = Uuid::from_bytes([0x42; 16]);
    let mut request = MetadataRequest::default();
    request.topics = Some(
        [id, unknown]
            .into_iter()
            .map(|topic_id| {
                let mut topic = MetadataRequestTopic::default();
                topic.name = None;
                topic.topic_id = topic_id;
                topic
            })
            .collect(),
    );
    let response: MetadataResponse = call(&mut client, ApiKey::Metadata, 12, 2, &request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(
        response.topics[0].name.as_deref().map(|n| n.as_str()),
        Some("by-id")
    );
    assert_eq!(response.topics[1].error_code, 100);
    assert_eq!(response.topics[1].topic_id, unknown);
    assert_eq!(response.topics[1].name, None);
    gateway.stop().await;
}

#[tokio::test]
async fn partitions_spread_their_leaders_and_the_data_apis_are_advertised() {
    let four = TopicDefaults {
        partitions: 4,
        ..TopicDefaults::default()
    };
    let mut gateway =
        TestGateway::start_with_topics(Limits::default(), DispatchTable::standard(), four).await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "wide").await;
    let indexes: Vec<i32> = created.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, vec![0, 1, 2, 3]);
    assert!(created.topics[0]
        .partitions
        .iter()
        .all(|p| p.leader_id.0 == 0 && p.error_code == 0));

    let mut client = Client::connect(gateway.addr).await;
    client.send(&api_versions_request(3, 1)).await;
    let payload = client.read_frame().await.expect("a response");
    let (_, versions): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|v| v.api_key == key as i16)
            .map(|v| (v.min_version, v.max_version))
    };
    assert_eq!(range(ApiKey::Produce), Some((0, 13)));
    assert_eq!(range(ApiKey::Fetch), Some((4, 18)));
    assert_eq!(range(ApiKey::ListOffsets), Some((1, 10)));
    assert_eq!(range(ApiKey::Metadata), Some((0, 13)));
    assert_eq!(range(ApiKey::InitProducerId), Some((0, 5)));
    gateway.stop().await;
}
