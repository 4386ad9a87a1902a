//! DescribeGroups (key 15): a group's state, protocol and members.
//!
//! Served v0 to v5. A group live on this gateway is described from memory
//! (member metadata and assignments only once the group has them, as
//! Kafka); a group known only by its committed offsets is `Empty`; an
//! unknown one `Dead`, without error, as Kafka answers before v6. From a
//! gateway that does not coordinate a group: NOT_COORDINATOR (16) for it.
//! Authorized operations are not computed (no ACLs): the field keeps
//! Kafka's "not requested" value.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeGroups,
    name: "DescribeGroups",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::StringArray), Field::since(BOOLEAN, 3)];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DescribeGroupsRequest = request.decode_bounded(REQUEST)?;
    let mut response = DescribeGroupsResponse::default();
    for group_id in &body.groups {
        let mut described = DescribedGroup::default();
        described.group_id = group_id.clone();
        described.authorized_operations = i32::MIN;
        if !request.authorized(ctx, AclOperation::Describe, Resource::Group(group_id)) {
            described.error_code = ResponseError::GroupAuthorizationFailed.code();
        } else if !groups::is_coordinator(ctx.log.as_ref(), group_id) {
            described.error_code = ResponseError::NotCoordinator.code();
        } else if ctx.groups.is_consumer_group(group_id) {
            described.error_code = ResponseError::GroupIdNotFound.code();
            if request.version >= 6 {
                described.error_message = Some(StrBytes::from_string(format!(
                    "Group {} is not a classic group.",
                    group_id.as_str()
                )));
            }
        } else if let Some(summary) = ctx.groups.describe(group_id) {
            described.group_state = StrBytes::from_static_str(summary.state);
            described.protocol_type = StrBytes::from_string(summary.protocol_type);
            described.protocol_data = StrBytes::from_string(summary.protocol);
            described.members = summary
                .members
                .into_iter()
                .map(|m| {
                    let mut member = DescribedGroupMember::default();
                    member.member_id = StrBytes::from_string(m.member_id);
                    member.group_instance_id = m
                        .instance_id
                        .map(StrBytes::from_string)
                        .filter(|_| request.version >= 4);
                    member.client_id = StrBytes::from_string(m.client_id);
                    member.client_host = StrBytes::from_string(m.client_host);
                    member.member_metadata = m.metadata;
                    member.member_assignment = m.assignment;
                    member
                })
                .collect();
        } else if ctx.log.committed_offsets(group_id).is_empty() {
            described.group_state = StrBytes::from_static_str("Dead");
        } else {
            described.group_state = StrBytes::from_static_str("Empty");
            described.protocol_type = StrBytes::from_static_str("consumer");
        }
        telemetry::record_error_code(ENTRY.name, described.error_code);
        response.groups.push(described);
    }
    request.respond(&response)
}
