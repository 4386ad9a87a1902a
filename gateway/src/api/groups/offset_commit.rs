//! OffsetCommit (key 8): a group's consumed positions, committed through
//! the log.
//!
//! Served v2 to v9 (v10 names topics by id, which the crate does not
//! decode). The commit is checked as Kafka's coordinator checks it (see
//! [`crate::groups::GroupCoordinator::check_commit`]: a simple commit with
//! generation -1 is accepted for a group without members; a member's
//! commit needs its member id and generation), then published as one
//! [`ControlRecord::CommitOffsets`] and answered once this gateway has
//! applied it from the order log, so an OffsetFetch that follows on any
//! connection sees it, and every gateway applies commits in the same order.
//!
//! Per partition: UNKNOWN_TOPIC_OR_PARTITION (3) for an unknown topic or
//! partition, OFFSET_METADATA_TOO_LARGE (12) for metadata longer than
//! Kafka's default `offset.metadata.max.bytes` (4096). Failures to publish
//! map through [`commit_error`]. From a gateway that does
//! not coordinate the group: NOT_COORDINATOR (16) for every partition.

use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::errors::commit_error;
use crate::api_support::offset_commits::{AskedOffset, CommitPlan};
use crate::api_support::timeouts::COMMIT_TIMEOUT;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32, INT64};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::OffsetCommit,
    name: "OffsetCommit",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const PARTITION: &[Field] = &[
    Field::always(INT32),
    Field::always(INT64),
    Field::since(INT32, 6),
    Field::always(Kind::String),
];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::String),
    Field::since(Kind::String, 7),
    Field::new(INT64, 2, 4),
    Field::always(Kind::Array(TOPIC)),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

async fn handle(ctx: Arc<GatewayContext>, request: ApiRequest) -> Result<Reply, CloseReason> {
    let body: OffsetCommitRequest = request.decode_bounded(REQUEST)?;
    ctx.groups.ensure_reporter(&ctx.log);
    let group_error = if body.group_id.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if !request.authorized(&ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else if !groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
        Some(ResponseError::NotCoordinator)
    } else if let Some(checked) = ctx.groups.check_consumer_commit(
        &body.group_id,
        &body.member_id,
        body.generation_id_or_member_epoch,
        request.version,
    ) {
        checked.err()
    } else {
        ctx.groups
            .check_commit(
                &body.group_id,
                &body.member_id,
                body.group_instance_id.as_deref(),
                body.generation_id_or_member_epoch,
            )
            .err()
    };
    let asked = body.topics.iter().map(|topic| {
        let partitions = topic
            .partitions
            .iter()
            .map(|partition| AskedOffset {
                partition_index: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: if request.version >= 6 {
                    partition.committed_leader_epoch
                } else {
                    -1
                },
                metadata: partition.committed_metadata.as_deref().unwrap_or(""),
            })
            .collect();
        (&topic.name, partitions)
    });
    let mut plan = CommitPlan::new(&ctx, &request, group_error, asked);
    if !plan.offsets.is_empty() {
        let record = ControlRecord::CommitOffsets {
            group: body.group_id.to_string(),
            offsets: std::mem::take(&mut plan.offsets),
        };
        let published = ctx.log.control(&record, COMMIT_TIMEOUT).await;
        if let Some(error) = commit_error(&published) {
            plan.fail_ordered(error);
        }
    }
    let mut response = OffsetCommitResponse::default();
    response.topics = body
        .topics
        .iter()
        .map(|topic| {
            let mut entry = OffsetCommitResponseTopic::default();
            entry.name = topic.name.clone();
            entry
        })
        .collect();
    for (t, partition_index, error) in plan.answers {
        let mut answer = OffsetCommitResponsePartition::default();
        answer.partition_index = partition_index;
        answer.error_code = error.map_or(0, |e| e.code());
        telemetry::record_error_code(ENTRY.name, answer.error_code);
        if let Some(topic) = response.topics.get_mut(t) {
            topic.partitions.push(answer);
        }
    }
    request.respond(&response)
}
