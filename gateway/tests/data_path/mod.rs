//! Client-side helpers for the data-path API tests (Metadata, Produce,
//! Fetch, ListOffsets, InitProducerId): requests built and responses decoded
//! with `kafka-protocol`'s client side, record batches built with its
//! `RecordBatchEncoder`, as a real client would.

#![allow(dead_code)] // each test binary uses a different part

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::common::{decode_response, request_frame, Client};

/// Sends one request at `version` and decodes its response.
pub async fn call<Req: Encodable, Resp: Decodable>(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> Resp {
    client
        .send(&request_frame(
            api_key,
            version,
            version,
            correlation_id,
            request,
        ))
        .await;
    let payload = client.read_frame().await.expect("a response");
    let (header, response) = decode_response(payload, api_key, version, version);
    assert_eq!(header.correlation_id, correlation_id);
    response
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// A Metadata request for `names` that allows auto-creation.
pub fn metadata_request(names: &[&str]) -> MetadataRequest {
    let mut request = MetadataRequest::default();
    request.allow_auto_topic_creation = true;
    request.topics = Some(
        names
            .iter()
            .map(|name| {
                let mut topic = MetadataRequestTopic::default();
                topic.name = Some(topic_name(name));
                topic
            })
            .collect(),
    );
    request
}

/// Creates `name` through Metadata auto-creation; returns the response.
pub async fn create_topic(client: &mut Client, name: &str) -> MetadataResponse {
    let response: MetadataResponse =
        call(client, ApiKey::Metadata, 12, 1, &metadata_request(&[name])).await;
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, 0, "{name} created");
    response
}

/// An idempotent producer's identity and first sequence.
#[derive(Clone, Copy, Debug)]
pub struct Idempotent {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

/// One uncompressed v2 batch of `values` (keys "k<i>", header "h"), with
/// timestamps `first_timestamp + i`.
pub fn batch(values: &[&[u8]], first_timestamp: i64, idempotent: Option<Idempotent>) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let offset = i64::try_from(i).expect("small");
            let mut headers = IndexMap::new();
            headers.insert(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"v")),
            );
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: idempotent.map_or(-1, |p| p.producer_id),
                producer_epoch: idempotent.map_or(-1, |p| p.epoch),
                timestamp_type: TimestampType::Creation,
                offset,
                // The encoder starts a new batch where offset minus sequence
                // changes, so even without idempotence sequences follow the
                // offsets (from -1, which makes the batch's base sequence -1).
                sequence: idempotent.map_or(-1, |p| p.base_sequence) + offset as i32,
                timestamp: first_timestamp + offset,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::copy_from_slice(value)),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    buf.freeze()
}

/// A Produce request carrying `records` for one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut topic_data = TopicProduceData::default();
    topic_data.name = topic_name(topic);
    topic_data.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 5_000;
    request.topic_data = vec![topic_data];
    request
}

/// Produces `records` with acks=1 at Produce v9; returns (error, base offset).
pub async fn produce(
    client: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let response: ProduceResponse = call(
        client,
        ApiKey::Produce,
        9,
        2,
        &produce_request(topic, partition, records, 1),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// A Fetch request for one partition.
pub fn fetch_request(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> FetchRequest {
    let mut wanted = FetchPartition::default();
    wanted.partition = partition;
    wanted.fetch_offset = offset;
    wanted.partition_max_bytes = 1 << 20;
    let mut fetch_topic = FetchTopic::default();
    fetch_topic.topic = topic_name(topic);
    fetch_topic.partitions = vec![wanted];
    let mut request = FetchRequest::default();
    request.replica_id = (-1).into();
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = min_bytes;
    request.max_bytes = 50 << 20;
    request.topics = vec![fetch_topic];
    request
}

/// Fetches at v11 (by name); returns the one partition's answer.
pub async fn fetch(
    client: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
) -> kafka_protocol::messages::fetch_response::PartitionData {
    let response: FetchResponse = call(
        client,
        ApiKey::Fetch,
        11,
        3,
        &fetch_request(topic, partition, offset, 0, 1),
    )
    .await;
    assert_eq!(response.session_id, 0, "sessionless");
    response.responses[0].partitions[0].clone()
}

/// Decodes fetched record bytes: (offset, key, value) of every record.
pub fn decode_records(bytes: &Bytes) -> Vec<(i64, Bytes, Bytes)> {
    let mut buf = bytes.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("fetched batches decode")
        .into_iter()
        .flat_map(|set| set.records)
        .map(|record| {
            (
                record.offset,
                record.key.unwrap_or_default(),
                record.value.unwrap_or_default(),
            )
        })
        .collect()
}

/// The batch bytes as stored: the producer's batch with its base offset
/// rewritten (the CRC does not cover it).
pub fn with_base_offset(batch: &Bytes, base_offset: i64) -> Bytes {
    let mut bytes = BytesMut::from(&batch[..]);
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes.freeze()
}
