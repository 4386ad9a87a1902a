//! Fetch (key 1): whole record batches out of the region, with long polling.
//!
//! Served from v4 to the crate's newest. For each requested partition the
//! gateway's order index gives the batches from the one holding
//! `fetch_offset` on, copied out of the arena with their base offsets
//! rewritten ([`crate::cluster::ClusterLog::read`]); a fetch inside a batch returns the
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
//!   -1 offsets as Kafka sends. With `--authorizer`, a topic the principal
//!   may not READ is TOPIC_AUTHORIZATION_FAILED (29); `__cxlkafka_order`,
//!   which names every topic of the cluster, also needs DESCRIBE on the
//!   cluster ([`ApiRequest::may_read_records`]).
//! - **Sessions** (KIP-227): none. Every answer is a full response with
//!   session id 0, which clients take as "sessionless" and keep sending full
//!   requests; no session error is ever returned.
//! - **One copy of the records**: a partition's batches are written
//!   straight into the response frame ([`Spliced`]): the response is
//!   encoded with a 16-byte marker in place of each multi-batch record set,
//!   and the batches are laid in where the markers stand, so they are not
//!   first concatenated into a record set of their own.
//! - **Isolation** (KIP-98): `last_stable_offset` is the partition's first
//!   offset still in an open transaction, else the high watermark (see
//!   [`crate::transactions`]). READ_COMMITTED reads stop before it and list
//!   the aborted transactions whose records may be in what is returned
//!   (their producer id and first offset), so the client drops them;
//!   markers are returned as the control batches they are, and clients
//!   skip them. READ_UNCOMMITTED reads go to the high watermark, with a
//!   null aborted list.
//! - `preferred_read_replica` is -1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::{Encodable, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::api_support::topics::by_id as topic_by_id;
use crate::cluster::FetchRead;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, ResponseFrame, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, INT32, INT64, INT8, UUID};
use crate::telemetry;
use crate::transactions::TransactionStore;

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
/// Where a v2 batch header keeps its last offset delta.
const LAST_OFFSET_DELTA_OFFSET: usize = 23;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: FetchRequest = request.decode_bounded(REQUEST)?;
        let readable = readable_topics(&ctx, &request, &body);
        let responder = request.responder();
        let deadline = Instant::now()
            + Duration::from_millis(
                u64::try_from(body.max_wait_ms.clamp(0, MAX_WAIT_MS)).unwrap_or(0),
            );
        Ok(Reply::deferred(async move {
            let plan = Plan::resolve(&ctx, &body, responder.version, &readable);
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
    fn resolve(ctx: &GatewayContext, body: &FetchRequest, version: i16, readable: &[bool]) -> Self {
        let by_id = version >= FIRST_VERSION_WITH_TOPIC_IDS;
        // A gateway whose disk lacks older entries (it joined late or
        // missed some) sends the client to one that holds them.
        let holds_everything = ctx.log.holds_everything();
        let topics = body
            .topics
            .iter()
            .enumerate()
            .map(|(at, requested)| {
                let topic = if !readable.get(at).copied().unwrap_or(true) {
                    Err(ResponseError::TopicAuthorizationFailed)
                } else if by_id {
                    topic_by_id(ctx, requested.topic_id).ok_or(ResponseError::UnknownTopicId)
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
                                .and_then(|stream| {
                                    if holds_everything {
                                        Ok(stream)
                                    } else {
                                        Err(ResponseError::NotLeaderOrFollower)
                                    }
                                })
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

/// Per requested topic, whether the principal may READ it (and, for
/// `__cxlkafka_order`, DESCRIBE the cluster: [`ApiRequest::may_read_records`]);
/// empty (all readable) with the authorizer off, so the common case costs
/// nothing. An unknown topic id stays UNKNOWN_TOPIC_ID, as Kafka answers it.
fn readable_topics(ctx: &GatewayContext, request: &ApiRequest, body: &FetchRequest) -> Vec<bool> {
    if !ctx.security.authorizer {
        return Vec::new();
    }
    let by_id = request.version >= FIRST_VERSION_WITH_TOPIC_IDS;
    body.topics
        .iter()
        .map(|requested| {
            let name = if by_id {
                match topic_by_id(ctx, requested.topic_id) {
                    Some(topic) => topic.name,
                    None => return true,
                }
            } else {
                requested.topic.to_string()
            };
            request.may_read_records(ctx, &name)
        })
        .collect()
}

/// Reads until `min_bytes` are available, an error shows, or the deadline
/// passes; then encodes the last read.
async fn long_poll(
    ctx: &GatewayContext,
    plan: &Plan,
    body: &FetchRequest,
    deadline: Instant,
    encode: impl Fn(&Spliced) -> Result<ResponseFrame, CloseReason>,
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
            return encode(&read.into_spliced());
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
    /// The batches of each partition whose records field holds
    /// [`MARKER`], in encoding order.
    spliced: Vec<Vec<Bytes>>,
}

impl Read {
    fn into_spliced(self) -> Spliced {
        Spliced {
            response: self.response,
            sets: self.spliced,
        }
    }

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
        spliced: Vec::new(),
    };
    // One table for the whole pass, not one lookup per partition.
    let transactions = ctx.log.transactions();
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
            let committed_only = isolation == READ_COMMITTED;
            match partition.stream.map(|stream| {
                let read = Reading {
                    stream,
                    offset: partition.fetch_offset,
                    budget,
                    at_least_one,
                    committed_only,
                };
                (stream, read_partition(ctx, &transactions, read))
            }) {
                Ok((stream, Ok(found))) => {
                    data.high_watermark = found.high_watermark;
                    data.last_stable_offset = found.last_stable_offset;
                    data.log_start_offset = found.log_start;
                    if committed_only {
                        data.aborted_transactions = Some(aborted_in(
                            &transactions,
                            stream,
                            partition.fetch_offset,
                            &found.batches,
                        ));
                    }
                    if found.bytes > 0 {
                        read.bytes += found.bytes;
                        read.fetched
                            .push((topic.name.to_string(), found.bytes, found.records));
                    }
                    data.records = Some(match found.batches.len() {
                        0 => Bytes::new(),
                        1 => found.batches.into_iter().next().unwrap_or_default(),
                        _ => {
                            read.spliced.push(found.batches);
                            Bytes::from_static(&MARKER)
                        }
                    });
                }
                Ok((_, Err(error))) | Err(error) => {
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
    /// Whole batches, in offset order.
    batches: Vec<Bytes>,
    bytes: usize,
    records: u64,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start: i64,
}

/// One partition's read.
struct Reading {
    stream: u32,
    offset: i64,
    budget: usize,
    at_least_one: bool,
    /// READ_COMMITTED: nothing from the last stable offset on.
    committed_only: bool,
}

fn read_partition(
    ctx: &GatewayContext,
    transactions: &TransactionStore,
    read: Reading,
) -> Result<Found, ResponseError> {
    let Reading {
        stream,
        offset,
        budget,
        at_least_one,
        committed_only,
    } = read;
    if budget == 0 && !at_least_one {
        // Nothing may be added: report the partition's offsets only, with
        // the same range check a read makes.
        let (log_start, high_watermark) = ctx.log.offsets(stream);
        if offset < log_start || offset > high_watermark {
            return Err(ResponseError::OffsetOutOfRange);
        }
        return Ok(Found {
            batches: Vec::new(),
            bytes: 0,
            records: 0,
            high_watermark,
            last_stable_offset: transactions.last_stable_offset(stream, high_watermark),
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
            let last_stable_offset = transactions.last_stable_offset(stream, high_watermark);
            let mut taken = Vec::with_capacity(batches.len());
            let mut bytes = 0usize;
            for batch in batches {
                let first = taken.is_empty() && at_least_one;
                if !first && bytes + batch.len() > budget {
                    break;
                }
                if committed_only
                    && batch_span(&batch).is_none_or(|(base, _)| base >= last_stable_offset)
                {
                    break;
                }
                bytes += batch.len();
                taken.push(batch);
            }
            let records = taken.iter().map(|batch| record_count(batch)).sum();
            Ok(Found {
                batches: taken,
                bytes,
                records,
                high_watermark,
                last_stable_offset,
                log_start,
            })
        }
    }
}

/// The first and last offsets of a fetched batch (base offsets are
/// rewritten by the read), or `None` for a header too short to hold them.
fn batch_span(batch: &[u8]) -> Option<(i64, i64)> {
    let base = i64::from_be_bytes(batch.get(0..8)?.try_into().ok()?);
    let delta = i32::from_be_bytes(
        batch
            .get(LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4)?
            .try_into()
            .ok()?,
    );
    Some((base, base + i64::from(delta)))
}

/// Aborted transactions with records among `batches` (read from
/// `fetch_offset`), as READ_COMMITTED clients need them.
fn aborted_in(
    transactions: &TransactionStore,
    stream: u32,
    fetch_offset: i64,
    batches: &[Bytes],
) -> Vec<AbortedTransaction> {
    let Some((_, last)) = batches.last().and_then(|batch| batch_span(batch)) else {
        return Vec::new();
    };
    transactions
        .aborted_between(stream, fetch_offset, last + 1)
        .into_iter()
        .map(|aborted| {
            let mut listed = AbortedTransaction::default();
            listed.producer_id = ProducerId(aborted.producer_id);
            listed.first_offset = aborted.first_offset;
            listed
        })
        .collect()
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

/// Stands in a response for a record set of several batches while the
/// response is encoded; no byte sequence of a response's other fields
/// (integers, topic names, ids) looks like it in practice, and [`Spliced`]
/// also checks the length prefix in front of each one it finds.
const MARKER: [u8; 16] = [
    0xff, 0x00, 0xc5, 0x1c, 0xfe, 0x01, 0x7a, 0xb3, 0xfd, 0x02, 0x5e, 0x91, 0xfc, 0x03, 0x42, 0x6f,
];

/// A Fetch response whose multi-batch record sets are written into the
/// frame batch by batch: encoded with `MARKER` in their place, then laid
/// out with each marker (and its length prefix) replaced by the set's
/// length prefix and batches. The batches are copied once, into the frame.
pub struct Spliced {
    response: FetchResponse,
    /// The batches for each marker, in encoding order.
    sets: Vec<Vec<Bytes>>,
}

/// Versions from which Fetch is flexible (compact lengths).
const FIRST_FLEXIBLE_VERSION: i16 = 12;

/// The length prefix of a record set of `len` bytes.
fn length_prefix(len: usize, version: i16) -> Result<Vec<u8>, anyhow::Error> {
    let mut prefix = Vec::with_capacity(5);
    if version >= FIRST_FLEXIBLE_VERSION {
        // Compact bytes: unsigned varint of len + 1.
        let mut value = u64::try_from(len)? + 1;
        while value >= 0x80 {
            prefix.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        prefix.push(value as u8);
    } else {
        prefix.extend_from_slice(&i32::try_from(len)?.to_be_bytes());
    }
    Ok(prefix)
}

impl Spliced {
    fn set_len(set: &[Bytes]) -> usize {
        set.iter().map(Bytes::len).sum()
    }
}

impl Encodable for Spliced {
    fn encode<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> Result<(), anyhow::Error> {
        if self.sets.is_empty() {
            return self.response.encode(buf, version);
        }
        let mut encoded = BytesMut::with_capacity(self.response.compute_size(version)?);
        self.response.encode(&mut encoded, version)?;
        let marker_prefix = length_prefix(MARKER.len(), version)?;
        let mut rest = &encoded[..];
        for set in &self.sets {
            let at = rest
                .windows(MARKER.len())
                .position(|window| window == MARKER)
                .ok_or_else(|| anyhow::anyhow!("record set marker not found"))?;
            let head = at
                .checked_sub(marker_prefix.len())
                .filter(|&head| rest[head..at] == marker_prefix[..])
                .ok_or_else(|| anyhow::anyhow!("record set marker without its length"))?;
            buf.put_slice(&rest[..head]);
            buf.put_slice(&length_prefix(Self::set_len(set), version)?);
            for batch in set {
                buf.put_slice(batch);
            }
            rest = &rest[at + MARKER.len()..];
        }
        buf.put_slice(rest);
        Ok(())
    }

    fn compute_size(&self, version: i16) -> Result<usize, anyhow::Error> {
        let marker = length_prefix(MARKER.len(), version)?.len() + MARKER.len();
        self.sets.iter().try_fold(
            self.response.compute_size(version)?,
            |size, set| -> Result<usize, anyhow::Error> {
                let len = Self::set_len(set);
                Ok(size - marker + length_prefix(len, version)?.len() + len)
            },
        )
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

    fn spliced_response() -> (Spliced, FetchResponse) {
        let batches = vec![
            Bytes::from_static(b"first batch"),
            Bytes::from_static(b", second"),
            Bytes::from(vec![7u8; 300]),
        ];
        let joined: Bytes = batches.concat().into();
        let partition = |index: i32, records: Bytes| {
            let mut data = PartitionData::default();
            data.partition_index = index;
            data.high_watermark = 42;
            data.records = Some(records);
            data
        };
        let topic = |records: [Bytes; 3]| {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_static_str("t"));
            topic.topic_id = uuid::Uuid::from_u128(9);
            let [a, b, c] = records;
            topic.partitions = vec![partition(0, a), partition(1, b), partition(2, c)];
            topic
        };
        let mut spliced = FetchResponse::default();
        spliced.responses = vec![topic([
            Bytes::from_static(&MARKER),
            Bytes::from_static(b"one"),
            Bytes::from_static(&MARKER),
        ])];
        let mut plain = FetchResponse::default();
        plain.responses = vec![topic([joined.clone(), Bytes::from_static(b"one"), joined])];
        (
            Spliced {
                response: spliced,
                sets: vec![batches.clone(), batches],
            },
            plain,
        )
    }

    #[test]
    fn a_spliced_response_encodes_as_the_concatenated_one_at_every_version() {
        for version in VERSIONS.min..=VERSIONS.max {
            let (spliced, plain) = spliced_response();
            let mut expected = BytesMut::new();
            plain.encode(&mut expected, version).expect("encodes");
            let mut actual = BytesMut::new();
            spliced.encode(&mut actual, version).expect("encodes");
            assert_eq!(actual, expected, "v{version}");
            assert_eq!(
                spliced.compute_size(version).expect("size"),
                expected.len(),
                "v{version}"
            );
        }
    }

    #[test]
    fn long_record_sets_get_multi_byte_length_prefixes() {
        assert_eq!(length_prefix(300, 12).expect("fits"), vec![0xad, 0x02]);
        assert_eq!(length_prefix(300, 11).expect("fits"), vec![0, 0, 1, 44]);
    }
}
