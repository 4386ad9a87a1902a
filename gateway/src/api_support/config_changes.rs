//! A config change as AlterConfigs and IncrementalAlterConfigs request it,
//! and its checks and application ([`alter`]), shared by both: the checks
//! follow Kafka's `ConfigAdminManager.preprocess` and KRaft's controller,
//! in the order AlterConfigs' module documentation lists them. A valid
//! topic change is one `AlterTopicConfigs` control record carrying the
//! topic's whole new config set; broker and logger changes are
//! [`broker_configs`]'.

use std::collections::HashMap;
use std::time::Instant;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::ResponseError;

use super::admin::{self, resource_type, Failure};
use super::broker_configs;
use super::topic_config::TopicConfigs;
use crate::context::GatewayContext;
use crate::dispatch::ApiRequest;

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
            broker_configs::alter_broker(ctx, resource, incremental, validate_only, deadline).await
        }
        // Log levels change through IncrementalAlterConfigs only (Kafka's
        // legacy AlterConfigs never took BROKER_LOGGER).
        resource_type::BROKER_LOGGER if incremental => {
            broker_configs::alter_loggers(ctx, resource, validate_only)
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
