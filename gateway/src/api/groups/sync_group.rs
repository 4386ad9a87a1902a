//! SyncGroup (key 14): the leader hands out assignments; every member gets
//! its own.
//!
//! Served v0 to v5. Assignments are opaque bytes, passed through as the
//! leader sent them (eager and cooperative assignors alike). A follower's
//! SyncGroup waits (deferred) for the leader's; a new rebalance meanwhile
//! answers REBALANCE_IN_PROGRESS (27). Errors as Kafka's coordinator:
//! NOT_COORDINATOR (16), UNKNOWN_MEMBER_ID (25), ILLEGAL_GENERATION (22),
//! FENCED_INSTANCE_ID (82), INCONSISTENT_GROUP_PROTOCOL (23) when v5's
//! protocol type or name differ from the group's.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, Responder, VersionPolicy};
use crate::error::CloseReason;
use crate::groups::{self, Pending, SyncOutcome};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::SyncGroup,
    name: "SyncGroup",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const ASSIGNMENT: &[Field] = &[Field::always(Kind::String), Field::always(Kind::Bytes)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::String),
    Field::since(Kind::String, 3),
    Field::since(Kind::String, 5),
    Field::since(Kind::String, 5),
    Field::always(Kind::Array(ASSIGNMENT)),
];

/// The longest a follower waits for the leader's assignment. The leader's
/// session expiring ends the wait sooner (a new rebalance).
const WAIT_LIMIT: Duration = Duration::from_secs(60);

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: SyncGroupRequest = request.decode_bounded(REQUEST)?;
    let responder = request.responder();
    if !request.authorized(ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
        return answer(&responder, failed(ResponseError::GroupAuthorizationFailed))
            .map(Reply::Ready);
    }
    if !groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
        return answer(&responder, failed(ResponseError::NotCoordinator)).map(Reply::Ready);
    }
    let assignments = body
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let pending = ctx.groups.sync(
        &body.group_id,
        &body.member_id,
        body.group_instance_id.as_deref(),
        body.generation_id,
        body.protocol_type.as_deref(),
        body.protocol_name.as_deref(),
        assignments,
    );
    match pending {
        Pending::Now(outcome) => answer(&responder, outcome).map(Reply::Ready),
        Pending::Wait(receiver) => Ok(Reply::deferred(async move {
            let outcome = match tokio::time::timeout(WAIT_LIMIT, receiver).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => failed(ResponseError::UnknownMemberId),
                Err(_) => failed(ResponseError::RebalanceInProgress),
            };
            answer(&responder, outcome).map(Some)
        })),
    }
}

fn failed(error: ResponseError) -> SyncOutcome {
    SyncOutcome {
        error: Some(error),
        ..SyncOutcome::default()
    }
}

fn answer(
    responder: &Responder,
    outcome: SyncOutcome,
) -> Result<crate::dispatch::ResponseFrame, CloseReason> {
    let mut response = SyncGroupResponse::default();
    response.error_code = outcome.error.map_or(0, |e| e.code());
    telemetry::record_error_code(ENTRY.name, response.error_code);
    if responder.version >= 5 {
        response.protocol_type = outcome.protocol_type.map(StrBytes::from_string);
        response.protocol_name = outcome.protocol.map(StrBytes::from_string);
    }
    response.assignment = outcome.assignment;
    responder.frame(&response)
}
