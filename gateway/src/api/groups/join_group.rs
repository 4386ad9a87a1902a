//! JoinGroup (key 11): a member (re)joins its group.
//!
//! Served v0 to v9. The coordinator's state machine is
//! [`crate::groups`]; this file decodes, checks that this gateway
//! coordinates the group (else NOT_COORDINATOR, 16), and answers. From v4 a
//! new member without `group.instance.id` first gets MEMBER_ID_REQUIRED
//! (79) with its id and joins again with it. A join waits (deferred: the
//! connection keeps serving) until every member has rejoined, the new
//! group's initial delay has passed, or the rebalance timeout ends the
//! phase; the leader's answer lists every member's metadata for the chosen
//! protocol, the others' an empty list. An empty group id is
//! INVALID_GROUP_ID (24).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, Responder, VersionPolicy};
use crate::error::CloseReason;
use crate::groups::{self, JoinOutcome, JoinRequest, Pending};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::JoinGroup,
    name: "JoinGroup",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const PROTOCOL: &[Field] = &[Field::always(Kind::String), Field::always(Kind::Bytes)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::since(INT32, 1),
    Field::always(Kind::String),
    Field::since(Kind::String, 5),
    Field::always(Kind::String),
    Field::always(Kind::Array(PROTOCOL)),
    Field::since(Kind::String, 8),
];

/// Beyond the rebalance timeout (and initial delay), how long a join waits
/// before answering REBALANCE_IN_PROGRESS anyway: the group's timer ends
/// every join phase well before.
const WAIT_SLACK: Duration = Duration::from_secs(5);

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: JoinGroupRequest = request.decode_bounded(REQUEST)?;
    let responder = request.responder();
    let member_id = body.member_id.to_string();
    if body.group_id.is_empty() {
        return answer(&responder, error(ResponseError::InvalidGroupId, member_id))
            .map(Reply::Ready);
    }
    if !request.authorized(ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
        return answer(
            &responder,
            error(ResponseError::GroupAuthorizationFailed, member_id),
        )
        .map(Reply::Ready);
    }
    if !groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
        return answer(&responder, error(ResponseError::NotCoordinator, member_id))
            .map(Reply::Ready);
    }
    let session_timeout = millis(body.session_timeout_ms);
    let rebalance_timeout = if request.version >= 1 {
        millis(body.rebalance_timeout_ms)
    } else {
        session_timeout
    };
    let join = JoinRequest {
        member_id: member_id.clone(),
        instance_id: body.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: request.header.client_id.as_deref().unwrap_or("").to_owned(),
        client_host: groups::client_host(&request.identity.host),
        session_timeout,
        rebalance_timeout,
        protocol_type: body.protocol_type.to_string(),
        protocols: body
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: request.version >= 4,
    };
    match ctx.groups.join(&body.group_id, join, &ctx.log) {
        Pending::Now(outcome) => answer(&responder, outcome).map(Reply::Ready),
        Pending::Wait(receiver) => {
            let limit = rebalance_timeout
                .saturating_add(ctx.groups.config().initial_rebalance_delay)
                .saturating_add(WAIT_SLACK);
            Ok(Reply::deferred(async move {
                let outcome = match tokio::time::timeout(limit, receiver).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => error(ResponseError::UnknownMemberId, member_id),
                    Err(_) => error(ResponseError::RebalanceInProgress, member_id),
                };
                answer(&responder, outcome).map(Some)
            }))
        }
    }
}

fn error(error: ResponseError, member_id: String) -> JoinOutcome {
    JoinOutcome {
        error: Some(error),
        generation: -1,
        member_id,
        ..JoinOutcome::default()
    }
}

fn text(value: String) -> StrBytes {
    StrBytes::from_string(value)
}

fn answer(
    responder: &Responder,
    outcome: JoinOutcome,
) -> Result<crate::dispatch::ResponseFrame, CloseReason> {
    let version = responder.version;
    let mut response = JoinGroupResponse::default();
    response.error_code = outcome.error.map_or(0, |e| e.code());
    telemetry::record_error_code(ENTRY.name, response.error_code);
    response.generation_id = outcome.generation;
    response.protocol_type = outcome.protocol_type.map(text).filter(|_| version >= 7);
    response.protocol_name = match outcome.protocol.map(text) {
        None if version < 7 => Some(StrBytes::default()),
        name => name,
    };
    response.leader = text(outcome.leader);
    response.skip_assignment = outcome.skip_assignment && version >= 9;
    response.member_id = text(outcome.member_id);
    response.members = outcome
        .members
        .into_iter()
        .map(
            |(member_id, instance_id, metadata): (String, Option<String>, Bytes)| {
                let mut member = JoinGroupResponseMember::default();
                member.member_id = text(member_id);
                member.group_instance_id = instance_id.map(text).filter(|_| version >= 5);
                member.metadata = metadata;
                member
            },
        )
        .collect();
    responder.frame(&response)
}
