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

use crate::api_support::acl_wire;
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
        // Each creation's refusal, if it has one.
        let mut refusals: Vec<Option<(ResponseError, String)>> = Vec::new();
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
            let refusal = acl_wire::refusal(authorized, || acl::validate(&binding));
            if refusal.is_none() {
                bindings.push(binding);
            }
            refusals.push(refusal);
        }
        let responder = request.responder();
        Ok(Reply::deferred(async move {
            let failure = if bindings.is_empty() {
                None
            } else {
                order_control(&ctx, &ControlRecord::CreateAcls { acls: bindings }).await
            };
            let mut response = CreateAclsResponse::default();
            for refusal in refusals {
                let mut result = AclCreationResult::default();
                // An accepted creation fails with the control record.
                let refusal = refusal.or_else(|| failure.map(|error| (error, error.to_string())));
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
