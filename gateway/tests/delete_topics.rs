//! DeleteTopics over a real socket against a gateway on a real region.

mod admin;
mod common;

use admin::{message, topic_name, Admin};
use common::TestGateway;
use cxlkafka_gateway::api::topics::delete_topics;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use uuid::Uuid;

/// A request naming `names` the way `version` does.
fn by_names(version: i16, names: &[&str]) -> DeleteTopicsRequest {
    let request = DeleteTopicsRequest::default().with_timeout_ms(10_000);
    if version >= 6 {
        request.with_topics(
            names
                .iter()
                .map(|name| DeleteTopicState::default().with_name(Some(topic_name(name))))
                .collect(),
        )
    } else {
        request.with_topic_names(names.iter().map(|name| topic_name(name)).collect())
    }
}

fn by_ids(ids: &[Uuid]) -> DeleteTopicsRequest {
    DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(
            ids.iter()
                .map(|id| DeleteTopicState::default().with_topic_id(*id))
                .collect(),
        )
}

fn named<'a>(results: &'a [DeletableTopicResult], name: &str) -> &'a DeletableTopicResult {
    results
        .iter()
        .find(|r| r.name.as_ref().is_some_and(|n| n.as_str() == name))
        .unwrap_or_else(|| panic!("a result for {name}"))
}

#[tokio::test]
async fn every_version_deletes_by_name() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for version in delete_topics::VERSIONS.min..=delete_topics::VERSIONS.max {
        let name = format!("doomed-v{version}");
        let created = admin.create_ok(&name, 2).await;
        let response: DeleteTopicsResponse = admin
            .call(ApiKey::DeleteTopics, version, &by_names(version, &[&name]))
            .await;
        assert_eq!(response.responses.len(), 1);
        let result = named(&response.responses, &name);
        assert_eq!(
            result.error_code, 0,
            "v{version}: {:?}",
            result.error_message
        );
        if version >= 6 {
            assert_eq!(
                result.topic_id, created.topic_id,
                "v6 reports the deleted id"
            );
        }
        assert_eq!(
            admin.partitions(&name).await,
            None,
            "v{version}: gone from Metadata"
        );
    }
    gateway.stop().await;
}

#[tokio::test]
async fn v6_deletes_by_topic_id_and_unknown_ids_are_unknown_topic_id() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let id = admin.create_ok("by-id", 1).await.topic_id;
    let stranger = Uuid::from_bytes([9; 16]);
    let response: DeleteTopicsResponse = admin
        .call(ApiKey::DeleteTopics, 6, &by_ids(&[id, stranger]))
        .await;
    let deleted = named(&response.responses, "by-id");
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topic_id, id);
    let unknown = response
        .responses
        .iter()
        .find(|r| r.topic_id == stranger)
        .expect("a result for the unknown id");
    assert_eq!(unknown.error_code, 100);
    assert_eq!(unknown.name, None);
    assert_eq!(admin.partitions("by-id").await, None);
    // Deleting it again: its id is unknown now.
    let again: DeleteTopicsResponse = admin.call(ApiKey::DeleteTopics, 6, &by_ids(&[id])).await;
    assert_eq!(again.responses[0].error_code, 100);
    gateway.stop().await;
}

#[tokio::test]
async fn unknown_duplicate_and_malformed_entries_get_kafkas_errors() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    admin.create_ok("kept", 1).await;
    let response: DeleteTopicsResponse = admin
        .call(
            ApiKey::DeleteTopics,
            5,
            &by_names(5, &["missing", "kept", "kept"]),
        )
        .await;
    assert_eq!(response.responses.len(), 2, "one result per name");
    assert_eq!(named(&response.responses, "missing").error_code, 3);
    let duplicate = named(&response.responses, "kept");
    assert_eq!(duplicate.error_code, 42);
    assert_eq!(message(&duplicate.error_message), "Duplicate topic name.");
    assert_eq!(
        admin.partitions("kept").await,
        Some(1),
        "a duplicate deletes nothing"
    );

    let id = admin.metadata("kept").await.topic_id;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(1_000)
        .with_topics(vec![
            DeleteTopicState::default()
                .with_name(Some(topic_name("kept")))
                .with_topic_id(id),
            DeleteTopicState::default(),
        ]);
    let response: DeleteTopicsResponse = admin.call(ApiKey::DeleteTopics, 6, &request).await;
    assert_eq!(response.responses.len(), 2);
    assert!(response.responses.iter().all(|r| r.error_code == 42));
    assert!(message(&named(&response.responses, "kept").error_message).contains("both"));
    assert_eq!(admin.partitions("kept").await, Some(1));
    gateway.stop().await;
}

#[tokio::test]
async fn the_order_topic_cannot_be_deleted() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    for (version, code) in [(6, 73), (3, 73), (1, 42)] {
        let response: DeleteTopicsResponse = admin
            .call(
                ApiKey::DeleteTopics,
                version,
                &by_names(version, &["__cxlkafka_order"]),
            )
            .await;
        assert_eq!(response.responses[0].error_code, code, "v{version}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_deleted_name_can_be_created_again_with_a_new_id() {
    let mut gateway = TestGateway::start().await;
    let mut admin = Admin::new(gateway.client().await);
    let first = admin.create_ok("phoenix", 3).await.topic_id;
    let response: DeleteTopicsResponse = admin
        .call(ApiKey::DeleteTopics, 6, &by_names(6, &["phoenix"]))
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    let second = admin.create_ok("phoenix", 1).await.topic_id;
    assert_ne!(first, second);
    assert_eq!(admin.partitions("phoenix").await, Some(1));
    gateway.stop().await;
}
