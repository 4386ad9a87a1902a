//! Metadata (key 3): the live gateways as brokers, the cluster id, the
//! controller, and the topics with their partition leaders.
//!
//! - **Brokers** are the live gateways (node id = region slot), lowest slot
//!   first, never two with the same address (a client keys connections by
//!   address); no racks. The **controller** is the lowest live slot.
//! - **Cluster id**: the 16 bytes the region's superblock stores for the
//!   cluster name, in Kafka's 22-character base64 form ([`cluster_id`]), so
//!   it is stable across restarts and the same on every gateway.
//! - **Partitions**: any gateway accepts any partition, so leaders only
//!   spread clients: partition `p` of the topic in catalog slot `s` is led by
//!   the live gateway at position `(s + p) % live`, and the replicas are it
//!   and the next live gateways, up to the replication factor. The ISR is
//!   the replica list and leader epochs are -1: leadership moves with
//!   membership, at once and without data movement, so there is no epoch a
//!   client could fence on.
//! - **Topic ids** are the catalog's, fixed at creation (Fetch v13+ and Java
//!   4 clients address topics by id).
//! - **Auto-creation**: an unknown topic named in the request is created
//!   when the gateway allows it (`auto.create.topics.enable`: the dynamic
//!   broker config, else `--auto-create-topics`) and the request
//!   does too (v4+ `allow_auto_topic_creation`; always below v4), with the
//!   default partition count; its name must be legal ([`validate_topic_name`],
//!   else INVALID_TOPIC_EXCEPTION, 17), as Kafka validates it on creation.
//!   Otherwise an unknown topic is UNKNOWN_TOPIC_OR_PARTITION (3). A creation
//!   that does not complete in time answers LEADER_NOT_AVAILABLE (5), Kafka's
//!   "being created, ask again".
//!
//! Which topics: v0 lists every topic for an empty list; v1+ for a null
//! list. From v10 a topic may be named by id alone; an unknown id is
//! UNKNOWN_TOPIC_ID (100).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::api_support::brokers::{cluster_id, holder_ids, live_brokers, replicas};
use crate::api_support::errors::status_error;
use crate::api_support::topics::{by_id, new_topic_id, validate_topic_name};
use crate::cluster::Member;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, UUID};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::Metadata,
    name: "Metadata",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const REQUEST_TOPIC: &[Field] = &[Field::since(UUID, 10), Field::always(Kind::String)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::Array(REQUEST_TOPIC)),
    Field::since(BOOLEAN, 4),
    Field::new(BOOLEAN, 8, 10),
    Field::since(BOOLEAN, 8),
];

/// First version with `allow_auto_topic_creation`.
const FIRST_VERSION_WITH_AUTO_CREATE_FLAG: i16 = 4;
/// First version whose topics may be named by id.
const FIRST_VERSION_WITH_TOPIC_IDS: i16 = 10;
/// Longest a Metadata request waits for a topic it auto-creates.
const AUTO_CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retention of auto-created topics: Kafka's `log.retention.hours=168`.
const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request).await })
}

/// Answers in the ordered part: a request that auto-creates a topic is
/// answered once the topic exists, before the connection's next request.
async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: MetadataRequest = request.decode_bounded(REQUEST)?;
    let brokers = request.advertise(ctx, live_brokers(ctx));
    let mut response = MetadataResponse::default();
    response.brokers = brokers.iter().map(broker_entry).collect();
    response.cluster_id = Some(StrBytes::from_string(cluster_id(&ctx.cluster)));
    response.controller_id = BrokerId(
        brokers
            .first()
            .map_or(ctx.node_id, |member| i32::from(member.gateway)),
    );
    let all = match &body.topics {
        None => true,
        Some(topics) => request.version == 0 && topics.is_empty(),
    };
    let topics = if all {
        // Kafka leaves out the topics the principal may not describe.
        ctx.log
            .topics()
            .iter()
            .filter(|topic| describable(ctx, request, &topic.name))
            .map(|topic| describe(topic, &brokers, ctx))
            .collect()
    } else {
        requested_topics(ctx, request, &body, &brokers).await
    };
    for topic in &topics {
        telemetry::record_error_code(ENTRY.name, topic.error_code);
    }
    response.topics = topics;
    request.respond(&response)
}

/// A live gateway as the response lists it.
fn broker_entry(member: &Member) -> MetadataResponseBroker {
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(i32::from(member.gateway));
    broker.host = StrBytes::from_string(member.host.clone());
    broker.port = i32::from(member.port);
    broker
}

/// Whether the principal may DESCRIBE the topic `name`.
fn describable(ctx: &GatewayContext, request: &ApiRequest, name: &str) -> bool {
    request.authorized(ctx, AclOperation::Describe, Resource::Topic(name))
}

/// The entries of the topics the request names, each once, in request
/// order, auto-creating unknown ones when allowed.
async fn requested_topics(
    ctx: &GatewayContext,
    request: &ApiRequest,
    body: &MetadataRequest,
    brokers: &[Member],
) -> Vec<MetadataResponseTopic> {
    let allow_create = ctx.auto_create_topics()
        && (request.version < FIRST_VERSION_WITH_AUTO_CREATE_FLAG
            || body.allow_auto_topic_creation);
    let mut seen = HashSet::new();
    let mut topics = Vec::new();
    for requested in body.topics.iter().flatten() {
        let key = (requested.name.clone(), requested.topic_id);
        if !seen.insert(key) {
            continue;
        }
        let answer = requested_topic(ctx, request, requested, allow_create).await;
        topics.push(match answer {
            Ok(topic) if requested.name.is_none() && !describable(ctx, request, &topic.name) => {
                unknown(
                    None,
                    requested.topic_id,
                    ResponseError::TopicAuthorizationFailed,
                )
            }
            Ok(topic) => describe(&topic, brokers, ctx),
            Err(failed) => failed,
        });
    }
    topics
}

/// The live topic one request entry names (by name, or from v10 by id), or
/// the entry of why it cannot be described.
async fn requested_topic(
    ctx: &GatewayContext,
    request: &ApiRequest,
    requested: &MetadataRequestTopic,
    allow_create: bool,
) -> Result<Topic, MetadataResponseTopic> {
    match &requested.name {
        Some(name) if !describable(ctx, request, name) => Err(unknown(
            Some(name.clone()),
            Uuid::nil(),
            ResponseError::TopicAuthorizationFailed,
        )),
        // Auto-creation needs CREATE on the cluster or the topic.
        Some(name)
            if allow_create
                && ctx.log.topic(name).is_none()
                && !request.authorized(ctx, AclOperation::Create, Resource::Cluster)
                && !request.authorized(ctx, AclOperation::Create, Resource::Topic(name)) =>
        {
            Err(unknown(
                Some(name.clone()),
                Uuid::nil(),
                ResponseError::TopicAuthorizationFailed,
            ))
        }
        Some(name) => by_name(ctx, name, allow_create).await,
        None if request.version >= FIRST_VERSION_WITH_TOPIC_IDS => by_id(ctx, requested.topic_id)
            .ok_or_else(|| unknown(None, requested.topic_id, ResponseError::UnknownTopicId)),
        None => Err(unknown(
            None,
            requested.topic_id,
            ResponseError::InvalidRequest,
        )),
    }
}

/// A live topic by name, creating it if allowed.
async fn by_name(
    ctx: &GatewayContext,
    name: &TopicName,
    allow_create: bool,
) -> Result<Topic, MetadataResponseTopic> {
    if let Some(topic) = ctx.log.topic(name) {
        return Ok(topic);
    }
    let fail = |error| unknown(Some(name.clone()), Uuid::nil(), error);
    if !allow_create {
        return Err(fail(ResponseError::UnknownTopicOrPartition));
    }
    if validate_topic_name(name).is_err() {
        return Err(fail(ResponseError::InvalidTopicException));
    }
    auto_create(ctx, name).await.map_err(fail)
}

/// Creates `name` with the gateway's defaults and returns it once this
/// gateway's view has it. A concurrent creation of the same name is fine.
async fn auto_create(ctx: &GatewayContext, name: &str) -> Result<Topic, ResponseError> {
    let deadline = Instant::now() + AUTO_CREATE_TIMEOUT;
    let record = ControlRecord::CreateTopic {
        name: name.to_owned(),
        partitions: u32::try_from(ctx.topics.partitions).unwrap_or(1).max(1),
        topic_id: new_topic_id(name),
        retention_ms: DEFAULT_RETENTION_MS,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: default_copies(ctx),
    };
    let completion = ctx
        .log
        .control(&record, AUTO_CREATE_TIMEOUT)
        .await
        .map_err(|_| ResponseError::LeaderNotAvailable)?;
    match status_error(completion.error) {
        None | Some(ResponseError::TopicAlreadyExists) => {}
        Some(error) => return Err(error),
    }
    tracing::info!(topic = name, "auto-created topic");
    // A racing creation may have been ordered before ours but not applied
    // here yet: wait for this gateway's view, bounded.
    loop {
        let applied = ctx.log.applied();
        if let Some(topic) = ctx.log.topic(name) {
            return Ok(topic);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(ResponseError::LeaderNotAvailable);
        }
        ctx.log.wait_for_order(applied, remaining).await;
    }
}

/// The response entry of a topic that could not be described.
fn unknown(name: Option<TopicName>, topic_id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    let mut topic = MetadataResponseTopic::default();
    topic.error_code = error.code();
    topic.name = name;
    topic.topic_id = topic_id;
    topic
}

/// The response entry of a live topic.
fn describe(topic: &Topic, brokers: &[Member], ctx: &GatewayContext) -> MetadataResponseTopic {
    let holders = holder_ids(ctx);
    let mut entry = MetadataResponseTopic::default();
    entry.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    entry.topic_id = Uuid::from_bytes(topic.topic_id);
    entry.is_internal = topic.name == crate::cluster::ORDER_TOPIC;
    entry.partitions = (0..topic.partitions)
        .map(|index| {
            let factor = i16::try_from(topic.replication_factor).unwrap_or(i16::MAX);
            let replicas = replicas(brokers, &holders, topic, index, factor);
            let mut partition = MetadataResponsePartition::default();
            partition.partition_index = i32::try_from(index).unwrap_or(i32::MAX);
            partition.leader_epoch = -1;
            match replicas.first() {
                Some(&leader) => partition.leader_id = BrokerId(leader),
                None => {
                    // Only gateways that hold older entries could lead, and
                    // none is live: offline, as Kafka reports a partition
                    // whose in-sync replicas are all down.
                    partition.error_code = ResponseError::LeaderNotAvailable.code();
                    partition.leader_id = BrokerId(-1);
                }
            }
            partition.replica_nodes = replicas.iter().copied().map(BrokerId).collect();
            // In sync: the replicas that hold every entry.
            partition.isr_nodes = replicas
                .iter()
                .copied()
                .filter(|id| holders.contains(id))
                .map(BrokerId)
                .collect();
            partition
        })
        .collect();
    entry
}

/// The replication factor an auto-created topic gets: the configured
/// default, capped by the copies the cluster can hold (the region and one
/// disk per live gateway).
fn default_copies(ctx: &GatewayContext) -> u16 {
    let available = ctx.log.members().len() + 1;
    let wanted = usize::try_from(ctx.topics.replication_factor).unwrap_or(1);
    wanted.clamp(1, available) as u16
}
