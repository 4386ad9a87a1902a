//! IncrementalAlterConfigs (key 44, KIP-339): changes some configs of a
//! topic and keeps the rest.
//!
//! Operations: SET (0) validates and sets a value; DELETE (1) returns a
//! config to its default (a config that is not set, or unknown, is left
//! alone, as in Kafka); APPEND (2) and SUBTRACT (3) add or remove items of
//! a list config (`cleanup.policy` and the throttled-replica lists),
//! starting from the default when it is not set; on any other config they
//! are INVALID_CONFIG (40), "Can't APPEND to key retention.ms because its
//! type is not LIST.". An operation id outside 0..=3 is INVALID_REQUEST.
//!
//! Everything else, BROKER resources included, is shared with AlterConfigs:
//! see AlterConfigs, and [`alter`] which both run.

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::VersionRange;

use crate::api_support::admin;
use crate::api_support::config_changes::{alter, Change, Resource};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, BOOLEAN, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::IncrementalAlterConfigs,
    name: "IncrementalAlterConfigs",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const CONFIG: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT8),
    Field::always(Kind::String),
];
const RESOURCE: &[Field] = &[
    Field::always(INT8),
    Field::always(Kind::String),
    Field::always(Kind::Array(CONFIG)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(RESOURCE)), Field::always(BOOLEAN)];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request).await })
}

async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: IncrementalAlterConfigsRequest = request.decode_bounded(REQUEST)?;
    let resources: Vec<Resource<'_>> = body
        .resources
        .iter()
        .map(|resource| Resource {
            resource_type: resource.resource_type,
            name: resource.resource_name.as_str(),
            changes: resource
                .configs
                .iter()
                .map(|config| Change {
                    name: config.name.as_str(),
                    op: config.config_operation,
                    value: config.value.as_deref(),
                })
                .collect(),
        })
        .collect();
    let deadline = admin::deadline(request.received_at, 0);
    let outcomes = alter(ctx, request, &resources, true, body.validate_only, deadline).await;
    let mut response = IncrementalAlterConfigsResponse::default();
    for (resource, outcome) in body.resources.iter().zip(outcomes) {
        let (code, message) = admin::outcome(&outcome);
        telemetry::record_error_code(ENTRY.name, code);
        response.responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    request.respond(&response)
}
