//! CreateTopics (key 19): new topics in the shared catalog.
//!
//! Each topic is checked as a KRaft controller checks it, in this order,
//! and gets its own result:
//!
//! 1. a name given twice in one request: INVALID_REQUEST (42), "Duplicate
//!    topic name.", for that name;
//! 2. the name: Kafka's rules, else INVALID_TOPIC_EXCEPTION (17);
//! 3. a live topic of that name (or the order topic, `__cxlkafka_order`):
//!    TOPIC_ALREADY_EXISTS (36); a live topic whose name differs only by
//!    '.' versus '_': INVALID_TOPIC_EXCEPTION;
//! 4. counts: `num_partitions` -1 is `--default-partitions`, otherwise 1 to
//!    256 (the catalog's limit per topic), else INVALID_PARTITIONS (37);
//!    `replication_factor` -1 is the cluster's `--default-replication-factor`
//!    (copies, the region counting as one, so it may exceed the number of
//!    gateways), otherwise 1 to the number of live gateways, else
//!    INVALID_REPLICATION_FACTOR (38). Manual assignments are checked
//!    (consecutive partitions from 0, live and distinct brokers, one replica
//!    count: INVALID_REPLICA_ASSIGNMENT, 39) and then honoured trivially:
//!    their count gives the partitions, their length the replication
//!    factor, and placement is not kept (any gateway serves any partition);
//!    with assignments, counts other than -1 are INVALID_REQUEST;
//! 5. configs: Kafka's topic configs only (see [`crate::api_support::topic_config`]),
//!    validated; anything else is INVALID_CONFIG (40).
//!
//! With `validate_only` nothing is written. Otherwise each topic is one
//! `CreateTopic` control record with a fresh random topic id, and the
//! answer waits (until `timeout_ms`, see [`crate::api_support::admin::deadline`]) until
//! this gateway has applied it. v5+ results carry the partition count, the
//! replication factor and every config of the topic; v7 its id. The
//! replication factor reported for the default is capped by the live
//! gateways, as Metadata lists replicas; the factor itself is the cluster's
//! and not kept per topic.

use std::collections::HashMap;
use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::api_support::admin::{self, Failure};
use crate::api_support::config_entries::describe_topic;
use crate::api_support::topic_config::{Stored, TopicConfigs};
use crate::api_support::topics::{new_topic_id, MAX_PARTITIONS};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, INT16, INT32};
use crate::telemetry;

/// Versions served: all the crate decodes (Kafka 4 dropped v0 and v1).
pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::CreateTopics,
    name: "CreateTopics",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const ASSIGNMENT: &[Field] = &[Field::always(INT32), Field::always(Kind::FixedArray(4))];
const CONFIG: &[Field] = &[Field::always(Kind::String), Field::always(Kind::String)];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(INT16),
    Field::always(Kind::Array(ASSIGNMENT)),
    Field::always(Kind::Array(CONFIG)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::Array(TOPIC)),
    Field::always(INT32),
    Field::always(BOOLEAN),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request).await })
}

/// A topic that passed every check.
struct Plan {
    partitions: i32,
    replication_factor: i16,
    configs: TopicConfigs,
    stored: Stored,
}

async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: CreateTopicsRequest = request.decode_bounded(REQUEST)?;
    let deadline = admin::deadline(request.received_at, body.timeout_ms);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in &body.topics {
        *counts.entry(topic.name.as_str()).or_default() += 1;
    }
    let live = admin::live_node_ids(ctx);
    let mut response = CreateTopicsResponse::default();
    for topic in &body.topics {
        let name = topic.name.as_str();
        if response.topics.iter().any(|done| done.name == topic.name) {
            continue;
        }
        let topic_id = new_topic_id(name);
        let planned = if counts.get(name).copied().unwrap_or(0) > 1 {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else if !request.authorized(ctx, AclOperation::Create, Resource::Cluster)
            && !request.authorized(ctx, AclOperation::Create, Resource::Topic(name))
        {
            // Kafka: CREATE on the cluster or on the topic.
            Err(Failure::new(
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.",
            ))
        } else {
            plan(ctx, topic, &live)
        };
        let created = match planned {
            Ok(plan) if !body.validate_only => create(ctx, name, topic_id, plan, deadline).await,
            other => other,
        };
        let (code, message) = admin::outcome(&created);
        telemetry::record_error_code(ENTRY.name, code);
        let mut result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(code)
            .with_error_message(message);
        if let Ok(plan) = created {
            let configs = describe_topic(ctx, &plan.configs)
                .into_iter()
                .map(|entry| {
                    CreatableTopicConfigs::default()
                        .with_name(StrBytes::from_static_str(entry.name))
                        .with_value(entry.value.map(StrBytes::from_string))
                        .with_read_only(entry.read_only)
                        .with_config_source(entry.source)
                        .with_is_sensitive(false)
                })
                .collect();
            result = result
                .with_topic_id(Uuid::from_bytes(topic_id))
                .with_num_partitions(plan.partitions)
                .with_replication_factor(plan.replication_factor)
                .with_configs(Some(configs));
        }
        response.topics.push(result);
    }
    request.respond(&response)
}

/// Every check of one topic, in Kafka's order; nothing is written.
fn plan(ctx: &GatewayContext, topic: &CreatableTopic, live: &[i32]) -> Result<Plan, Failure> {
    let name = topic.name.as_str();
    admin::check_topic_name(name)?;
    let existing = ctx.log.topics();
    if admin::is_order_topic(name) || existing.iter().any(|t| t.name == name) {
        return Err(Failure::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    if let Some(other) = admin::colliding(name, &existing) {
        return Err(Failure::new(
            ResponseError::InvalidTopicException,
            format!(
                "Topic '{name}' collides with existing topic: {}",
                other.name
            ),
        ));
    }
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        counts(ctx, topic.num_partitions, topic.replication_factor, live)?
    } else {
        assigned(topic, live)?
    };
    let mut configs = TopicConfigs::new();
    for config in &topic.configs {
        let value = config.value.as_ref().ok_or_else(|| {
            Failure::new(
                ResponseError::InvalidConfig,
                format!(
                    "Null value not supported for topic configs: {}",
                    config.name.as_str()
                ),
            )
        })?;
        configs.set(config.name.as_str(), value.as_str())?;
    }
    let stored = configs.stored()?;
    Ok(Plan {
        partitions,
        replication_factor,
        configs,
        stored,
    })
}

/// Partition count and replication factor from the request's numbers.
fn counts(
    ctx: &GatewayContext,
    num_partitions: i32,
    replication_factor: i16,
    live: &[i32],
) -> Result<(i32, i16), Failure> {
    let partitions = if num_partitions == -1 {
        ctx.topics.partitions
    } else {
        num_partitions
    };
    if partitions <= 0 {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    if partitions > MAX_PARTITIONS {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            format!(
                "Number of partitions {partitions} is above this cluster's limit of \
                 {MAX_PARTITIONS} per topic."
            ),
        ));
    }
    // The region is one copy and every live gateway's disk another.
    let copies = i16::try_from(live.len() + 1).unwrap_or(i16::MAX).max(1);
    let factor = match replication_factor {
        -1 => ctx.topics.replication_factor.clamp(1, copies),
        factor if factor <= 0 => {
            return Err(Failure::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ))
        }
        factor if factor > copies => {
            return Err(Failure::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {factor} time(s): The target \
                     replication factor of {factor} cannot be reached because only \
                     {copies} copies (the region and {} broker disk(s)) are available.",
                    copies - 1
                ),
            ))
        }
        factor => factor,
    };
    Ok((partitions, factor))
}

/// Partition count and replication factor from manual assignments.
fn assigned(topic: &CreatableTopic, live: &[i32]) -> Result<(i32, i16), Failure> {
    if topic.num_partitions != -1 {
        return Err(Failure::new(
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        ));
    }
    if topic.replication_factor != -1 {
        return Err(Failure::new(
            ResponseError::InvalidRequest,
            "A manual partition assignment was specified, but replication factor was not set \
             to -1.",
        ));
    }
    let mut lists: Vec<(i32, Vec<i32>)> = topic
        .assignments
        .iter()
        .map(|a| {
            (
                a.partition_index,
                a.broker_ids.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    lists.sort_by_key(|(index, _)| *index);
    let consecutive = lists
        .iter()
        .enumerate()
        .all(|(position, (index, _))| usize::try_from(*index).ok() == Some(position));
    if !consecutive {
        return Err(Failure::new(
            ResponseError::InvalidReplicaAssignment,
            "Partitions should be a consecutive 0-based integer sequence",
        ));
    }
    let partitions = i32::try_from(lists.len()).unwrap_or(i32::MAX);
    if partitions > MAX_PARTITIONS {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            format!(
                "Number of partitions {partitions} is above this cluster's limit of \
                 {MAX_PARTITIONS} per topic."
            ),
        ));
    }
    let borrowed: Vec<&[i32]> = lists.iter().map(|(_, list)| list.as_slice()).collect();
    let factor = admin::check_replica_lists(&borrowed, live)?;
    Ok((partitions, i16::try_from(factor).unwrap_or(i16::MAX)))
}

/// Publishes the topic and waits for it.
async fn create(
    ctx: &GatewayContext,
    name: &str,
    topic_id: [u8; 16],
    plan: Plan,
    deadline: std::time::Instant,
) -> Result<Plan, Failure> {
    let record = ControlRecord::CreateTopic {
        name: name.to_owned(),
        partitions: u32::try_from(plan.partitions).unwrap_or(1),
        topic_id,
        retention_ms: plan.stored.retention_ms,
        retention_bytes: plan.stored.retention_bytes,
        configs: plan.stored.configs.clone(),
        replication_factor: u16::try_from(plan.replication_factor).unwrap_or(1),
    };
    match admin::apply(ctx, &record, deadline).await {
        Ok(_) => {
            tracing::info!(topic = name, partitions = plan.partitions, "created topic");
            Ok(plan)
        }
        Err(failure) if failure.error == ResponseError::TopicAlreadyExists => Err(Failure::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        )),
        Err(failure) => Err(failure),
    }
}
