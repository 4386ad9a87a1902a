//! DescribeAcls (key 29): the ACL bindings matching a filter, grouped by
//! resource pattern as Kafka groups them.
//!
//! DESCRIBE on the cluster is required, else CLUSTER_AUTHORIZATION_FAILED
//! (31) at the top level; a filter with an unknown code is INVALID_REQUEST
//! (42). Filters match as Kafka's do ([`crate::security::acl::AclFilter`]):
//! ANY matches every value, a MATCH pattern every binding that applies to
//! the named resource (literal, `*` and prefixes).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use crate::api_support::acl_wire;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, VersionPolicy};
use crate::security::{AclOperation, Resource};
use crate::shape::Field;
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 3 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeAcls,
    name: "DescribeAcls",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]): one filter.
pub const REQUEST: &[Field] = acl_wire::BINDING;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: DescribeAclsRequest = request.decode_bounded(REQUEST)?;
        let mut response = DescribeAclsResponse::default();
        let filter = acl_wire::filter_from_wire!(body);
        let refusal = acl_wire::refusal(
            request.authorized(&ctx, AclOperation::Describe, Resource::Cluster),
            || filter.validate(),
        );
        if let Some((error, message)) = refusal {
            response.error_code = error.code();
            response.error_message = Some(StrBytes::from_string(message));
            telemetry::record_error_code(ENTRY.name, response.error_code);
            return request.respond(&response);
        }
        let mut resources: BTreeMap<(u8, String, u8), Vec<AclDescription>> = BTreeMap::new();
        for binding in ctx.log.security().acls_matching(&filter) {
            let mut description = AclDescription::default();
            description.principal = StrBytes::from_string(binding.principal);
            description.host = StrBytes::from_string(binding.host);
            description.operation = binding.operation as i8;
            description.permission_type = binding.permission as i8;
            resources
                .entry((
                    binding.resource_type,
                    binding.resource_name,
                    binding.pattern_type,
                ))
                .or_default()
                .push(description);
        }
        response.resources = resources
            .into_iter()
            .map(|((resource_type, name, pattern_type), acls)| {
                let mut resource = DescribeAclsResource::default();
                resource.resource_type = resource_type as i8;
                resource.resource_name = StrBytes::from_string(name);
                resource.pattern_type = pattern_type as i8;
                resource.acls = acls;
                resource
            })
            .collect();
        request.respond(&response)
    })
}
