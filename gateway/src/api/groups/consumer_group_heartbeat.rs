//! ConsumerGroupHeartbeat (key 68): the one request of a member of a
//! consumer-protocol group (KIP-848, `group.protocol=consumer`). It joins
//! (epoch 0), leaves (-1, or -2 for a static member), and otherwise reports
//! what the member owns and hears its assignment; the coordination is
//! [`crate::groups::consumer`].
//!
//! Served v0 and v1 (v1: the client makes its member id, KIP-1082; a v0
//! member that joins without one gets one). Answers, as Kafka's
//! coordinator does: GROUP_AUTHORIZATION_FAILED (30) without READ on the
//! group, TOPIC_AUTHORIZATION_FAILED (29) when a subscribed topic may not
//! be described; NOT_COORDINATOR (16) from a gateway that does not
//! coordinate the group; INVALID_REQUEST (42) for a missing field;
//! UNSUPPORTED_ASSIGNOR (112); INVALID_REGULAR_EXPRESSION (128);
//! GROUP_ID_NOT_FOUND (69) while the id is a classic group with members;
//! UNKNOWN_MEMBER_ID (25), FENCED_MEMBER_EPOCH (110) and
//! UNRELEASED_INSTANCE_ID (111) from the group itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups::consumer::{self, assignor};
use crate::groups::{self};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ConsumerGroupHeartbeat,
    name: "ConsumerGroupHeartbeat",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const TOPIC_PARTITIONS: &[Field] = &[
    Field::always(Kind::Fixed(16)),
    Field::always(Kind::FixedArray(4)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::String),
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::StringArray),
    Field::since(Kind::String, 1),
    Field::always(Kind::String),
    Field::always(Kind::Array(TOPIC_PARTITIONS)),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: ConsumerGroupHeartbeatRequest = request.decode_bounded(REQUEST)?;
    let mut response = ConsumerGroupHeartbeatResponse::default();
    response.member_id = Some(body.member_id.clone()).filter(|id| !id.is_empty());
    response.member_epoch = body.member_epoch;
    match answer(ctx, request, &body) {
        Ok(answer) => {
            response.member_id = Some(StrBytes::from_string(answer.member_id));
            response.member_epoch = answer.member_epoch;
            response.heartbeat_interval_ms =
                i32::try_from(answer.heartbeat_interval.as_millis()).unwrap_or(i32::MAX);
            response.assignment = answer.assignment.map(|assigned| {
                let mut assignment = Assignment::default();
                assignment.topic_partitions = assigned
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        let mut topic = TopicPartitions::default();
                        topic.topic_id = topic_id;
                        topic.partitions = partitions.into_iter().collect();
                        topic
                    })
                    .collect();
                assignment
            });
        }
        Err((error, message)) => {
            response.error_code = error.code();
            response.error_message = Some(message)
                .filter(|message| !message.is_empty())
                .map(StrBytes::from_string);
        }
    }
    telemetry::record_error_code(ENTRY.name, response.error_code);
    request.respond(&response)
}

fn answer(
    ctx: &GatewayContext,
    request: &ApiRequest,
    body: &ConsumerGroupHeartbeatRequest,
) -> Result<consumer::HeartbeatAnswer, consumer::Refusal> {
    let group_id = body.group_id.as_str();
    if !request.authorized(ctx, AclOperation::Read, Resource::Group(group_id)) {
        return Err((ResponseError::GroupAuthorizationFailed, String::new()));
    }
    if group_id.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "GroupId can't be empty.".into(),
        ));
    }
    if body.member_epoch > 0 && body.member_id.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "MemberId can't be empty.".into(),
        ));
    }
    if request.version >= 1 && body.member_id.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "MemberId can't be empty.".into(),
        ));
    }
    if body.instance_id.as_deref().is_some_and(str::is_empty) {
        return Err((
            ResponseError::InvalidRequest,
            "InstanceId can't be empty.".into(),
        ));
    }
    if let Some(name) = body.server_assignor.as_deref() {
        if !name.is_empty() && !assignor::ASSIGNORS.contains(&name) {
            return Err((
                ResponseError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: uniform, range."
                ),
            ));
        }
    }
    if let Some(names) = &body.subscribed_topic_names {
        let denied = names.iter().any(|name| {
            !request.authorized(ctx, AclOperation::Describe, Resource::Topic(name.as_str()))
        });
        if denied {
            return Err((ResponseError::TopicAuthorizationFailed, String::new()));
        }
    }
    if !groups::is_coordinator(ctx.log.as_ref(), group_id) {
        return Err((ResponseError::NotCoordinator, String::new()));
    }
    let topics: Vec<_> = ctx
        .log
        .topics()
        .into_iter()
        .filter(|topic| {
            request.authorized(ctx, AclOperation::Describe, Resource::Topic(&topic.name))
        })
        .collect();
    let heartbeat = consumer::Heartbeat {
        member_id: body.member_id.to_string(),
        member_epoch: body.member_epoch,
        instance_id: body.instance_id.as_ref().map(|id| id.to_string()),
        rack_id: body.rack_id.as_ref().map(|id| id.to_string()),
        rebalance_timeout_ms: body.rebalance_timeout_ms,
        subscribed_topic_names: body
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|name| name.to_string()).collect()),
        subscribed_topic_regex: body.subscribed_topic_regex.as_ref().map(|r| r.to_string()),
        server_assignor: body.server_assignor.as_ref().map(|name| name.to_string()),
        owned: body.topic_partitions.as_ref().map(|owned| {
            owned
                .iter()
                .map(|topic| {
                    let partitions: BTreeSet<i32> = topic.partitions.iter().copied().collect();
                    (topic.topic_id, partitions)
                })
                .collect()
        }),
        client_id: request.header.client_id.as_deref().unwrap_or("").to_owned(),
        client_host: groups::client_host(&request.identity.host),
    };
    ctx.groups.consumer_heartbeat(group_id, heartbeat, &topics)
}
