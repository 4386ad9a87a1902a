//! DescribeUserScramCredentials (key 50, KIP-554): which SCRAM mechanisms
//! each user has a credential for, and their iteration counts (never the
//! salts or keys).
//!
//! As Kafka answers it: DESCRIBE on the cluster is required, else
//! CLUSTER_AUTHORIZATION_FAILED (31) at the top level; no user list (or an
//! empty one) describes every user; a named user without credentials is
//! RESOURCE_NOT_FOUND (91), a user named twice DUPLICATE_RESOURCE (92).

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, VersionPolicy};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeUserScramCredentials,
    name: "DescribeUserScramCredentials",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const USER: &[Field] = &[Field::always(Kind::String)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(USER))];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: DescribeUserScramCredentialsRequest = request.decode_bounded(REQUEST)?;
        let mut response = DescribeUserScramCredentialsResponse::default();
        if !request.authorized(&ctx, AclOperation::Describe, Resource::Cluster) {
            response.error_code = ResponseError::ClusterAuthorizationFailed.code();
            telemetry::record_error_code(ENTRY.name, response.error_code);
            return request.respond(&response);
        }
        let store = ctx.log.security();
        let names: Vec<String> = match body.users.filter(|users| !users.is_empty()) {
            None => store.users(),
            Some(users) => users.into_iter().map(|u| u.name.to_string()).collect(),
        };
        let mut times_named: HashMap<&str, usize> = HashMap::new();
        for name in &names {
            *times_named.entry(name).or_default() += 1;
        }
        let mut reported = std::collections::HashSet::new();
        for name in &names {
            if !reported.insert(name.as_str()) {
                continue;
            }
            let mut result = DescribeUserScramCredentialsResult::default();
            result.user = StrBytes::from_string(name.clone());
            let credentials = store.credentials(name);
            if times_named[name.as_str()] > 1 {
                result.error_code = ResponseError::DuplicateResource.code();
                result.error_message = Some(StrBytes::from_string(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single \
                     request: {name}"
                )));
            } else if credentials.is_empty() {
                result.error_code = ResponseError::ResourceNotFound.code();
                result.error_message = Some(StrBytes::from_string(format!(
                    "Attempt to describe a user credential that does not exist: {name}"
                )));
            } else {
                result.credential_infos = credentials
                    .iter()
                    .map(|credential| {
                        let mut info = CredentialInfo::default();
                        info.mechanism = credential.mechanism.code();
                        info.iterations = i32::try_from(credential.iterations).unwrap_or(i32::MAX);
                        info
                    })
                    .collect();
            }
            telemetry::record_error_code(ENTRY.name, result.error_code);
            response.results.push(result);
        }
        request.respond(&response)
    })
}
