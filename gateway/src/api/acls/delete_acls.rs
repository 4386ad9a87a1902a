//! DeleteAcls (key 31): removes every ACL binding matching each filter.
//!
//! ALTER on the cluster is required, else every filter result is
//! CLUSTER_AUTHORIZATION_FAILED (31); a filter with an unknown code is
//! INVALID_REQUEST (42). The bindings the filters match on this gateway
//! travel as one [`ControlRecord::DeleteAcls`] naming them exactly, so
//! every gateway removes the same ones; each filter's result lists what it
//! matched.

use std::collections::BTreeSet;
use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use crate::api_support::acl_wire;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{order_control, AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DeleteAcls,
    name: "DeleteAcls",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]): an array of filters.
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(acl_wire::BINDING))];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: DeleteAclsRequest = request.decode_bounded(REQUEST)?;
        let authorized = request.authorized(&ctx, AclOperation::Alter, Resource::Cluster);
        let store = ctx.log.security();
        let mut results = Vec::new();
        let mut doomed = BTreeSet::new();
        for wire in body.filters {
            let filter = acl_wire::filter_from_wire!(wire);
            let mut result = DeleteAclsFilterResult::default();
            let refusal = acl_wire::refusal(authorized, || filter.validate());
            match refusal {
                Some((error, message)) => {
                    result.error_code = error.code();
                    result.error_message = Some(StrBytes::from_string(message));
                }
                None => {
                    for binding in store.acls_matching(&filter) {
                        let mut matched = DeleteAclsMatchingAcl::default();
                        matched.resource_type = binding.resource_type as i8;
                        matched.resource_name =
                            StrBytes::from_string(binding.resource_name.clone());
                        matched.pattern_type = binding.pattern_type as i8;
                        matched.principal = StrBytes::from_string(binding.principal.clone());
                        matched.host = StrBytes::from_string(binding.host.clone());
                        matched.operation = binding.operation as i8;
                        matched.permission_type = binding.permission as i8;
                        result.matching_acls.push(matched);
                        doomed.insert(binding);
                    }
                }
            }
            results.push(result);
        }
        let responder = request.responder();
        Ok(Reply::deferred(async move {
            let failure = if doomed.is_empty() {
                None
            } else {
                let record = ControlRecord::DeleteAcls {
                    acls: doomed.into_iter().collect(),
                };
                order_control(&ctx, &record).await
            };
            let mut response = DeleteAclsResponse::default();
            for mut result in results {
                if let (Some(error), 0, false) =
                    (failure, result.error_code, result.matching_acls.is_empty())
                {
                    result.error_code = error.code();
                    result.error_message = Some(StrBytes::from_string(error.to_string()));
                    result.matching_acls.clear();
                }
                telemetry::record_error_code(ENTRY.name, result.error_code);
                response.filter_results.push(result);
            }
            responder.frame(&response).map(Some)
        }))
    })
}
