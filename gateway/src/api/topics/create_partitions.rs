//! CreatePartitions (key 37): more partitions for existing topics.
//!
//! As a KRaft controller answers, per topic:
//!
//! - a name given twice: INVALID_REQUEST (42), "Duplicate topic name.";
//! - an unknown topic: UNKNOWN_TOPIC_OR_PARTITION (3);
//! - a count that is not an increase: INVALID_PARTITIONS (37), with KRaft's
//!   messages ("Topic already has 3 partition(s)." / "The topic t currently
//!   has 3 partition(s); 2 would not be an increase."); a count above 256
//!   (the catalog's limit per topic): INVALID_PARTITIONS; the order topic's
//!   single partition is fixed: INVALID_PARTITIONS;
//! - manual assignments: one per new partition, with live and distinct
//!   brokers and as many replicas as the topic's partitions have (the
//!   replica count Metadata lists), else INVALID_REPLICA_ASSIGNMENT (39).
//!   Placement is not kept: any gateway serves any partition.
//!
//! With `validate_only` nothing is written. Otherwise each topic is one
//! `CreatePartitions` control record, answered once this gateway applied it
//! (within `timeout_ms`). New partitions start empty at offset 0.

use std::collections::HashMap;
use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::admin::{self, Failure};
use crate::api_support::topics::MAX_PARTITIONS;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, INT32};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::CreatePartitions,
    name: "CreatePartitions",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const ASSIGNMENT: &[Field] = &[Field::always(Kind::FixedArray(4))];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::Array(ASSIGNMENT)),
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

async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: CreatePartitionsRequest = request.decode_bounded(REQUEST)?;
    let deadline = admin::deadline(request.received_at, body.timeout_ms);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for topic in &body.topics {
        *counts.entry(topic.name.as_str()).or_default() += 1;
    }
    let live = admin::live_node_ids(ctx);
    let mut response = CreatePartitionsResponse::default();
    for topic in &body.topics {
        if response.results.iter().any(|done| done.name == topic.name) {
            continue;
        }
        let checked = if counts.get(topic.name.as_str()).copied().unwrap_or(0) > 1 {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ))
        } else if !request.authorized(ctx, AclOperation::Alter, Resource::Topic(&topic.name)) {
            Err(Failure::bare(ResponseError::TopicAuthorizationFailed))
        } else {
            check(ctx, topic, &live)
        };
        let result = match checked {
            Ok(total) if !body.validate_only => {
                let record = ControlRecord::CreatePartitions {
                    name: topic.name.to_string(),
                    total,
                };
                admin::apply(ctx, &record, deadline).await.map(|_| {
                    tracing::info!(topic = topic.name.as_str(), total, "added partitions");
                })
            }
            Ok(_) => Ok(()),
            Err(failure) => Err(failure),
        };
        let (code, message) = admin::outcome(&result);
        telemetry::record_error_code(ENTRY.name, code);
        response.results.push(
            CreatePartitionsTopicResult::default()
                .with_name(topic.name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    request.respond(&response)
}

/// Every check of one topic; returns the new total.
fn check(
    ctx: &GatewayContext,
    topic: &CreatePartitionsTopic,
    live: &[i32],
) -> Result<u32, Failure> {
    let name = topic.name.as_str();
    if admin::is_order_topic(name) {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            format!("{name} is the read-only view of the total order; it has one partition."),
        ));
    }
    let existing = ctx
        .log
        .topic(name)
        .ok_or_else(|| Failure::bare(ResponseError::UnknownTopicOrPartition))?;
    let current = existing.partitions;
    let requested = topic.count;
    if i64::from(requested) == i64::from(current) {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    let total = u32::try_from(requested)
        .ok()
        .filter(|&total| total > current)
        .ok_or_else(|| {
            Failure::new(
                ResponseError::InvalidPartitions,
                format!(
                    "The topic {name} currently has {current} partition(s); {requested} would \
                     not be an increase."
                ),
            )
        })?;
    if requested > MAX_PARTITIONS {
        return Err(Failure::new(
            ResponseError::InvalidPartitions,
            format!(
                "Number of partitions {requested} is above this cluster's limit of \
                 {MAX_PARTITIONS} per topic."
            ),
        ));
    }
    if let Some(assignments) = &topic.assignments {
        let added = total - current;
        if usize::try_from(added).ok() != Some(assignments.len()) {
            return Err(Failure::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Attempted to add {added} additional partition(s), but only {} \
                     assignment(s) were specified.",
                    assignments.len()
                ),
            ));
        }
        let lists: Vec<Vec<i32>> = assignments
            .iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect();
        let borrowed: Vec<&[i32]> = lists.iter().map(Vec::as_slice).collect();
        let replicas = admin::check_replica_lists(&borrowed, live)?;
        let previous = usize::try_from(ctx.topics.replication_factor)
            .unwrap_or(1)
            .clamp(1, live.len().max(1));
        if replicas != previous {
            return Err(Failure::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "The manual partition assignment includes a partition with {replicas} \
                     replica(s), but this is not consistent with previous partitions, which \
                     have {previous} replica(s)."
                ),
            ));
        }
    }
    Ok(total)
}
