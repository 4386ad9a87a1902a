//! Config entries as DescribeConfigs reports them, with their sources and
//! synonyms: every topic config of a topic ([`describe_topic`], which
//! CreateTopics v5+ also reports for a new topic), this gateway's broker
//! configs ([`describe_broker`]) and the cluster-wide dynamic defaults
//! ([`describe_broker_defaults`]).
//!
//! A value's synonyms follow Kafka's order, highest precedence first: the
//! topic's own value (topics only), this broker's dynamic value, the
//! cluster-wide dynamic default, a gateway flag that differs from Kafka's
//! default, Kafka's default; the first one gives the value and its source.

use super::broker_configs::{self, DYNAMIC_BROKER_CONFIGS};
use super::topic_config::{self, source, ConfigType, TopicConfigs, TOPIC_CONFIGS};
use crate::broker_config::DynamicConfigs;
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

/// The dynamic values behind one broker config: this broker's and the
/// cluster default's.
struct Dynamic<'a> {
    own: &'a DynamicConfigs,
    cluster_default: &'a DynamicConfigs,
}

impl Dynamic<'_> {
    /// `name`'s dynamic synonyms, this broker's first.
    fn synonyms(&self, name: &'static str) -> Vec<Synonym> {
        let own = self.own.get(name).map(|value| Synonym {
            name,
            value: Some(value.clone()),
            source: source::DYNAMIC_BROKER_CONFIG,
        });
        let cluster_default = self.cluster_default.get(name).map(|value| Synonym {
            name,
            value: Some(value.clone()),
            source: source::DYNAMIC_DEFAULT_BROKER_CONFIG,
        });
        own.into_iter().chain(cluster_default).collect()
    }
}

/// Every config of a topic with explicit configs `configs`, sorted by name.
pub fn describe_topic(ctx: &GatewayContext, configs: &TopicConfigs) -> Vec<ConfigEntry> {
    let store = ctx.log.broker_configs();
    let own = store.of_broker(ctx.node_id);
    let cluster_default = store.cluster_default();
    let dynamic = Dynamic {
        own: &own,
        cluster_default: &cluster_default,
    };
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
            if let Some(broker_name) = broker_configs::dynamic_synonym_of(def.name) {
                synonyms.extend(dynamic.synonyms(broker_name));
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

/// One broker config before its dynamic values: what the gateway's flags
/// and Kafka say.
struct BrokerConfig {
    name: &'static str,
    ty: ConfigType,
    /// The value without a dynamic one: the flag's, or Kafka's default
    /// (`None` for a config Kafka leaves unset, such as `log.retention.ms`).
    value: Option<String>,
    /// Kafka's default, `None` when it has none.
    kafka_default: Option<&'static str>,
    /// Configs further down the chain, with Kafka's defaults
    /// (`log.retention.hours` behind `log.retention.ms`).
    fallbacks: &'static [(&'static str, &'static str)],
    doc: &'static str,
}

impl BrokerConfig {
    /// The entry, with the dynamic values in `dynamic`.
    fn entry(self, dynamic: &Dynamic<'_>) -> ConfigEntry {
        let mut synonyms = dynamic.synonyms(self.name);
        if let Some(value) = self
            .value
            .as_ref()
            .filter(|value| Some(value.as_str()) != self.kafka_default)
        {
            synonyms.push(Synonym {
                name: self.name,
                value: Some(value.clone()),
                source: source::STATIC_BROKER_CONFIG,
            });
        }
        if let Some(default) = self.kafka_default {
            synonyms.push(Synonym {
                name: self.name,
                value: Some(default.to_owned()),
                source: source::DEFAULT_CONFIG,
            });
        }
        synonyms.extend(self.fallbacks.iter().map(|(name, default)| Synonym {
            name,
            value: Some((*default).to_owned()),
            source: source::DEFAULT_CONFIG,
        }));
        // As Kafka: synonyms of other names before this one's own go (no
        // value of `log.retention.ms` anywhere: only the entry is left).
        let own_first = synonyms
            .iter()
            .position(|synonym| synonym.name == self.name)
            .unwrap_or(synonyms.len());
        synonyms.drain(..own_first);
        let (value, source) = match synonyms.first() {
            Some(head) => (head.value.clone(), head.source),
            None => (self.value, source::DEFAULT_CONFIG),
        };
        ConfigEntry {
            name: self.name,
            value,
            source,
            read_only: !DYNAMIC_BROKER_CONFIGS.contains(&self.name),
            ty: self.ty,
            doc: self.doc,
            synonyms,
        }
    }
}

/// Every broker config this gateway describes, without dynamic values,
/// sorted by name.
fn broker_configs(ctx: &GatewayContext) -> Vec<BrokerConfig> {
    let limits = &ctx.limits;
    #[rustfmt::skip]
    let flags: Vec<(&'static str, ConfigType, String, &'static str, &'static str)> = vec![
        ("advertised.listeners", Str, format!("PLAINTEXT://{}", ctx.advertised), "",
         "Listeners published to clients (--advertised-listener)."),
        ("auto.create.topics.enable", Boolean, ctx.topics.auto_create.to_string(), "true",
         "Whether Metadata creates unknown topics (--auto-create-topics; dynamic)."),
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
         "Largest record batch accepted, with its overhead, for topics without their own \
          max.message.bytes (--message-max-bytes; dynamic)."),
        ("node.id", Int, ctx.node_id.to_string(), "-1",
         "This gateway's node id: its slot in the shared region."),
        ("num.partitions", Int, ctx.topics.partitions.to_string(), "1",
         "Partitions of a topic created without a count (--default-partitions)."),
        ("socket.request.max.bytes", Int, limits.max_frame_bytes.to_string(), "104857600",
         "Largest request frame accepted (--max-frame-bytes)."),
    ];
    let mut configs: Vec<BrokerConfig> = flags
        .into_iter()
        .map(|(name, ty, value, kafka_default, doc)| BrokerConfig {
            name,
            ty,
            value: Some(value),
            kafka_default: (!kafka_default.is_empty()).then_some(kafka_default),
            fallbacks: &[],
            doc,
        })
        .collect();
    // Kafka leaves it unset: log.retention.hours gives the default.
    configs.push(BrokerConfig {
        name: "log.retention.ms",
        ty: Long,
        value: None,
        kafka_default: None,
        fallbacks: &[("log.retention.hours", "168")],
        doc: "retention.ms of topics without their own (dynamic); unset: log.retention.hours.",
    });
    // The broker-level defaults behind the topic configs, at Kafka's values.
    for def in TOPIC_CONFIGS {
        let Some((name, default)) = def.broker_synonym else {
            continue;
        };
        if configs.iter().any(|config| config.name == name) {
            continue;
        }
        let ty = if name.ends_with(".hours") {
            Int
        } else {
            def.ty
        };
        configs.push(BrokerConfig {
            name,
            ty,
            value: Some(default.to_owned()),
            kafka_default: Some(default),
            fallbacks: &[],
            doc: def.doc,
        });
    }
    configs.sort_by_key(|config| config.name);
    configs
}

/// This gateway's broker configs (the resource named by its node id),
/// sorted by name: the dynamic ones ([`DYNAMIC_BROKER_CONFIGS`]) with their
/// dynamic values and alterable, the others read-only.
pub fn describe_broker(ctx: &GatewayContext) -> Vec<ConfigEntry> {
    let store = ctx.log.broker_configs();
    let own = store.of_broker(ctx.node_id);
    let cluster_default = store.cluster_default();
    let dynamic = Dynamic {
        own: &own,
        cluster_default: &cluster_default,
    };
    broker_configs(ctx)
        .into_iter()
        .map(|config| config.entry(&dynamic))
        .collect()
}

/// The cluster-wide dynamic defaults (the broker resource named ""): only
/// the configs set there, as Kafka lists them, without any broker's own
/// values.
pub fn describe_broker_defaults(ctx: &GatewayContext) -> Vec<ConfigEntry> {
    let cluster_default = ctx.log.broker_configs().cluster_default();
    let none = DynamicConfigs::new();
    let dynamic = Dynamic {
        own: &none,
        cluster_default: &cluster_default,
    };
    broker_configs(ctx)
        .into_iter()
        .filter(|config| cluster_default.contains_key(config.name))
        .map(|config| config.entry(&dynamic))
        .collect()
}
