//! ListOffsets over a real socket: the log's ends, search by timestamp to
//! the exact record, the largest timestamp, errors, every version.

mod common;
mod data_path;

use common::TestGateway;
use data_path::{batch, call, create_topic, produce, topic_name};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

fn request(topic: &str, partitions: &[(i32, i64)]) -> ListOffsetsRequest {
    let mut wanted = ListOffsetsTopic::default();
    wanted.name = topic_name(topic);
    wanted.partitions = partitions
        .iter()
        .map(|&(index, timestamp)| {
            let mut partition = ListOffsetsPartition::default();
            partition.partition_index = index;
            partition.timestamp = timestamp;
            partition
        })
        .collect();
    let mut request = ListOffsetsRequest::default();
    request.replica_id = (-1).into();
    request.topics = vec![wanted];
    request
}

async fn list(
    client: &mut common::Client,
    version: i16,
    topic: &str,
    partitions: &[(i32, i64)],
) -> Vec<ListOffsetsPartitionResponse> {
    let response: ListOffsetsResponse = call(
        client,
        ApiKey::ListOffsets,
        version,
        i32::from(version),
        &request(topic, partitions),
    )
    .await;
    response.topics[0].partitions.clone()
}

fn found(answer: &ListOffsetsPartitionResponse) -> (i16, i64, i64) {
    (answer.error_code, answer.offset, answer.timestamp)
}

#[tokio::test]
async fn earliest_latest_and_timestamps_find_the_exact_record() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "timeline").await;
    let earliest = list(&mut client, 7, "timeline", &[(0, -2)]).await;
    assert_eq!(found(&earliest[0]), (0, 0, -1));
    let latest = list(&mut client, 7, "timeline", &[(0, -1)]).await;
    assert_eq!(found(&latest[0]), (0, 0, -1));
    let search = list(&mut client, 7, "timeline", &[(0, 5)]).await;
    assert_eq!(found(&search[0]), (0, -1, -1), "empty: not found");
    // Offsets 0..3 at 1000..1002, offsets 3..8 at 2000..2004.
    produce(
        &mut client,
        "timeline",
        0,
        batch(&[b"a", b"b", b"c"], 1000, None),
    )
    .await;
    produce(
        &mut client,
        "timeline",
        0,
        batch(&[&b"d"[..]; 5], 2000, None),
    )
    .await;
    for version in 1..=10 {
        let answers = list(&mut client, version, "timeline", &[(0, -2)]).await;
        assert_eq!(found(&answers[0]), (0, 0, -1), "v{version} earliest");
        let answers = list(&mut client, version, "timeline", &[(0, -1)]).await;
        assert_eq!(found(&answers[0]), (0, 8, -1), "v{version} latest");
        assert_eq!(answers[0].leader_epoch, -1);
        let answers = list(&mut client, version, "timeline", &[(0, 1001)]).await;
        assert_eq!(
            found(&answers[0]),
            (0, 1, 1001),
            "v{version} inside a batch"
        );
        let answers = list(&mut client, version, "timeline", &[(0, 1500)]).await;
        assert_eq!(
            found(&answers[0]),
            (0, 3, 2000),
            "v{version} between batches"
        );
        let answers = list(&mut client, version, "timeline", &[(0, 2003)]).await;
        assert_eq!(found(&answers[0]), (0, 6, 2003), "v{version}");
        let answers = list(&mut client, version, "timeline", &[(0, 9999)]).await;
        assert_eq!(found(&answers[0]), (0, -1, -1), "v{version} after the end");
    }
    let max = list(&mut client, 7, "timeline", &[(0, -3)]).await;
    assert_eq!(found(&max[0]), (0, 7, 2004), "the largest timestamp");
    let local = list(&mut client, 8, "timeline", &[(0, -4)]).await;
    assert_eq!(found(&local[0]), (0, 0, -1), "earliest local");
    let tiered = list(&mut client, 9, "timeline", &[(0, -5)]).await;
    assert_eq!(found(&tiered[0]), (0, -1, -1), "nothing tiered");
    gateway.stop().await;
}

#[tokio::test]
async fn unknown_partitions_and_duplicates_are_errors() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "listed").await;
    let answers = list(&mut client, 5, "missing", &[(0, -1)]).await;
    assert_eq!(found(&answers[0]), (3, -1, -1));
    let answers = list(&mut client, 5, "listed", &[(3, -1), (0, -1), (0, -2)]).await;
    assert_eq!(found(&answers[0]), (3, -1, -1));
    assert_eq!(found(&answers[1]), (0, 0, -1));
    assert_eq!(found(&answers[2]), (42, -1, -1), "a partition named twice");
    gateway.stop().await;
}
