//! Heartbeat (key 12): a group member's sign of life.
//!
//! Served v0 to v4. Answers, as Kafka's coordinator does: NOT_COORDINATOR
//! (16) from a gateway that does not coordinate the group; UNKNOWN_MEMBER_ID
//! (25) for an unknown group or member; FENCED_INSTANCE_ID (82) for a static
//! member replaced by a newer one; ILLEGAL_GENERATION (22) for another
//! generation; REBALANCE_IN_PROGRESS (27) while the group waits for its
//! members to rejoin (the heartbeat still counts).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::Heartbeat,
    name: "Heartbeat",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::always(Kind::String),
    Field::since(Kind::String, 3),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: HeartbeatRequest = request.decode_bounded(REQUEST)?;
    let error = if !request.authorized(ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else if !groups::is_coordinator(ctx.log.as_ref(), &body.group_id) {
        Some(ResponseError::NotCoordinator)
    } else if let Some(answer) = ctx.groups.classic_heartbeat_consumer_group(
        &body.group_id,
        &body.member_id,
        body.generation_id,
        || ctx.log.topics(),
    ) {
        answer
    } else {
        ctx.groups.heartbeat(
            &body.group_id,
            &body.member_id,
            body.group_instance_id.as_deref(),
            body.generation_id,
        )
    };
    let mut response = HeartbeatResponse::default();
    response.error_code = error.map_or(0, |e| e.code());
    telemetry::record_error_code(ENTRY.name, response.error_code);
    request.respond(&response)
}
