//! DescribeConfigs (key 32): the configs of topics and of this broker.
//!
//! - **TOPIC** resources list every topic config Kafka defines (see
//!   [`crate::api_support::topic_config`]) with the topic's value: its own
//!   (DYNAMIC_TOPIC_CONFIG), a gateway flag's (STATIC_BROKER_CONFIG, only
//!   `max.message.bytes` from `--message-max-bytes`), or Kafka's default
//!   (DEFAULT_CONFIG). An illegal name is INVALID_TOPIC_EXCEPTION (17), an
//!   unknown topic UNKNOWN_TOPIC_OR_PARTITION (3). The order topic
//!   `__cxlkafka_order` has the defaults.
//! - **BROKER** resources named by this gateway's node id list its settings
//!   (`num.partitions`, `default.replication.factor`,
//!   `auto.create.topics.enable`, `message.max.bytes`, ...) and the
//!   broker-level defaults behind the topic configs, all read-only: none
//!   can change at runtime. The cluster-wide default resource (empty name)
//!   has no dynamic defaults, so an empty list. Another node id, or a name
//!   that is not a number, is INVALID_REQUEST (42) with Kafka's message;
//!   a client asks each broker for its own configs.
//! - Any other resource type (BROKER_LOGGER included: there are no log4j
//!   loggers here) is INVALID_REQUEST, "Unsupported resource type".
//!
//! `configuration_keys` filters by name (unknown names are left out, a
//! null list means all); synonyms (v1+) and documentation (v3+) are sent
//! when asked for; the config type is sent from v3.
//!
//! [`describe_topic`] and [`describe_broker`] build the entries; CreateTopics
//! v5+ reports a new topic's configs with [`describe_topic`] too.
//!
//! [`describe_topic`]: crate::api_support::config_entries::describe_topic
//! [`describe_broker`]: crate::api_support::config_entries::describe_broker

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::api_support::admin::{self, resource_type, Failure};
use crate::api_support::config_entries::{describe_broker, describe_topic, ConfigEntry};
use crate::api_support::topic_config::TopicConfigs;
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
        let configs = described
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| wanted(entry.name))
            .map(|entry| result(entry, body.include_synonyms, body.include_documentation))
            .collect();
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

/// Every config of one resource, or why it cannot be described.
fn entries(
    ctx: &GatewayContext,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, Failure> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        resource_type::TOPIC => {
            admin::check_topic_name(name)?;
            let configs = if admin::is_order_topic(name) {
                TopicConfigs::new()
            } else {
                TopicConfigs::of(&admin::existing(ctx, name)?)
            };
            Ok(describe_topic(ctx, &configs))
        }
        resource_type::BROKER if name.is_empty() => Ok(Vec::new()),
        resource_type::BROKER => {
            let id: i32 = name.parse().map_err(|_| {
                Failure::new(
                    ResponseError::InvalidRequest,
                    format!("Broker id must be an integer, but it is: {name}"),
                )
            })?;
            if id != ctx.node_id {
                return Err(Failure::new(
                    ResponseError::InvalidRequest,
                    format!(
                        "Unexpected broker id, expected {} or empty string, but received {name}",
                        ctx.node_id
                    ),
                ));
            }
            Ok(describe_broker(ctx))
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
        resource_type::BROKER_LOGGER => "BROKER_LOGGER".to_owned(),
        16 => "CLIENT_METRICS".to_owned(),
        32 => "GROUP".to_owned(),
        other => format!("UNKNOWN ({other})"),
    }
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
