//! Produce over a real socket: offsets, acks, validation errors, idempotent
//! producers, pipelining, topic ids.

mod common;
mod data_path;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{api_versions_request, request_frame, Client, TestGateway};
use data_path::{
    batch, call, create_topic, fetch, produce, produce_request, with_base_offset, Idempotent,
};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceResponse,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

async fn producer_id(client: &mut Client) -> i64 {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    let response: InitProducerIdResponse =
        call(client, ApiKey::InitProducerId, 4, 50, &request).await;
    assert_eq!(response.error_code, 0);
    response.producer_id.0
}

#[tokio::test]
async fn offsets_are_contiguous_and_fetch_returns_the_bytes_produced() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "contiguous").await;
    let batches: Vec<Bytes> = [3usize, 1, 5, 2]
        .iter()
        .map(|&count| {
            let values: Vec<Vec<u8>> = (0..count).map(|i| format!("v{i}").into_bytes()).collect();
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            batch(&values, 1_700_000_000_000, None)
        })
        .collect();
    let mut expected = BytesMut::new();
    let mut next = 0;
    for records in &batches {
        let (error, base_offset) = produce(&mut client, "contiguous", 0, records.clone()).await;
        assert_eq!(error, 0);
        assert_eq!(base_offset, next);
        expected.extend_from_slice(&with_base_offset(records, next));
        next += i64::from(u32::from_be_bytes(
            records[57..61].try_into().expect("count"),
        ));
    }
    assert_eq!(next, 11);
    let answer = fetch(&mut client, "contiguous", 0, 0).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.high_watermark, 11);
    assert_eq!(answer.last_stable_offset, 11);
    assert_eq!(answer.log_start_offset, 0);
    assert_eq!(answer.preferred_read_replica.0, -1);
    assert_eq!(
        answer.records.as_deref(),
        Some(&expected[..]),
        "byte-identical but for the base offsets"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_but_the_records_land() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "fire-and-forget").await;
    let records = batch(&[b"a", b"b"], 1, None);
    let mut burst = request_frame(
        ApiKey::Produce,
        9,
        9,
        7,
        &produce_request("fire-and-forget", 0, records.clone(), 0),
    );
    burst.extend(api_versions_request(3, 8));
    client.send(&burst).await;
    let payload = client.read_frame().await.expect("ApiVersions answers");
    assert_eq!(
        Client::correlation_id(&payload),
        8,
        "nothing for the produce"
    );
    client.expect_silence(Duration::from_millis(100)).await;
    let answer = fetch(&mut client, "fire-and-forget", 0, 0).await;
    assert_eq!(
        answer.records.as_deref(),
        Some(&with_base_offset(&records, 0)[..])
    );

    // An acks=0 produce that fails closes the connection, as in Kafka.
    client
        .send(&request_frame(
            ApiKey::Produce,
            9,
            9,
            9,
            &produce_request("no-such-topic", 0, records, 0),
        ))
        .await;
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn bad_records_get_kafkas_error_codes() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "strict").await;
    let good = batch(&[b"x"], 1, None);

    assert_eq!(produce(&mut client, "missing", 0, good.clone()).await.0, 3);
    assert_eq!(produce(&mut client, "strict", 1, good.clone()).await.0, 3);
    assert_eq!(produce(&mut client, "strict", -1, good.clone()).await.0, 3);

    let mut corrupt = BytesMut::from(&good[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce(&mut client, "strict", 0, corrupt.freeze()).await.0,
        2
    );

    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&good);
    assert_eq!(produce(&mut client, "strict", 0, two.freeze()).await.0, 87);

    let big = vec![7u8; 1_100_000];
    assert_eq!(
        produce(&mut client, "strict", 0, batch(&[&big], 1, None))
            .await
            .0,
        10
    );

    let transactional = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: 5,
        producer_epoch: 0,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1,
        key: None,
        value: Some(Bytes::from_static(b"t")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [transactional].iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encodes");
    assert_eq!(produce(&mut client, "strict", 0, buf.freeze()).await.0, 48);

    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        3,
        &produce_request("strict", 0, good.clone(), 2),
    )
    .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);

    // Nothing of it was stored.
    let answer = fetch(&mut client, "strict", 0, 0).await;
    assert_eq!(answer.high_watermark, 0);
    assert_eq!(produce(&mut client, "strict", 0, good).await, (0, 0));
    gateway.stop().await;
}

#[tokio::test]
async fn idempotent_retries_get_their_original_offset_and_gaps_are_refused() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "exactly-once").await;
    let producer_id = producer_id(&mut client).await;
    let at = |base_sequence| Idempotent {
        producer_id,
        epoch: 0,
        base_sequence,
    };
    let first = batch(&[b"a", b"b", b"c"], 10, Some(at(0)));
    assert_eq!(
        produce(&mut client, "exactly-once", 0, first.clone()).await,
        (0, 0)
    );
    // The same batch again, as after a lost acknowledgement.
    assert_eq!(produce(&mut client, "exactly-once", 0, first).await, (0, 0));
    let second = batch(&[b"d"], 11, Some(at(3)));
    assert_eq!(
        produce(&mut client, "exactly-once", 0, second).await,
        (0, 3)
    );
    let gap = batch(&[b"e"], 12, Some(at(10)));
    assert_eq!(produce(&mut client, "exactly-once", 0, gap).await.0, 45);
    let answer = fetch(&mut client, "exactly-once", 0, 0).await;
    assert_eq!(
        answer.high_watermark, 4,
        "the duplicate was not stored twice"
    );

    // A newer epoch fences the older one.
    let newer = Idempotent {
        producer_id,
        epoch: 1,
        base_sequence: 0,
    };
    let fenced = batch(&[b"f"], 13, Some(newer));
    assert_eq!(
        produce(&mut client, "exactly-once", 0, fenced).await,
        (0, 4)
    );
    let stale = batch(&[b"g"], 14, Some(at(4)));
    assert_eq!(produce(&mut client, "exactly-once", 0, stale).await.0, 47);
    gateway.stop().await;
}

#[tokio::test]
async fn pipelined_produces_are_ordered_as_sent() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "pipelined").await;
    let producer_id = producer_id(&mut client).await;
    let mut burst = Vec::new();
    for n in 0..5 {
        let records = batch(
            &[b"one", b"two"],
            100,
            Some(Idempotent {
                producer_id,
                epoch: 0,
                base_sequence: n * 2,
            }),
        );
        burst.extend(request_frame(
            ApiKey::Produce,
            9,
            9,
            100 + n,
            &produce_request("pipelined", 0, records, -1),
        ));
    }
    client.send(&burst).await;
    for n in 0..5 {
        let payload = client.read_frame().await.expect("a response");
        let (header, response): (_, ProduceResponse) =
            common::decode_response(payload, ApiKey::Produce, 9, 9);
        assert_eq!(header.correlation_id, 100 + n);
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(answer.error_code, 0, "in order, so no sequence gap");
        assert_eq!(answer.base_offset, i64::from(n) * 2);
        assert_eq!(answer.log_append_time_ms, -1);
        assert_eq!(answer.log_start_offset, 0);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn every_version_produces_and_v13_names_topics_by_id() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let created = create_topic(&mut client, "versions").await;
    let topic_id = created.topics[0].topic_id;
    for (next, version) in (3..=13_i16).enumerate() {
        let mut request = produce_request("versions", 0, batch(&[b"v"], 1, None), 1);
        if version >= 13 {
            request.topic_data[0].topic_id = topic_id;
        }
        let response: ProduceResponse = call(
            &mut client,
            ApiKey::Produce,
            version,
            version.into(),
            &request,
        )
        .await;
        let answer = &response.responses[0].partition_responses[0];
        assert_eq!(answer.error_code, 0, "v{version}");
        assert_eq!(answer.base_offset, next as i64, "v{version}");
        if version >= 13 {
            assert_eq!(response.responses[0].topic_id, topic_id);
        } else {
            assert_eq!(response.responses[0].name.as_str(), "versions");
        }
    }
    let mut request = produce_request("versions", 0, batch(&[b"v"], 1, None), 1);
    request.topic_data[0].topic_id = uuid::Uuid::from_bytes([0x11; 16]);
    let response: ProduceResponse = call(&mut client, ApiKey::Produce, 13, 99, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 100);
    gateway.stop().await;
}

#[tokio::test]
async fn a_batch_that_lies_about_its_length_is_refused_and_the_region_stays_intact() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "lies").await;
    let good = batch(&[b"honest"], 1, None);
    let real = i32::try_from(good.len() - 12).expect("small batch");
    for claimed in [real + 100, real - 10, -1, i32::MAX] {
        let mut lying = BytesMut::from(&good[..]);
        lying[8..12].copy_from_slice(&claimed.to_be_bytes());
        // As Kafka: no complete batch in the set is INVALID_RECORD (87), a
        // batch whose bytes fail its CRC is CORRUPT_MESSAGE (2).
        let code = produce(&mut client, "lies", 0, lying.freeze()).await.0;
        assert!(
            code == 2 || code == 87,
            "batch length {claimed} for {real} bytes answered {code}"
        );
    }
    // Another connection is served, nothing was stored, and the next honest
    // batch lands at offset 0 and reads back byte for byte.
    let mut other = gateway.client().await;
    assert_eq!(produce(&mut other, "lies", 0, good.clone()).await, (0, 0));
    let answer = fetch(&mut other, "lies", 0, 0).await;
    assert_eq!(answer.high_watermark, 1);
    assert_eq!(answer.records.expect("records"), with_base_offset(&good, 0));
    gateway.stop().await;
}

/// One uncompressed batch of three records; `keys[i]` is record i's key.
fn batch_with_keys(keys: [Option<&'static [u8]>; 3]) -> Bytes {
    batch_of(keys, [1_700_000_000_000; 3])
}

/// One uncompressed batch of three records; record i has the key `keys[i]`
/// and the CreateTime `timestamps[i]`.
fn batch_of(keys: [Option<&'static [u8]>; 3], timestamps: [i64; 3]) -> Bytes {
    let records: Vec<Record> = keys
        .iter()
        .zip(0..)
        .map(|(key, i)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: i - 1,
            timestamp: timestamps[i as usize],
            key: key.map(Bytes::from_static),
            value: Some(Bytes::from_static(b"value")),
            headers: Default::default(),
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
    .expect("encoding records");
    buf.freeze()
}

/// Creates the one-partition topic `name` with `configs`.
async fn create_topic_with(client: &mut Client, name: &str, configs: &[(&'static str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    use kafka_protocol::protocol::StrBytes;

    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str(key))
                .with_value(Some(StrBytes::from_string((*value).to_owned())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(data_path::topic_name(name))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(10_000);
    let created: CreateTopicsResponse = call(client, ApiKey::CreateTopics, 5, 1, &request).await;
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
}

fn unix_millis() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(elapsed.as_millis()).expect("fits")
}

#[tokio::test]
async fn a_log_append_time_topic_stamps_batches_and_answers_the_stamp() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic_with(
        &mut client,
        "appended",
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let sent = batch_of([Some(b"a"), Some(b"b"), None], [1_000, 2_000, 3_000]);
    let before = unix_millis();
    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        2,
        &produce_request("appended", 0, sent.clone(), 1),
    )
    .await;
    let after = unix_millis();
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));
    let stamp = answer.log_append_time_ms;
    assert!(
        (before..=after).contains(&stamp),
        "{before} <= {stamp} <= {after}"
    );

    let fetched = fetch(&mut client, "appended", 0, 0).await;
    let mut stored = fetched.records.expect("records");
    // Consumers give every record of a LogAppendTime batch its max
    // timestamp (the records keep their own deltas, as Kafka leaves them).
    let max_timestamp = i64::from_be_bytes(stored[35..43].try_into().expect("8 bytes"));
    assert_eq!(max_timestamp, stamp);
    let records = RecordBatchDecoder::decode(&mut stored)
        .expect("a valid batch (CRC)")
        .records;
    assert_eq!(records.len(), 3);
    assert!(records
        .iter()
        .all(|record| record.timestamp_type == TimestampType::LogAppend));
    let keys: Vec<_> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(
        keys,
        [
            Some(Bytes::from_static(b"a")),
            Some(Bytes::from_static(b"b")),
            None
        ]
    );

    // A CreateTime topic answers -1 and keeps the producer's timestamps.
    create_topic(&mut client, "created").await;
    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        3,
        &produce_request("created", 0, sent, 1),
    )
    .await;
    assert_eq!(
        response.responses[0].partition_responses[0].log_append_time_ms,
        -1
    );
    gateway.stop().await;
}

#[tokio::test]
async fn timestamps_outside_the_window_are_invalid_timestamp_with_one_record_error_each() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let hour = 3_600_000_i64;
    let window = hour.to_string();
    create_topic_with(
        &mut client,
        "windowed",
        &[
            ("message.timestamp.before.max.ms", &window),
            ("message.timestamp.after.max.ms", &window),
        ],
    )
    .await;
    let now = unix_millis();
    let keys = [Some(&b"a"[..]), Some(&b"b"[..]), Some(&b"c"[..])];
    let out_of_range = batch_of(keys, [now - 2 * hour, now, now + 2 * hour]);
    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        2,
        &produce_request("windowed", 0, out_of_range, 1),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 32, "INVALID_TIMESTAMP");
    assert_eq!(
        answer.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [0, 2]);
    let first = answer.record_errors[0].batch_index_error_message.as_deref();
    let expected_start = format!(
        "Timestamp {} of message with offset 0 is out of range.",
        now - 2 * hour
    );
    assert!(
        first.is_some_and(|m| m.starts_with(&expected_start)),
        "{first:?}"
    );

    // Nothing of the refused batch was stored; records within the window go in at 0.
    let within = batch_of(keys, [now - hour / 2, now, now + hour / 2]);
    assert_eq!(produce(&mut client, "windowed", 0, within).await, (0, 0));
    gateway.stop().await;
}

#[tokio::test]
async fn a_batch_a_producer_marked_log_append_time_is_invalid_timestamp() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "marked").await;
    let mut marked = BytesMut::from(&batch_with_keys([None, None, None])[..]);
    marked[22] |= 0x08; // the timestamp-type attribute bit
    let crc = crc32c::crc32c(&marked[21..]);
    marked[17..21].copy_from_slice(&crc.to_be_bytes());
    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        2,
        &produce_request("marked", 0, marked.freeze(), 1),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 32, "INVALID_TIMESTAMP");
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [0, 1, 2]);
    gateway.stop().await;
}

#[tokio::test]
async fn a_compacted_topic_refuses_keyless_records_with_one_record_error_each() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic_with(
        &mut client,
        "compacted",
        &[("cleanup.policy", "compact,delete")],
    )
    .await;

    let keyless = batch_with_keys([Some(b"a"), None, None]);
    let response: ProduceResponse = call(
        &mut client,
        ApiKey::Produce,
        9,
        2,
        &produce_request("compacted", 0, keyless, 1),
    )
    .await;
    let answer = &response.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 87, "INVALID_RECORD");
    assert_eq!(answer.base_offset, -1);
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(indexes, [1, 2], "one record error per keyless record");
    assert_eq!(
        answer.record_errors[0].batch_index_error_message.as_deref(),
        Some("Compacted topic cannot accept message without key in topic partition compacted-0.")
    );
    assert!(answer.error_message.as_deref().is_some_and(
        |m| m.starts_with("One or more records have been rejected due to 2 record errors")
    ));

    // Nothing of the refused batch was stored; a keyed batch goes in at 0.
    let keyed = batch_with_keys([Some(b"a"), Some(b"b"), Some(b"c")]);
    assert_eq!(produce(&mut client, "compacted", 0, keyed).await, (0, 0));
    // Other topics take keyless records as before.
    create_topic(&mut client, "plain").await;
    let keyless = batch_with_keys([None, None, None]);
    assert_eq!(produce(&mut client, "plain", 0, keyless).await, (0, 0));
    gateway.stop().await;
}
