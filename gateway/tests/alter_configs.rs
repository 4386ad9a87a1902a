//! AlterConfigs and IncrementalAlterConfigs over a real socket against a
//! gateway on a real region.

mod admin;
mod common;

use admin::{
    config, message, new_topic, text, Admin, BROKER, BROKER_LOGGER, DEFAULT_CONFIG,
    DYNAMIC_TOPIC_CONFIG, TOPIC,
};
use common::TestGateway;
use cxlkafka_gateway::api::configs::{alter_configs, incremental_alter_configs};
use kafka_protocol::messages::alter_configs_request as legacy;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn op(name: &str, operation: i8, value: Option<&str>) -> incremental::AlterableConfig {
    incremental::AlterableConfig::default()
        .with_name(text(name))
        .with_config_operation(operation)
        .with_value(value.map(text))
}

fn resource(
    resource_type: i8,
    name: &str,
    ops: Vec<incremental::AlterableConfig>,
) -> incremental::AlterConfigsResource {
    incremental::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configs(ops)
}

/// IncrementalAlterConfigs; returns (code, message) per resource.
async fn alter(
    admin: &mut Admin,
    version: i16,
    resources: Vec<incremental::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<(i16, String)> {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    let response: IncrementalAlterConfigsResponse = admin
        .call(ApiKey::IncrementalAlterConfigs, version, &request)
        .await;
    response
        .responses
        .iter()
        .map(|r| (r.error_code, message(&r.error_message)))
        .collect()
}

/// AlterConfigs of one resource with `configs`; returns (code, message).
async fn replace(
    admin: &mut Admin,
    version: i16,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
) -> (i16, String) {
    let request =
        AlterConfigsRequest::default().with_resources(vec![legacy::AlterConfigsResource::default(
        )
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configs(
            configs
                .iter()
                .map(|(n, v)| {
                    legacy::AlterableConfig::default()
                        .with_name(text(n))
                        .with_value(v.map(text))
                })
                .collect(),
        )]);
    let response: AlterConfigsResponse = admin.call(ApiKey::AlterConfigs, version, &request).await;
    assert_eq!(response.responses.len(), 1);
    let result = &response.responses[0];
    assert_eq!(result.resource_type, resource_type);
    assert_eq!(result.resource_name.as_str(), name);
    (result.error_code, message(&result.error_message))
}

fn owned(value: &str, source: i8) -> (String, i8) {
    (value.to_owned(), source)
}

#[tokio::test]
async fn set_delete_append_and_subtract_follow_kip_339() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for version in incremental_alter_configs::VERSIONS.min..=incremental_alter_configs::VERSIONS.max
    {
        let topic = format!("tuned-v{version}");
        admin.create_ok(&topic, 1).await;
        let set = vec![
            op("retention.ms", SET, Some("1000")),
            op("cleanup.policy", SET, Some("compact")),
        ];
        assert_eq!(
            alter(
                &mut admin,
                version,
                vec![resource(TOPIC, &topic, set)],
                false
            )
            .await,
            [(0, String::new())]
        );
        assert_eq!(
            admin.topic_config(&topic, "retention.ms").await,
            owned("1000", DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            admin.topic_config(&topic, "cleanup.policy").await,
            owned("compact", DYNAMIC_TOPIC_CONFIG)
        );

        let changes = vec![
            op("retention.ms", DELETE, None),
            op("cleanup.policy", APPEND, Some("delete")),
        ];
        assert_eq!(
            alter(
                &mut admin,
                version,
                vec![resource(TOPIC, &topic, changes)],
                false
            )
            .await[0]
                .0,
            0
        );
        assert_eq!(
            admin.topic_config(&topic, "retention.ms").await,
            owned("604800000", DEFAULT_CONFIG)
        );
        assert_eq!(
            admin.topic_config(&topic, "cleanup.policy").await,
            owned("compact,delete", DYNAMIC_TOPIC_CONFIG)
        );

        let subtract = vec![op("cleanup.policy", SUBTRACT, Some("compact"))];
        assert_eq!(
            alter(
                &mut admin,
                version,
                vec![resource(TOPIC, &topic, subtract)],
                false
            )
            .await[0]
                .0,
            0
        );
        assert_eq!(
            admin.topic_config(&topic, "cleanup.policy").await,
            owned("delete", DYNAMIC_TOPIC_CONFIG)
        );
    }
    gateway.stop().await;
}

#[tokio::test]
async fn invalid_changes_get_kafkas_errors_and_change_nothing() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("guarded", 1).await;
    admin.create_ok("twice", 1).await;
    let cases = vec![
        (
            vec![op("retention.ms", APPEND, Some("5"))],
            40,
            "Can't APPEND to key retention.ms because its type is not LIST.",
        ),
        (
            vec![op("retention.hours", SET, Some("5"))],
            40,
            "Unknown topic config name: retention.hours",
        ),
        (
            vec![op("retention.ms", SET, Some("-7"))],
            40,
            "Value must be at least -1",
        ),
        (
            vec![op("retention.ms", 9, Some("5"))],
            42,
            "Unknown operation type 9",
        ),
        (
            vec![
                op("retention.ms", SET, Some("5")),
                op("retention.ms", DELETE, None),
            ],
            42,
            "Error due to duplicate config keys",
        ),
        (
            vec![
                op("retention.ms", SET, None),
                op("segment.ms", APPEND, None),
            ],
            42,
            "Null value not supported for : retention.ms, segment.ms",
        ),
        (
            vec![
                op("retention.ms", SET, Some("5")),
                op("remote.storage.enable", SET, Some("true")),
            ],
            40,
            "Tiered Storage",
        ),
    ];
    for (ops, code, text) in cases {
        let results = alter(&mut admin, 1, vec![resource(TOPIC, "guarded", ops)], false).await;
        assert_eq!(results[0].0, code, "{text}: {:?}", results[0]);
        assert!(results[0].1.contains(text), "{text}: {:?}", results[0]);
        assert_eq!(
            admin.topic_config("guarded", "retention.ms").await,
            owned("604800000", DEFAULT_CONFIG)
        );
    }
    let set = || vec![op("retention.ms", SET, Some("5"))];
    let results = alter(
        &mut admin,
        1,
        vec![
            resource(TOPIC, "twice", set()),
            resource(TOPIC, "nowhere", set()),
            resource(TOPIC, "twice", set()),
            resource(TOPIC, "", set()),
            resource(TOPIC, "__cxlkafka_order", set()),
            resource(BROKER_LOGGER, "0", set()),
        ],
        false,
    )
    .await;
    let codes: Vec<i16> = results.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [42, 3, 42, 42, 42, 40]);
    assert_eq!(results[0].1, "Each resource must appear at most once.");
    assert_eq!(results[5].1, "Logger retention.ms does not exist!");
    assert_eq!(
        admin.topic_config("twice", "retention.ms").await,
        owned("604800000", DEFAULT_CONFIG)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn validate_only_checks_and_changes_nothing() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("dry", 1).await;
    let results = alter(
        &mut admin,
        1,
        vec![resource(
            TOPIC,
            "dry",
            vec![op("segment.ms", SET, Some("60000"))],
        )],
        true,
    )
    .await;
    assert_eq!(results[0].0, 0);
    assert_eq!(
        admin.topic_config("dry", "segment.ms").await,
        owned("604800000", DEFAULT_CONFIG)
    );
    let results = alter(
        &mut admin,
        1,
        vec![resource(
            TOPIC,
            "dry",
            vec![op("segment.ms", SET, Some("0"))],
        )],
        true,
    )
    .await;
    assert_eq!(results[0].0, 40, "validation still runs");
    gateway.stop().await;
}

#[tokio::test]
async fn alter_configs_replaces_the_whole_set_at_every_version() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for version in alter_configs::VERSIONS.min..=alter_configs::VERSIONS.max {
        let topic = format!("replaced-v{version}");
        let created = admin
            .create(vec![new_topic(&topic, 1, 1).with_configs(vec![
                config("retention.ms", Some("1000")),
                config("cleanup.policy", Some("compact")),
            ])])
            .await;
        assert_eq!(created[0].error_code, 0);
        let outcome = replace(
            &mut admin,
            version,
            TOPIC,
            &topic,
            &[("min.insync.replicas", Some("2"))],
        )
        .await;
        assert_eq!(outcome, (0, String::new()), "v{version}");
        assert_eq!(
            admin.topic_config(&topic, "min.insync.replicas").await,
            owned("2", DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            admin.topic_config(&topic, "retention.ms").await,
            owned("604800000", DEFAULT_CONFIG)
        );
        assert_eq!(
            admin.topic_config(&topic, "cleanup.policy").await,
            owned("delete", DEFAULT_CONFIG)
        );
        let outcome = replace(
            &mut admin,
            version,
            TOPIC,
            &topic,
            &[("retention.ms", None)],
        )
        .await;
        assert_eq!(
            outcome,
            (42, "Null value not supported for : retention.ms".to_owned())
        );
        let outcome = replace(
            &mut admin,
            version,
            TOPIC,
            &topic,
            &[("flush.ms", Some("never"))],
        )
        .await;
        assert_eq!(outcome.0, 40);
        assert_eq!(
            admin.topic_config(&topic, "min.insync.replicas").await,
            owned("2", DYNAMIC_TOPIC_CONFIG)
        );
    }
    gateway.stop().await;
}

#[tokio::test]
async fn static_broker_configs_cannot_change_at_runtime() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let outcome = replace(&mut admin, 1, BROKER, "0", &[("num.partitions", Some("3"))]).await;
    assert_eq!(
        outcome,
        (
            42,
            "Cannot update these configs dynamically: Set(num.partitions)".to_owned()
        )
    );
    // One static config refuses the whole resource.
    let outcome = replace(
        &mut admin,
        1,
        BROKER,
        "",
        &[
            ("message.max.bytes", Some("5000")),
            ("default.replication.factor", Some("1")),
        ],
    )
    .await;
    assert_eq!(
        outcome,
        (
            42,
            "Cannot update these configs dynamically: Set(default.replication.factor)".to_owned()
        )
    );
    assert_eq!(
        replace(&mut admin, 1, BROKER, "0", &[]).await,
        (0, String::new())
    );
    let outcome = replace(&mut admin, 1, BROKER, "5", &[]).await;
    assert_eq!(
        outcome,
        (
            42,
            "Unexpected broker id, expected 0, but received 5".to_owned()
        )
    );
    let results = alter(
        &mut admin,
        1,
        vec![resource(
            BROKER,
            "0",
            vec![op("log.retention.hours", SET, Some("1"))],
        )],
        false,
    )
    .await;
    assert_eq!(
        results[0],
        (
            42,
            "Cannot update these configs dynamically: Set(log.retention.hours)".to_owned()
        )
    );
    let broker = admin.describe(BROKER, "0").await;
    let partitions = admin::find_config(&broker, "num.partitions").expect("listed");
    assert_eq!(partitions.value.as_deref(), Some("1"), "unchanged");
    assert!(partitions.read_only);
    let size = admin::find_config(&broker, "message.max.bytes").expect("listed");
    assert_eq!(size.value.as_deref(), Some("1048588"), "unchanged");
    assert_eq!(size.config_source, DEFAULT_CONFIG);
    gateway.stop().await;
}
