//! DescribeProducers (key 61, KIP-664): the idempotent and transactional
//! producers of a partition, and the offset their open transaction there
//! began at, so operators can find a hanging transaction
//! (`kafka-transactions.sh find-hanging`) and abort it.
//!
//! Served v0. Each gateway keeps every partition's producers from the
//! order log (their last batch's epoch, sequence and timestamp); the open
//! transaction's start offset comes from the transaction table. Per
//! partition, as Kafka: UNKNOWN_TOPIC_OR_PARTITION (3),
//! TOPIC_AUTHORIZATION_FAILED (29) without READ on the topic,
//! NOT_LEADER_OR_FOLLOWER (6) from a gateway that does not hold every
//! entry. The coordinator epoch is -1: coordinators are fenced through the
//! log, not by an epoch.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeProducers,
    name: "DescribeProducers",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::FixedArray(4)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(TOPIC))];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DescribeProducersRequest = request.decode_bounded(REQUEST)?;
    let holds_everything = ctx.log.holds_everything();
    let transactions = ctx.log.transactions();
    let mut response = DescribeProducersResponse::default();
    for topic in &body.topics {
        let known = ctx.log.topic(&topic.name);
        let readable = request.authorized(ctx, AclOperation::Read, Resource::Topic(&topic.name));
        let mut entry = TopicResponse::default();
        entry.name = topic.name.clone();
        for &index in &topic.partition_indexes {
            let mut partition = PartitionResponse::default();
            partition.partition_index = index;
            let stream = known
                .as_ref()
                .and_then(|known| u32::try_from(index).ok().and_then(|i| known.stream(i)));
            let error = match stream {
                _ if !readable => Some(ResponseError::TopicAuthorizationFailed),
                None => Some(ResponseError::UnknownTopicOrPartition),
                Some(_) if !holds_everything => Some(ResponseError::NotLeaderOrFollower),
                Some(stream) => {
                    let open = transactions.open_in(stream);
                    partition.active_producers = ctx
                        .log
                        .producers(stream)
                        .into_iter()
                        .map(|(id, state)| {
                            let mut producer = ProducerState::default();
                            producer.producer_id = ProducerId(id);
                            producer.producer_epoch = i32::from(state.epoch);
                            producer.last_sequence = state.last_sequence;
                            producer.last_timestamp = state.last_timestamp;
                            producer.coordinator_epoch = -1;
                            producer.current_txn_start_offset = open
                                .iter()
                                .find(|&&(pid, _)| pid == id)
                                .map_or(-1, |&(_, first)| first);
                            producer
                        })
                        .collect();
                    None
                }
            };
            if let Some(error) = error {
                partition.error_code = error.code();
            }
            telemetry::record_error_code(ENTRY.name, partition.error_code);
            entry.partitions.push(partition);
        }
        response.topics.push(entry);
    }
    request.respond(&response)
}
