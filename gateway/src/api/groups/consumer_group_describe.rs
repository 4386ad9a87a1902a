//! ConsumerGroupDescribe (key 69): a consumer-protocol group (KIP-848) as
//! its coordinator holds it: group and assignment epochs, the assignor,
//! and each member's subscription, epoch, assignment and target.
//!
//! Served v0 and v1 (v1 adds each member's type: 0 for a classic member
//! of a consumer group, 1 for a consumer-protocol member). Per group:
//! GROUP_AUTHORIZATION_FAILED (30) without DESCRIBE on it; NOT_COORDINATOR
//! (16) from a gateway that does not coordinate it; GROUP_ID_NOT_FOUND (69)
//! for an id that is no consumer group here (a classic group, or none), as
//! Kafka answers, so admin clients fall back to DescribeGroups.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups::{self, consumer};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ConsumerGroupDescribe,
    name: "ConsumerGroupDescribe",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::StringArray), Field::always(BOOLEAN)];

/// `member_type` of a member speaking the classic protocol in a consumer
/// group (v1), and of a consumer-protocol member.
const CLASSIC_MEMBER: i8 = 0;
const CONSUMER_MEMBER: i8 = 1;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: ConsumerGroupDescribeRequest = request.decode_bounded(REQUEST)?;
    let names: std::collections::HashMap<uuid::Uuid, String> = ctx
        .log
        .topics()
        .into_iter()
        .map(|topic| (uuid::Uuid::from_bytes(topic.topic_id), topic.name))
        .collect();
    let mut response = ConsumerGroupDescribeResponse::default();
    for group_id in &body.group_ids {
        let mut described = DescribedGroup::default();
        described.group_id = group_id.clone();
        described.authorized_operations = i32::MIN;
        let error = if !request.authorized(ctx, AclOperation::Describe, Resource::Group(group_id)) {
            Some((ResponseError::GroupAuthorizationFailed, None))
        } else if !groups::is_coordinator(ctx.log.as_ref(), group_id) {
            Some((ResponseError::NotCoordinator, None))
        } else if let Some(group) = ctx.groups.consumer_group(group_id) {
            describe(&mut described, &group, &names, request.version);
            None
        } else {
            Some((
                ResponseError::GroupIdNotFound,
                Some(format!(
                    "Group {} is not a consumer group.",
                    group_id.as_str()
                )),
            ))
        };
        if let Some((error, message)) = error {
            described.error_code = error.code();
            described.error_message = message.map(StrBytes::from_string);
        }
        telemetry::record_error_code(ENTRY.name, described.error_code);
        response.groups.push(described);
    }
    request.respond(&response)
}

fn describe(
    described: &mut DescribedGroup,
    group: &consumer::ConsumerGroup,
    names: &std::collections::HashMap<uuid::Uuid, String>,
    version: i16,
) {
    described.group_state = StrBytes::from_static_str(group.state_name());
    described.group_epoch = group.group_epoch;
    described.assignment_epoch = group.assignment_epoch;
    described.assignor_name = StrBytes::from_string(group.assignor.clone());
    let assignment = |assigned: &consumer::Assignment| {
        let mut assignment = Assignment::default();
        assignment.topic_partitions = assigned
            .iter()
            .map(|(topic_id, partitions)| {
                let mut topic = TopicPartitions::default();
                topic.topic_id = *topic_id;
                topic.topic_name = TopicName(StrBytes::from_string(
                    names.get(topic_id).cloned().unwrap_or_default(),
                ));
                topic.partitions = partitions.iter().copied().collect();
                topic
            })
            .collect();
        assignment
    };
    described.members = group
        .members
        .values()
        .map(|member| {
            let mut described = Member::default();
            described.member_id = StrBytes::from_string(member.id.clone());
            described.instance_id = member.instance_id.clone().map(StrBytes::from_string);
            described.rack_id = member.rack_id.clone().map(StrBytes::from_string);
            described.member_epoch = member.member_epoch;
            described.client_id = StrBytes::from_string(member.client_id.clone());
            described.client_host = StrBytes::from_string(member.client_host.clone());
            described.subscribed_topic_names = member
                .subscribed_topic_names
                .iter()
                .map(|name| TopicName(StrBytes::from_string(name.clone())))
                .collect();
            described.subscribed_topic_regex = member
                .subscribed_topic_regex
                .clone()
                .map(StrBytes::from_string);
            described.assignment = assignment(&member.assigned);
            described.target_assignment = assignment(
                group
                    .targets
                    .get(&member.id)
                    .unwrap_or(&consumer::Assignment::new()),
            );
            if version >= 1 {
                described.member_type = if member.classic.is_some() {
                    CLASSIC_MEMBER
                } else {
                    CONSUMER_MEMBER
                };
            }
            described
        })
        .collect();
}
