//! DeleteRecords over a real socket: the log start moves forward, fetches
//! below it are out of range on every gateway, ListOffsets earliest follows,
//! and the request shape matches the codec at every version.

mod common;
mod data_path;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use common::TestGateway;
use cxlkafka_gateway::api::topics::delete_records;
use cxlkafka_gateway::shape;
use data_path::{batch, call, create_topic, fetch, produce, topic_name};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::Encodable;

fn request(topic: &str, partitions: &[(i32, i64)], flexible: bool) -> DeleteRecordsRequest {
    let mut tags = BTreeMap::new();
    if flexible {
        tags.insert(42, Bytes::from_static(b"\x01"));
    }
    DeleteRecordsRequest::default()
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(index, offset)| {
                        DeleteRecordsPartition::default()
                            .with_partition_index(index)
                            .with_offset(offset)
                            .with_unknown_tagged_fields(tags.clone())
                    })
                    .collect(),
            )
            .with_unknown_tagged_fields(tags.clone())])
        .with_timeout_ms(5_000)
        .with_unknown_tagged_fields(tags)
}

#[test]
fn the_request_shape_matches_the_codec_at_every_version() {
    for version in delete_records::VERSIONS.min..=delete_records::VERSIONS.max {
        let flexible = ApiKey::DeleteRecords.request_header_version(version) >= 2;
        let body = request("orders", &[(0, 5), (3, -1)], flexible);
        let mut bytes = BytesMut::new();
        body.encode(&mut bytes, version).expect("encodes");
        let walked =
            shape::check(delete_records::REQUEST, &bytes, version, flexible).expect("walks");
        assert_eq!(walked, bytes.len(), "v{version}");
    }
}

async fn delete(
    client: &mut common::Client,
    topic: &str,
    partitions: &[(i32, i64)],
) -> Vec<(i16, i64)> {
    let response: DeleteRecordsResponse = call(
        client,
        ApiKey::DeleteRecords,
        2,
        7,
        &request(topic, partitions, true),
    )
    .await;
    response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.low_watermark))
        .collect()
}

#[tokio::test]
async fn the_log_start_moves_forward_and_fetches_below_it_are_out_of_range() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "trim").await;
    for _ in 0..3 {
        let (error, _) = produce(&mut client, "trim", 0, batch(&[b"a", b"b"], 1, None)).await;
        assert_eq!(error, 0);
    }
    // Offsets 0..6 exist. Delete below 3 (inside the second batch).
    assert_eq!(delete(&mut client, "trim", &[(0, 3)]).await, vec![(0, 3)]);
    assert_eq!(
        fetch(&mut client, "trim", 0, 2).await.error_code,
        1,
        "below the log start"
    );
    let inside = fetch(&mut client, "trim", 0, 3).await;
    assert_eq!((inside.error_code, inside.log_start_offset), (0, 3));
    // Never backwards; -1 means the high watermark; beyond it is out of range.
    assert_eq!(delete(&mut client, "trim", &[(0, 1)]).await, vec![(0, 3)]);
    assert_eq!(delete(&mut client, "trim", &[(0, 7)]).await, vec![(1, -1)]);
    assert_eq!(delete(&mut client, "trim", &[(0, -1)]).await, vec![(0, 6)]);
    assert_eq!(delete(&mut client, "trim", &[(9, 0)]).await, vec![(3, -1)]);
    assert_eq!(
        delete(&mut client, "missing", &[(0, 0)]).await,
        vec![(3, -1)]
    );
    assert_eq!(
        delete(&mut client, "__cxlkafka_order", &[(0, 0)]).await,
        vec![(44, -1)]
    );
    // Producing continues after the trimmed prefix.
    assert_eq!(
        produce(&mut client, "trim", 0, batch(&[b"c"], 1, None)).await,
        (0, 6)
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_partition_size_gauge_grows_with_appends_and_shrinks_with_the_log_start() {
    use cxlkafka_gateway::partition_metrics::{record_partitions, PartitionSizes};
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "sized").await;
    let stream = gateway
        .log
        .topic("sized")
        .and_then(|topic| topic.stream(0))
        .expect("partition 0");
    let batches: Vec<_> = (0..4)
        .map(|i| {
            let padding = vec![b'c'; i * 100];
            batch(&[&b"a"[..], &b"bb"[..], &padding[..]], 1, None)
        })
        .collect();
    let mut sizes = PartitionSizes::default();
    record_partitions(gateway.log.as_ref(), &mut sizes);
    assert_eq!(sizes.bytes(stream), Some(0));
    for records in &batches[..3] {
        assert_eq!(produce(&mut client, "sized", 0, records.clone()).await.0, 0);
    }
    record_partitions(gateway.log.as_ref(), &mut sizes);
    let first_three: u64 = batches[..3].iter().map(|b| b.len() as u64).sum();
    assert_eq!(sizes.bytes(stream), Some(first_three));
    // Appended since the last look: counted on top.
    assert_eq!(
        produce(&mut client, "sized", 0, batches[3].clone()).await.0,
        0
    );
    record_partitions(gateway.log.as_ref(), &mut sizes);
    assert_eq!(
        sizes.bytes(stream),
        Some(first_three + batches[3].len() as u64)
    );
    // Offsets 0..12 in batches of 3: a log start of 4 leaves the batches
    // holding 3..12 (the second one on).
    assert_eq!(delete(&mut client, "sized", &[(0, 4)]).await, vec![(0, 4)]);
    record_partitions(gateway.log.as_ref(), &mut sizes);
    let from_second: u64 = batches[1..].iter().map(|b| b.len() as u64).sum();
    assert_eq!(sizes.bytes(stream), Some(from_second));
    gateway.stop().await;
}
