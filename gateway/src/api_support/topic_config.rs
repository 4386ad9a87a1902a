//! Topic configs as Kafka defines them, and how a topic keeps its own.
//!
//! [`TOPIC_CONFIGS`] lists every config a Kafka 3.9/4.x broker describes for
//! a topic, with Kafka's type, default, validation and broker-level synonym.
//! CreateTopics, DescribeConfigs, AlterConfigs and IncrementalAlterConfigs
//! all go through it, so a name Kafka does not know is refused the same way
//! everywhere (INVALID_CONFIG, 40, "Unknown topic config name: x") and a
//! value is validated with Kafka's rules and messages.
//!
//! # Storage
//!
//! A topic's catalog entry holds `retention.ms` and `retention.bytes` in
//! fields of their own and every other explicitly set config as
//! `key=value\n` lines, sorted by key, at most [`MAX_STORED_BYTES`] bytes
//! (the region's `TopicEntry::configs`). A set of configs whose text would
//! not fit is refused with INVALID_CONFIG before anything is written.
//! A retention value equal to Kafka's default ([`DEFAULT_RETENTION_MS`],
//! [`DEFAULT_RETENTION_BYTES`]) set explicitly also gets a line of its own
//! (`retention.ms=604800000`), so the topic keeps it when the broker's
//! dynamic `log.retention.ms` changes; a topic without either has no
//! retention of its own and follows the broker's ([`own_retention`]).
//!
//! Accepting a config is not acting on it: the gateway stores and describes
//! all of them; which ones the data path honours is up to Produce, Fetch and
//! retention (for example `cleanup.policy=compact` is accepted and reported,
//! and no compaction runs).
//!
//! # Sources
//!
//! Described values carry Kafka's config sources: DYNAMIC_TOPIC_CONFIG (1)
//! for a topic's own value, DYNAMIC_BROKER_CONFIG (2) and
//! DYNAMIC_DEFAULT_BROKER_CONFIG (3) for a dynamic broker config behind it
//! (`log.retention.ms`, `log.retention.bytes`, `message.max.bytes`, set on
//! this broker or as the cluster default), STATIC_BROKER_CONFIG (4) for a
//! gateway flag that differs from Kafka's default (`max.message.bytes`
//! follows `--message-max-bytes`), DEFAULT_CONFIG (5) otherwise. Clients
//! derive "is default" from the source.

use std::collections::BTreeMap;

use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::ResponseError;

/// Kafka's default `retention.ms` (`log.retention.hours=168`).
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Kafka's default `retention.bytes` (no limit).
pub const DEFAULT_RETENTION_BYTES: i64 = -1;
/// Room for a topic's configs other than retention in its catalog entry.
pub const MAX_STORED_BYTES: usize = 192;

/// Config sources (`ConfigEntry.ConfigSource` ids).
pub mod source {
    /// A topic's own value.
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    /// A dynamic config of this broker.
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    /// A dynamic config of every broker (the cluster-wide default).
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    /// A broker setting given at startup.
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    /// Kafka's built-in default.
    pub const DEFAULT_CONFIG: i8 = 5;
    /// A log level of this broker (BROKER_LOGGER resources).
    pub const DYNAMIC_BROKER_LOGGER_CONFIG: i8 = 6;
}

/// Kafka's config types (`ConfigEntry.ConfigType` ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    /// true or false.
    Boolean = 1,
    /// Any string (possibly restricted by the config's rule).
    String = 2,
    /// A 32-bit integer.
    Int = 3,
    /// A 64-bit integer.
    Long = 5,
    /// A floating-point number.
    Double = 6,
    /// A comma-separated list.
    List = 7,
}

impl ConfigType {
    /// The id DescribeConfigs v3+ reports.
    pub fn id(self) -> i8 {
        self as i8
    }

    fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
        }
    }
}

/// What values a config accepts beyond its type.
#[derive(Clone, Copy, Debug)]
enum Rule {
    Any,
    AtLeast(i64),
    Between(i64, i64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    Fraction,
    GzipLevel,
    ThrottledReplicas,
    /// Tiered storage: only "false" is possible here.
    RemoteStorage,
}

/// One topic config Kafka defines.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDef {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: ConfigType,
    /// Kafka's default value.
    pub default: &'static str,
    rule: Rule,
    /// The broker config that supplies the default, with Kafka's default
    /// value for it (`retention.ms` comes from `log.retention.hours=168`).
    pub broker_synonym: Option<(&'static str, &'static str)>,
    /// What it does, for DescribeConfigs v3+ `include_documentation`.
    pub doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

const fn def(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    rule: Rule,
    broker_synonym: Option<(&'static str, &'static str)>,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        ty,
        default,
        rule,
        broker_synonym,
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

/// Every topic config, sorted by name.
#[rustfmt::skip]
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def("cleanup.policy", List, "delete", Rule::ListOf(&["compact", "delete"]),
        Some(("log.cleanup.policy", "delete")),
        "What happens to old segments: \"delete\" by retention, \"compact\" by key, or both."),
    def("compression.gzip.level", Int, "-1", Rule::GzipLevel,
        Some(("compression.gzip.level", "-1")),
        "Compression level when compression.type is gzip."),
    def("compression.lz4.level", Int, "9", Rule::Between(1, 17),
        Some(("compression.lz4.level", "9")),
        "Compression level when compression.type is lz4."),
    def("compression.type", Str, "producer", Rule::OneOf(COMPRESSION_TYPES),
        Some(("compression.type", "producer")),
        "Final compression of the topic's data; \"producer\" keeps the producer's codec."),
    def("compression.zstd.level", Int, "3", Rule::Between(-131_072, 22),
        Some(("compression.zstd.level", "3")),
        "Compression level when compression.type is zstd."),
    def("delete.retention.ms", Long, "86400000", Rule::AtLeast(0),
        Some(("log.cleaner.delete.retention.ms", "86400000")),
        "How long delete tombstones are kept on compacted topics."),
    def("file.delete.delay.ms", Long, "60000", Rule::AtLeast(0),
        Some(("log.segment.delete.delay.ms", "60000")),
        "Delay before a deleted segment file is removed from disk."),
    def("flush.messages", Long, LONG_MAX, Rule::AtLeast(1),
        Some(("log.flush.interval.messages", LONG_MAX)),
        "Messages written between forced fsyncs."),
    def("flush.ms", Long, LONG_MAX, Rule::AtLeast(0),
        Some(("log.flush.scheduler.interval.ms", LONG_MAX)),
        "Time between forced fsyncs."),
    def("follower.replication.throttled.replicas", List, "", Rule::ThrottledReplicas, None,
        "Replicas whose follower replication is throttled."),
    def("index.interval.bytes", Int, "4096", Rule::AtLeast(0),
        Some(("log.index.interval.bytes", "4096")),
        "Bytes between offset index entries."),
    def("leader.replication.throttled.replicas", List, "", Rule::ThrottledReplicas, None,
        "Replicas whose leader replication is throttled."),
    def("local.retention.bytes", Long, "-2", Rule::AtLeast(-2),
        Some(("log.local.retention.bytes", "-2")),
        "Local bytes kept under tiered storage; -2 follows retention.bytes."),
    def("local.retention.ms", Long, "-2", Rule::AtLeast(-2),
        Some(("log.local.retention.ms", "-2")),
        "Local time kept under tiered storage; -2 follows retention.ms."),
    def("max.compaction.lag.ms", Long, LONG_MAX, Rule::AtLeast(1),
        Some(("log.cleaner.max.compaction.lag.ms", LONG_MAX)),
        "Longest a message stays ineligible for compaction."),
    def("max.message.bytes", Int, "1048588", Rule::AtLeast(0),
        Some(("message.max.bytes", "1048588")),
        "Largest record batch size allowed, including the batch overhead."),
    def("message.timestamp.after.max.ms", Long, LONG_MAX, Rule::AtLeast(0),
        Some(("log.message.timestamp.after.max.ms", LONG_MAX)),
        "How far in the future a CreateTime timestamp may be."),
    def("message.timestamp.before.max.ms", Long, LONG_MAX, Rule::AtLeast(0),
        Some(("log.message.timestamp.before.max.ms", LONG_MAX)),
        "How far in the past a CreateTime timestamp may be."),
    def("message.timestamp.type", Str, "CreateTime",
        Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        Some(("log.message.timestamp.type", "CreateTime")),
        "Whether record timestamps are the producer's (CreateTime) or the append time."),
    def("min.cleanable.dirty.ratio", Double, "0.5", Rule::Fraction,
        Some(("log.cleaner.min.cleanable.ratio", "0.5")),
        "Dirty fraction of the log that triggers compaction."),
    def("min.compaction.lag.ms", Long, "0", Rule::AtLeast(0),
        Some(("log.cleaner.min.compaction.lag.ms", "0")),
        "Shortest time a message stays uncompacted."),
    def("min.insync.replicas", Int, "1", Rule::AtLeast(1),
        Some(("min.insync.replicas", "1")),
        "Copies an acks=all write needs to succeed."),
    def("preallocate", Boolean, "false", Rule::Any,
        Some(("log.preallocate", "false")),
        "Whether segment files are preallocated."),
    def("remote.log.copy.disable", Boolean, "false", Rule::Any, None,
        "Stops copying segments to tiered storage."),
    def("remote.log.delete.on.disable", Boolean, "false", Rule::Any, None,
        "Deletes tiered data when tiered storage is disabled for the topic."),
    def("remote.storage.enable", Boolean, "false", Rule::RemoteStorage, None,
        "Tiered storage for the topic; this broker has none."),
    def("retention.bytes", Long, "-1", Rule::Any,
        Some(("log.retention.bytes", "-1")),
        "Largest size of a partition before old segments are deleted; -1 for no limit."),
    def("retention.ms", Long, "604800000", Rule::AtLeast(-1),
        Some(("log.retention.hours", "168")),
        "Longest time a segment is kept; -1 for no limit."),
    def("segment.bytes", Int, "1073741824", Rule::AtLeast(14),
        Some(("log.segment.bytes", "1073741824")),
        "Size of a segment file."),
    def("segment.index.bytes", Int, "10485760", Rule::AtLeast(4),
        Some(("log.index.size.max.bytes", "10485760")),
        "Size of a segment's offset index."),
    def("segment.jitter.ms", Long, "0", Rule::AtLeast(0),
        Some(("log.roll.jitter.hours", "0")),
        "Random jitter subtracted from segment.ms."),
    def("segment.ms", Long, "604800000", Rule::AtLeast(1),
        Some(("log.roll.hours", "168")),
        "Time after which a segment is rolled even if not full."),
    def("unclean.leader.election.enable", Boolean, "false", Rule::Any,
        Some(("unclean.leader.election.enable", "false")),
        "Whether an out-of-sync replica may become leader."),
];

impl ConfigDef {
    /// The same type, default and rules under the name of the broker config
    /// that supplies this topic config's default (`log.retention.ms` for
    /// `retention.ms`), so that a refused value names the config it was
    /// given for.
    pub fn renamed(&self, name: &'static str) -> ConfigDef {
        ConfigDef { name, ..*self }
    }

    /// A boolean config with no further rule (a broker config such as
    /// `auto.create.topics.enable`).
    pub const fn boolean(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        def(name, Boolean, default, Rule::Any, None, doc)
    }
}

/// The definition of topic config `name`.
pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// A refused config: the Kafka error and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// INVALID_CONFIG (40) or INVALID_REQUEST (42).
    pub error: ResponseError,
    /// Kafka's wording of the problem.
    pub message: String,
}

impl ConfigError {
    fn invalid(message: String) -> Self {
        Self {
            error: ResponseError::InvalidConfig,
            message,
        }
    }

    fn value(def: &ConfigDef, value: &str, why: impl std::fmt::Display) -> Self {
        Self::invalid(format!(
            "Invalid value {value} for configuration {}: {why}",
            def.name
        ))
    }
}

/// The definition of `name`, or Kafka's refusal of an unknown one.
pub fn lookup(name: &str) -> Result<&'static ConfigDef, ConfigError> {
    find(name).ok_or_else(|| ConfigError::invalid(format!("Unknown topic config name: {name}")))
}

/// Validates `raw` for `def` and returns the value as stored (trimmed;
/// booleans lower-cased; numbers in canonical form).
pub fn validate(def: &ConfigDef, raw: &str) -> Result<String, ConfigError> {
    let value = raw.trim();
    let not_a = || {
        ConfigError::value(
            def,
            value,
            format!("Not a number of type {}", def.ty.kafka_name()),
        )
    };
    let normalized = match def.ty {
        Boolean => match value.to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => v.to_owned(),
            _ => {
                return Err(ConfigError::value(
                    def,
                    value,
                    "Expected value to be either true or false",
                ))
            }
        },
        Int => value.parse::<i32>().map_err(|_| not_a())?.to_string(),
        Long => value.parse::<i64>().map_err(|_| not_a())?.to_string(),
        Double => {
            let number = value.parse::<f64>().map_err(|_| not_a())?;
            if !number.is_finite() {
                return Err(not_a());
            }
            value.to_owned()
        }
        Str => value.to_owned(),
        List => list_items(value).join(","),
    };
    check_rule(def, &normalized)?;
    Ok(normalized)
}

fn list_items(value: &str) -> Vec<&str> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

fn check_rule(def: &ConfigDef, value: &str) -> Result<(), ConfigError> {
    let number = || value.parse::<i64>().unwrap_or(0);
    match def.rule {
        Rule::Any => Ok(()),
        Rule::AtLeast(min) if number() < min => Err(ConfigError::value(
            def,
            value,
            format!("Value must be at least {min}"),
        )),
        Rule::Between(min, _) if number() < min => Err(ConfigError::value(
            def,
            value,
            format!("Value must be at least {min}"),
        )),
        Rule::Between(_, max) if number() > max => Err(ConfigError::value(
            def,
            value,
            format!("Value must be no more than {max}"),
        )),
        Rule::AtLeast(_) | Rule::Between(..) => Ok(()),
        Rule::GzipLevel => match number() {
            -1 | 1..=9 => Ok(()),
            _ => Err(ConfigError::value(
                def,
                value,
                "Value must be between 1 and 9, or equal to -1",
            )),
        },
        Rule::OneOf(allowed) | Rule::ListOf(allowed) => {
            let items = match def.rule {
                Rule::ListOf(_) => list_items(value),
                _ => vec![value],
            };
            match items.into_iter().find(|item| !allowed.contains(item)) {
                Some(item) => Err(ConfigError::value(
                    def,
                    item,
                    format!("String must be one of: {}", allowed.join(", ")),
                )),
                None => Ok(()),
            }
        }
        Rule::Fraction => {
            let ratio = value.parse::<f64>().unwrap_or(-1.0);
            if ratio < 0.0 {
                Err(ConfigError::value(def, value, "Value must be at least 0.0"))
            } else if ratio > 1.0 {
                Err(ConfigError::value(
                    def,
                    value,
                    "Value must be no more than 1.0",
                ))
            } else {
                Ok(())
            }
        }
        Rule::ThrottledReplicas => {
            let pair = |item: &str| {
                item.split_once(':').is_some_and(|(partition, broker)| {
                    partition.trim().parse::<i32>().is_ok() && broker.trim().parse::<i32>().is_ok()
                })
            };
            let items = list_items(value);
            if items == ["*"] || items.iter().all(|item| pair(item)) {
                Ok(())
            } else {
                Err(ConfigError::value(
                    def,
                    value,
                    format!(
                        "{} must be the literal '*' or a list of replicas in the following \
                         format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                        def.name
                    ),
                ))
            }
        }
        Rule::RemoteStorage if value == "true" => Err(ConfigError::invalid(
            "Tiered Storage functionality is disabled in the broker. Topic cannot be \
             configured with remote log storage."
                .to_owned(),
        )),
        Rule::RemoteStorage => Ok(()),
    }
}

/// The value `topic` stores for config `name` among its configs' lines
/// (not `retention.*`, which have fields of their own), read without
/// building a [`TopicConfigs`]: the produce path asks for
/// `max.message.bytes`.
pub fn stored_value<'a>(topic: &'a Topic, name: &str) -> Option<&'a str> {
    topic
        .configs
        .lines()
        .find_map(|line| line.split_once('=').filter(|(key, _)| *key == name))
        .map(|(_, value)| value)
}

/// Whether `topic` has a value of its own for `retention.ms` or
/// `retention.bytes` (`name`): a stored field other than Kafka's default, or
/// the default set explicitly (its own line in the configs). Without one,
/// the broker's dynamic `log.retention.*` applies.
pub fn own_retention(topic: &Topic, name: &str) -> bool {
    let (field, default) = match name {
        "retention.ms" => (topic.retention_ms, DEFAULT_RETENTION_MS),
        "retention.bytes" => (topic.retention_bytes, DEFAULT_RETENTION_BYTES),
        _ => return false,
    };
    field != default || stored_value(topic, name).is_some()
}

/// The catalog form of a topic's configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// `retention.ms`.
    pub retention_ms: i64,
    /// `retention.bytes`.
    pub retention_bytes: i64,
    /// Every other explicit config as `key=value\n` lines.
    pub configs: String,
}

/// A topic's explicitly set configs (Kafka's dynamic topic configs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicConfigs {
    values: BTreeMap<&'static str, String>,
}

impl TopicConfigs {
    /// No explicit config: every value is the default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The explicit configs of a catalog topic. Lines naming configs this
    /// gateway does not know are skipped.
    pub fn of(topic: &Topic) -> Self {
        let mut values = BTreeMap::new();
        for line in topic.configs.lines() {
            if let Some((def, value)) = line
                .split_once('=')
                .and_then(|(key, value)| Some((find(key)?, value)))
            {
                values.insert(def.name, value.to_owned());
            }
        }
        for (name, field, default) in [
            ("retention.ms", topic.retention_ms, DEFAULT_RETENTION_MS),
            (
                "retention.bytes",
                topic.retention_bytes,
                DEFAULT_RETENTION_BYTES,
            ),
        ] {
            if field != default {
                values.insert(name, field.to_string());
            }
        }
        Self { values }
    }

    /// The explicit value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The explicit configs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
    }

    /// Sets `name` to `raw` after validating both.
    pub fn set(&mut self, name: &str, raw: &str) -> Result<(), ConfigError> {
        let def = lookup(name)?;
        let value = validate(def, raw)?;
        self.values.insert(def.name, value);
        Ok(())
    }

    /// Removes the explicit value of `name`, which falls back to its
    /// default. Removing a name that is not set (or not a config) changes
    /// nothing, as in Kafka.
    pub fn delete(&mut self, name: &str) {
        self.values.retain(|key, _| *key != name);
    }

    /// KIP-339 APPEND (`append = true`) or SUBTRACT on a list config: the
    /// current list (or the default) with the given items added when absent,
    /// or removed. Any other config is INVALID_CONFIG with KRaft's message.
    pub fn append_or_subtract(
        &mut self,
        name: &str,
        raw: &str,
        append: bool,
    ) -> Result<(), ConfigError> {
        let Some(def) = find(name).filter(|def| def.ty == List) else {
            let op = if append { "APPEND" } else { "SUBTRACT" };
            return Err(ConfigError::invalid(format!(
                "Can't {op} to key {name} because its type is not LIST."
            )));
        };
        let current = self.get(def.name).unwrap_or(def.default).to_owned();
        let mut items: Vec<&str> = list_items(&current);
        let given = list_items(raw);
        if append {
            for item in given {
                if !items.contains(&item) {
                    items.push(item);
                }
            }
        } else {
            items.retain(|item| !given.contains(item));
        }
        let joined = items.join(",");
        self.set(def.name, &joined)
    }

    /// Checks the rules that relate two configs, as Kafka's `LogConfig`
    /// does.
    pub fn check_consistency(&self) -> Result<(), ConfigError> {
        let long = |name: &str| {
            self.get(name)
                .or_else(|| find(name).map(|def| def.default))
                .and_then(|value| value.parse::<i64>().ok())
        };
        if let (Some(min), Some(max)) =
            (long("min.compaction.lag.ms"), long("max.compaction.lag.ms"))
        {
            if min > max {
                return Err(ConfigError::invalid(format!(
                    "conflict topic config setting min.compaction.lag.ms ({min}) > \
                     max.compaction.lag.ms ({max})"
                )));
            }
        }
        Ok(())
    }

    /// The catalog form, or INVALID_CONFIG if the text does not fit.
    pub fn stored(&self) -> Result<Stored, ConfigError> {
        self.check_consistency()?;
        let long = |name: &str, default: i64| {
            self.get(name)
                .and_then(|value| value.parse::<i64>().ok())
                .unwrap_or(default)
        };
        // Retention travels in fields of its own; a line only marks a
        // value equal to the default as explicit (see `own_retention`).
        let configs: String = self
            .values
            .iter()
            .filter(|(name, _)| match **name {
                "retention.ms" => long(name, DEFAULT_RETENTION_MS) == DEFAULT_RETENTION_MS,
                "retention.bytes" => long(name, DEFAULT_RETENTION_BYTES) == DEFAULT_RETENTION_BYTES,
                _ => true,
            })
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect();
        if configs.len() > MAX_STORED_BYTES {
            return Err(ConfigError::invalid(format!(
                "The topic's configs other than retention.ms and retention.bytes (unless set to \
                 their defaults) take {} bytes; this cluster stores at most {MAX_STORED_BYTES} per \
                 topic",
                configs.len()
            )));
        }
        Ok(Stored {
            retention_ms: long("retention.ms", DEFAULT_RETENTION_MS),
            retention_bytes: long("retention.bytes", DEFAULT_RETENTION_BYTES),
            configs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(retention_ms: i64, configs: &str) -> Topic {
        Topic {
            slot: 0,
            name: "t".into(),
            topic_id: [1; 16],
            partitions: 1,
            retention_ms,
            retention_bytes: DEFAULT_RETENTION_BYTES,
            configs: configs.into(),
            replication_factor: 2,
            changed_at: 1,
        }
    }

    #[test]
    fn the_table_is_sorted_unique_and_its_defaults_are_valid() {
        for pair in TOPIC_CONFIGS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for def in TOPIC_CONFIGS {
            assert_eq!(
                validate(def, def.default).as_deref(),
                Ok(def.default),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn values_are_validated_with_kafkas_rules_and_messages() {
        let error = |name: &str, value: &str| {
            validate(lookup(name).expect("known"), value)
                .expect_err("refused")
                .message
        };
        assert_eq!(
            error("retention.ms", "soon"),
            "Invalid value soon for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            error("retention.ms", "-2"),
            "Invalid value -2 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            error("cleanup.policy", "compact,shred"),
            "Invalid value shred for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert!(error("message.timestamp.type", "createtime").contains("CreateTime, LogAppendTime"));
        assert!(error("min.cleanable.dirty.ratio", "1.5").contains("no more than 1.0"));
        assert!(error("compression.gzip.level", "0").contains("between 1 and 9"));
        assert!(error("preallocate", "yes").contains("either true or false"));
        assert!(error("leader.replication.throttled.replicas", "0-1").contains("literal '*'"));
        assert!(error("remote.storage.enable", "true").contains("Tiered Storage"));
        assert_eq!(
            lookup("retention.hours").expect_err("unknown").message,
            "Unknown topic config name: retention.hours"
        );
        let def = lookup("cleanup.policy").expect("known");
        assert_eq!(
            validate(def, " compact , delete ").as_deref(),
            Ok("compact,delete")
        );
        assert_eq!(
            validate(lookup("preallocate").expect("known"), "TRUE").as_deref(),
            Ok("true")
        );
    }

    #[test]
    fn configs_round_trip_through_the_catalog_form() {
        let mut configs = TopicConfigs::new();
        configs.set("retention.ms", "1000").expect("valid");
        configs.set("cleanup.policy", "compact").expect("valid");
        configs.set("min.insync.replicas", "2").expect("valid");
        let stored = configs.stored().expect("fits");
        assert_eq!(stored.retention_ms, 1000);
        assert_eq!(stored.retention_bytes, -1);
        assert_eq!(
            stored.configs,
            "cleanup.policy=compact\nmin.insync.replicas=2\n"
        );
        let mut back = topic(stored.retention_ms, &stored.configs);
        back.retention_bytes = stored.retention_bytes;
        assert_eq!(TopicConfigs::of(&back), configs);
        assert_eq!(
            TopicConfigs::of(&topic(DEFAULT_RETENTION_MS, "")),
            TopicConfigs::new()
        );
    }

    #[test]
    fn retention_set_to_the_default_stays_the_topics_own() {
        let mut configs = TopicConfigs::new();
        configs.set("retention.ms", "604800000").expect("valid");
        let stored = configs.stored().expect("fits");
        assert_eq!(stored.retention_ms, DEFAULT_RETENTION_MS);
        assert_eq!(stored.configs, "retention.ms=604800000\n");
        let back = topic(stored.retention_ms, &stored.configs);
        assert_eq!(TopicConfigs::of(&back), configs);
        assert!(own_retention(&back, "retention.ms"));
        assert!(!own_retention(&back, "retention.bytes"));
        let plain = topic(DEFAULT_RETENTION_MS, "cleanup.policy=compact\n");
        assert!(!own_retention(&plain, "retention.ms"));
        assert!(own_retention(&topic(1000, ""), "retention.ms"));
    }

    #[test]
    fn text_beyond_the_catalog_room_is_refused() {
        let mut configs = TopicConfigs::new();
        for (name, value) in [
            (
                "follower.replication.throttled.replicas",
                "0:1,1:2,2:3,3:4,4:5,5:6,6:7,7:8",
            ),
            (
                "leader.replication.throttled.replicas",
                "0:1,1:2,2:3,3:4,4:5,5:6,6:7,7:8",
            ),
            ("message.timestamp.type", "LogAppendTime"),
            ("compression.type", "uncompressed"),
        ] {
            configs.set(name, value).expect("valid");
        }
        let error = configs.stored().expect_err("too long");
        assert_eq!(error.error, ResponseError::InvalidConfig);
        assert!(error.message.contains("at most 192"), "{}", error.message);
    }

    #[test]
    fn append_and_subtract_work_on_lists_only() {
        let mut configs = TopicConfigs::new();
        configs
            .append_or_subtract("cleanup.policy", "compact", true)
            .expect("list");
        assert_eq!(configs.get("cleanup.policy"), Some("delete,compact"));
        configs
            .append_or_subtract("cleanup.policy", "delete", false)
            .expect("list");
        assert_eq!(configs.get("cleanup.policy"), Some("compact"));
        let error = configs
            .append_or_subtract("retention.ms", "5", true)
            .expect_err("not a list");
        assert_eq!(
            error.message,
            "Can't APPEND to key retention.ms because its type is not LIST."
        );
        configs.delete("retention.ms");
        configs.delete("no.such.config");
        assert_eq!(configs.get("cleanup.policy"), Some("compact"));
        configs.set("min.compaction.lag.ms", "10").expect("valid");
        configs.set("max.compaction.lag.ms", "5").expect("valid");
        assert!(configs
            .stored()
            .expect_err("conflict")
            .message
            .contains("conflict"));
    }
}
