//! acks=all against the live gateways a topic's replication factor needs:
//! NOT_ENOUGH_REPLICAS (19) before anything is published when too few
//! gateways' disks are live, as Kafka answers below min.insync.replicas;
//! acks=1 is served regardless.

mod admin;
mod common;
mod data_path;

use std::time::{Duration, Instant};

use admin::{new_topic, Admin};
use common::TestGateway;
use cxlkafka_gateway::groups::GroupConfig;
use data_path::{batch, call, produce_request};
use kafka_protocol::messages::{ApiKey, ProduceResponse};

const NOT_ENOUGH_REPLICAS: i16 = 19;

/// (error code, base offset) of one produce with `acks`.
async fn produce_with(client: &mut common::Client, topic: &str, acks: i16, id: i32) -> (i16, i64) {
    let records = batch(&[b"copy"], 1_700_000_000_000, None);
    let response: ProduceResponse = call(
        client,
        ApiKey::Produce,
        9,
        id,
        &produce_request(topic, 0, records, acks),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_needs_as_many_live_gateway_disks_as_the_factor_asks() {
    let mut first = TestGateway::start_grouped(GroupConfig::default(), None).await;
    let mut second = TestGateway::start_grouped(GroupConfig::default(), Some(&first)).await;
    let mut admin = Admin::new(first.client().await);
    // Three copies: the region and both gateways' disks.
    let created = admin.create(vec![new_topic("three-copies", 1, 3)]).await;
    assert_eq!(created[0].error_code, 0, "{:?}", created[0].error_message);
    let mut client = first.client().await;
    assert_eq!(
        produce_with(&mut client, "three-copies", -1, 1).await,
        (0, 0),
        "both disks live"
    );

    second.stop().await;
    // The stopped gateway counts as gone once its heartbeat is older than
    // the lease timeout (1 s here); the bound is for liveness only.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut id = 2;
    let refused = loop {
        let (error, _) = produce_with(&mut client, "three-copies", -1, id).await;
        id += 1;
        // Until then acks=all may wait for the stopped disk and time out.
        if error == NOT_ENOUGH_REPLICAS || Instant::now() > deadline {
            break error;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused, NOT_ENOUGH_REPLICAS);
    let (error, offset) = produce_with(&mut client, "three-copies", 1, id).await;
    assert_eq!(error, 0, "acks=1 needs no disk");
    assert!(offset >= 1);
    first.stop().await;
}
