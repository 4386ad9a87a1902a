//! DescribeConfigs (key 32): the configs of topics and of this broker.
//!
//! - **TOPIC** resources list every topic config Kafka defines (see
//!   [`super::topic_config`]) with the topic's value: its own
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

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::admin::{self, resource_type, Failure};
use super::topic_config::{self, source, ConfigType, TopicConfigs, TOPIC_CONFIGS};
use crate::context::{GatewayContext, DEFAULT_MESSAGE_MAX_BYTES};
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::shape::{Field, Kind, BOOLEAN, INT8};
use crate::telemetry;
use ConfigType::{Boolean, Int, Long, String as Str};

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

/// One config as DescribeConfigs (and CreateTopics v5+) report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Its name.
    pub name: &'static str,
    /// Its value (`None` only for a broker config without a value).
    pub value: Option<String>,
    /// Where the value comes from ([`source`]).
    pub source: i8,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Its type.
    pub ty: ConfigType,
    /// What it does.
    pub doc: &'static str,
    /// Where it could come from, highest precedence first.
    pub synonyms: Vec<Synonym>,
}

/// A config that could supply a value, with its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synonym {
    /// The config's name.
    pub name: &'static str,
    /// Its value.
    pub value: Option<String>,
    /// Its source.
    pub source: i8,
}

/// The value a gateway flag gives a topic config's broker synonym, when it
/// differs from Kafka's default (a STATIC_BROKER_CONFIG).
fn static_broker_value(def: &topic_config::ConfigDef, ctx: &GatewayContext) -> Option<String> {
    let limit = u64::try_from(ctx.limits.message_max_bytes).unwrap_or(u64::MAX);
    (def.name == "max.message.bytes" && limit != DEFAULT_MESSAGE_MAX_BYTES)
        .then(|| ctx.limits.message_max_bytes.to_string())
}

/// Every config of a topic with explicit configs `configs`, sorted by name.
pub fn describe_topic(ctx: &GatewayContext, configs: &TopicConfigs) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(value) = configs.get(def.name) {
                synonyms.push(Synonym {
                    name: def.name,
                    value: Some(value.to_owned()),
                    source: source::DYNAMIC_TOPIC_CONFIG,
                });
            }
            if let Some((broker_name, broker_default)) = def.broker_synonym {
                if let Some(value) = static_broker_value(def, ctx) {
                    synonyms.push(Synonym {
                        name: broker_name,
                        value: Some(value),
                        source: source::STATIC_BROKER_CONFIG,
                    });
                }
                synonyms.push(Synonym {
                    name: broker_name,
                    value: Some(broker_default.to_owned()),
                    source: source::DEFAULT_CONFIG,
                });
            }
            let (value, source) = match synonyms.first() {
                // The head of the chain decides, except that a broker
                // synonym's default is stated in its own unit (hours): the
                // topic's default is then the topic config's own default.
                Some(head) if head.source != source::DEFAULT_CONFIG => {
                    (head.value.clone(), head.source)
                }
                _ => (Some(def.default.to_owned()), source::DEFAULT_CONFIG),
            };
            ConfigEntry {
                name: def.name,
                value,
                source,
                read_only: false,
                ty: def.ty,
                doc: def.doc,
                synonyms,
            }
        })
        .collect()
}

/// This gateway's own (broker) configs, sorted by name. None can be changed
/// at runtime, so all are read-only.
pub fn describe_broker(ctx: &GatewayContext) -> Vec<ConfigEntry> {
    let limits = &ctx.limits;
    #[rustfmt::skip]
    let flags: Vec<(&'static str, ConfigType, String, &'static str, &'static str)> = vec![
        ("advertised.listeners", Str, format!("PLAINTEXT://{}", ctx.advertised), "",
         "Listeners published to clients (--advertised-listener)."),
        ("auto.create.topics.enable", Boolean, ctx.topics.auto_create.to_string(), "true",
         "Whether Metadata creates unknown topics (--auto-create-topics)."),
        ("broker.id", Int, ctx.node_id.to_string(), "-1",
         "This gateway's node id: its slot in the shared region."),
        ("connections.max.idle.ms", Long, limits.idle_timeout.as_millis().to_string(), "600000",
         "Idle connections are closed after this long."),
        ("default.replication.factor", Int, ctx.topics.replication_factor.to_string(), "1",
         "Copies of each batch, the shared region counting as one (--default-replication-factor)."),
        ("delete.topic.enable", Boolean, "true".to_owned(), "true",
         "Whether DeleteTopics deletes topics."),
        ("max.connections", Int, limits.max_connections.to_string(), "2147483647",
         "Open client connections at most (--max-connections)."),
        ("message.max.bytes", Int, limits.message_max_bytes.to_string(), "1048588",
         "Largest record batch accepted, with its overhead (--message-max-bytes)."),
        ("node.id", Int, ctx.node_id.to_string(), "-1",
         "This gateway's node id: its slot in the shared region."),
        ("num.partitions", Int, ctx.topics.partitions.to_string(), "1",
         "Partitions of a topic created without a count (--default-partitions)."),
        ("socket.request.max.bytes", Int, limits.max_frame_bytes.to_string(), "104857600",
         "Largest request frame accepted (--max-frame-bytes)."),
    ];
    let mut entries: Vec<ConfigEntry> = flags
        .into_iter()
        .map(|(name, ty, value, kafka_default, doc)| {
            let mut synonyms = Vec::new();
            if value != kafka_default {
                synonyms.push(Synonym {
                    name,
                    value: Some(value.clone()),
                    source: source::STATIC_BROKER_CONFIG,
                });
            }
            if !kafka_default.is_empty() {
                synonyms.push(Synonym {
                    name,
                    value: Some(kafka_default.to_owned()),
                    source: source::DEFAULT_CONFIG,
                });
            }
            let source = synonyms
                .first()
                .map_or(source::DEFAULT_CONFIG, |s| s.source);
            ConfigEntry {
                name,
                value: Some(value),
                source,
                read_only: true,
                ty,
                doc,
                synonyms,
            }
        })
        .collect();
    // The broker-level defaults behind the topic configs, at Kafka's values.
    for def in TOPIC_CONFIGS {
        let Some((name, default)) = def.broker_synonym else {
            continue;
        };
        if entries.iter().any(|entry| entry.name == name) {
            continue;
        }
        let ty = if name.ends_with(".hours") {
            Int
        } else {
            def.ty
        };
        entries.push(ConfigEntry {
            name,
            value: Some(default.to_owned()),
            source: source::DEFAULT_CONFIG,
            read_only: true,
            ty,
            doc: def.doc,
            synonyms: vec![Synonym {
                name,
                value: Some(default.to_owned()),
                source: source::DEFAULT_CONFIG,
            }],
        });
    }
    entries.sort_by_key(|entry| entry.name);
    entries
}
