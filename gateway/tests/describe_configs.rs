//! DescribeConfigs over a real socket against a gateway on a real region.

mod admin;
mod common;

use admin::{
    config, find_config, message, new_topic, text, Admin, BROKER, BROKER_LOGGER, DEFAULT_CONFIG,
    DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, TOPIC,
};
use common::TestGateway;
use cxlkafka_gateway::api::configs::describe_configs;
use cxlkafka_gateway::api_support::topic_config::TOPIC_CONFIGS;
use cxlkafka_gateway::context::{Limits, TopicDefaults};
use cxlkafka_gateway::DispatchTable;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};

/// Kafka's config type ids.
const LONG: i8 = 5;
const LIST: i8 = 7;
const INT: i8 = 3;

fn resource(resource_type: i8, name: &str) -> DescribeConfigsResource {
    DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configuration_keys(None)
}

#[tokio::test]
async fn every_version_lists_every_topic_config_with_its_source() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let created = admin
        .create(vec![new_topic("described", 2, 1).with_configs(vec![
            config("retention.ms", Some("3600000")),
            config("cleanup.policy", Some("compact,delete")),
        ])])
        .await;
    assert_eq!(created[0].error_code, 0);
    for version in describe_configs::VERSIONS.min..=describe_configs::VERSIONS.max {
        for (synonyms, asked) in [(false, false), (true, true)] {
            // Documentation can be asked for from v3.
            let documentation = asked && version >= 3;
            let request = DescribeConfigsRequest::default()
                .with_resources(vec![resource(TOPIC, "described")])
                .with_include_synonyms(synonyms)
                .with_include_documentation(documentation);
            let response: DescribeConfigsResponse =
                admin.call(ApiKey::DescribeConfigs, version, &request).await;
            let result = &response.results[0];
            assert_eq!(result.error_code, 0, "v{version}");
            assert_eq!(result.resource_type, TOPIC);
            assert_eq!(result.resource_name.as_str(), "described");
            assert_eq!(result.configs.len(), TOPIC_CONFIGS.len(), "v{version}");
            let retention = find_config(result, "retention.ms").expect("listed");
            assert_eq!(retention.value.as_deref(), Some("3600000"));
            assert_eq!(retention.config_source, DYNAMIC_TOPIC_CONFIG);
            assert!(!retention.read_only && !retention.is_sensitive);
            let policy = find_config(result, "cleanup.policy").expect("listed");
            assert_eq!(policy.value.as_deref(), Some("compact,delete"));
            let bytes = find_config(result, "retention.bytes").expect("listed");
            assert_eq!(bytes.value.as_deref(), Some("-1"));
            assert_eq!(bytes.config_source, DEFAULT_CONFIG);
            let max_message = find_config(result, "max.message.bytes").expect("listed");
            assert_eq!(max_message.value.as_deref(), Some("1048588"));
            assert_eq!(max_message.config_source, DEFAULT_CONFIG);
            let insync = find_config(result, "min.insync.replicas").expect("listed");
            assert_eq!(insync.value.as_deref(), Some("1"));
            if synonyms {
                let names: Vec<(&str, i8)> = retention
                    .synonyms
                    .iter()
                    .map(|s| (s.name.as_str(), s.source))
                    .collect();
                assert_eq!(
                    names,
                    [
                        ("retention.ms", DYNAMIC_TOPIC_CONFIG),
                        ("log.retention.hours", DEFAULT_CONFIG)
                    ]
                );
            } else {
                assert!(retention.synonyms.is_empty());
            }
            if version >= 3 {
                assert_eq!(retention.config_type, LONG);
                assert_eq!(policy.config_type, LIST);
                assert_eq!(
                    retention.documentation.is_some(),
                    documentation,
                    "documentation only when asked"
                );
            }
        }
    }
    gateway.stop().await;
}

#[tokio::test]
async fn configuration_keys_filter_the_list() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("filtered", 1).await;
    let request =
        DescribeConfigsRequest::default().with_resources(vec![resource(TOPIC, "filtered")
            .with_configuration_keys(Some(vec![text("segment.bytes"), text("no.such.config")]))]);
    let response: DescribeConfigsResponse = admin.call(ApiKey::DescribeConfigs, 2, &request).await;
    let names: Vec<&str> = response.results[0]
        .configs
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["segment.bytes"]);
    assert_eq!(
        response.results[0].configs[0].value.as_deref(),
        Some("1073741824")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn unknown_topics_illegal_names_and_unsupported_resources_are_refused() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let request = DescribeConfigsRequest::default().with_resources(vec![
        resource(TOPIC, "nowhere"),
        resource(TOPIC, "bad name"),
        resource(BROKER, "7"),
        resource(BROKER, "zero"),
        resource(BROKER_LOGGER, "7"),
        resource(99, "x"),
    ]);
    let response: DescribeConfigsResponse = admin.call(ApiKey::DescribeConfigs, 4, &request).await;
    let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [3, 17, 42, 42, 42, 42]);
    assert!(response.results.iter().all(|r| r.configs.is_empty()));
    assert_eq!(
        message(&response.results[2].error_message),
        "Unexpected broker id, expected 0 or empty string, but received 7"
    );
    assert_eq!(
        message(&response.results[4].error_message),
        "Unexpected broker id, expected 0 but received 7"
    );
    assert!(message(&response.results[5].error_message).contains("Unsupported resource type"));
    gateway.stop().await;
}

#[tokio::test]
async fn this_broker_lists_its_settings_and_only_dynamic_ones_are_alterable() {
    let limits = Limits {
        message_max_bytes: 2_000_000,
        ..Limits::default()
    };
    let topics = TopicDefaults {
        partitions: 6,
        ..TopicDefaults::default()
    };
    let mut gateway =
        TestGateway::start_with_topics(limits, DispatchTable::standard(), topics).await;
    let mut admin = Admin::new(gateway.client().await);
    let broker = admin.describe(BROKER, "0").await;
    assert_eq!(broker.error_code, 0);
    let alterable: Vec<&str> = broker
        .configs
        .iter()
        .filter(|c| !c.read_only)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        alterable,
        [
            "auto.create.topics.enable",
            "log.retention.bytes",
            "log.retention.ms",
            "message.max.bytes"
        ]
    );
    let value = |name: &str| {
        let entry = find_config(&broker, name).unwrap_or_else(|| panic!("{name} listed"));
        (
            entry.value.as_deref().unwrap_or_default().to_owned(),
            entry.config_source,
        )
    };
    assert_eq!(
        value("num.partitions"),
        ("6".to_owned(), STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        value("auto.create.topics.enable"),
        ("true".to_owned(), DEFAULT_CONFIG)
    );
    assert_eq!(
        value("default.replication.factor"),
        ("2".to_owned(), STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        value("message.max.bytes"),
        ("2000000".to_owned(), STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        value("log.retention.hours"),
        ("168".to_owned(), DEFAULT_CONFIG)
    );
    assert_eq!(
        find_config(&broker, "num.partitions").map(|c| c.config_type),
        Some(INT)
    );
    // A topic's max.message.bytes follows the broker's flag.
    admin.create_ok("limited", 1).await;
    assert_eq!(
        admin.topic_config("limited", "max.message.bytes").await,
        ("2000000".to_owned(), STATIC_BROKER_CONFIG)
    );
    // The cluster-wide default resource lists only dynamic defaults set:
    // none yet.
    let defaults = admin.describe(BROKER, "").await;
    assert_eq!(defaults.error_code, 0);
    assert!(defaults.configs.is_empty());
    gateway.stop().await;
}
