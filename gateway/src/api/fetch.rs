//! Fetch (key 1): whole record batches out of the region, with long polling.
//!
//! Served from v4 to the crate's newest. For each requested partition the
//! gateway's order index gives the batches from the one holding
//! `fetch_offset` on, copied out of the arena with their base offsets
//! rewritten ([`ClusterLog::read`]); a fetch inside a batch returns the
//! whole batch and the client skips the records before its offset.
//!
//! - **Sizes** (KIP-74): partitions are filled in request order within
//!   `max_bytes` overall and `partition_max_bytes` each, whole batches only;
//!   the first batch of the first partition with data is returned even if
//!   it exceeds both, so a consumer always progresses.
//! - **Long polling**: with fewer than `min_bytes` available and
//!   `max_wait_ms` > 0, the response waits for new order-log entries and
//!   reads again, until enough data or `max_wait_ms` (at most 300 s). A
//!   partition error answers at once. All of it runs in the deferred part;
//!   the ordered part only decodes.
//! - **Errors**: an unknown topic is UNKNOWN_TOPIC_OR_PARTITION (3), or
//!   UNKNOWN_TOPIC_ID (100) when addressed by id (v13+); an offset below the
//!   log start or above the high watermark is OFFSET_OUT_OF_RANGE (1), with
//!   -1 offsets as Kafka sends.
//! - **Sessions** (KIP-227): none. Every answer is a full response with
//!   session id 0, which clients take as "sessionless" and keep sending full
//!   requests; no session error is ever returned.
//! - `last_stable_offset` is the high watermark (no transactions), aborted
//!   transactions are empty (READ_COMMITTED) or null (READ_UNCOMMITTED), and
//!   `preferred_read_replica` is -1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::metadata;
use crate::cluster::FetchRead;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, ResponseFrame, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, INT32, INT64, INT8, UUID};
use crate::telemetry;

/// Versions served: all the crate decodes (v4+).
pub const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::Fetch,
    name: "Fetch",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const REQUEST_PARTITION: &[Field] = &[
    Field::always(INT32),
    Field::since(INT32, 9),
    Field::always(INT64),
    Field::since(INT32, 12),
    Field::since(INT64, 5),
    Field::always(INT32),
    Field::tagged(UUID, 0, 17),
    Field::tagged(INT64, 1, 18),
];
const REQUEST_TOPIC: &[Field] = &[
    Field::new(Kind::String, 0, 12),
    Field::since(UUID, 13),
    Field::always(Kind::Array(REQUEST_PARTITION)),
];
const FORGOTTEN_TOPIC: &[Field] = &[
    Field::new(Kind::String, 7, 12),
    Field::since(UUID, 13),
    Field::since(Kind::FixedArray(4), 7),
];
const REPLICA_STATE: &[Field] = &[Field::since(INT32, 15), Field::since(INT64, 15)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::new(INT32, 0, 14),
    Field::always(INT32),
    Field::always(INT32),
    Field::always(INT32),
    Field::always(INT8),
    Field::since(INT32, 7),
    Field::since(INT32, 7),
    Field::always(Kind::Array(REQUEST_TOPIC)),
    Field::since(Kind::Array(FORGOTTEN_TOPIC), 7),
    Field::since(Kind::String, 11),
    Field::tagged(Kind::String, 0, 12),
    Field::tagged(Kind::Struct(REPLICA_STATE), 1, 15),
];

/// First version addressing topics by id.
const FIRST_VERSION_WITH_TOPIC_IDS: i16 = 13;
/// Longest long poll honoured.
const MAX_WAIT_MS: i32 = 300_000;
/// Where a v2 batch header keeps its record count.
const RECORD_COUNT_OFFSET: usize = 57;
/// Kafka's READ_COMMITTED isolation level.
const READ_COMMITTED: i8 = 1;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: FetchRequest = request.decode_bounded(REQUEST)?;
        let responder = request.responder();
        let deadline = Instant::now()
            + Duration::from_millis(
                u64::try_from(body.max_wait_ms.clamp(0, MAX_WAIT_MS)).unwrap_or(0),
            );
        Ok(Reply::deferred(async move {
            let plan = Plan::resolve(&ctx, &body, responder.version);
            let frame = long_poll(&ctx, &plan, &body, deadline, |response| {
                responder.frame(response)
            })
            .await?;
            Ok(Some(frame))
        }))
    })
}

/// A requested partition, resolved to its stream.
struct PartitionPlan {
    index: i32,
    stream: Result<u32, ResponseError>,
    fetch_offset: i64,
    max_bytes: usize,
}

/// A requested topic, resolved.
struct TopicPlan {
    /// The name for the response (v4-12) and the metrics.
    name: TopicName,
    topic_id: uuid::Uuid,
    partitions: Vec<PartitionPlan>,
}

struct Plan {
    topics: Vec<TopicPlan>,
    by_id: bool,
}

impl Plan {
    fn resolve(ctx: &GatewayContext, body: &FetchRequest, version: i16) -> Self {
        let by_id = version >= FIRST_VERSION_WITH_TOPIC_IDS;
        let topics = body
            .topics
            .iter()
            .map(|requested| {
                let topic = if by_id {
                    metadata::by_id(ctx, requested.topic_id).ok_or(ResponseError::UnknownTopicId)
                } else {
                    ctx.log
                        .topic(&requested.topic)
                        .ok_or(ResponseError::UnknownTopicOrPartition)
                };
                let partitions = requested
                    .partitions
                    .iter()
                    .map(|partition| PartitionPlan {
                        index: partition.partition,
                        stream: topic.as_ref().map_err(|e| *e).and_then(|topic| {
                            u32::try_from(partition.partition)
                                .ok()
                                .and_then(|index| topic.stream(index))
                                .ok_or(ResponseError::UnknownTopicOrPartition)
                        }),
                        fetch_offset: partition.fetch_offset,
                        max_bytes: usize::try_from(partition.partition_max_bytes).unwrap_or(0),
                    })
                    .collect();
                TopicPlan {
                    name: topic.as_ref().map_or_else(
                        |_| requested.topic.clone(),
                        |t| TopicName(StrBytes::from_string(t.name.clone())),
                    ),
                    topic_id: requested.topic_id,
                    partitions,
                }
            })
            .collect();
        Self { topics, by_id }
    }
}

/// Reads until `min_bytes` are available, an error shows, or the deadline
/// passes; then encodes the last read.
async fn long_poll(
    ctx: &GatewayContext,
    plan: &Plan,
    body: &FetchRequest,
    deadline: Instant,
    encode: impl Fn(&FetchResponse) -> Result<ResponseFrame, CloseReason>,
) -> Result<ResponseFrame, CloseReason> {
    let min_bytes = usize::try_from(body.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(body.max_bytes).unwrap_or(0);
    loop {
        // Taken before reading: an entry applied during the read wakes
        // the wait below at once.
        let applied = ctx.log.applied();
        let read = read_all(ctx, plan, max_bytes, body.isolation_level);
        let remaining = deadline.saturating_duration_since(Instant::now());
        if read.bytes >= min_bytes || read.any_error || remaining.is_zero() {
            read.record_metrics();
            return encode(&read.response);
        }
        ctx.log.wait_for_order(applied, remaining).await;
    }
}

/// One pass over every requested partition.
struct Read {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
    /// (topic, bytes, records) per partition with data.
    fetched: Vec<(String, usize, u64)>,
}

impl Read {
    fn record_metrics(&self) {
        for (topic, bytes, records) in &self.fetched {
            telemetry::record_fetched(topic, *bytes, *records);
        }
        for topic in &self.response.responses {
            for partition in &topic.partitions {
                telemetry::record_error_code(ENTRY.name, partition.error_code);
            }
        }
    }
}

fn read_all(ctx: &GatewayContext, plan: &Plan, max_bytes: usize, isolation: i8) -> Read {
    let mut read = Read {
        response: FetchResponse::default(),
        bytes: 0,
        any_error: false,
        fetched: Vec::new(),
    };
    for topic in &plan.topics {
        let mut entry = FetchableTopicResponse::default();
        if plan.by_id {
            entry.topic_id = topic.topic_id;
        } else {
            entry.topic = topic.name.clone();
        }
        for partition in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = partition.index;
            data.preferred_read_replica = BrokerId(-1);
            data.aborted_transactions = (isolation == READ_COMMITTED).then(Vec::new);
            data.records = Some(Bytes::new());
            let budget = partition
                .max_bytes
                .min(max_bytes.saturating_sub(read.bytes));
            // The first batch of the response is returned whatever its size.
            let at_least_one = read.bytes == 0;
            match partition.stream.map(|stream| {
                read_partition(ctx, stream, partition.fetch_offset, budget, at_least_one)
            }) {
                Ok(Ok(found)) => {
                    data.high_watermark = found.high_watermark;
                    data.last_stable_offset = found.high_watermark;
                    data.log_start_offset = found.log_start;
                    if found.bytes > 0 {
                        read.bytes += found.bytes;
                        read.fetched
                            .push((topic.name.to_string(), found.bytes, found.records));
                    }
                    data.records = Some(found.records_bytes);
                }
                Ok(Err(error)) | Err(error) => {
                    data.error_code = error.code();
                    data.high_watermark = -1;
                    data.last_stable_offset = -1;
                    data.log_start_offset = -1;
                    read.any_error = true;
                }
            }
            entry.partitions.push(data);
        }
        read.response.responses.push(entry);
    }
    read
}

/// What one partition contributes.
struct Found {
    records_bytes: Bytes,
    bytes: usize,
    records: u64,
    high_watermark: i64,
    log_start: i64,
}

fn read_partition(
    ctx: &GatewayContext,
    stream: u32,
    offset: i64,
    budget: usize,
    at_least_one: bool,
) -> Result<Found, ResponseError> {
    if budget == 0 && !at_least_one {
        // Nothing may be added: report the partition's offsets only, with
        // the same range check a read makes.
        let (log_start, high_watermark) = ctx.log.offsets(stream);
        if offset < log_start || offset > high_watermark {
            return Err(ResponseError::OffsetOutOfRange);
        }
        return Ok(Found {
            records_bytes: Bytes::new(),
            bytes: 0,
            records: 0,
            high_watermark,
            log_start,
        });
    }
    match ctx.log.read(stream, offset, budget) {
        FetchRead::OutOfRange { .. } => Err(ResponseError::OffsetOutOfRange),
        FetchRead::Batches {
            batches,
            high_watermark,
            log_start,
        } => {
            let mut taken = Vec::with_capacity(batches.len());
            let mut bytes = 0usize;
            for batch in batches {
                let first = taken.is_empty() && at_least_one;
                if !first && bytes + batch.len() > budget {
                    break;
                }
                bytes += batch.len();
                taken.push(batch);
            }
            let records = taken.iter().map(|batch| record_count(batch)).sum();
            Ok(Found {
                records_bytes: concat(taken),
                bytes,
                records,
                high_watermark,
                log_start,
            })
        }
    }
}

/// The record count in a stored batch's header (0 if unreadable).
fn record_count(batch: &[u8]) -> u64 {
    batch
        .get(RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4)
        .and_then(|field| field.try_into().ok())
        .map_or(0, |field| {
            u64::try_from(i32::from_be_bytes(field)).unwrap_or(0)
        })
}

/// The batches laid end to end, without a copy for the common single batch.
fn concat(mut batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.pop().unwrap_or_default(),
        _ => {
            let total = batches.iter().map(Bytes::len).sum();
            let mut out = BytesMut::with_capacity(total);
            for batch in &batches {
                out.extend_from_slice(batch);
            }
            out.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_counts_come_from_the_batch_header() {
        let mut header = vec![0u8; 61];
        header[57..61].copy_from_slice(&7_i32.to_be_bytes());
        assert_eq!(record_count(&header), 7);
        assert_eq!(record_count(&header[..60]), 0, "cut short");
        header[57..61].copy_from_slice(&(-3_i32).to_be_bytes());
        assert_eq!(record_count(&header), 0, "negative");
    }

    #[test]
    fn batches_are_laid_end_to_end() {
        assert!(concat(Vec::new()).is_empty());
        let one = Bytes::from_static(b"abc");
        assert_eq!(concat(vec![one.clone()]), one);
        assert_eq!(
            concat(vec![one, Bytes::from_static(b"de")]),
            Bytes::from_static(b"abcde")
        );
    }
}
