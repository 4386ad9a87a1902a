//! OffsetDelete (key 47): removes some of a group's committed offsets.
//!
//! Served v0 (the only version). As Kafka: NOT_COORDINATOR (16) from a
//! gateway that does not coordinate the group; GROUP_ID_NOT_FOUND (69) for
//! a group with neither members nor offsets; NON_EMPTY_GROUP (68) for a
//! group with members of a protocol other than `consumer`; per partition,
//! GROUP_SUBSCRIBED_TO_TOPIC (86) while a member subscribes to the topic,
//! UNKNOWN_TOPIC_OR_PARTITION (3) for an unknown one. Deletions are commits
//! of offset -1, ordered through the log (see DeleteGroups).

use std::sync::Arc;

use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::errors::commit_error;
use crate::api_support::timeouts::COMMIT_TIMEOUT;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::OffsetDelete,
    name: "OffsetDelete",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const PARTITION: &[Field] = &[Field::always(INT32)];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(TOPIC)),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(handle(ctx, request))
}

async fn handle(ctx: Arc<GatewayContext>, request: ApiRequest) -> Result<Reply, CloseReason> {
    let body: OffsetDeleteRequest = request.decode_bounded(REQUEST)?;
    let mut response = OffsetDeleteResponse::default();
    let subscribed =
        if !request.authorized(&ctx, AclOperation::Delete, Resource::Group(&body.group_id)) {
            Err(ResponseError::GroupAuthorizationFailed)
        } else if !groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
            Err(ResponseError::NotCoordinator)
        } else {
            ctx.groups.subscribed_topics(&body.group_id)
        };
    let subscribed = match subscribed {
        Ok(subscribed) => subscribed.unwrap_or_default(),
        Err(error) => return answer_error(&request, response, error),
    };
    let committed = ctx.log.committed_offsets(&body.group_id);
    if committed.is_empty()
        && ctx.groups.describe(&body.group_id).is_none()
        && !ctx.groups.is_consumer_group(&body.group_id)
    {
        return answer_error(&request, response, ResponseError::GroupIdNotFound);
    }
    let mut deletions = Vec::new();
    let mut deleted_at = Vec::new();
    for topic in &body.topics {
        let known = ctx.log.topic(&topic.name);
        let readable = request.authorized(&ctx, AclOperation::Read, Resource::Topic(&topic.name));
        let mut entry = OffsetDeleteResponseTopic::default();
        entry.name = topic.name.clone();
        for partition in &topic.partitions {
            let stream = known.as_ref().and_then(|known| {
                u32::try_from(partition.partition_index)
                    .ok()
                    .and_then(|index| known.stream(index))
            });
            let mut answer = OffsetDeleteResponsePartition::default();
            answer.partition_index = partition.partition_index;
            match stream {
                _ if !readable => {
                    answer.error_code = ResponseError::TopicAuthorizationFailed.code()
                }
                None => answer.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(_) if subscribed.contains(topic.name.as_str()) => {
                    answer.error_code = ResponseError::GroupSubscribedToTopic.code();
                }
                Some(stream) => {
                    if committed.contains_key(&stream) {
                        deleted_at.push((response.topics.len(), entry.partitions.len()));
                        deletions.push(CommittedOffset {
                            stream,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                        });
                    }
                }
            }
            entry.partitions.push(answer);
        }
        response.topics.push(entry);
    }
    if !deletions.is_empty() {
        let record = ControlRecord::CommitOffsets {
            group: body.group_id.to_string(),
            offsets: deletions,
        };
        if let Some(error) = commit_error(&ctx.log.control(&record, COMMIT_TIMEOUT).await) {
            for (t, p) in deleted_at {
                if let Some(answer) = response
                    .topics
                    .get_mut(t)
                    .and_then(|topic| topic.partitions.get_mut(p))
                {
                    answer.error_code = error.code();
                }
            }
        }
    }
    for topic in &response.topics {
        for partition in &topic.partitions {
            telemetry::record_error_code(ENTRY.name, partition.error_code);
        }
    }
    request.respond(&response)
}

fn answer_error(
    request: &ApiRequest,
    mut response: OffsetDeleteResponse,
    error: ResponseError,
) -> Result<Reply, CloseReason> {
    response.error_code = error.code();
    telemetry::record_error_code(ENTRY.name, response.error_code);
    request.respond(&response)
}
