//! AlterConfigs (key 33): replaces the whole config set of a topic. Configs
//! the request leaves out go back to their defaults. The checks, shared
//! with IncrementalAlterConfigs ([`alter`]), follow Kafka's
//! `ConfigAdminManager.preprocess` and KRaft's controller, per resource:
//!
//! 1. a resource named twice: INVALID_REQUEST (42), "Each resource must
//!    appear at most once.", for both;
//! 2. a config named twice: INVALID_REQUEST, "Error due to duplicate config
//!    keys"; a null value (except for an incremental DELETE):
//!    INVALID_REQUEST, "Null value not supported for : a, b";
//! 3. **TOPIC**: an empty name is INVALID_REQUEST, an illegal one
//!    INVALID_TOPIC_EXCEPTION (17), an unknown topic
//!    UNKNOWN_TOPIC_OR_PARTITION (3), the read-only order topic
//!    INVALID_REQUEST; configs Kafka does not define and invalid values are
//!    INVALID_CONFIG (40) (see [`crate::api_support::topic_config`]);
//! 4. **BROKER**: a name other than "" or this gateway's node id is
//!    INVALID_REQUEST. No broker config can change at runtime here, so any
//!    change is INVALID_REQUEST with Kafka's message for a static config,
//!    "Cannot update these configs dynamically: Set(num.partitions)" (what
//!    Kafka answers for `num.partitions` and the other non-dynamic configs);
//!    a resource without changes succeeds;
//! 5. any other resource type (BROKER_LOGGER included): INVALID_REQUEST,
//!    "Unknown resource type 8".
//!
//! A valid topic change is one `AlterTopicConfigs` control record carrying
//! the topic's whole new config set, answered once this gateway applied it
//! (within 30 s; these requests carry no timeout). `validate_only` writes
//! nothing. Two gateways altering one topic's configs at the same instant
//! may lose one of the changes: the record replaces the set it read.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;

use crate::api_support::admin;
use crate::api_support::config_changes::{alter, op, Change, Resource};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, BOOLEAN, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::AlterConfigs,
    name: "AlterConfigs",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const CONFIG: &[Field] = &[Field::always(Kind::String), Field::always(Kind::String)];
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
    let body: AlterConfigsRequest = request.decode_bounded(REQUEST)?;
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
                    op: op::SET,
                    value: config.value.as_deref(),
                })
                .collect(),
        })
        .collect();
    let deadline = admin::deadline(request.received_at, 0);
    let outcomes = alter(
        ctx,
        request,
        &resources,
        false,
        body.validate_only,
        deadline,
    )
    .await;
    let mut response = AlterConfigsResponse::default();
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
