//! CreateAcls (key 30): adds ACL bindings.
//!
//! ALTER on the cluster is required, else every result is
//! CLUSTER_AUTHORIZATION_FAILED (31). Each binding is checked as Kafka
//! checks it ([`crate::security::acl::validate`]: a concrete resource
//! type, LITERAL or PREFIXED, a concrete operation and permission, a
//! `Type:name` principal, the cluster named `kafka-cluster`), else
//! INVALID_REQUEST (42) for that binding. The valid ones travel as one
//! [`ControlRecord::CreateAcls`] through the log and are answered once this
//! gateway applied it, so every gateway enforces them.

use std::sync::Arc;

use cxlkafka_sequencer::control::{AclRecord, ControlRecord};
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::acl_wire;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{acl, order_control, AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::CreateAcls,
    name: "CreateAcls",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(acl_wire::BINDING))];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: CreateAclsRequest = request.decode_bounded(REQUEST)?;
        let authorized = request.authorized(&ctx, AclOperation::Alter, Resource::Cluster);
        let mut outcomes: Vec<Result<(), (ResponseError, String)>> = Vec::new();
        let mut bindings = Vec::new();
        for creation in body.creations {
            let binding = AclRecord {
                resource_type: creation.resource_type as u8,
                resource_name: creation.resource_name.to_string(),
                pattern_type: creation.resource_pattern_type as u8,
                principal: creation.principal.to_string(),
                host: creation.host.to_string(),
                operation: creation.operation as u8,
                permission: creation.permission_type as u8,
            };
            let outcome = match acl_wire::refusal(authorized, || acl::validate(&binding)) {
                Some(refusal) => Err(refusal),
                None => Ok(()),
            };
            if outcome.is_ok() {
                bindings.push(binding);
            }
            outcomes.push(outcome);
        }
        let responder = request.responder();
        Ok(Reply::deferred(async move {
            let failure = if bindings.is_empty() {
                None
            } else {
                order_control(&ctx, &ControlRecord::CreateAcls { acls: bindings }).await
            };
            let mut response = CreateAclsResponse::default();
            for outcome in outcomes {
                let mut result = AclCreationResult::default();
                let refusal = match outcome {
                    Err(refusal) => Some(refusal),
                    Ok(()) => failure.map(|error| (error, error.to_string())),
                };
                if let Some((error, message)) = refusal {
                    result.error_code = error.code();
                    result.error_message = Some(StrBytes::from_string(message));
                }
                telemetry::record_error_code(ENTRY.name, result.error_code);
                response.results.push(result);
            }
            responder.frame(&response).map(Some)
        }))
    })
}
