//! Fetch over a real socket: whole batches, size limits, long polling,
//! errors, topic ids, every version, and the per-topic byte metrics.

mod common;
mod data_path;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{request_frame, TestGateway};
use cxlkafka_gateway::context::{Limits, TopicDefaults};
use cxlkafka_gateway::{telemetry, DispatchTable};
use data_path::{
    batch, call, create_topic, decode_records, fetch, fetch_request, produce, with_base_offset,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use metrics_exporter_prometheus::PrometheusHandle;

#[tokio::test]
async fn a_fetch_inside_a_batch_returns_the_whole_batch() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "whole").await;
    let records = batch(&[b"0", b"1", b"2", b"3", b"4"], 5, None);
    assert_eq!(
        produce(&mut client, "whole", 0, records.clone()).await,
        (0, 0)
    );
    let answer = fetch(&mut client, "whole", 0, 3).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(
        answer.records.as_deref(),
        Some(&records[..]),
        "base offset 0"
    );
    let decoded = decode_records(answer.records.as_ref().expect("records"));
    let offsets: Vec<i64> = decoded.iter().map(|(offset, _, _)| *offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4], "the client skips 0..3 itself");
    // At the high watermark: nothing, no error.
    let answer = fetch(&mut client, "whole", 0, 5).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.records.as_deref().map(<[u8]>::len), Some(0));
    gateway.stop().await;
}

#[tokio::test]
async fn offsets_out_of_range_and_unknown_topics_are_errors() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "ranged").await;
    produce(
        &mut client,
        "ranged",
        0,
        batch(&[b"a", b"b", b"c"], 1, None),
    )
    .await;
    for offset in [4, 100, -5] {
        let answer = fetch(&mut client, "ranged", 0, offset).await;
        assert_eq!(answer.error_code, 1, "offset {offset}");
        assert_eq!(answer.high_watermark, -1);
    }
    assert_eq!(fetch(&mut client, "nope", 0, 0).await.error_code, 3);
    assert_eq!(fetch(&mut client, "ranged", 7, 0).await.error_code, 3);

    // v13+ by id: known and unknown ids.
    let mut request = fetch_request("", 0, 0, 0, 1);
    request.topics[0].topic_id = created.topics[0].topic_id;
    let mut unknown = request.topics[0].clone();
    unknown.topic_id = uuid::Uuid::from_bytes([0x55; 16]);
    request.topics.push(unknown);
    let response: FetchResponse = call(&mut client, ApiKey::Fetch, 13, 4, &request).await;
    assert_eq!(response.responses[0].topic_id, created.topics[0].topic_id);
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert_eq!(response.responses[0].partitions[0].high_watermark, 3);
    assert_eq!(response.responses[1].partitions[0].error_code, 100);
    gateway.stop().await;
}

#[tokio::test]
async fn every_version_fetches() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "all-versions").await;
    let records = batch(&[b"x", b"y"], 9, None);
    produce(&mut client, "all-versions", 0, records.clone()).await;
    for version in 4..=18 {
        let mut request = fetch_request("all-versions", 0, 0, 0, 1);
        if version >= 13 {
            request.topics[0].topic = Default::default();
            request.topics[0].topic_id = created.topics[0].topic_id;
        }
        if version >= 15 {
            request.replica_id = (-1).into();
        }
        request.session_id = 0;
        request.session_epoch = -1;
        let response: FetchResponse = call(
            &mut client,
            ApiKey::Fetch,
            version,
            version.into(),
            &request,
        )
        .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.session_id, 0, "v{version}");
        let answer = &response.responses[0].partitions[0];
        assert_eq!(answer.error_code, 0, "v{version}");
        assert_eq!(answer.records.as_deref(), Some(&records[..]), "v{version}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn size_limits_take_whole_batches_and_at_least_one() {
    let two = TopicDefaults {
        partitions: 2,
        ..TopicDefaults::default()
    };
    let mut gateway =
        TestGateway::start_with_topics(Limits::default(), DispatchTable::standard(), two).await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "sized").await;
    let payload = vec![b'p'; 1_000];
    let mut batches = Vec::new();
    for partition in [0, 1] {
        for _ in 0..3 {
            let records = batch(&[&payload], 1, None);
            let (error, offset) = produce(&mut client, "sized", partition, records.clone()).await;
            assert_eq!(error, 0);
            batches.push(with_base_offset(&records, offset));
        }
    }
    let size = batches[0].len();
    let fetched = |response: &FetchResponse, partition: usize| {
        response.responses[0].partitions[partition]
            .records
            .as_ref()
            .map_or(0, |records| records.len())
    };
    let both = |partition_max: usize, max: usize| {
        let mut request = fetch_request("sized", 0, 0, 0, 1);
        request.max_bytes = i32::try_from(max).expect("small");
        let mut second = request.topics[0].partitions[0].clone();
        second.partition = 1;
        request.topics[0].partitions.push(second);
        for partition in &mut request.topics[0].partitions {
            partition.partition_max_bytes = i32::try_from(partition_max).expect("small");
        }
        request
    };
    // Per partition: whole batches within the limit.
    let response: FetchResponse = call(
        &mut client,
        ApiKey::Fetch,
        11,
        1,
        &both(2 * size + 10, 1 << 20),
    )
    .await;
    assert_eq!(fetched(&response, 0), 2 * size);
    assert_eq!(fetched(&response, 1), 2 * size);
    // Overall: the second partition gets what the first left.
    let response: FetchResponse = call(
        &mut client,
        ApiKey::Fetch,
        11,
        2,
        &both(1 << 20, 4 * size + 10),
    )
    .await;
    assert_eq!(fetched(&response, 0), 3 * size);
    assert_eq!(fetched(&response, 1), size);
    // Limits below one batch: the first batch still comes, nothing else.
    let response: FetchResponse = call(&mut client, ApiKey::Fetch, 11, 3, &both(10, 10)).await;
    assert_eq!(fetched(&response, 0), size);
    assert_eq!(fetched(&response, 1), 0);
    assert_eq!(response.responses[0].partitions[1].error_code, 0);
    assert_eq!(response.responses[0].partitions[1].high_watermark, 3);
    gateway.stop().await;
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_produce_from_another_connection() {
    let mut gateway = TestGateway::start().await;
    let mut consumer = gateway.client().await;
    let mut producer = gateway.client().await;
    create_topic(&mut consumer, "awaited").await;
    let started = Instant::now();
    consumer
        .send(&request_frame(
            ApiKey::Fetch,
            11,
            11,
            1,
            &fetch_request("awaited", 0, 0, 10_000, 1),
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let records = batch(&[b"wake up"], 1, None);
    assert_eq!(
        produce(&mut producer, "awaited", 0, records.clone()).await,
        (0, 0)
    );
    let payload = consumer
        .read_frame_within(Duration::from_secs(5))
        .await
        .expect("a response");
    let waited = started.elapsed();
    let (_, response): (_, FetchResponse) = common::decode_response(payload, ApiKey::Fetch, 11, 11);
    let answer = &response.responses[0].partitions[0];
    assert_eq!(answer.records.as_deref(), Some(&records[..]));
    assert!(
        waited >= Duration::from_millis(200),
        "it waited: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "woken early: {waited:?}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_long_poll_without_data_answers_at_max_wait() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "quiet").await;
    let started = Instant::now();
    let response: FetchResponse = call(
        &mut client,
        ApiKey::Fetch,
        11,
        1,
        &fetch_request("quiet", 0, 0, 300, 1),
    )
    .await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let answer = &response.responses[0].partitions[0];
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.records.as_deref().map(<[u8]>::len), Some(0));
    gateway.stop().await;
}

#[tokio::test]
async fn later_requests_on_the_connection_wait_behind_a_long_poll_in_order() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "ordered").await;
    let mut burst = request_frame(
        ApiKey::Fetch,
        11,
        11,
        1,
        &fetch_request("ordered", 0, 0, 300, 1),
    );
    burst.extend(common::api_versions_request(3, 2));
    client.send(&burst).await;
    let first = client.read_frame().await.expect("fetch answers");
    let second = client.read_frame().await.expect("api versions answers");
    assert_eq!(common::Client::correlation_id(&first), 1);
    assert_eq!(common::Client::correlation_id(&second), 2);
    gateway.stop().await;
}

fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        telemetry::prometheus_builder()
            .expect("builder")
            .install_recorder()
            .expect("the only recorder of this test binary")
    })
}

#[tokio::test]
async fn bytes_and_records_in_and_out_are_counted_per_topic() {
    let handle = metrics();
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "metered").await;
    let records = batch(&[b"a", b"b", b"c"], 1, None);
    produce(&mut client, "metered", 0, records.clone()).await;
    let mut request = fetch_request("metered", 0, 0, 0, 1);
    request.topics.push({
        let mut other = FetchTopic::default();
        other.topic = data_path::topic_name("metered");
        let mut partition = FetchPartition::default();
        partition.fetch_offset = 1;
        partition.partition_max_bytes = 1 << 20;
        other.partitions = vec![partition];
        other
    });
    let _: FetchResponse = call(&mut client, ApiKey::Fetch, 11, 5, &request).await;
    let text = handle.render();
    let value = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(&format!("{name}{{topic=\"metered\"}}")))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<u64>().ok())
    };
    let len = records.len() as u64;
    assert_eq!(value("cxlkafka_bytes_in_total"), Some(len));
    assert_eq!(value("cxlkafka_records_in_total"), Some(3));
    assert_eq!(value("cxlkafka_bytes_out_total"), Some(2 * len));
    assert_eq!(value("cxlkafka_records_out_total"), Some(6));
    gateway.stop().await;
}
