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
//!    INVALID_CONFIG (40) (see [`super::topic_config`]);
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use super::admin::{self, resource_type, Failure};
use super::topic_config::TopicConfigs;
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

/// KIP-339 operations of IncrementalAlterConfigs.
pub mod op {
    /// Set the value.
    pub const SET: i8 = 0;
    /// Remove the value: back to the default.
    pub const DELETE: i8 = 1;
    /// Add items to a list.
    pub const APPEND: i8 = 2;
    /// Remove items from a list.
    pub const SUBTRACT: i8 = 3;
}

/// One requested change.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The config.
    pub name: &'a str,
    /// The operation ([`op`]; always SET for AlterConfigs).
    pub op: i8,
    /// The value, `None` when the client sent null.
    pub value: Option<&'a str>,
}

/// One resource of a request.
#[derive(Clone, Debug)]
pub struct Resource<'a> {
    /// Its type ([`resource_type`]).
    pub resource_type: i8,
    /// Its name.
    pub name: &'a str,
    /// The changes.
    pub changes: Vec<Change<'a>>,
}

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

/// Applies (or with `validate_only`, checks) every resource; one outcome
/// per resource, in order. `incremental` selects KIP-339 semantics, else
/// the changes replace the topic's whole config set.
pub async fn alter(
    ctx: &GatewayContext,
    request: &ApiRequest,
    resources: &[Resource<'_>],
    incremental: bool,
    validate_only: bool,
    deadline: Instant,
) -> Vec<Result<(), Failure>> {
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for resource in resources {
        *counts
            .entry((resource.resource_type, resource.name))
            .or_default() += 1;
    }
    let mut outcomes = Vec::with_capacity(resources.len());
    for resource in resources {
        let outcome = if counts
            .get(&(resource.resource_type, resource.name))
            .copied()
            .unwrap_or(0)
            > 1
        {
            Err(Failure::new(
                ResponseError::InvalidRequest,
                "Each resource must appear at most once.",
            ))
        } else if let Err(denied) = admin::authorize_config(
            ctx,
            request,
            resource.resource_type,
            resource.name,
            crate::security::AclOperation::AlterConfigs,
        ) {
            Err(denied)
        } else {
            alter_one(ctx, resource, incremental, validate_only, deadline).await
        };
        outcomes.push(outcome);
    }
    outcomes
}

async fn alter_one(
    ctx: &GatewayContext,
    resource: &Resource<'_>,
    incremental: bool,
    validate_only: bool,
    deadline: Instant,
) -> Result<(), Failure> {
    let invalid = |message: String| Failure::new(ResponseError::InvalidRequest, message);
    let changes = &resource.changes;
    if changes
        .iter()
        .enumerate()
        .any(|(i, change)| changes[..i].iter().any(|c| c.name == change.name))
    {
        return Err(invalid("Error due to duplicate config keys".to_owned()));
    }
    let nulls: Vec<&str> = changes
        .iter()
        .filter(|change| change.value.is_none() && !(incremental && change.op == op::DELETE))
        .map(|change| change.name)
        .collect();
    if !nulls.is_empty() {
        return Err(invalid(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    let name = resource.name;
    match resource.resource_type {
        resource_type::TOPIC => {
            let configs = topic_change(ctx, resource, incremental)?;
            let stored = configs.stored()?;
            if validate_only {
                return Ok(());
            }
            let record = ControlRecord::AlterTopicConfigs {
                name: name.to_owned(),
                retention_ms: stored.retention_ms,
                retention_bytes: stored.retention_bytes,
                configs: stored.configs,
            };
            admin::apply(ctx, &record, deadline).await?;
            tracing::info!(topic = name, "altered topic configs");
            Ok(())
        }
        resource_type::BROKER => {
            if !name.is_empty() {
                let id: i32 = name.parse().map_err(|_| {
                    invalid(format!("Node id must be an integer, but it is: {name}"))
                })?;
                if id != ctx.node_id {
                    return Err(invalid(format!(
                        "Unexpected broker id, expected {}, but received {name}",
                        ctx.node_id
                    )));
                }
            }
            if let Some(change) = changes
                .iter()
                .find(|c| !(op::SET..=op::SUBTRACT).contains(&c.op))
            {
                return Err(invalid(format!("Unknown operations type {}", change.op)));
            }
            if changes.is_empty() {
                return Ok(());
            }
            let names: Vec<&str> = changes.iter().map(|change| change.name).collect();
            Err(invalid(format!(
                "Cannot update these configs dynamically: Set({})",
                names.join(", ")
            )))
        }
        other => Err(invalid(format!("Unknown resource type {other}"))),
    }
}

/// The topic's config set after the changes.
fn topic_change(
    ctx: &GatewayContext,
    resource: &Resource<'_>,
    incremental: bool,
) -> Result<TopicConfigs, Failure> {
    let name = resource.name;
    if name.is_empty() {
        return Err(Failure::new(
            ResponseError::InvalidRequest,
            "Default topic resources are not allowed.",
        ));
    }
    admin::check_topic_name(name)?;
    if admin::is_order_topic(name) {
        return Err(Failure::new(
            ResponseError::InvalidRequest,
            format!("{name} is the read-only view of the total order; it has no configs to alter."),
        ));
    }
    let topic = admin::existing(ctx, name)?;
    let mut configs = if incremental {
        TopicConfigs::of(&topic)
    } else {
        TopicConfigs::new()
    };
    for change in &resource.changes {
        let value = change.value.unwrap_or_default();
        match change.op {
            op::SET => configs.set(change.name, value)?,
            op::DELETE => configs.delete(change.name),
            op::APPEND => configs.append_or_subtract(change.name, value, true)?,
            op::SUBTRACT => configs.append_or_subtract(change.name, value, false)?,
            other => {
                return Err(Failure::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown operation type {other}"),
                ))
            }
        }
    }
    Ok(configs)
}
