//! LeaveGroup (key 13): members leave their group at once, without
//! waiting for their sessions to expire.
//!
//! Served v0 to v5 (v3+ names several members, each by member id and/or
//! `group.instance.id`, and answers each). Per member, as Kafka:
//! UNKNOWN_MEMBER_ID (25) for an unknown member (or group),
//! FENCED_INSTANCE_ID (82) for an instance id held by another member id.
//! Before v3 the one member's error is the response's. From a gateway that
//! does not coordinate the group: NOT_COORDINATOR (16).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::LeaveGroup,
    name: "LeaveGroup",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const MEMBER: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::String),
    Field::since(Kind::String, 5),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::new(Kind::String, 0, 2),
    Field::since(Kind::Array(MEMBER), 3),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: LeaveGroupRequest = request.decode_bounded(REQUEST)?;
    let leaving: Vec<(String, Option<String>)> = if request.version >= 3 {
        body.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|id| id.to_string()),
                )
            })
            .collect()
    } else {
        vec![(body.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    let answers = if !request.authorized(ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
        Err(ResponseError::GroupAuthorizationFailed)
    } else if groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
        ctx.groups.leave(&body.group_id, &leaving)
    } else {
        Err(ResponseError::NotCoordinator)
    };
    match answers {
        // Kafka answers these for the whole request, not per member.
        Err(error @ (ResponseError::NotCoordinator | ResponseError::GroupAuthorizationFailed)) => {
            response.error_code = error.code();
        }
        Err(error) if request.version < 3 => response.error_code = error.code(),
        Err(error) => {
            response.members = member_answers(&leaving, |_| Some(error));
        }
        Ok(errors) if request.version < 3 => {
            response.error_code = errors.first().copied().flatten().map_or(0, |e| e.code());
        }
        Ok(errors) => {
            response.members = member_answers(&leaving, |i| errors.get(i).copied().flatten());
        }
    }
    telemetry::record_error_code(ENTRY.name, response.error_code);
    for member in &response.members {
        telemetry::record_error_code(ENTRY.name, member.error_code);
    }
    request.respond(&response)
}

fn member_answers(
    leaving: &[(String, Option<String>)],
    error_of: impl Fn(usize) -> Option<ResponseError>,
) -> Vec<MemberResponse> {
    leaving
        .iter()
        .enumerate()
        .map(|(i, (member_id, instance_id))| {
            let mut answer = MemberResponse::default();
            answer.member_id = member_id.clone().into();
            answer.group_instance_id = instance_id.clone().map(Into::into);
            answer.error_code = error_of(i).map_or(0, |e| e.code());
            answer
        })
        .collect()
}
