//! FindCoordinator (key 10): which gateway coordinates a group or a
//! transactional id.
//!
//! Served v0 to v5 (v4+ batches keys in `coordinator_keys`). A GROUP key
//! (type 0) and a TRANSACTION key (type 1) are answered with their
//! coordinator, chosen by one stable hash over the gateways that hold
//! every entry (see [`crate::groups::coordinator`]); with none in view,
//! COORDINATOR_NOT_AVAILABLE (15). Any other key type is INVALID_REQUEST
//! (42), as Kafka answers unknown types.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT8};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::FindCoordinator,
    name: "FindCoordinator",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::new(Kind::String, 0, 3),
    Field::since(INT8, 1),
    Field::since(Kind::StringArray, 4),
];

/// Key types.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: FindCoordinatorRequest = request.decode_bounded(REQUEST)?;
    let keys: Vec<StrBytes> = if request.version >= 4 {
        body.coordinator_keys.clone()
    } else {
        vec![body.key.clone()]
    };
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| answer(ctx, request, key, body.key_type))
        .collect();
    for answer in &answers {
        telemetry::record_error_code(ENTRY.name, answer.error_code);
    }
    let mut response = FindCoordinatorResponse::default();
    if request.version >= 4 {
        response.coordinators = answers;
    } else if let Some(answer) = answers.into_iter().next() {
        response.error_code = answer.error_code;
        response.error_message = answer.error_message.filter(|_| request.version >= 1);
        response.node_id = answer.node_id;
        response.host = answer.host;
        response.port = answer.port;
    }
    request.respond(&response)
}

fn answer(ctx: &GatewayContext, request: &ApiRequest, key: StrBytes, key_type: i8) -> Coordinator {
    let mut answer = Coordinator::default();
    let error = match key_type {
        GROUP if !request.authorized(ctx, AclOperation::Describe, Resource::Group(&key)) => {
            Some(ResponseError::GroupAuthorizationFailed)
        }
        TRANSACTION
            if !request.authorized(
                ctx,
                AclOperation::Describe,
                Resource::TransactionalId(&key),
            ) =>
        {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        GROUP | TRANSACTION => match groups::coordinator(ctx.log.as_ref(), &key)
            // TLS clients reach the coordinator through its TLS listener.
            .and_then(|member| request.advertise(ctx, vec![member]).pop())
        {
            Some(member) => {
                answer.node_id = BrokerId(i32::from(member.gateway));
                answer.host = StrBytes::from_string(member.host);
                answer.port = i32::from(member.port);
                None
            }
            None => Some(ResponseError::CoordinatorNotAvailable),
        },
        _ => Some(ResponseError::InvalidRequest),
    };
    answer.key = key;
    if let Some(error) = error {
        answer.node_id = BrokerId(-1);
        answer.port = -1;
        answer.error_code = error.code();
        answer.error_message = Some(StrBytes::from_static_str(match error {
            ResponseError::InvalidRequest => "unknown coordinator key type",
            ResponseError::GroupAuthorizationFailed => "group authorization failed",
            ResponseError::TransactionalIdAuthorizationFailed => {
                "transactional id authorization failed"
            }
            _ => "no coordinator available",
        }));
    }
    answer
}
