//! CreateTopics over a real socket against a gateway on a real region.

mod admin;
mod common;

use admin::{config, message, new_topic, topic_name, Admin, DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG};
use common::TestGateway;
use cxlkafka_gateway::api::topics::create_topics;
use cxlkafka_gateway::api_support::topic_config::TOPIC_CONFIGS;
use cxlkafka_gateway::context::{Limits, TopicDefaults};
use cxlkafka_gateway::DispatchTable;
use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse};
use uuid::Uuid;

fn result<'a>(results: &'a [CreatableTopicResult], name: &str) -> &'a CreatableTopicResult {
    results
        .iter()
        .find(|r| r.name.as_str() == name)
        .unwrap_or_else(|| panic!("a result for {name:?}"))
}

#[tokio::test]
async fn every_version_creates_and_reports_like_kafka() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for version in create_topics::VERSIONS.min..=create_topics::VERSIONS.max {
        let name = format!("orders-v{version}");
        let topic = new_topic(&name, 3, 1).with_configs(vec![
            config("retention.ms", Some("1000")),
            config("cleanup.policy", Some("compact")),
        ]);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(10_000);
        let response: CreateTopicsResponse =
            admin.call(ApiKey::CreateTopics, version, &request).await;
        assert_eq!(response.topics.len(), 1, "v{version}");
        let created = &response.topics[0];
        assert_eq!(created.name.as_str(), name);
        assert_eq!(
            created.error_code, 0,
            "v{version}: {:?}",
            created.error_message
        );
        assert_eq!(created.error_message, None);
        if version >= 5 {
            assert_eq!(created.num_partitions, 3);
            assert_eq!(created.replication_factor, 1);
            let configs = created.configs.as_ref().expect("v5+ lists configs");
            assert_eq!(configs.len(), TOPIC_CONFIGS.len());
            let entry = |n: &str| {
                configs
                    .iter()
                    .find(|c| c.name.as_str() == n)
                    .unwrap_or_else(|| panic!("{n} listed"))
            };
            assert_eq!(entry("retention.ms").value.as_deref(), Some("1000"));
            assert_eq!(entry("retention.ms").config_source, DYNAMIC_TOPIC_CONFIG);
            assert_eq!(entry("cleanup.policy").value.as_deref(), Some("compact"));
            assert_eq!(entry("max.message.bytes").value.as_deref(), Some("1048588"));
            assert_eq!(entry("max.message.bytes").config_source, DEFAULT_CONFIG);
            assert!(configs.iter().all(|c| !c.read_only && !c.is_sensitive));
        }
        let metadata = admin.metadata(&name).await;
        assert_eq!(metadata.error_code, 0, "v{version}: the topic exists");
        assert_eq!(metadata.partitions.len(), 3);
        if version >= 7 {
            assert!(!created.topic_id.is_nil());
            assert_eq!(
                created.topic_id, metadata.topic_id,
                "the id Metadata reports"
            );
        }
        assert_eq!(
            admin.topic_config(&name, "retention.ms").await,
            ("1000".to_owned(), DYNAMIC_TOPIC_CONFIG)
        );
    }
    gateway.stop().await;
}

#[tokio::test]
async fn minus_one_takes_the_cluster_defaults() {
    let topics = TopicDefaults {
        partitions: 4,
        ..TopicDefaults::default()
    };
    let mut gateway =
        TestGateway::start_with_topics(Limits::default(), DispatchTable::standard(), topics).await;
    let mut admin = Admin::new(gateway.client().await);
    let created = admin.create(vec![new_topic("defaults", -1, -1)]).await;
    assert_eq!(created[0].error_code, 0, "{:?}", created[0].error_message);
    assert_eq!(created[0].num_partitions, 4);
    // The default factor: 2 copies, the region and the gateway's disk.
    assert_eq!(created[0].replication_factor, 2);
    assert_eq!(admin.partitions("defaults").await, Some(4));
    gateway.stop().await;
}

#[tokio::test]
async fn each_invalid_topic_gets_kafkas_error_and_nothing_is_created() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("taken", 1).await;
    admin.create_ok("metrics_eu", 1).await;
    let assigned = |index: i32, brokers: &[i32]| {
        CreatableReplicaAssignment::default()
            .with_partition_index(index)
            .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())
    };
    let cases: Vec<(
        kafka_protocol::messages::create_topics_request::CreatableTopic,
        i16,
        &str,
    )> = vec![
        (new_topic("bad name", 1, 1), 17, "illegal"),
        (new_topic("", 1, 1), 17, "can't be empty"),
        (new_topic(&"x".repeat(250), 1, 1), 17, "longer than 249"),
        (
            new_topic("taken", 1, 1),
            36,
            "Topic 'taken' already exists.",
        ),
        (new_topic("__cxlkafka_order", 1, 1), 36, "already exists"),
        (
            new_topic("metrics.eu", 1, 1),
            17,
            "collides with existing topic: metrics_eu",
        ),
        (new_topic("zero-partitions", 0, 1), 37, "non-positive"),
        (new_topic("too-many-partitions", 257, 1), 37, "limit of 256"),
        (new_topic("zero-factor", 1, 0), 38, "larger than 0"),
        (
            // The region and the one gateway's disk make two copies.
            new_topic("factor-above-copies", 1, 3),
            38,
            "only 2 copies",
        ),
        (
            new_topic("unknown-config", 1, 1)
                .with_configs(vec![config("retention.hours", Some("1"))]),
            40,
            "Unknown topic config name: retention.hours",
        ),
        (
            new_topic("bad-value", 1, 1).with_configs(vec![config("retention.ms", Some("soon"))]),
            40,
            "Not a number of type LONG",
        ),
        (
            new_topic("null-value", 1, 1).with_configs(vec![config("retention.ms", None)]),
            40,
            "Null value not supported",
        ),
        (
            new_topic("assigned-with-count", 1, -1).with_assignments(vec![assigned(0, &[0])]),
            42,
            "numPartitions was not set to -1",
        ),
        (
            new_topic("assigned-unknown-broker", -1, -1).with_assignments(vec![assigned(0, &[7])]),
            39,
            "broker 7, but no such broker",
        ),
        (
            new_topic("assigned-gap", -1, -1)
                .with_assignments(vec![assigned(0, &[0]), assigned(2, &[0])]),
            39,
            "consecutive",
        ),
    ];
    let topics = cases.iter().map(|(topic, _, _)| topic.clone()).collect();
    let results = admin.create(topics).await;
    assert_eq!(results.len(), cases.len());
    for (topic, code, text) in &cases {
        let name = topic.name.as_str();
        let found = result(&results, name);
        assert_eq!(found.error_code, *code, "{name}: {:?}", found.error_message);
        assert!(
            message(&found.error_message).contains(text),
            "{name}: {:?}",
            found.error_message
        );
        assert_eq!(found.num_partitions, -1, "{name}: no counts on error");
        assert!(found.topic_id.is_nil());
        if *code != 36 && !name.is_empty() && name.len() <= 249 && name != "bad name" {
            assert_eq!(admin.partitions(name).await, None, "{name} was not created");
        }
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_name_twice_in_one_request_is_an_invalid_request() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let results = admin
        .create(vec![
            new_topic("twice", 1, 1),
            new_topic("twice", 2, 1),
            new_topic("once", 1, 1),
        ])
        .await;
    assert_eq!(results.len(), 2, "one result per name");
    assert_eq!(result(&results, "twice").error_code, 42);
    assert_eq!(
        message(&result(&results, "twice").error_message),
        "Duplicate topic name."
    );
    assert_eq!(result(&results, "once").error_code, 0);
    assert_eq!(admin.partitions("twice").await, None);
    assert_eq!(admin.partitions("once").await, Some(1));
    gateway.stop().await;
}

#[tokio::test]
async fn validate_only_checks_everything_and_creates_nothing() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("existing", 1).await;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            new_topic("dry-run", 5, 1).with_configs(vec![config("min.insync.replicas", Some("1"))]),
            new_topic("existing", 1, 1),
            new_topic("dry-bad", 1, 1).with_configs(vec![config("segment.bytes", Some("1"))]),
        ])
        .with_timeout_ms(5_000)
        .with_validate_only(true);
    let response: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 7, &request).await;
    let dry = result(&response.topics, "dry-run");
    assert_eq!(dry.error_code, 0);
    assert_eq!(dry.num_partitions, 5);
    let configs = dry.configs.as_ref().expect("configs");
    let min_insync = configs
        .iter()
        .find(|c| c.name.as_str() == "min.insync.replicas")
        .expect("listed");
    assert_eq!(min_insync.config_source, DYNAMIC_TOPIC_CONFIG);
    assert_eq!(result(&response.topics, "existing").error_code, 36);
    assert_eq!(result(&response.topics, "dry-bad").error_code, 40);
    assert_eq!(
        admin.partitions("dry-run").await,
        None,
        "nothing was created"
    );
    assert_eq!(admin.partitions("dry-bad").await, None);
    gateway.stop().await;
}

#[tokio::test]
async fn manual_assignments_give_the_counts() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let assignments = (0..3)
        .map(|index| {
            CreatableReplicaAssignment::default()
                .with_partition_index(index)
                .with_broker_ids(vec![BrokerId(0)])
        })
        .collect();
    let results = admin
        .create(vec![
            new_topic("assigned", -1, -1).with_assignments(assignments)
        ])
        .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    assert_eq!(results[0].num_partitions, 3);
    assert_eq!(results[0].replication_factor, 1);
    assert_eq!(admin.partitions("assigned").await, Some(3));
    gateway.stop().await;
}

#[tokio::test]
async fn configs_beyond_the_catalogs_room_are_refused() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let replicas = "0:0,1:0,2:0,3:0,4:0,5:0,6:0,7:0,8:0,9:0,10:0,11:0";
    let results = admin
        .create(vec![new_topic("crowded", 1, 1).with_configs(vec![
            config("leader.replication.throttled.replicas", Some(replicas)),
            config("follower.replication.throttled.replicas", Some(replicas)),
            config("message.timestamp.type", Some("LogAppendTime")),
        ])])
        .await;
    assert_eq!(results[0].error_code, 40);
    assert!(message(&results[0].error_message).contains("at most 192"));
    assert_eq!(admin.partitions("crowded").await, None);
    gateway.stop().await;
}

#[tokio::test]
async fn a_zero_timeout_still_creates_the_topic() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![new_topic("no-wait", 2, 1)])
        .with_timeout_ms(0);
    let response: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 4, &request).await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(admin.partitions("no-wait").await, Some(2));
    // Recreating the name answers TOPIC_ALREADY_EXISTS at every version.
    let again: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 2, &request).await;
    assert_eq!(again.topics[0].error_code, 36);
    assert_eq!(again.topics[0].name, topic_name("no-wait"));
    assert_ne!(Uuid::nil(), admin.metadata("no-wait").await.topic_id);
    gateway.stop().await;
}
