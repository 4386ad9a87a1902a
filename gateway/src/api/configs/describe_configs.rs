//! DescribeConfigs (key 32): the configs of topics and of this broker.
//!
//! - **TOPIC** resources list every topic config Kafka defines (see
//!   [`crate::api_support::topic_config`]) with the topic's value: its own
//!   (DYNAMIC_TOPIC_CONFIG), a gateway flag's (STATIC_BROKER_CONFIG, only
//!   `max.message.bytes` from `--message-max-bytes`), or Kafka's default
//!   (DEFAULT_CONFIG). An illegal name is INVALID_TOPIC_EXCEPTION (17), an
//!   unknown topic UNKNOWN_TOPIC_OR_PARTITION (3). The order topic
//!   `__cxlkafka_order` has the defaults.
//!   A topic without its own `retention.ms`, `retention.bytes` or
//!   `max.message.bytes` shows the dynamic broker config behind it
//!   (DYNAMIC_BROKER_CONFIG or DYNAMIC_DEFAULT_BROKER_CONFIG) when one is
//!   set.
//! - **BROKER** resources named by this gateway's node id list its settings
//!   (`num.partitions`, `default.replication.factor`,
//!   `auto.create.topics.enable`, `message.max.bytes`, ...) and the
//!   broker-level defaults behind the topic configs. The dynamic ones
//!   (`log.retention.ms`, `log.retention.bytes`, `message.max.bytes`,
//!   `auto.create.topics.enable`) are alterable and carry their source:
//!   DYNAMIC_BROKER_CONFIG (set for this broker), DYNAMIC_DEFAULT_BROKER_CONFIG
//!   (the cluster default), STATIC_BROKER_CONFIG (a flag), DEFAULT_CONFIG;
//!   the others are read-only. The cluster-wide default resource (empty
//!   name) lists only the dynamic defaults set. Another node id, or a name
//!   that is not a number, is INVALID_REQUEST (42) with Kafka's message; a
//!   client asks each broker for its own configs.
//! - **BROKER_LOGGER** resources named by this gateway's node id list its
//!   loggers (`root`, the crates, and any named by `--log-level` or changed
//!   since start) with their levels (`INFO`, ...), source
//!   DYNAMIC_BROKER_LOGGER_CONFIG, alterable, no synonyms, as Kafka does;
//!   an empty name, another node id or a name that is not a number is
//!   INVALID_REQUEST (see [`crate::broker_config::loggers`]).
//! - Any other resource type is INVALID_REQUEST, "Unsupported resource
//!   type".
//!
//! `configuration_keys` filters by name (unknown names are left out, a
//! null list means all); synonyms (v1+) and documentation (v3+) are sent
//! when asked for; the config type is sent from v3.
//!
//! [`describe_topic`], [`describe_broker`] and [`describe_broker_defaults`]
//! build the entries; CreateTopics v5+ reports a new topic's configs with
//! [`describe_topic`] too.
//!
//! [`describe_topic`]: crate::api_support::config_entries::describe_topic
//! [`describe_broker`]: crate::api_support::config_entries::describe_broker
//! [`describe_broker_defaults`]: crate::api_support::config_entries::describe_broker_defaults

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::api_support::admin::{self, resource_type, Failure};
use crate::api_support::config_entries::{
    describe_broker, describe_broker_defaults, describe_topic, ConfigEntry,
};
use crate::api_support::topic_config::{source, TopicConfigs};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, BOOLEAN, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes (Kafka 4 dropped v0).
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeConfigs,
    name: "DescribeConfigs",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const RESOURCE: &[Field] = &[
    Field::always(INT8),
    Field::always(Kind::String),
    Field::always(Kind::StringArray),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::Array(RESOURCE)),
    Field::always(BOOLEAN),
    Field::since(BOOLEAN, 3),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DescribeConfigsRequest = request.decode_bounded(REQUEST)?;
    let mut response = DescribeConfigsResponse::default();
    for resource in &body.resources {
        let described = admin::authorize_config(
            ctx,
            request,
            resource.resource_type,
            resource.resource_name.as_str(),
            crate::security::AclOperation::DescribeConfigs,
        )
        .and_then(|()| entries(ctx, resource));
        let (code, message) = admin::outcome(&described);
        telemetry::record_error_code(ENTRY.name, code);
        let wanted = |name: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|key| key.as_str() == name))
        };
        let configs = match described {
            Ok(Described::Configs(entries)) => entries
                .into_iter()
                .filter(|entry| wanted(entry.name))
                .map(|entry| result(entry, body.include_synonyms, body.include_documentation))
                .collect(),
            Ok(Described::Loggers(levels)) => levels
                .into_iter()
                .filter(|(logger, _)| wanted(logger))
                .map(|(logger, level)| logger_result(logger, level))
                .collect(),
            Err(_) => Vec::new(),
        };
        response.results.push(
            DescribeConfigsResult::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_configs(configs),
        );
    }
    request.respond(&response)
}

/// What one resource describes: config entries, or loggers and levels.
enum Described {
    Configs(Vec<ConfigEntry>),
    Loggers(Vec<(String, &'static str)>),
}

/// Kafka's `resourceNameToBrokerId`.
fn broker_id(name: &str) -> Result<i32, Failure> {
    name.parse().map_err(|_| {
        Failure::new(
            ResponseError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })
}

/// Every config of one resource, or why it cannot be described.
fn entries(ctx: &GatewayContext, resource: &DescribeConfigsResource) -> Result<Described, Failure> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        resource_type::TOPIC => {
            admin::check_topic_name(name)?;
            let configs = if admin::is_order_topic(name) {
                TopicConfigs::new()
            } else {
                TopicConfigs::of(&admin::existing(ctx, name)?)
            };
            Ok(Described::Configs(describe_topic(ctx, &configs)))
        }
        resource_type::BROKER if name.is_empty() => {
            Ok(Described::Configs(describe_broker_defaults(ctx)))
        }
        resource_type::BROKER => {
            if broker_id(name)? != ctx.node_id {
                return Err(Failure::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        ctx.node_id
                    ),
                ));
            }
            Ok(Described::Configs(describe_broker(ctx)))
        }
        resource_type::BROKER_LOGGER if name.is_empty() => Err(Failure::new(
            ResponseError::InvalidRequest,
            "Broker id must not be empty",
        )),
        resource_type::BROKER_LOGGER => {
            if broker_id(name)? != ctx.node_id {
                return Err(Failure::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} but received {name}",
                        ctx.node_id
                    ),
                ));
            }
            Ok(Described::Loggers(ctx.loggers.levels()))
        }
        other => Err(Failure::new(
            ResponseError::InvalidRequest,
            format!("Unsupported resource type: {}", type_name(other)),
        )),
    }
}

/// Kafka's name of a config resource type.
fn type_name(id: i8) -> String {
    match id {
        16 => "CLIENT_METRICS".to_owned(),
        32 => "GROUP".to_owned(),
        other => format!("UNKNOWN ({other})"),
    }
}

/// A logger as Kafka describes it: its level, alterable, no synonyms, no
/// type (Kafka sends UNKNOWN).
fn logger_result(logger: String, level: &'static str) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(logger))
        .with_value(Some(StrBytes::from_static_str(level)))
        .with_read_only(false)
        .with_config_source(source::DYNAMIC_BROKER_LOGGER_CONFIG)
        .with_is_sensitive(false)
}

fn result(
    entry: ConfigEntry,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let synonyms = if synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|synonym| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_static_str(synonym.name))
                    .with_value(synonym.value.map(StrBytes::from_string))
                    .with_source(synonym.source)
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(entry.name))
        .with_value(entry.value.map(StrBytes::from_string))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_config_type(entry.ty.id())
        .with_documentation(documentation.then(|| StrBytes::from_static_str(entry.doc)))
}
