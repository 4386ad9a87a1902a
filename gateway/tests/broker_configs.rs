//! Dynamic broker configs and log levels over a real socket against real
//! gateways: BROKER resources per gateway and as the cluster default, with
//! Kafka's sources; `message.max.bytes`, `auto.create.topics.enable` and
//! `log.retention.ms` acted on by another gateway of the same region, and
//! after a restart and a region rebuild; Kafka's refusals; BROKER_LOGGER.

mod admin;
mod common;
mod data_path;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use admin::{find_config, message, text, Admin, BROKER, BROKER_LOGGER, TOPIC};
use common::{TestGateway, PROMPTLY};
use cxlkafka_gateway::cluster::{
    open_cluster, retention, ClusterLog, ClusterOptions, RegionSettings,
};
use cxlkafka_gateway::context::{AdvertisedListener, Limits};
use cxlkafka_gateway::groups::GroupConfig;
use cxlkafka_gateway::{DispatchTable, GatewayContext, Server, ServerHandle};
use kafka_protocol::messages::alter_configs_request as legacy;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, MetadataRequest, MetadataResponse,
};
use tokio::sync::oneshot;

const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

const MESSAGE_TOO_LARGE: i16 = 10;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

fn op(name: &str, operation: i8, value: Option<&str>) -> incremental::AlterableConfig {
    incremental::AlterableConfig::default()
        .with_name(text(name))
        .with_config_operation(operation)
        .with_value(value.map(text))
}

/// IncrementalAlterConfigs v1 of one resource; returns (code, message).
async fn alter(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    ops: Vec<incremental::AlterableConfig>,
    validate_only: bool,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![incremental::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(text(name))
            .with_configs(ops)])
        .with_validate_only(validate_only);
    let response: IncrementalAlterConfigsResponse = admin
        .call(ApiKey::IncrementalAlterConfigs, 1, &request)
        .await;
    assert_eq!(response.responses.len(), 1);
    let result = &response.responses[0];
    (result.error_code, message(&result.error_message))
}

/// Sets broker configs of resource `name` and asserts it worked.
async fn set(admin: &mut Admin, name: &str, configs: &[(&str, &str)]) {
    let ops = configs
        .iter()
        .map(|(config, value)| op(config, SET, Some(value)))
        .collect();
    assert_eq!(
        alter(admin, BROKER, name, ops, false).await,
        (0, String::new()),
        "{configs:?} on broker {name:?}"
    );
}

/// AlterConfigs v1 of one resource; returns (code, message).
async fn replace(
    admin: &mut Admin,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
) -> (i16, String) {
    let request =
        AlterConfigsRequest::default().with_resources(vec![legacy::AlterConfigsResource::default(
        )
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configs(
            configs
                .iter()
                .map(|(config, value)| {
                    legacy::AlterableConfig::default()
                        .with_name(text(config))
                        .with_value(Some(text(value)))
                })
                .collect(),
        )]);
    let response: AlterConfigsResponse = admin.call(ApiKey::AlterConfigs, 1, &request).await;
    let result = &response.responses[0];
    (result.error_code, message(&result.error_message))
}

/// (value, source, read-only, synonym sources) of one described config.
fn entry(result: &DescribeConfigsResult, name: &str) -> (Option<String>, i8, bool, Vec<i8>) {
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    let entry = find_config(result, name).unwrap_or_else(|| panic!("{name} listed"));
    (
        entry.value.as_ref().map(|value| value.to_string()),
        entry.config_source,
        entry.read_only,
        entry
            .synonyms
            .iter()
            .map(|synonym| synonym.source)
            .collect(),
    )
}

fn some(value: &str) -> Option<String> {
    Some(value.to_owned())
}

/// Metadata v12 for `name` with auto-creation requested; returns its error.
async fn metadata_creating(admin: &mut Admin, name: &str) -> i16 {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(admin::topic_name(name))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = admin.call(ApiKey::Metadata, 12, &request).await;
    response.topics[0].error_code
}

#[tokio::test]
async fn per_broker_and_default_values_carry_kafkas_sources() {
    let limits = Limits {
        message_max_bytes: 2_000_000,
        ..Limits::default()
    };
    let mut gateway = TestGateway::start_with(limits, DispatchTable::standard()).await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("plain", 1).await;
    let created = admin
        .create(vec![admin::new_topic("kept", 1, 1).with_configs(vec![
            admin::config("retention.ms", Some("604800000")),
        ])])
        .await;
    assert_eq!(created[0].error_code, 0);

    let broker = admin.describe(BROKER, "0").await;
    assert_eq!(
        entry(&broker, "message.max.bytes"),
        (some("2000000"), STATIC_BROKER_CONFIG, false, vec![4, 5])
    );
    assert_eq!(
        entry(&broker, "log.retention.ms"),
        (None, DEFAULT_CONFIG, false, vec![])
    );
    assert_eq!(
        entry(&broker, "auto.create.topics.enable"),
        (some("true"), DEFAULT_CONFIG, false, vec![5])
    );
    assert!(entry(&broker, "num.partitions").2, "static: read-only");
    assert!(
        entry(&broker, "log.retention.hours").2,
        "not dynamic in Kafka"
    );
    assert!(admin.describe(BROKER, "").await.configs.is_empty());

    // The cluster-wide default.
    set(
        &mut admin,
        "",
        &[
            ("message.max.bytes", "3000000"),
            ("log.retention.ms", "60000"),
        ],
    )
    .await;
    let broker = admin.describe(BROKER, "0").await;
    assert_eq!(
        entry(&broker, "message.max.bytes"),
        (
            some("3000000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 4, 5]
        )
    );
    assert_eq!(
        entry(&broker, "log.retention.ms"),
        (
            some("60000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 5]
        )
    );
    let defaults = admin.describe(BROKER, "").await;
    let names: Vec<&str> = defaults.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["log.retention.ms", "message.max.bytes"]);
    assert_eq!(
        entry(&defaults, "message.max.bytes"),
        (
            some("3000000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 4, 5]
        )
    );
    // Topics without their own values follow; one with its own keeps it,
    // also when it equals Kafka's default.
    let plain = admin.describe(TOPIC, "plain").await;
    assert_eq!(
        entry(&plain, "retention.ms"),
        (
            some("60000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 5]
        )
    );
    assert_eq!(
        admin.topic_config("kept", "retention.ms").await,
        ("604800000".to_owned(), DYNAMIC_TOPIC_CONFIG)
    );

    // This broker's own value wins, and is not the default resource's.
    set(&mut admin, "0", &[("message.max.bytes", "4000000")]).await;
    let broker = admin.describe(BROKER, "0").await;
    assert_eq!(
        entry(&broker, "message.max.bytes"),
        (
            some("4000000"),
            DYNAMIC_BROKER_CONFIG,
            false,
            vec![2, 3, 4, 5]
        )
    );
    assert_eq!(
        entry(&admin.describe(BROKER, "").await, "message.max.bytes").0,
        some("3000000")
    );
    assert_eq!(
        admin.topic_config("plain", "max.message.bytes").await,
        ("4000000".to_owned(), DYNAMIC_BROKER_CONFIG)
    );
    // DELETE falls back to the default.
    assert_eq!(
        alter(
            &mut admin,
            BROKER,
            "0",
            vec![op("message.max.bytes", DELETE, None)],
            false
        )
        .await,
        (0, String::new())
    );
    assert_eq!(
        admin.topic_config("plain", "max.message.bytes").await,
        ("3000000".to_owned(), DYNAMIC_DEFAULT_BROKER_CONFIG)
    );
    // AlterConfigs replaces the default resource's whole set.
    assert_eq!(
        replace(
            &mut admin,
            BROKER,
            "",
            &[("log.retention.bytes", "1000000")]
        )
        .await,
        (0, String::new())
    );
    let defaults = admin.describe(BROKER, "").await;
    let names: Vec<&str> = defaults.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["log.retention.bytes"]);
    assert_eq!(
        admin.topic_config("plain", "max.message.bytes").await,
        ("2000000".to_owned(), STATIC_BROKER_CONFIG)
    );
    assert_eq!(
        admin.topic_config("plain", "retention.bytes").await,
        ("1000000".to_owned(), DYNAMIC_DEFAULT_BROKER_CONFIG)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn bad_values_and_static_configs_are_refused_as_kafka_refuses_them() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let cases: Vec<(&str, Vec<incremental::AlterableConfig>, i16, &str)> = vec![
        (
            "0",
            vec![op("log.retention.ms", SET, Some("soon"))],
            INVALID_REQUEST,
            "Invalid value soon for configuration log.retention.ms: Not a number of type LONG",
        ),
        (
            "",
            vec![op("message.max.bytes", SET, Some("-1"))],
            INVALID_REQUEST,
            "Invalid value -1 for configuration message.max.bytes: Value must be at least 0",
        ),
        (
            "",
            vec![op("auto.create.topics.enable", SET, Some("maybe"))],
            INVALID_REQUEST,
            "Expected value to be either true or false",
        ),
        (
            "0",
            vec![
                op("message.max.bytes", SET, Some("5000")),
                op("num.partitions", SET, Some("3")),
                op("log.dirs", SET, Some("/tmp")),
            ],
            INVALID_REQUEST,
            "Cannot update these configs dynamically: Set(log.dirs, num.partitions)",
        ),
        (
            "0",
            vec![op("log.retention.hours", SET, Some("1"))],
            INVALID_REQUEST,
            "Cannot update these configs dynamically: Set(log.retention.hours)",
        ),
        (
            "0",
            vec![op("message.max.bytes", APPEND, Some("1"))],
            INVALID_CONFIG,
            "Config value append is not allowed for config key: message.max.bytes",
        ),
        (
            "0",
            vec![op("message.max.bytes", 9, Some("1"))],
            INVALID_REQUEST,
            "Unknown operations type 9",
        ),
        (
            "5",
            vec![op("message.max.bytes", SET, Some("1"))],
            INVALID_REQUEST,
            "Unexpected broker id, expected 0, but received 5",
        ),
    ];
    for (name, ops, code, text) in cases {
        let (got, message) = alter(&mut admin, BROKER, name, ops, false).await;
        assert_eq!(got, code, "{text}: {message}");
        assert!(message.contains(text), "{text}: {message}");
    }
    // A whole resource is refused: its valid change was not made either.
    let broker = admin.describe(BROKER, "0").await;
    assert_eq!(entry(&broker, "message.max.bytes").1, DEFAULT_CONFIG);
    // validate_only checks and changes nothing.
    assert_eq!(
        alter(
            &mut admin,
            BROKER,
            "",
            vec![op("message.max.bytes", SET, Some("5000"))],
            true
        )
        .await,
        (0, String::new())
    );
    assert!(admin.describe(BROKER, "").await.configs.is_empty());
    // Values are stored in their canonical form.
    set(&mut admin, "", &[("auto.create.topics.enable", " FALSE ")]).await;
    assert_eq!(
        entry(
            &admin.describe(BROKER, "0").await,
            "auto.create.topics.enable"
        )
        .0,
        some("false")
    );
    gateway.stop().await;
}

#[tokio::test]
async fn a_second_gateway_of_the_region_acts_on_changes_made_through_the_first() {
    let mut first = TestGateway::start().await;
    let mut second = TestGateway::start_grouped(GroupConfig::default(), Some(&first)).await;
    let mut on_first = Admin::new(first.client().await);
    let mut on_second = Admin::new(second.client().await);
    on_first.create_ok("sized", 1).await;
    on_first.create_ok("aged", 1).await;
    let big = data_path::batch(&[&[7u8; 3000]], 1_700_000_000_000, None);
    let (error, _) = data_path::produce(&mut on_second.client, "sized", 0, big.clone()).await;
    assert_eq!(error, 0, "1 MiB by default");

    set(
        &mut on_first,
        "",
        &[
            ("message.max.bytes", "2000"),
            ("auto.create.topics.enable", "false"),
        ],
    )
    .await;
    // Applied by the second gateway when its tailer read the change.
    until_described(&mut on_second, "1", |described| {
        entry(described, "message.max.bytes").0 == some("2000")
    })
    .await;
    assert_eq!(
        entry(
            &on_second.describe(BROKER, "1").await,
            "auto.create.topics.enable"
        ),
        (
            some("false"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 5]
        )
    );
    let (error, _) = data_path::produce(&mut on_second.client, "sized", 0, big.clone()).await;
    assert_eq!(error, MESSAGE_TOO_LARGE);
    assert_eq!(
        metadata_creating(&mut on_second, "never-made").await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(on_first.partitions("never-made").await, None);
    // A topic's own max.message.bytes still wins.
    assert_eq!(
        alter(
            &mut on_first,
            TOPIC,
            "sized",
            vec![op("max.message.bytes", SET, Some("10000"))],
            false
        )
        .await,
        (0, String::new())
    );
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    while on_second.topic_config("sized", "max.message.bytes").await
        != ("10000".to_owned(), DYNAMIC_TOPIC_CONFIG)
    {
        assert!(tokio::time::Instant::now() < deadline, "never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (error, _) = data_path::produce(&mut on_second.client, "sized", 0, big).await;
    assert_eq!(error, 0);

    // A per-broker value applies to that broker only.
    set(
        &mut on_second,
        "1",
        &[("auto.create.topics.enable", "true")],
    )
    .await;
    assert_eq!(metadata_creating(&mut on_second, "made-on-1").await, 0);
    assert_eq!(
        metadata_creating(&mut on_first, "not-made-on-0").await,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    first.stop().await;
    second.stop().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// Waits until `check` passes on what `admin`'s gateway describes for
/// broker resource `name`.
async fn until_described(
    admin: &mut Admin,
    name: &str,
    check: impl Fn(&DescribeConfigsResult) -> bool,
) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    while !check(&admin.describe(BROKER, name).await) {
        assert!(tokio::time::Instant::now() < deadline, "never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn log_retention_ms_set_through_one_gateway_drives_the_retention_pass_of_another() {
    let mut first = TestGateway::start().await;
    let mut second = TestGateway::start_grouped(GroupConfig::default(), Some(&first)).await;
    let mut on_first = Admin::new(first.client().await);
    let mut on_second = Admin::new(second.client().await);
    on_first.create_ok("aged", 1).await;
    let created = on_first
        .create(vec![admin::new_topic("own-week", 1, 1).with_configs(vec![
            admin::config("retention.ms", Some("604800000")),
        ])])
        .await;
    assert_eq!(created[0].error_code, 0);
    // Ten minutes old: a week's retention keeps them.
    let recent = data_path::batch(&[b"ten minutes old"], now_ms() - 600_000, None);
    for topic in ["aged", "own-week"] {
        for _ in 0..3 {
            let (error, _) =
                data_path::produce(&mut on_first.client, topic, 0, recent.clone()).await;
            assert_eq!(error, 0);
        }
    }
    let stream = |topic: &str| {
        first
            .log
            .topic(topic)
            .and_then(|topic| topic.stream(0))
            .expect("a live topic")
    };
    let report = retention::run_once(first.log.as_ref()).await;
    assert_eq!(report.log_starts_moved, 0);

    set(&mut on_second, "", &[("log.retention.ms", "60000")]).await;
    until_described(&mut on_first, "0", |described| {
        entry(described, "log.retention.ms").0 == some("60000")
    })
    .await;
    let report = retention::run_once(first.log.as_ref()).await;
    assert_eq!(report.log_starts_moved, 1, "only the topic without its own");
    assert_eq!(first.log.offsets(stream("aged")), (3, 3));
    assert_eq!(first.log.offsets(stream("own-week")), (0, 3));
    first.stop().await;
    second.stop().await;
}

/// A gateway over a region file and data dir that outlive it, so a test
/// can stop it and start it again on the same ones.
struct Node {
    admin: Admin,
    log: Arc<dyn ClusterLog>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<ServerHandle>,
}

fn region_settings(dir: &Path) -> RegionSettings {
    RegionSettings {
        path: dir.join("region"),
        bytes: 64 << 20,
        max_gateways: 2,
        cluster: "dynamic".into(),
        non_coherent: false,
    }
}

impl Node {
    async fn start(dir: &Path) -> Self {
        let server = Server::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr();
        let settings = region_settings(dir);
        let options = ClusterOptions {
            node_id: Some(0),
            advertised_host: addr.ip().to_string(),
            advertised_port: addr.port(),
            lease_timeout: Duration::from_millis(500),
            data_dir: dir.join("data"),
            segment_bytes: 1 << 20,
            region_path: None,
            adopt_data_dir: false,
            unclean_region_rebuild: false,
            peer_listen: None,
        };
        let log = tokio::task::spawn_blocking(move || open_cluster(&settings, options))
            .await
            .expect("join")
            .expect("open the region");
        let ctx = GatewayContext::new(
            Arc::clone(&log),
            "dynamic",
            AdvertisedListener::from_socket_addr(addr),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let handle = server.spawn(
            Arc::new(ctx),
            Arc::new(DispatchTable::standard()),
            async move {
                let _ = rx.await;
            },
        );
        let admin = Admin::new(common::Client::connect(addr).await);
        Self {
            admin,
            log,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(PROMPTLY * 3, handle.stopped())
                .await
                .expect("stops in time");
        }
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cxlkafka-broker-configs-test")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}

/// What the dynamic configs of a restarted gateway must be.
async fn assert_reloaded(node: &mut Node) {
    let broker = node.admin.describe(BROKER, "0").await;
    assert_eq!(
        entry(&broker, "message.max.bytes"),
        (some("4000"), DYNAMIC_BROKER_CONFIG, false, vec![2, 3, 5])
    );
    assert_eq!(entry(&broker, "auto.create.topics.enable").0, some("false"));
    assert_eq!(
        entry(&broker, "log.retention.ms"),
        (
            some("60000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            false,
            vec![3, 5]
        )
    );
    assert_eq!(
        metadata_creating(&mut node.admin, "not-made").await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    let store = node.log.broker_configs();
    assert_eq!(store.message_max_bytes(), Some(4000));
    assert_eq!(store.log_retention_ms(), Some(60_000));
}

#[tokio::test]
async fn dynamic_configs_survive_a_restart_and_a_region_rebuild() {
    let dir = temp_dir();
    let mut node = Node::start(dir.path()).await;
    set(
        &mut node.admin,
        "",
        &[
            ("message.max.bytes", "3000"),
            ("auto.create.topics.enable", "false"),
            ("log.retention.ms", "60000"),
        ],
    )
    .await;
    set(&mut node.admin, "0", &[("message.max.bytes", "4000")]).await;
    // A change deleted before the restart stays deleted.
    set(&mut node.admin, "0", &[("log.retention.bytes", "5")]).await;
    assert_eq!(
        alter(
            &mut node.admin,
            BROKER,
            "0",
            vec![op("log.retention.bytes", DELETE, None)],
            false
        )
        .await,
        (0, String::new())
    );
    node.stop().await;

    // Restarted on the same region: reloaded from the segments.
    let mut node = Node::start(dir.path()).await;
    assert_reloaded(&mut node).await;
    assert_eq!(node.log.broker_configs().log_retention_bytes(), None);
    node.stop().await;

    // The region is lost: the rebuilt one replays the segments.
    std::fs::remove_file(region_settings(dir.path()).path).expect("region removed");
    let mut node = Node::start(dir.path()).await;
    assert_reloaded(&mut node).await;
    node.stop().await;
}

#[tokio::test]
async fn broker_loggers_are_described_and_set_on_this_gateway_only() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let loggers = admin.describe(BROKER_LOGGER, "0").await;
    assert_eq!(loggers.error_code, 0);
    let level = |result: &DescribeConfigsResult, logger: &str| {
        let entry = find_config(result, logger).unwrap_or_else(|| panic!("{logger} listed"));
        assert_eq!(entry.config_source, DYNAMIC_BROKER_LOGGER_CONFIG);
        assert!(!entry.read_only);
        assert!(entry.synonyms.is_empty());
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    assert_eq!(loggers.configs[0].name.as_str(), "root");
    for logger in [
        "root",
        "cxlkafka_gateway",
        "cxlkafka_sequencer",
        "cxlkafka_log",
    ] {
        assert_eq!(level(&loggers, logger), "INFO", "{logger}");
    }

    assert_eq!(
        alter(
            &mut admin,
            BROKER_LOGGER,
            "0",
            vec![
                op("cxlkafka_gateway::cluster", SET, Some("DEBUG")),
                op("cxlkafka_log", SET, Some("OFF")),
            ],
            false
        )
        .await,
        (0, String::new())
    );
    let loggers = admin.describe(BROKER_LOGGER, "0").await;
    assert_eq!(level(&loggers, "cxlkafka_gateway::cluster"), "DEBUG");
    assert_eq!(level(&loggers, "cxlkafka_log"), "OFF");
    assert_eq!(level(&loggers, "cxlkafka_gateway"), "INFO");
    assert_eq!(
        alter(
            &mut admin,
            BROKER_LOGGER,
            "0",
            vec![op("cxlkafka_log", DELETE, None)],
            false
        )
        .await,
        (0, String::new())
    );
    assert_eq!(
        level(&admin.describe(BROKER_LOGGER, "0").await, "cxlkafka_log"),
        "INFO"
    );

    let refused: Vec<(&str, incremental::AlterableConfig, i16, &str)> = vec![
        ("0", op("root", SET, Some("LOUD")), INVALID_CONFIG,
         "Cannot set the log level of root to LOUD as it is not a supported log level. Valid log levels are DEBUG, ERROR, FATAL, INFO, OFF, TRACE, WARN"),
        ("0", op("kafka.server.ReplicaManager", SET, Some("INFO")), INVALID_CONFIG,
         "Logger kafka.server.ReplicaManager does not exist!"),
        ("0", op("root", DELETE, None), INVALID_REQUEST,
         "Removing the log level of the root logger is not allowed"),
        ("0", op("root", APPEND, Some("INFO")), INVALID_REQUEST,
         "APPEND operation is not allowed for the BROKER_LOGGER resource"),
        ("1", op("root", SET, Some("INFO")), INVALID_REQUEST,
         "Unexpected node id. Expected 0, but received 1"),
        ("zero", op("root", SET, Some("INFO")), INVALID_REQUEST,
         "Node id must be an integer, but it is: zero"),
    ];
    for (name, change, code, text) in refused {
        assert_eq!(
            alter(&mut admin, BROKER_LOGGER, name, vec![change], false).await,
            (code, text.to_owned())
        );
    }
    // validate_only changes nothing; AlterConfigs does not take loggers.
    assert_eq!(
        alter(
            &mut admin,
            BROKER_LOGGER,
            "0",
            vec![op("root", SET, Some("TRACE"))],
            true
        )
        .await,
        (0, String::new())
    );
    assert_eq!(
        replace(&mut admin, BROKER_LOGGER, "0", &[("root", "TRACE")]).await,
        (INVALID_REQUEST, "Unknown resource type 8".to_owned())
    );
    assert_eq!(
        level(&admin.describe(BROKER_LOGGER, "0").await, "root"),
        "INFO"
    );
    let empty = admin.describe(BROKER_LOGGER, "").await;
    assert_eq!(
        (empty.error_code, message(&empty.error_message)),
        (INVALID_REQUEST, "Broker id must not be empty".to_owned())
    );
    gateway.stop().await;
}
