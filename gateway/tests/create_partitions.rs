//! CreatePartitions over a real socket against a gateway on a real region.

mod admin;
mod common;

use admin::{message, topic_name, Admin};
use common::TestGateway;
use cxlkafka_gateway::api::topics::create_partitions;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse,
};

fn grow(name: &str, count: i32) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(topic_name(name))
        .with_count(count)
        .with_assignments(None)
}

fn assigned(name: &str, count: i32, lists: &[&[i32]]) -> CreatePartitionsTopic {
    grow(name, count).with_assignments(Some(
        lists
            .iter()
            .map(|brokers| {
                CreatePartitionsAssignment::default()
                    .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())
            })
            .collect(),
    ))
}

async fn send(
    admin: &mut Admin,
    version: i16,
    topics: Vec<CreatePartitionsTopic>,
    validate_only: bool,
) -> Vec<CreatePartitionsTopicResult> {
    let request = CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only);
    let response: CreatePartitionsResponse = admin
        .call(ApiKey::CreatePartitions, version, &request)
        .await;
    response.results
}

fn result<'a>(
    results: &'a [CreatePartitionsTopicResult],
    name: &str,
) -> &'a CreatePartitionsTopicResult {
    results
        .iter()
        .find(|r| r.name.as_str() == name)
        .unwrap_or_else(|| panic!("a result for {name}"))
}

#[tokio::test]
async fn every_version_adds_partitions() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for version in create_partitions::VERSIONS.min..=create_partitions::VERSIONS.max {
        let name = format!("growing-v{version}");
        admin.create_ok(&name, 1).await;
        let results = send(&mut admin, version, vec![grow(&name, 3)], false).await;
        assert_eq!(results.len(), 1);
        assert_eq!(
            results[0].error_code, 0,
            "v{version}: {:?}",
            results[0].error_message
        );
        assert_eq!(results[0].error_message, None);
        assert_eq!(admin.partitions(&name).await, Some(3), "v{version}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn validate_only_changes_nothing() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("steady", 2).await;
    let results = send(&mut admin, 3, vec![grow("steady", 8)], true).await;
    assert_eq!(results[0].error_code, 0);
    assert_eq!(admin.partitions("steady").await, Some(2));
    let results = send(&mut admin, 3, vec![grow("steady", 1)], true).await;
    assert_eq!(
        results[0].error_code, 37,
        "validation still refuses a decrease"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn counts_that_are_not_an_increase_are_invalid_partitions() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("three", 3).await;
    for (count, text) in [
        (3, "Topic already has 3 partition(s)."),
        (
            2,
            "The topic three currently has 3 partition(s); 2 would not be an increase.",
        ),
        (
            -22,
            "The topic three currently has 3 partition(s); -22 would not be an increase.",
        ),
        (257, "limit of 256"),
    ] {
        let results = send(&mut admin, 1, vec![grow("three", count)], false).await;
        assert_eq!(results[0].error_code, 37, "{count}");
        assert!(
            message(&results[0].error_message).contains(text),
            "{count}: {:?}",
            results[0].error_message
        );
    }
    assert_eq!(admin.partitions("three").await, Some(3));
    let results = send(&mut admin, 1, vec![grow("__cxlkafka_order", 2)], false).await;
    assert_eq!(results[0].error_code, 37);
    gateway.stop().await;
}

#[tokio::test]
async fn unknown_and_duplicate_topics_are_refused_per_topic() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("twice", 1).await;
    admin.create_ok("fine", 1).await;
    let results = send(
        &mut admin,
        3,
        vec![
            grow("nowhere", 2),
            grow("twice", 2),
            grow("twice", 3),
            grow("fine", 2),
        ],
        false,
    )
    .await;
    assert_eq!(results.len(), 3, "one result per name");
    assert_eq!(result(&results, "nowhere").error_code, 3);
    assert_eq!(result(&results, "twice").error_code, 42);
    assert_eq!(
        message(&result(&results, "twice").error_message),
        "Duplicate topic name."
    );
    assert_eq!(result(&results, "fine").error_code, 0);
    assert_eq!(admin.partitions("twice").await, Some(1));
    assert_eq!(admin.partitions("fine").await, Some(2));
    gateway.stop().await;
}

#[tokio::test]
async fn manual_assignments_are_checked_and_honoured() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("placed", 1).await;
    for (topic, text) in [
        (
            assigned("placed", 3, &[&[0]]),
            "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.",
        ),
        (assigned("placed", 2, &[]), "but only 0 assignment(s)"),
        (
            assigned("placed", 2, &[&[12]]),
            "includes broker 12, but no such broker is registered.",
        ),
        (
            assigned("placed", 2, &[&[0, 0]]),
            "includes the broker 0 more than once.",
        ),
        (assigned("placed", 2, &[&[]]), "empty replica list"),
    ] {
        let results = send(&mut admin, 2, vec![topic], false).await;
        assert_eq!(results[0].error_code, 39, "{text}");
        assert!(
            message(&results[0].error_message).contains(text),
            "{:?}",
            results[0].error_message
        );
    }
    assert_eq!(admin.partitions("placed").await, Some(1));
    let results = send(
        &mut admin,
        2,
        vec![assigned("placed", 3, &[&[0], &[0]])],
        false,
    )
    .await;
    assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
    assert_eq!(admin.partitions("placed").await, Some(3));
    gateway.stop().await;
}
