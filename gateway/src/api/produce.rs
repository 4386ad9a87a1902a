//! Produce (key 0): record batches into the shared region.
//!
//! Served from v3 (the first with v2 record batches only) to the crate's
//! newest, advertised from v0 (KAFKA-18659, see
//! [`ApiEntry::advertised_min`]). Per partition, in request order:
//!
//! 0. the principal needs WRITE on the topic, else
//!    TOPIC_AUTHORIZATION_FAILED (29) whether or not it exists;
//! 1. the topic must be live (by name; by id from v13) and the partition in
//!    range, else UNKNOWN_TOPIC_OR_PARTITION (3) or UNKNOWN_TOPIC_ID (100);
//! 2. the records are checked as Kafka checks them
//!    ([`records::validate_produce_records`]: exactly one v2 batch, CRC,
//!    sizes, counts), giving CORRUPT_MESSAGE, INVALID_RECORD,
//!    MESSAGE_TOO_LARGE or UNSUPPORTED_COMPRESSION_TYPE as Kafka would (the
//!    size limit is the topic's `max.message.bytes`, else this gateway's
//!    `message.max.bytes`: the dynamic broker config, else
//!    `--message-max-bytes`);
//!    then the topic's record rules ([`records::record_errors`], the only
//!    case where the gateway decodes records), each refused record getting
//!    one record error (KIP-467; at most [`records::MAX_RECORD_ERRORS`]): on a compacted topic (`cleanup.policy` has
//!    `compact`) every record needs a key, else INVALID_RECORD; on a
//!    CreateTime topic with `message.timestamp.before.max.ms` or
//!    `message.timestamp.after.max.ms`, a timestamp outside that window
//!    around the gateway's clock is INVALID_TIMESTAMP (32, KIP-937); a batch
//!    a producer marked LogAppendTime is INVALID_TIMESTAMP for every record;
//! 3. a transactional batch for a partition outside its producer's open
//!    transaction is refused with INVALID_TXN_STATE (48), see below;
//! 4. the batch is published to this gateway's ring
//!    ([`ClusterLog::publish`]), waiting while the region is full up to the
//!    request's `timeout_ms` (clamped to 1 ms..=300 s), then
//!    REQUEST_TIMED_OUT.
//!
//! Publishing happens in the handler's ordered part, so pipelined requests
//! of one connection (an idempotent producer's in-flight batches) reach the
//! sequencer in the order sent. Waiting for the sequencer's answers happens
//! in the deferred part. Sequencer statuses become Kafka errors in
//! [`crate::api_support::errors`] (a duplicate idempotent batch gets its original offset;
//! a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, 45; an old epoch
//! INVALID_PRODUCER_EPOCH, 47).
//!
//! # Acknowledgements
//!
//! - `acks=0`: no response. A partition that fails in the ordered part
//!   closes the connection instead, as Kafka does, so the client notices.
//! - `acks=1`: answered once the sequencer has ordered the batch.
//! - `acks=-1` (all): answered once the batch is ordered and held by the
//!   topic's `replication_factor` copies: the region is one, and each live
//!   gateway whose disk tier fsynced it another (its durable frontier has
//!   passed the batch's sequence). With fewer live gateways than the
//!   factor needs, NOT_ENOUGH_REPLICAS (19) before anything is published,
//!   as Kafka answers below `min.insync.replicas`; copies not made within
//!   the request's timeout, REQUEST_TIMED_OUT (7) (the batch is ordered:
//!   an idempotent retry gets its original offset).
//! - anything else: INVALID_REQUIRED_ACKS (21) for every partition.
//!
//! # Transactions
//!
//! A transactional batch is published like any idempotent one (the
//! sequencer checks its sequence and fences older epochs, also those a
//! coordinator's abort marker bumped). As Kafka 3.6+ (KIP-890's
//! verification), it must belong to a transaction open in that partition
//! (the producer's AddPartitionsToTxn was applied): this gateway's
//! transaction table may lag the coordinator's by a few entries, so the
//! check waits for the order log up to [`TXN_VERIFY_WAIT`] before it
//! answers INVALID_TXN_STATE (48), or INVALID_PRODUCER_EPOCH (47) when a
//! newer instance of the transactional id has a higher epoch (the zombie
//! is fenced, as Kafka's verification answers it). That keeps a zombie's late batch from
//! opening a transaction no coordinator will ever end (a hanging
//! transaction that would hold the last stable offset forever).
//!
//! An acknowledged batch is also applied to this gateway's own index before
//! the answer goes out, so a Fetch or ListOffsets sent to the same gateway
//! after the acknowledgement sees it. The response's `log_start_offset` is
//! the partition's current log start.
//!
//! # LogAppendTime
//!
//! A topic with `message.timestamp.type=LogAppendTime` has each batch
//! stamped with the gateway's clock as it is published, as a Kafka leader
//! stamps on append: the batch's timestamp-type attribute is set and its
//! max timestamp replaced (the records are untouched; consumers give every
//! record the batch's time), its CRC updated without reading the records
//! ([`records::stamp_log_append_time`]); the stamp is the response's
//! `log_append_time_ms` (-1 for CreateTime topics), and ListOffsets by time
//! uses it. A partition written through several gateways gets each
//! gateway's clock, so its append times follow the order only as closely as
//! the gateways' clocks agree (one host: one clock).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cxlkafka_log::layout::Completion;
use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::records::TimestampType;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::api_support::errors::{append_error, completion_error};
use crate::api_support::topic_config;
use crate::api_support::topics::by_id as topic_by_id;
use crate::cluster::{AppendBatch, AppendError, ClusterLog, PendingAppend, ORDER_TOPIC};
use crate::context::GatewayContext;
use crate::dispatch::{
    ApiEntry, ApiRequest, HandlerFuture, Reply, Responder, ResponseFrame, VersionPolicy,
};
use crate::error::CloseReason;
use crate::records::{
    self, BatchInfo, ProduceCheck, RecordError, RecordFault, RecordRules, TimestampWindow,
};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT16, INT32, UUID};
use crate::telemetry;

/// Versions served: all the crate decodes (v3+).
pub const VERSIONS: VersionRange = VersionRange { min: 3, max: 13 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::Produce,
    name: "Produce",
    versions: VERSIONS,
    advertised_min: 0,
    version_policy: VersionPolicy::Strict,
    handler,
};

const REQUEST_PARTITION: &[Field] = &[Field::always(INT32), Field::always(Kind::Bytes)];
const REQUEST_TOPIC: &[Field] = &[
    Field::new(Kind::String, 0, 12),
    Field::since(UUID, 13),
    Field::always(Kind::Array(REQUEST_PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT16),
    Field::always(INT32),
    Field::always(Kind::Array(REQUEST_TOPIC)),
];

/// First version addressing topics by id.
const FIRST_VERSION_WITH_TOPIC_IDS: i16 = 13;
/// First version with per-partition error messages.
const FIRST_VERSION_WITH_ERROR_MESSAGE: i16 = 8;
/// Longest produce timeout honoured.
const MAX_TIMEOUT_MS: i32 = 300_000;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

/// One partition's fate after the ordered part.
enum Outcome {
    /// Refused before publishing.
    Failed(ResponseError, Option<String>),
    /// Refused for some of its records before publishing: `error`
    /// (INVALID_RECORD or INVALID_TIMESTAMP) with one record error (batch
    /// index, reason) per refused record (KIP-467).
    RecordErrors {
        error: ResponseError,
        records: Vec<(i32, String)>,
    },
    /// Published; the sequencer's answer is pending.
    Published(Published),
}

/// A batch published to the ring, waiting for the sequencer's answer.
struct Published {
    pending: PendingAppend,
    stream: u32,
    bytes: usize,
    records: u32,
    /// Gateway disks that must hold the batch before the answer.
    disks: usize,
    /// The append time stamped on the batch (LogAppendTime topics).
    log_append_time: Option<i64>,
}

impl Outcome {
    /// The same outcome, answered only once `count` gateway disks hold it.
    fn needing(self, count: usize) -> Self {
        match self {
            Outcome::Published(published) => Outcome::Published(Published {
                disks: count,
                ..published
            }),
            failed => failed,
        }
    }
}

struct PartitionOutcome {
    index: i32,
    outcome: Outcome,
}

struct TopicOutcome {
    name: TopicName,
    topic_id: Uuid,
    partitions: Vec<PartitionOutcome>,
}

/// What applies to every partition of one request; the size limit and
/// the record rules are the topic's, set once per topic.
#[derive(Clone, Copy)]
struct Settings {
    acks: i16,
    timeout: Duration,
    check: ProduceCheck,
    rules: TopicRules,
}

/// The ordered part: every partition checked and published in request
/// order; then no answer (acks=0) or a deferred one.
async fn handle(ctx: Arc<GatewayContext>, request: ApiRequest) -> Result<Reply, CloseReason> {
    let body: ProduceRequest = request.decode_bounded(REQUEST)?;
    let settings = Settings {
        acks: body.acks,
        timeout: Duration::from_millis(
            u64::try_from(body.timeout_ms.clamp(1, MAX_TIMEOUT_MS)).unwrap_or(1),
        ),
        check: ProduceCheck {
            produce_version: request.version,
            message_max_bytes: ctx.message_max_bytes(),
        },
        rules: TopicRules::DEFAULT,
    };
    let mut topics = Vec::with_capacity(body.topic_data.len());
    for data in body.topic_data {
        topics.push(produce_topic(&ctx, &request, settings, data).await);
    }
    if settings.acks == 0 {
        return acks_zero(&topics);
    }
    let responder = request.responder();
    let deadline = Instant::now() + settings.timeout;
    Ok(Reply::deferred(async move {
        answer(ctx, responder, topics, deadline).await.map(Some)
    }))
}

/// The topic a request's entry names, if it is live and the principal may
/// WRITE it. Kafka refuses an unauthorized topic whether or not it exists.
fn writable_topic(
    ctx: &GatewayContext,
    request: &ApiRequest,
    data: &TopicProduceData,
) -> Result<Topic, ResponseError> {
    let topic = if request.version >= FIRST_VERSION_WITH_TOPIC_IDS {
        topic_by_id(ctx, data.topic_id).ok_or(ResponseError::UnknownTopicId)
    } else {
        ctx.log
            .topic(&data.name)
            .ok_or(ResponseError::UnknownTopicOrPartition)
    };
    let name = topic
        .as_ref()
        .map_or(data.name.as_str(), |t| t.name.as_str());
    if request.authorized(ctx, AclOperation::Write, Resource::Topic(name)) {
        topic
    } else {
        Err(ResponseError::TopicAuthorizationFailed)
    }
}

/// One topic's partitions, checked and published in request order.
async fn produce_topic(
    ctx: &GatewayContext,
    request: &ApiRequest,
    settings: Settings,
    data: TopicProduceData,
) -> TopicOutcome {
    let topic = writable_topic(ctx, request, &data);
    let settings = match &topic {
        Ok(topic) => Settings {
            check: ProduceCheck {
                message_max_bytes: max_message_bytes(topic, settings.check.message_max_bytes),
                ..settings.check
            },
            rules: TopicRules::of(topic),
            ..settings
        },
        Err(_) => settings,
    };
    let mut partitions = Vec::with_capacity(data.partition_data.len());
    // Read once per topic: it scans every gateway's line in the region.
    let mut live_disks: Option<usize> = None;
    for partition in &data.partition_data {
        let outcome = produce_partition(ctx, settings, &topic, partition, &mut live_disks).await;
        partitions.push(PartitionOutcome {
            index: partition.index,
            outcome,
        });
    }
    TopicOutcome {
        name: topic
            .as_ref()
            .map(|t| TopicName(StrBytes::from_string(t.name.clone())))
            .unwrap_or(data.name),
        topic_id: data.topic_id,
        partitions,
    }
}

/// One partition: the checks before publishing (acks, topic, partition,
/// enough live disks for acks=all), then [`publish`]. `live_disks` caches
/// the count of live gateway disks for the topic's partitions.
async fn produce_partition(
    ctx: &GatewayContext,
    settings: Settings,
    topic: &Result<Topic, ResponseError>,
    partition: &PartitionProduceData,
    live_disks: &mut Option<usize>,
) -> Outcome {
    if !(-1..=1).contains(&settings.acks) {
        return Outcome::Failed(ResponseError::InvalidRequiredAcks, None);
    }
    let topic = match topic {
        Err(error) => return Outcome::Failed(*error, None),
        Ok(topic) => topic,
    };
    // The order topic is written by the sequencer alone.
    if topic.name == ORDER_TOPIC {
        return Outcome::Failed(ResponseError::InvalidTopicException, None);
    }
    let stream = u32::try_from(partition.index)
        .ok()
        .and_then(|index| topic.stream(index));
    let disks = if settings.acks == -1 {
        usize::from(topic.replication_factor.saturating_sub(1))
    } else {
        0
    };
    let short_of_disks =
        disks > 0 && disks > *live_disks.get_or_insert_with(|| ctx.log.members().len());
    let Some(stream) = stream else {
        return Outcome::Failed(ResponseError::UnknownTopicOrPartition, None);
    };
    if short_of_disks {
        return Outcome::Failed(
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "replication factor {} needs {disks} live gateway disk(s)",
                topic.replication_factor
            )),
        );
    }
    let records = partition.records.as_deref().unwrap_or_default();
    let partition_name = || format!("{}-{}", topic.name, partition.index);
    publish(ctx.log.as_ref(), stream, records, settings, partition_name)
        .await
        .needing(disks)
}

/// The largest batch `topic` accepts: its own `max.message.bytes`, else
/// `broker` (this gateway's `message.max.bytes`), as Kafka's `LogConfig`.
fn max_message_bytes(topic: &Topic, broker: usize) -> usize {
    if topic.configs.is_empty() {
        return broker;
    }
    topic_config::stored_value(topic, "max.message.bytes")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(broker)
}

/// What a topic's configs ask of the batches produced to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TopicRules {
    /// `cleanup.policy` includes `compact`: every record needs a key.
    keys_required: bool,
    /// `message.timestamp.type=LogAppendTime`: batches are stamped with the
    /// gateway's clock as they are published.
    log_append_time: bool,
    /// `message.timestamp.before.max.ms`.
    before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    after_max_ms: i64,
}

impl TopicRules {
    /// Kafka's defaults: keyless records, CreateTime, any timestamp.
    const DEFAULT: Self = Self {
        keys_required: false,
        log_append_time: false,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
    };

    /// The rules of `topic`; topics without explicit configs skip the
    /// parsing.
    fn of(topic: &Topic) -> Self {
        if topic.configs.is_empty() {
            return Self::DEFAULT;
        }
        let value = |name| topic_config::stored_value(topic, name);
        let millis = |name| {
            value(name)
                .and_then(|value| value.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        };
        Self {
            keys_required: value("cleanup.policy")
                .is_some_and(|policy| policy.split(',').any(|p| p.trim() == "compact")),
            log_append_time: value("message.timestamp.type") == Some("LogAppendTime"),
            before_max_ms: millis("message.timestamp.before.max.ms"),
            after_max_ms: millis("message.timestamp.after.max.ms"),
        }
    }

    /// What each record of a batch produced now must satisfy. A
    /// LogAppendTime topic ignores the producer's timestamps, so they are
    /// not checked (as Kafka checks only CreateTime).
    fn for_records(&self, now: i64) -> RecordRules {
        let bounded = self.before_max_ms != i64::MAX || self.after_max_ms != i64::MAX;
        RecordRules {
            keys_required: self.keys_required,
            timestamps: (bounded && !self.log_append_time).then_some(TimestampWindow {
                now,
                before_max_ms: self.before_max_ms,
                after_max_ms: self.after_max_ms,
            }),
        }
    }
}

/// Milliseconds since the epoch by this gateway's clock.
fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The record errors of a batch, as Kafka's `LogValidator` reports them:
/// one per refused record; INVALID_TIMESTAMP if any timestamp was refused,
/// else INVALID_RECORD.
fn refused_records(
    errors: Vec<RecordError>,
    window: Option<TimestampWindow>,
    partition: &str,
) -> Outcome {
    let timestamps_refused = errors
        .iter()
        .any(|error| matches!(error.fault, RecordFault::TimestampOutOfRange { .. }));
    let records = errors
        .into_iter()
        .map(|error| {
            let reason = match error.fault {
                RecordFault::MissingKey => format!(
                    "Compacted topic cannot accept message without key in topic partition \
                     {partition}."
                ),
                RecordFault::TimestampOutOfRange { timestamp, offset } => {
                    let (earliest, latest) =
                        window.map_or((i64::MIN, i64::MAX), |w| (w.earliest(), w.latest()));
                    format!(
                        "Timestamp {timestamp} of message with offset {offset} is out of range. \
                         The timestamp should be within [{earliest}, {latest}]"
                    )
                }
            };
            (error.index, reason)
        })
        .collect();
    let error = if timestamps_refused {
        ResponseError::InvalidTimestamp
    } else {
        ResponseError::InvalidRecord
    };
    Outcome::RecordErrors { error, records }
}

/// Validates and publishes one partition's records under the topic's
/// rules (`settings.rules`); `partition` names it (`topic-index`) in record
/// errors.
/// Longest wait for this gateway's transaction table to show a
/// transactional batch's partition in its producer's open transaction.
const TXN_VERIFY_WAIT: Duration = Duration::from_secs(1);

/// Whether `producer_id` has a transaction open in `stream`, waiting (at
/// most [`TXN_VERIFY_WAIT`]) for entries this gateway has yet to apply.
async fn in_open_transaction(log: &dyn ClusterLog, stream: u32, producer_id: i64) -> bool {
    let deadline = std::time::Instant::now() + TXN_VERIFY_WAIT;
    loop {
        let applied = log.applied();
        if log.transactions().is_open_in(stream, producer_id) {
            return true;
        }
        let remaining = deadline.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return false;
        }
        log.wait_for_order(applied, remaining.min(Duration::from_millis(50)))
            .await;
    }
}

async fn publish(
    log: &dyn ClusterLog,
    stream: u32,
    records: &[u8],
    settings: Settings,
    partition: impl Fn() -> String,
) -> Outcome {
    let info: BatchInfo = match records::validate_produce_records(records, settings.check) {
        Ok(info) => info,
        Err(error) => return Outcome::Failed(error.error(), Some(error.to_string())),
    };
    if info.transactional && !in_open_transaction(log, stream, info.producer_id).await {
        let fenced = log
            .transactions()
            .producer_epoch(info.producer_id)
            .is_some_and(|current| current > info.producer_epoch);
        return if fenced {
            // A newer instance of the transactional id took over.
            Outcome::Failed(
                ResponseError::InvalidProducerEpoch,
                Some("the producer's epoch is fenced by a newer instance".into()),
            )
        } else {
            Outcome::Failed(
                ResponseError::InvalidTxnState,
                Some("the partition is not in the producer's open transaction".into()),
            )
        };
    }
    if info.timestamp_type == TimestampType::LogAppend {
        // Kafka's LogValidator.validateTimestamp: only a broker stamps
        // append times.
        // One error per record, as many as a walk would list.
        let listed = i32::try_from(records::MAX_RECORD_ERRORS).unwrap_or(i32::MAX);
        let records = (0..info.record_count.min(listed))
            .map(|index| {
                let reason = format!(
                    "Invalid timestamp type in message at batch index {index}. Producer should \
                     not set timestamp type to LogAppendTime."
                );
                (index, reason)
            })
            .collect();
        return Outcome::RecordErrors {
            error: ResponseError::InvalidTimestamp,
            records,
        };
    }
    let batch_bytes = records.get(..info.size).unwrap_or(records);
    let now = unix_millis();
    let rules = settings.rules;
    let record_rules = rules.for_records(now);
    match records::record_errors(batch_bytes, record_rules) {
        Ok(errors) if errors.is_empty() => {}
        Ok(errors) => return refused_records(errors, record_rules.timestamps, &partition()),
        Err(error) => return Outcome::Failed(error.error(), Some(error.to_string())),
    }
    let stamped;
    let (payload, max_timestamp, log_append_time) = if rules.log_append_time {
        let mut copy = batch_bytes.to_vec();
        if let Err(error) = records::stamp_log_append_time(&mut copy, now) {
            // Validation saw a whole header, so this cannot happen.
            return Outcome::Failed(ResponseError::CorruptMessage, Some(error.to_string()));
        }
        stamped = copy;
        (&stamped[..], now, Some(now))
    } else {
        (batch_bytes, info.max_timestamp, None)
    };
    // Validation guarantees a positive count.
    let record_count = u32::try_from(info.record_count).unwrap_or(0);
    let batch = AppendBatch {
        stream,
        payload,
        record_count,
        producer_id: info.producer_id,
        producer_epoch: info.producer_epoch,
        base_sequence: info.base_sequence,
        max_timestamp,
    };
    match log.publish(batch, settings.timeout).await {
        Ok(pending) => Outcome::Published(Published {
            pending,
            stream,
            bytes: payload.len(),
            records: record_count,
            disks: 0,
            log_append_time,
        }),
        Err(error) => Outcome::Failed(append_error(&error), Some(error.to_string())),
    }
}

/// No response for acks=0; a failure closes the connection (Kafka's way of
/// telling a client that asked for no answer). Published batches are
/// counted as produced: nobody waits for their answer.
fn acks_zero(topics: &[TopicOutcome]) -> Result<Reply, CloseReason> {
    for topic in topics {
        for partition in &topic.partitions {
            if let Outcome::Published(Published { bytes, records, .. }) = &partition.outcome {
                telemetry::record_produced(&topic.name, *bytes, *records);
            }
        }
    }
    let failed = topics
        .iter()
        .flat_map(|topic| &topic.partitions)
        .find_map(|partition| match &partition.outcome {
            Outcome::Failed(error, _) => Some(error.code()),
            Outcome::RecordErrors { error, .. } => Some(error.code()),
            Outcome::Published(_) => None,
        });
    match failed {
        Some(code) => {
            telemetry::record_error_code(ENTRY.name, code);
            Err(CloseReason::UnacknowledgedProduceFailed { code })
        }
        None => Ok(Reply::NoResponse),
    }
}

/// The partition's error message for record errors, worded as Kafka's
/// `LogValidator.processRecordErrors` (at most three listed).
fn record_errors_message(error: ResponseError, records: &[(i32, String)]) -> String {
    if error == ResponseError::InvalidTimestamp {
        return "One or more records have been rejected due to invalid timestamp".to_owned();
    }
    let shown: Vec<String> = records
        .iter()
        .take(3)
        .map(|(index, reason)| format!("RecordError(batchIndex={index}, message='{reason}')"))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        records.len(),
        shown.join(", ")
    )
}

/// Waits for every published batch and builds the response.
async fn answer(
    ctx: Arc<GatewayContext>,
    responder: Responder,
    topics: Vec<TopicOutcome>,
    deadline: Instant,
) -> Result<ResponseFrame, CloseReason> {
    let version = responder.version;
    let mut response = ProduceResponse::default();
    for topic in topics {
        let mut entry = TopicProduceResponse::default();
        if version >= FIRST_VERSION_WITH_TOPIC_IDS {
            entry.topic_id = topic.topic_id;
        } else {
            entry.name = topic.name.clone();
        }
        for partition in topic.partitions {
            let answer = answer_partition(&ctx, version, &topic.name, partition, deadline).await;
            entry.partition_responses.push(answer);
        }
        response.responses.push(entry);
    }
    responder.frame(&response)
}

/// One partition's response entry, once its batch (if published) is
/// acknowledged or has failed.
async fn answer_partition(
    ctx: &GatewayContext,
    version: i16,
    topic: &TopicName,
    partition: PartitionOutcome,
    deadline: Instant,
) -> PartitionProduceResponse {
    let mut answer = PartitionProduceResponse::default();
    answer.index = partition.index;
    answer.base_offset = -1;
    answer.log_append_time_ms = -1;
    answer.log_start_offset = -1;
    let (error, message) = match partition.outcome {
        Outcome::Failed(error, message) => (Some(error), message),
        Outcome::RecordErrors { error, records } => {
            let message = record_errors_message(error, &records);
            if version >= FIRST_VERSION_WITH_ERROR_MESSAGE {
                answer.record_errors = record_errors(records);
            }
            (Some(error), Some(message))
        }
        Outcome::Published(published) => {
            answer_published(ctx, &mut answer, topic, published, deadline).await
        }
    };
    if let Some(error) = error {
        answer.error_code = error.code();
        telemetry::record_error_code(ENTRY.name, answer.error_code);
        if version >= FIRST_VERSION_WITH_ERROR_MESSAGE {
            answer.error_message = message.map(StrBytes::from_string);
        }
    }
    answer
}

/// KIP-467 record errors: one per refused record, with its reason.
fn record_errors(records: Vec<(i32, String)>) -> Vec<BatchIndexAndErrorMessage> {
    records
        .into_iter()
        .map(|(index, reason)| {
            let mut error = BatchIndexAndErrorMessage::default();
            error.batch_index = index;
            error.batch_index_error_message = Some(StrBytes::from_string(reason));
            error
        })
        .collect()
}

/// Waits for a published batch to be ordered (and, for acks=all, held by
/// enough gateway disks); on success fills in `answer`'s offsets. Returns
/// the partition's error and message, if any.
async fn answer_published(
    ctx: &GatewayContext,
    answer: &mut PartitionProduceResponse,
    topic: &TopicName,
    published: Published,
    deadline: Instant,
) -> (Option<ResponseError>, Option<String>) {
    let Published {
        pending,
        stream,
        bytes,
        records,
        disks,
        log_append_time,
    } = published;
    let mut result: Result<Completion, AppendError> = pending.completion().await;
    if let (Ok(completion), true) = (&result, disks > 0) {
        if completion.error == 0 {
            if let Err(error) = ctx
                .log
                .wait_durable(completion.global_sequence, disks, deadline)
                .await
            {
                result = Err(error);
            }
        }
    }
    let error = completion_error(&result);
    match (&result, error) {
        (Ok(completion), None) => {
            // Read-your-writes on this gateway: a Fetch or ListOffsets
            // after the acknowledgement sees the batch. Ordered, it is
            // acknowledged even if this wait runs out.
            let remaining = deadline.saturating_duration_since(Instant::now());
            ctx.log
                .wait_for_order(completion.global_sequence, remaining)
                .await;
            answer.base_offset = completion.base_offset;
            answer.log_append_time_ms = log_append_time.unwrap_or(-1);
            answer.log_start_offset = ctx.log.offsets(stream).0;
            telemetry::record_produced(topic, bytes, records);
            (None, None)
        }
        (Err(failure), _) => (error, Some(failure.to_string())),
        (Ok(_), _) => (error, None),
    }
}
