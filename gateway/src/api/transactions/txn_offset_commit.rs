//! TxnOffsetCommit (key 28): offsets a transaction commits for a consumer
//! group, sent to the group's coordinator after AddOffsetsToTxn.
//!
//! Served v0-5. The offsets are ordered through the log with the
//! transaction's identity ([`ControlRecord::TxnOffsetCommit`]); every
//! gateway keeps them with the transaction and hands them to the group
//! when, and only if, the transaction commits. A record whose producer is
//! no longer the transaction's (fenced) or whose transaction is not open
//! when it is applied is dropped by every gateway alike.
//!
//! As Kafka (KIP-447): with a member id or a generation (v3+), the member
//! must be in the group at that generation (UNKNOWN_MEMBER_ID (25),
//! ILLEGAL_GENERATION (22), FENCED_INSTANCE_ID (82)), so a zombie that lost
//! its partitions cannot commit for them; NOT_COORDINATOR (16) from a
//! gateway that does not coordinate the group; PRODUCER_FENCED (90,
//! INVALID_PRODUCER_EPOCH 47 below v3) once the id has a newer epoch;
//! GROUP_AUTHORIZATION_FAILED (30), TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! (53), TOPIC_AUTHORIZATION_FAILED (29) and UNKNOWN_TOPIC_OR_PARTITION (3)
//! as OffsetCommit.

use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::errors::commit_error;
use crate::api_support::offset_commits::{AskedOffset, CommitPlan};
use crate::api_support::timeouts::COMMIT_TIMEOUT;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT16, INT32, INT64};
use crate::telemetry;
use crate::transactions::client_error;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::TxnOffsetCommit,
    name: "TxnOffsetCommit",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const PARTITION: &[Field] = &[
    Field::always(INT32),
    Field::always(INT64),
    Field::since(INT32, 2),
    Field::always(Kind::String),
];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::String),
    Field::always(INT64),
    Field::always(INT16),
    Field::since(INT32, 3),
    Field::since(Kind::String, 3),
    Field::since(Kind::String, 3),
    Field::always(Kind::Array(TOPIC)),
];

/// First version that carries PRODUCER_FENCED.
const FENCED_SINCE: i16 = 3;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

/// The error of the whole request, before its partitions.
fn request_error(
    ctx: &GatewayContext,
    request: &ApiRequest,
    body: &TxnOffsetCommitRequest,
) -> Option<ResponseError> {
    let group = body.group_id.as_str();
    if !request.authorized(
        ctx,
        AclOperation::Write,
        Resource::TransactionalId(&body.transactional_id),
    ) {
        return Some(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !request.authorized(ctx, AclOperation::Read, Resource::Group(group)) {
        return Some(ResponseError::GroupAuthorizationFailed);
    }
    if group.is_empty() {
        return Some(ResponseError::InvalidGroupId);
    }
    if !groups::is_coordinator(ctx.log.as_ref(), group) {
        return Some(ResponseError::NotCoordinator);
    }
    if let Some(current) = ctx.log.transactions().get(&body.transactional_id) {
        if current.record.producer_id == body.producer_id.0
            && current.record.producer_epoch > body.producer_epoch
        {
            return Some(ResponseError::ProducerFenced);
        }
    }
    let names_member = !body.member_id.is_empty() || body.generation_id >= 0;
    if request.version < 3 || !names_member {
        return None;
    }
    // KIP-848 groups check the member epoch as OffsetCommit v9 does.
    if let Some(checked) =
        ctx.groups
            .check_consumer_commit(group, &body.member_id, body.generation_id, 9)
    {
        return checked.err();
    }
    ctx.groups
        .check_commit(
            group,
            &body.member_id,
            body.group_instance_id.as_deref(),
            body.generation_id,
        )
        .err()
}

async fn handle(
    ctx: Arc<GatewayContext>,
    request: ApiRequest,
) -> Result<Reply, crate::error::CloseReason> {
    let body: TxnOffsetCommitRequest = request.decode_bounded(REQUEST)?;
    let request_error = request_error(&ctx, &request, &body);
    let asked = body.topics.iter().map(|topic| {
        let partitions = topic
            .partitions
            .iter()
            .map(|partition| AskedOffset {
                partition_index: partition.partition_index,
                offset: partition.committed_offset,
                leader_epoch: if request.version >= 2 {
                    partition.committed_leader_epoch
                } else {
                    -1
                },
                metadata: partition.committed_metadata.as_deref().unwrap_or(""),
            })
            .collect();
        (&topic.name, partitions)
    });
    let mut plan = CommitPlan::new(&ctx, &request, request_error, asked);
    if !plan.offsets.is_empty() {
        let record = ControlRecord::TxnOffsetCommit {
            transactional_id: body.transactional_id.to_string(),
            producer_id: body.producer_id.0,
            producer_epoch: body.producer_epoch,
            group: body.group_id.to_string(),
            offsets: std::mem::take(&mut plan.offsets),
        };
        let published = ctx.log.control(&record, COMMIT_TIMEOUT).await;
        if let Some(error) = commit_error(&published) {
            plan.fail_ordered(error);
        }
    }
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = body
        .topics
        .iter()
        .map(|topic| {
            let mut entry = TxnOffsetCommitResponseTopic::default();
            entry.name = topic.name.clone();
            entry
        })
        .collect();
    for (t, partition_index, error) in plan.answers {
        let mut answer = TxnOffsetCommitResponsePartition::default();
        answer.partition_index = partition_index;
        answer.error_code = client_error(error, request.version, FENCED_SINCE);
        telemetry::record_error_code(ENTRY.name, answer.error_code);
        if let Some(topic) = response.topics.get_mut(t) {
            topic.partitions.push(answer);
        }
    }
    request.respond(&response)
}
