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
//!    `--message-max-bytes`); on
//!    a compacted topic (`cleanup.policy` has `compact`) every record needs a
//!    key, else INVALID_RECORD with one record error per keyless record
//!    (the only case where the gateway decodes records);
//! 3. a transactional batch is refused with INVALID_TXN_STATE (48), see
//!    below;
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
//! There is no transaction coordinator, so no producer can have begun a
//! transaction. Kafka 3.6+ (KIP-890 verification) answers a transactional
//! batch for a partition outside an ongoing transaction with
//! INVALID_TXN_STATE (48); that is the answer here. Redpanda with
//! transactions disabled answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53)
//! for the whole request, and Kafka does too when the request carries no
//! transactional id at all; but 53 tells the user to fix ACLs, which would
//! not help.
//!
//! An acknowledged batch is also applied to this gateway's own index before
//! the answer goes out, so a Fetch or ListOffsets sent to the same gateway
//! after the acknowledgement sees it. The response's `log_append_time_ms`
//! is -1 (topics use CreateTime) and `log_start_offset` the partition's
//! current log start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::Completion;
use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::api_support::errors::{append_error, completion_error};
use crate::api_support::topic_config::{self, TopicConfigs};
use crate::api_support::topics::by_id as topic_by_id;
use crate::cluster::{AppendBatch, AppendError, ClusterLog, PendingAppend, ORDER_TOPIC};
use crate::context::GatewayContext;
use crate::dispatch::{
    ApiEntry, ApiRequest, HandlerFuture, Reply, Responder, ResponseFrame, VersionPolicy,
};
use crate::error::CloseReason;
use crate::records::{self, BatchInfo, ProduceCheck};
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
    /// Refused for some of its records before publishing: INVALID_RECORD
    /// with one record error (batch index, reason) per index (KIP-467).
    RecordErrors { indexes: Vec<i32>, reason: String },
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

/// What applies to every partition of one request.
#[derive(Clone, Copy)]
struct Settings {
    acks: i16,
    timeout: Duration,
    check: ProduceCheck,
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
    let keys = compacted(topic).then(|| format!("{}-{}", topic.name, partition.index));
    publish(
        ctx.log.as_ref(),
        stream,
        records,
        settings.check,
        settings.timeout,
        keys,
    )
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

/// Whether the topic's `cleanup.policy` includes `compact`: its records
/// must have keys. Topics without explicit configs skip the parsing.
fn compacted(topic: &Topic) -> bool {
    !topic.configs.is_empty()
        && TopicConfigs::of(topic)
            .get("cleanup.policy")
            .is_some_and(|policy| policy.split(',').any(|p| p.trim() == "compact"))
}

/// Validates and publishes one partition's records. `keys_required` names
/// the partition (`topic-index`) of a compacted topic, whose records must
/// all have keys.
async fn publish(
    log: &dyn ClusterLog,
    stream: u32,
    records: &[u8],
    check: ProduceCheck,
    timeout: Duration,
    keys_required: Option<String>,
) -> Outcome {
    let info: BatchInfo = match records::validate_produce_records(records, check) {
        Ok(info) => info,
        Err(error) => return Outcome::Failed(error.error(), Some(error.to_string())),
    };
    if info.transactional {
        return Outcome::Failed(
            ResponseError::InvalidTxnState,
            Some("transactions are not supported: no transaction coordinator".into()),
        );
    }
    let batch_bytes = records.get(..info.size).unwrap_or(records);
    if let Some(partition) = keys_required {
        match records::keyless_records(batch_bytes) {
            Ok(indexes) if indexes.is_empty() => {}
            Ok(indexes) => {
                return Outcome::RecordErrors {
                    indexes,
                    reason: format!(
                        "Compacted topic cannot accept message without key in topic partition \
                         {partition}."
                    ),
                }
            }
            Err(error) => return Outcome::Failed(error.error(), Some(error.to_string())),
        }
    }
    // Validation guarantees a positive count.
    let record_count = u32::try_from(info.record_count).unwrap_or(0);
    let batch = AppendBatch {
        stream,
        payload: batch_bytes,
        record_count,
        producer_id: info.producer_id,
        producer_epoch: info.producer_epoch,
        base_sequence: info.base_sequence,
        max_timestamp: info.max_timestamp,
    };
    match log.publish(batch, timeout).await {
        Ok(pending) => Outcome::Published(Published {
            pending,
            stream,
            bytes: batch_bytes.len(),
            records: record_count,
            disks: 0,
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
            Outcome::RecordErrors { .. } => Some(ResponseError::InvalidRecord.code()),
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
/// `RecordValidationException` (at most three listed).
fn record_errors_message(indexes: &[i32], reason: &str) -> String {
    let shown: Vec<String> = indexes
        .iter()
        .take(3)
        .map(|index| format!("RecordError(batchIndex={index}, message='{reason}')"))
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        indexes.len(),
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
        Outcome::RecordErrors { indexes, reason } => {
            let message = record_errors_message(&indexes, &reason);
            if version >= FIRST_VERSION_WITH_ERROR_MESSAGE {
                answer.record_errors = record_errors(indexes, &reason);
            }
            (Some(ResponseError::InvalidRecord), Some(message))
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

/// KIP-467 record errors: one per index, all with `reason`.
fn record_errors(indexes: Vec<i32>, reason: &str) -> Vec<BatchIndexAndErrorMessage> {
    indexes
        .into_iter()
        .map(|index| {
            let mut error = BatchIndexAndErrorMessage::default();
            error.batch_index = index;
            error.batch_index_error_message = Some(StrBytes::from_string(reason.to_owned()));
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
            answer.log_start_offset = ctx.log.offsets(stream).0;
            telemetry::record_produced(topic, bytes, records);
            (None, None)
        }
        (Err(failure), _) => (error, Some(failure.to_string())),
        (Ok(_), _) => (error, None),
    }
}
