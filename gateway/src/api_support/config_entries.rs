//! Config entries as DescribeConfigs reports them, with their sources and
//! synonyms: every topic config of a topic ([`describe_topic`], which
//! CreateTopics v5+ also reports for a new topic) and this gateway's own
//! broker configs ([`describe_broker`]).

use super::topic_config::{self, source, ConfigType, TopicConfigs, TOPIC_CONFIGS};
use crate::context::{GatewayContext, DEFAULT_MESSAGE_MAX_BYTES};
use ConfigType::{Boolean, Int, Long, String as Str};

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
