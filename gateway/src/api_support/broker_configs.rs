//! Changes to BROKER and BROKER_LOGGER config resources, with Kafka's checks
//! and messages (`ConfigAdminManager`, `DynamicBrokerConfig`,
//! `RuntimeLoggerManager`), for AlterConfigs and IncrementalAlterConfigs.
//!
//! **BROKER** (dynamic broker configs, KIP-226): the resource is this
//! gateway's node id or "" (the cluster-wide default). Only
//! [`DYNAMIC_BROKER_CONFIGS`] change at runtime, each acted on by every
//! gateway as soon as it applies the change:
//!
//! - `log.retention.ms`, `log.retention.bytes`: retention of topics
//!   without their own `retention.ms` / `retention.bytes` (applied by the
//!   retention pass of the lowest live gateway, with its values);
//! - `message.max.bytes`: the largest batch Produce accepts for topics
//!   without their own `max.message.bytes`;
//! - `auto.create.topics.enable`: whether Metadata creates unknown topics
//!   (static in Kafka; dynamic here).
//!
//! Kafka's checks, in its order: an operation id outside 0..=3 is
//! INVALID_REQUEST; APPEND and SUBTRACT are INVALID_CONFIG (none of these
//! configs is a list); any other config in the resulting set is
//! INVALID_REQUEST, "Cannot update these configs dynamically: Set(a, b)";
//! a value that breaks the config's rule (the rule of the topic config it
//! is the default of, under the broker config's name) is INVALID_REQUEST
//! with Kafka's "Invalid value ..." message, as Kafka answers it (its
//! KAFKA-13609 keeps INVALID_REQUEST rather than INVALID_CONFIG for
//! compatibility). A valid change is one
//! [`ControlRecord::AlterBrokerConfigs`] through the order log (AlterConfigs
//! replaces the resource's whole set, IncrementalAlterConfigs changes the
//! configs it names), answered once this gateway applied it.
//!
//! **BROKER_LOGGER** (KIP-412, IncrementalAlterConfigs only: AlterConfigs
//! answers "Unknown resource type 8" as Kafka does): the resource is this
//! gateway's node id; SET gives a logger one of Kafka's levels, DELETE
//! takes its change back (not for `root`); the new filter applies at once
//! on this gateway only and is not persisted (see
//! [`crate::broker_config::loggers`]).

use std::collections::BTreeSet;
use std::time::Instant;

use cxlkafka_sequencer::control::{BrokerConfigChange, ControlRecord, DEFAULT_BROKER};
use kafka_protocol::ResponseError;

use super::admin::{self, Failure};
use super::config_changes::{op, Resource};
use super::topic_config::{self, ConfigDef};
use crate::broker_config::loggers::{self, ROOT, VALID_LEVELS};
use crate::broker_config::name;
use crate::context::GatewayContext;

/// The broker configs that change at runtime, sorted by name.
pub const DYNAMIC_BROKER_CONFIGS: [&str; 4] = [
    name::AUTO_CREATE_TOPICS_ENABLE,
    name::LOG_RETENTION_BYTES,
    name::LOG_RETENTION_MS,
    name::MESSAGE_MAX_BYTES,
];

/// The dynamic broker config that gives topic config `topic_config` its
/// default, if any.
pub fn dynamic_synonym_of(topic_config: &str) -> Option<&'static str> {
    match topic_config {
        "retention.ms" => Some(name::LOG_RETENTION_MS),
        "retention.bytes" => Some(name::LOG_RETENTION_BYTES),
        "max.message.bytes" => Some(name::MESSAGE_MAX_BYTES),
        _ => None,
    }
}

/// The type and rules of dynamic config `name`.
fn definition(name: &str) -> Option<ConfigDef> {
    let of_topic = |topic_config: &str, broker_name: &'static str| {
        topic_config::find(topic_config).map(|def| def.renamed(broker_name))
    };
    match name {
        name::AUTO_CREATE_TOPICS_ENABLE => Some(ConfigDef::boolean(
            name::AUTO_CREATE_TOPICS_ENABLE,
            "true",
            "Whether Metadata creates unknown topics.",
        )),
        name::LOG_RETENTION_BYTES => of_topic("retention.bytes", name::LOG_RETENTION_BYTES),
        name::LOG_RETENTION_MS => of_topic("retention.ms", name::LOG_RETENTION_MS),
        name::MESSAGE_MAX_BYTES => of_topic("max.message.bytes", name::MESSAGE_MAX_BYTES),
        _ => None,
    }
}

fn invalid_request(message: String) -> Failure {
    Failure::new(ResponseError::InvalidRequest, message)
}

/// Kafka's rendering of a set of config names (Scala's `Set(a, b)`).
fn scala_set(names: &BTreeSet<&str>) -> String {
    let names: Vec<&str> = names.iter().copied().collect();
    format!("Set({})", names.join(", "))
}

/// Applies (or with `validate_only`, checks) the changes of one BROKER
/// resource. Null values and duplicate names were refused before.
pub async fn alter_broker(
    ctx: &GatewayContext,
    resource: &Resource<'_>,
    incremental: bool,
    validate_only: bool,
    deadline: Instant,
) -> Result<(), Failure> {
    let broker = if resource.name.is_empty() {
        DEFAULT_BROKER
    } else {
        let id: i32 = resource.name.parse().map_err(|_| {
            invalid_request(format!(
                "Node id must be an integer, but it is: {}",
                resource.name
            ))
        })?;
        if id != ctx.node_id {
            return Err(invalid_request(format!(
                "Unexpected broker id, expected {}, but received {}",
                ctx.node_id, resource.name
            )));
        }
        id
    };
    let changes = &resource.changes;
    if let Some(change) = changes
        .iter()
        .find(|change| !(op::SET..=op::SUBTRACT).contains(&change.op))
    {
        return Err(invalid_request(format!(
            "Unknown operations type {}",
            change.op
        )));
    }
    if let Some(change) = changes
        .iter()
        .find(|change| matches!(change.op, op::APPEND | op::SUBTRACT))
    {
        let verb = if change.op == op::APPEND {
            "append"
        } else {
            "subtract"
        };
        return Err(Failure::new(
            ResponseError::InvalidConfig,
            format!(
                "Config value {verb} is not allowed for config key: {}",
                change.name
            ),
        ));
    }
    // The resource's configs after the change: what Kafka validates.
    let store = ctx.log.broker_configs();
    let mut after = if !incremental {
        Default::default()
    } else if broker == DEFAULT_BROKER {
        store.cluster_default()
    } else {
        store.of_broker(broker)
    };
    for change in changes {
        match change.value.filter(|_| change.op == op::SET) {
            Some(value) => after.insert(change.name.to_owned(), value.to_owned()),
            None => after.remove(change.name),
        };
    }
    let not_dynamic: BTreeSet<&str> = after
        .keys()
        .map(String::as_str)
        .filter(|name| !DYNAMIC_BROKER_CONFIGS.contains(name))
        .collect();
    if !not_dynamic.is_empty() {
        return Err(invalid_request(format!(
            "Cannot update these configs dynamically: {}",
            scala_set(&not_dynamic)
        )));
    }
    let mut record_changes = Vec::with_capacity(changes.len());
    for change in changes {
        let value = match change.value.filter(|_| change.op == op::SET) {
            Some(raw) => {
                let def = definition(change.name).ok_or_else(|| {
                    invalid_request(format!(
                        "Cannot update these configs dynamically: Set({})",
                        change.name
                    ))
                })?;
                let value = topic_config::validate(&def, raw)
                    .map_err(|error| invalid_request(error.message))?;
                Some(value)
            }
            None => None,
        };
        record_changes.push(BrokerConfigChange {
            name: change.name.to_owned(),
            value,
        });
    }
    if validate_only || (incremental && record_changes.is_empty()) {
        return Ok(());
    }
    let record = ControlRecord::AlterBrokerConfigs {
        broker,
        replace: !incremental,
        changes: record_changes,
    };
    admin::apply(ctx, &record, deadline).await?;
    tracing::info!(
        broker = resource.name,
        ?record,
        "altered dynamic broker configs"
    );
    Ok(())
}

/// Applies (or with `validate_only`, checks) the changes of one
/// BROKER_LOGGER resource of IncrementalAlterConfigs, all or none.
pub fn alter_loggers(
    ctx: &GatewayContext,
    resource: &Resource<'_>,
    validate_only: bool,
) -> Result<(), Failure> {
    let id: i32 = resource.name.parse().map_err(|_| {
        invalid_request(format!(
            "Node id must be an integer, but it is: {}",
            resource.name
        ))
    })?;
    if id != ctx.node_id {
        return Err(invalid_request(format!(
            "Unexpected node id. Expected {}, but received {}",
            ctx.node_id, resource.name
        )));
    }
    let invalid_config = |message: String| Failure::new(ResponseError::InvalidConfig, message);
    let must_exist = |logger: &str| {
        if loggers::exists(logger) {
            Ok(())
        } else {
            Err(invalid_config(format!("Logger {logger} does not exist!")))
        }
    };
    let mut levels = Vec::with_capacity(resource.changes.len());
    for change in &resource.changes {
        let logger = change.name;
        match change.op {
            op::SET => {
                must_exist(logger)?;
                let value = change.value.unwrap_or_default();
                let level = loggers::parse_level(value).ok_or_else(|| {
                    invalid_config(format!(
                        "Cannot set the log level of {logger} to {value} as it is not a \
                         supported log level. Valid log levels are {VALID_LEVELS}"
                    ))
                })?;
                levels.push((logger, Some(level)));
            }
            op::DELETE => {
                must_exist(logger)?;
                if logger == ROOT {
                    return Err(invalid_request(format!(
                        "Removing the log level of the {ROOT} logger is not allowed"
                    )));
                }
                levels.push((logger, None));
            }
            op::APPEND => {
                return Err(invalid_request(
                    "APPEND operation is not allowed for the BROKER_LOGGER resource".to_owned(),
                ))
            }
            op::SUBTRACT => {
                return Err(invalid_request(
                    "SUBTRACT operation is not allowed for the BROKER_LOGGER resource".to_owned(),
                ))
            }
            other => {
                return Err(invalid_request(format!(
                    "Unknown operation type {other} is not allowed for the BROKER_LOGGER resource"
                )))
            }
        }
    }
    if validate_only || levels.is_empty() {
        return Ok(());
    }
    ctx.loggers
        .change(&levels)
        .map_err(|why| Failure::new(ResponseError::UnknownServerError, why))?;
    // Kafka logs a level change at WARN: it is worth seeing whatever the
    // level of this module.
    tracing::warn!(
        changes = ?levels
            .iter()
            .map(|(logger, level)| (*logger, level.map(loggers::level_name)))
            .collect::<Vec<_>>(),
        filter = %ctx.loggers.current_filter(),
        "changed log levels"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dynamic_config_has_a_definition_under_its_own_name() {
        for name in DYNAMIC_BROKER_CONFIGS {
            let def = definition(name).expect("defined");
            assert_eq!(def.name, name);
            assert!(topic_config::validate(&def, def.default).is_ok(), "{name}");
        }
        assert!(DYNAMIC_BROKER_CONFIGS.windows(2).all(|w| w[0] < w[1]));
        let def = definition("log.retention.ms").expect("defined");
        assert_eq!(
            topic_config::validate(&def, "soon")
                .expect_err("not a number")
                .message,
            "Invalid value soon for configuration log.retention.ms: Not a number of type LONG"
        );
        assert!(definition("num.partitions").is_none());
    }
}
