//! OffsetFetch (key 9): a group's committed offsets.
//!
//! Served v1 to v9 (v8+ asks for several groups at once; v10 names topics
//! by id, which the crate does not decode). Offsets come from this
//! gateway's index of the order log, where every gateway applies the same
//! commits in the same order. A partition without a committed offset is
//! offset -1 with empty metadata and no error, as Kafka answers; no topic
//! list (null, v2+) means every partition the group committed. There are no
//! transactions, so every offset is stable (`require_stable`, v7+). From a
//! gateway that does not coordinate a group: NOT_COORDINATOR (16) for it.

use std::collections::HashMap;
use std::sync::Arc;

use cxlkafka_sequencer::catalog::split_stream;
use cxlkafka_sequencer::control::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, INT32};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::OffsetFetch,
    name: "OffsetFetch",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::FixedArray(4)),
];
const GROUP: &[Field] = &[
    Field::always(Kind::String),
    Field::since(Kind::String, 9),
    Field::since(INT32, 9),
    Field::always(Kind::Array(TOPIC)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::new(Kind::String, 0, 7),
    Field::new(Kind::Array(TOPIC), 0, 7),
    Field::since(Kind::Array(GROUP), 8),
    Field::since(BOOLEAN, 7),
];

/// One partition's answer: (partition, offset, leader epoch, metadata, error).
type PartitionAnswer = (i32, i64, i32, String, i16);

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: OffsetFetchRequest = request.decode_bounded(REQUEST)?;
    let mut response = OffsetFetchResponse::default();
    if request.version >= 8 {
        for group in &body.groups {
            let wanted = group.topics.as_ref().map(|topics| {
                topics
                    .iter()
                    .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                    .collect::<Vec<_>>()
            });
            let (mut error, mut topics) = fetch(ctx, request, &group.group_id, wanted);
            // A member of a consumer-protocol group (v9+) reads its group's
            // offsets only at its current epoch (Kafka's STALE_MEMBER_EPOCH).
            if let (0, Some(member_id)) = (error, group.member_id.as_deref()) {
                if let Err(stale) =
                    ctx.groups
                        .check_consumer_fetch(&group.group_id, member_id, group.member_epoch)
                {
                    error = stale.code();
                    topics.clear();
                }
            }
            let mut entry = OffsetFetchResponseGroup::default();
            entry.group_id = group.group_id.clone();
            entry.error_code = error;
            telemetry::record_error_code(ENTRY.name, error);
            entry.topics = topics
                .into_iter()
                .map(|(name, partitions)| {
                    let mut topic = OffsetFetchResponseTopics::default();
                    topic.name = name;
                    topic.partitions = partitions
                        .into_iter()
                        .map(|(index, offset, epoch, metadata, error_code)| {
                            let mut p = OffsetFetchResponsePartitions::default();
                            p.partition_index = index;
                            p.committed_offset = offset;
                            p.committed_leader_epoch = epoch;
                            p.metadata = Some(StrBytes::from_string(metadata));
                            p.error_code = error_code;
                            p
                        })
                        .collect();
                    topic
                })
                .collect();
            response.groups.push(entry);
        }
        return request.respond(&response);
    }
    let wanted = body.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    let (error, topics) = fetch(ctx, request, &body.group_id, wanted);
    telemetry::record_error_code(ENTRY.name, error);
    if request.version >= 2 {
        response.error_code = error;
    }
    response.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = OffsetFetchResponseTopic::default();
            topic.name = name;
            topic.partitions = partitions
                .into_iter()
                .map(|(index, offset, epoch, metadata, error_code)| {
                    let mut p = OffsetFetchResponsePartition::default();
                    p.partition_index = index;
                    p.committed_offset = offset;
                    p.committed_leader_epoch = epoch;
                    p.metadata = Some(StrBytes::from_string(metadata));
                    // v1 has no group error: it goes on every partition.
                    p.error_code = if error != 0 { error } else { error_code };
                    p
                })
                .collect();
            topic
        })
        .collect();
    request.respond(&response)
}

/// A group's error and its offsets for `wanted` (every committed partition
/// when `None`).
fn fetch(
    ctx: &GatewayContext,
    request: &ApiRequest,
    group: &str,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> (i16, Vec<(TopicName, Vec<PartitionAnswer>)>) {
    let describable =
        |topic: &str| request.authorized(ctx, AclOperation::Describe, Resource::Topic(topic));
    let error = if !request.authorized(ctx, AclOperation::Describe, Resource::Group(group)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else if !groups::is_coordinator(ctx.log.as_ref(), group) {
        Some(ResponseError::NotCoordinator)
    } else {
        None
    };
    let committed = if error.is_none() {
        ctx.log.committed_offsets(group)
    } else {
        HashMap::new()
    };
    let answer = |stream: Option<u32>, index: i32| -> PartitionAnswer {
        match stream.and_then(|stream| committed.get(&stream)) {
            Some(CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                ..
            }) => (index, *offset, *leader_epoch, metadata.clone(), 0),
            None => (index, -1, -1, String::new(), 0),
        }
    };
    let topics = match wanted {
        Some(wanted) => wanted
            .into_iter()
            .map(|(name, partitions)| {
                let topic = ctx.log.topic(&name);
                let denied = error.is_none() && !describable(&name);
                let answers = partitions
                    .into_iter()
                    .map(|index| {
                        if denied {
                            let code = ResponseError::TopicAuthorizationFailed.code();
                            return (index, -1, -1, String::new(), code);
                        }
                        let stream = topic.as_ref().and_then(|topic| {
                            u32::try_from(index).ok().and_then(|i| topic.stream(i))
                        });
                        answer(stream, index)
                    })
                    .collect();
                (name, answers)
            })
            .collect(),
        None => {
            let names: HashMap<u32, String> = ctx
                .log
                .topics()
                .into_iter()
                .map(|topic| (topic.slot, topic.name))
                .collect();
            let mut by_topic: HashMap<String, Vec<PartitionAnswer>> = HashMap::new();
            for &stream in committed.keys() {
                let (slot, partition) = split_stream(stream);
                let (Some(name), Ok(index)) = (names.get(&slot), i32::try_from(partition)) else {
                    continue;
                };
                // Kafka leaves out the topics the principal may not see.
                if !describable(name) {
                    continue;
                }
                by_topic
                    .entry(name.clone())
                    .or_default()
                    .push(answer(Some(stream), index));
            }
            let mut topics: Vec<(TopicName, Vec<PartitionAnswer>)> = by_topic
                .into_iter()
                .map(|(name, mut partitions)| {
                    partitions.sort_by_key(|p| p.0);
                    (TopicName(StrBytes::from_string(name)), partitions)
                })
                .collect();
            topics.sort_by(|a, b| a.0.cmp(&b.0));
            topics
        }
    };
    (error.map_or(0, |e| e.code()), topics)
}
