//! ListOffsets (key 2): offsets by time, and the log's two ends.
//!
//! Served from v1 (the first with one offset per partition) to the crate's
//! newest. Per partition, by the requested timestamp:
//!
//! | timestamp | answer |
//! |---|---|
//! | -2 EARLIEST, -4 EARLIEST_LOCAL (v8+) | the log start offset, timestamp -1 |
//! | -1 LATEST | the high watermark; with READ_COMMITTED (v2+) the last stable offset (the first offset of an open transaction); timestamp -1 |
//! | -3 MAX_TIMESTAMP (v7+) | the first record with the partition's largest timestamp, and that timestamp |
//! | -5 LATEST_TIERED (v9+) | offset -1, timestamp -1: nothing is tiered, as Kafka answers without remote storage |
//! | any other | the first record whose timestamp is at least the one asked for, and its timestamp |
//!
//! A search that finds nothing answers offset -1 and timestamp -1 without an
//! error, as Kafka does. The index knows each batch's largest timestamp, so
//! a search first finds the batch, then, for an uncompressed batch, the exact
//! record within it. The gateway never decompresses, so within a compressed
//! batch the answer is the batch's first offset and its largest timestamp: a
//! consumer seeking there still reaches the record, after a few earlier ones.
//!
//! Leader epochs are -1 (see Metadata). An unknown topic or
//! partition is UNKNOWN_TOPIC_OR_PARTITION (3); a partition named twice in
//! one request is INVALID_REQUEST (42), as Kafka answers duplicates.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::cluster::FetchRead;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32, INT64, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes (v1+).
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 10 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ListOffsets,
    name: "ListOffsets",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const REQUEST_PARTITION: &[Field] = &[
    Field::always(INT32),
    Field::since(INT32, 4),
    Field::always(INT64),
];
const REQUEST_TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(REQUEST_PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(INT32),
    Field::since(INT8, 2),
    Field::always(Kind::Array(REQUEST_TOPIC)),
    Field::since(INT32, 10),
];

/// Kafka's special timestamps.
const LATEST: i64 = -1;
/// Kafka's READ_COMMITTED isolation level.
const READ_COMMITTED: i8 = 1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// Where a v2 batch keeps its attributes, and the codec and timestamp-type
/// bits of their low byte.
const ATTRIBUTES_OFFSET: usize = 21;
const CODEC_MASK: u8 = 0x07;
const LOG_APPEND_TIME_BIT: u8 = 0x08;
/// Where a v2 batch's records begin.
const RECORDS_OFFSET: usize = 61;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: ListOffsetsRequest = request.decode_bounded(REQUEST)?;
    let version = request.version;
    let mut seen = HashSet::new();
    let holds_everything = ctx.log.holds_everything();
    let mut response = ListOffsetsResponse::default();
    for requested in &body.topics {
        let topic = ctx.log.topic(&requested.name);
        let denied = !request.authorized(
            ctx,
            AclOperation::Describe,
            Resource::Topic(&requested.name),
        );
        let mut entry = ListOffsetsTopicResponse::default();
        entry.name = requested.name.clone();
        for partition in &requested.partitions {
            let mut answer = ListOffsetsPartitionResponse::default();
            answer.partition_index = partition.partition_index;
            answer.timestamp = -1;
            answer.offset = -1;
            answer.leader_epoch = -1;
            let stream = topic.as_ref().and_then(|topic| {
                u32::try_from(partition.partition_index)
                    .ok()
                    .and_then(|index| topic.stream(index))
            });
            let result = if !seen.insert((requested.name.clone(), partition.partition_index)) {
                Err(ResponseError::InvalidRequest)
            } else if denied {
                Err(ResponseError::TopicAuthorizationFailed)
            } else if stream.is_some() && !holds_everything {
                // Its log start would be where this gateway's copy starts.
                Err(ResponseError::NotLeaderOrFollower)
            } else {
                stream
                    .map(|stream| {
                        let committed_only = version >= 2 && body.isolation_level == READ_COMMITTED;
                        lookup(ctx, stream, partition.timestamp, version, committed_only)
                    })
                    .ok_or(ResponseError::UnknownTopicOrPartition)
            };
            match result {
                Ok(Some((offset, timestamp))) => {
                    answer.offset = offset;
                    answer.timestamp = timestamp;
                }
                Ok(None) => {}
                Err(error) => {
                    answer.error_code = error.code();
                    telemetry::record_error_code(ENTRY.name, answer.error_code);
                }
            }
            entry.partitions.push(answer);
        }
        response.topics.push(entry);
    }
    request.respond(&response)
}

/// (offset, timestamp) for one partition, or `None` for "not found".
fn lookup(
    ctx: &GatewayContext,
    stream: u32,
    timestamp: i64,
    version: i16,
    committed_only: bool,
) -> Option<(i64, i64)> {
    let (log_start, high_watermark) = ctx.log.offsets(stream);
    match timestamp {
        EARLIEST => Some((log_start, -1)),
        EARLIEST_LOCAL if version >= 8 => Some((log_start, -1)),
        LATEST if committed_only => Some((
            ctx.log
                .transactions()
                .last_stable_offset(stream, high_watermark),
            -1,
        )),
        LATEST => Some((high_watermark, -1)),
        LATEST_TIERED if version >= 9 => None,
        MAX_TIMESTAMP if version >= 7 => {
            let (base_offset, max) = ctx.log.max_timestamp(stream)?;
            Some(refine(ctx, stream, base_offset, max, |ts| ts == max))
        }
        target => {
            let (base_offset, max) = ctx.log.offset_for_timestamp(stream, target)?;
            Some(refine(ctx, stream, base_offset, max, |ts| ts >= target))
        }
    }
}

/// The first record of the batch at `base_offset` whose timestamp matches,
/// when the batch is uncompressed; otherwise the batch's base offset and
/// largest timestamp.
fn refine(
    ctx: &GatewayContext,
    stream: u32,
    base_offset: i64,
    batch_max: i64,
    matches: impl Fn(i64) -> bool,
) -> (i64, i64) {
    let coarse = (base_offset, batch_max);
    let FetchRead::Batches { batches, .. } = ctx.log.read(stream, base_offset, 1) else {
        return coarse;
    };
    batches
        .first()
        .and_then(|batch| find_record(batch, batch_max, matches))
        .unwrap_or(coarse)
}

/// Walks the records of an uncompressed v2 batch (its base offset already
/// the stored one) for the first whose timestamp matches; returns its
/// offset and timestamp. Reads only each record's length, timestamp delta
/// and offset delta, and allocates nothing: the records come from clients,
/// and the crate's record decoder would reserve whatever header count a
/// record claims. `None` for a compressed batch or one that does not parse.
fn find_record(batch: &[u8], batch_max: i64, matches: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let field = |range: std::ops::Range<usize>| batch.get(range);
    let base_offset = i64::from_be_bytes(field(0..8)?.try_into().ok()?);
    let attributes = *field(ATTRIBUTES_OFFSET + 1..ATTRIBUTES_OFFSET + 2)?.first()?;
    if attributes & CODEC_MASK != 0 {
        return None;
    }
    if attributes & LOG_APPEND_TIME_BIT != 0 {
        // Every record carries the batch's timestamp.
        return matches(batch_max).then_some((base_offset, batch_max));
    }
    let first_timestamp = i64::from_be_bytes(field(27..35)?.try_into().ok()?);
    let count = i32::from_be_bytes(field(57..61)?.try_into().ok()?);
    let mut rest = batch.get(RECORDS_OFFSET..)?;
    for _ in 0..count {
        let length = usize::try_from(varint(&mut rest)?).ok()?;
        let mut record = rest.get(..length)?;
        rest = rest.get(length..)?;
        let (_attributes, after) = record.split_first()?;
        record = after;
        let timestamp = first_timestamp.checked_add(varint(&mut record)?)?;
        let offset_delta = varint(&mut record)?;
        if matches(timestamp) {
            return Some((base_offset.checked_add(offset_delta)?, timestamp));
        }
    }
    None
}

/// Reads one zigzag-encoded varint (Kafka's record fields), at most ten
/// bytes.
fn varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            let magnitude = i64::try_from(value >> 1).ok()?;
            return Some(if value & 1 == 0 {
                magnitude
            } else {
                -magnitude - 1
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(timestamps: &[i64], compression: Compression) -> Bytes {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, &timestamp)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp,
                key: Some(Bytes::from_static(b"key")),
                value: Some(Bytes::from(vec![b'v'; 300])),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encodes");
        let mut bytes = buf.to_vec();
        bytes[..8].copy_from_slice(&100_i64.to_be_bytes());
        Bytes::from(bytes)
    }

    #[test]
    fn varints_are_zigzag() {
        for (encoded, value) in [
            (&[0x00][..], 0),
            (&[0x01], -1),
            (&[0x02], 1),
            (&[0xac, 0x02], 150),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                i64::MIN,
            ),
        ] {
            let mut bytes = encoded;
            assert_eq!(varint(&mut bytes), Some(value), "{encoded:?}");
            assert!(bytes.is_empty());
        }
        assert_eq!(varint(&mut &[0x80][..]), None, "cut short");
        assert_eq!(varint(&mut &[0x80; 11][..]), None, "too long");
    }

    #[test]
    fn the_exact_record_is_found_in_an_uncompressed_batch() {
        let stored = batch(&[1_000, 1_005, 1_003, 1_010], Compression::None);
        assert_eq!(
            find_record(&stored, 1_010, |ts| ts >= 1_004),
            Some((101, 1_005))
        );
        assert_eq!(
            find_record(&stored, 1_010, |ts| ts >= 1_000),
            Some((100, 1_000))
        );
        assert_eq!(
            find_record(&stored, 1_010, |ts| ts == 1_010),
            Some((103, 1_010))
        );
        assert_eq!(find_record(&stored, 1_010, |ts| ts > 2_000), None);
        assert_eq!(
            find_record(&stored[..200], 1_010, |ts| ts >= 1_004),
            None,
            "cut"
        );
    }

    #[test]
    fn a_record_claiming_more_bytes_than_there_are_is_not_followed() {
        let mut stored = batch(&[1_000, 1_001], Compression::None).to_vec();
        // The first record's length varint: claim a huge length.
        stored[RECORDS_OFFSET] = 0xfe;
        stored.insert(RECORDS_OFFSET + 1, 0xff);
        assert_eq!(find_record(&stored, 1_001, |ts| ts >= 1_001), None);
    }
}
