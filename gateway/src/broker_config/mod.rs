//! Broker configs that change at runtime: the dynamic configs (Kafka's
//! KIP-226) every gateway applies from the order log ([`BrokerConfigStore`])
//! and the log levels of this gateway alone ([`loggers`], Kafka's KIP-412).
//!
//! A dynamic config is set for one broker (its node id) or for all of them
//! (the cluster-wide default, the config resource named ""). A gateway's
//! value is, first found: its own dynamic value, the cluster default, its
//! flag (a STATIC_BROKER_CONFIG), Kafka's default. Changes travel as
//! [`ControlRecord::AlterBrokerConfigs`] through the order log, like offset
//! commits and ACLs: every gateway applies them in the same order when its
//! tailer reads them, and reapplies them from its segments at start (also
//! after a region rebuild, which replays the segments), so all gateways
//! agree and the configs survive restarts. The checks of a change and the
//! list of dynamic configs are in `api_support/broker_configs.rs`; this
//! store only keeps what was ordered.

pub mod loggers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::RwLock;

use crate::cluster::{control_in_region, control_in_segments};
use cxlkafka_log::layout::OrderEntry;
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::{SegmentFiles, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::control::{tag, ControlRecord, DEFAULT_BROKER};

use crate::telemetry;

/// The names of the dynamic configs the gateway acts on.
pub mod name {
    /// Whether Metadata creates unknown topics.
    pub const AUTO_CREATE_TOPICS_ENABLE: &str = "auto.create.topics.enable";
    /// `retention.bytes` of topics without their own.
    pub const LOG_RETENTION_BYTES: &str = "log.retention.bytes";
    /// `retention.ms` of topics without their own.
    pub const LOG_RETENTION_MS: &str = "log.retention.ms";
    /// `max.message.bytes` of topics without their own.
    pub const MESSAGE_MAX_BYTES: &str = "message.max.bytes";
}

/// One resource's dynamic configs, by name.
pub type DynamicConfigs = BTreeMap<String, String>;

#[derive(Default)]
struct Inner {
    /// The cluster-wide default (resource "").
    cluster_default: DynamicConfigs,
    /// Per node id. Every gateway keeps every broker's: a gateway that
    /// takes over a node id after a restart finds its own.
    brokers: BTreeMap<i32, DynamicConfigs>,
}

/// A resolved value of the hot path, as an atomic: "none" when neither
/// this broker nor the cluster default sets it.
const UNSET: i64 = i64::MIN;
const AUTO_CREATE_UNSET: u8 = 0;
const AUTO_CREATE_OFF: u8 = 1;
const AUTO_CREATE_ON: u8 = 2;

/// The dynamic broker configs of the cluster as this gateway applied them
/// from the order log. Written only by the order-log tailer (and at start);
/// read by handlers, the retention pass and every produce.
pub struct BrokerConfigStore {
    /// The broker whose values the resolved fields hold.
    node_id: i32,
    inner: RwLock<Inner>,
    /// `message.max.bytes` of this broker, resolved at every change so a
    /// produce reads one atomic rather than a lock and two maps.
    message_max_bytes: AtomicI64,
    /// `auto.create.topics.enable` of this broker, likewise.
    auto_create: AtomicU8,
}

impl Default for BrokerConfigStore {
    /// A store for node 0 (the sink's node id).
    fn default() -> Self {
        Self::new(0)
    }
}

impl std::fmt::Debug for BrokerConfigStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.read();
        f.debug_struct("BrokerConfigStore")
            .field("node_id", &self.node_id)
            .field("cluster_default", &inner.cluster_default)
            .field("brokers", &inner.brokers)
            .finish()
    }
}

/// Whether an order-log control tag is a dynamic broker config change.
pub fn is_broker_config_tag(control_tag: u16) -> bool {
    control_tag == u16::from(tag::ALTER_BROKER_CONFIGS)
}

impl BrokerConfigStore {
    /// An empty store resolving values for broker `node_id`.
    pub fn new(node_id: i32) -> Self {
        Self {
            node_id,
            inner: RwLock::default(),
            message_max_bytes: AtomicI64::new(UNSET),
            auto_create: AtomicU8::new(AUTO_CREATE_UNSET),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a broker config record; other records are ignored.
    pub fn apply(&self, record: &ControlRecord) {
        let ControlRecord::AlterBrokerConfigs {
            broker,
            replace,
            changes,
        } = record
        else {
            return;
        };
        let mut inner = self.write();
        let configs = if *broker == DEFAULT_BROKER {
            &mut inner.cluster_default
        } else {
            inner.brokers.entry(*broker).or_default()
        };
        if *replace {
            configs.clear();
        }
        for change in changes {
            match &change.value {
                Some(value) => configs.insert(change.name.clone(), value.clone()),
                None => configs.remove(&change.name),
            };
        }
        if *broker != DEFAULT_BROKER && configs.is_empty() {
            inner.brokers.remove(broker);
        }
        self.resolve(&inner);
    }

    /// Recomputes the hot-path values of this broker.
    fn resolve(&self, inner: &Inner) {
        let value = |name: &str| resolved(inner, self.node_id, name);
        let message_max_bytes = value(name::MESSAGE_MAX_BYTES)
            .and_then(|value| value.parse::<i32>().ok())
            .filter(|&bytes| bytes >= 0)
            .map_or(UNSET, i64::from);
        self.message_max_bytes
            .store(message_max_bytes, Ordering::Release);
        let auto_create = match value(name::AUTO_CREATE_TOPICS_ENABLE) {
            Some("true") => AUTO_CREATE_ON,
            Some("false") => AUTO_CREATE_OFF,
            _ => AUTO_CREATE_UNSET,
        };
        self.auto_create.store(auto_create, Ordering::Release);
    }

    /// Applies the broker config record of an order-log entry, reading its
    /// bytes from the region (the tailer's path).
    pub fn apply_order_entry<B: MemoryBackend>(&self, region: &Region<B>, entry: &OrderEntry) {
        match control_in_region(region, entry) {
            Some(record) => self.apply(&record),
            None => {
                // Recycled before this gateway read it (it lagged a whole
                // arena behind): the change is missing here until restart
                // reloads it from the segments.
                metrics::counter!(telemetry::BROKER_CONFIG_RECORDS_LOST_TOTAL).increment(1);
                tracing::warn!(
                    sequence = entry.commit,
                    "broker config change no longer readable from the region"
                );
            }
        }
    }

    /// Applies the broker config record of an entry read back from this
    /// gateway's segments at start.
    pub fn apply_stored(&self, files: &SegmentFiles, stored: &StoredEntry) {
        match control_in_segments(files, stored) {
            Some(record) => self.apply(&record),
            None => tracing::warn!(
                sequence = stored.header.sequence,
                "broker config change in the segments is unreadable"
            ),
        }
    }

    /// The broker whose values this store resolves.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The dynamic configs of broker `node_id`.
    pub fn of_broker(&self, node_id: i32) -> DynamicConfigs {
        self.read()
            .brokers
            .get(&node_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The cluster-wide default configs.
    pub fn cluster_default(&self) -> DynamicConfigs {
        self.read().cluster_default.clone()
    }

    /// This broker's `message.max.bytes`, when set dynamically.
    pub fn message_max_bytes(&self) -> Option<usize> {
        let bytes = self.message_max_bytes.load(Ordering::Acquire);
        (bytes != UNSET)
            .then(|| usize::try_from(bytes).ok())
            .flatten()
    }

    /// This broker's `auto.create.topics.enable`, when set dynamically.
    pub fn auto_create_topics(&self) -> Option<bool> {
        match self.auto_create.load(Ordering::Acquire) {
            AUTO_CREATE_ON => Some(true),
            AUTO_CREATE_OFF => Some(false),
            _ => None,
        }
    }

    /// This broker's `log.retention.ms`, when set dynamically.
    pub fn log_retention_ms(&self) -> Option<i64> {
        self.long(name::LOG_RETENTION_MS)
    }

    /// This broker's `log.retention.bytes`, when set dynamically.
    pub fn log_retention_bytes(&self) -> Option<i64> {
        self.long(name::LOG_RETENTION_BYTES)
    }

    fn long(&self, name: &str) -> Option<i64> {
        resolved(&self.read(), self.node_id, name).and_then(|value| value.parse().ok())
    }
}

/// Broker `node_id`'s dynamic value of `name`: its own, else the cluster
/// default.
fn resolved<'a>(inner: &'a Inner, node_id: i32, name: &str) -> Option<&'a str> {
    inner
        .brokers
        .get(&node_id)
        .and_then(|configs| configs.get(name))
        .or_else(|| inner.cluster_default.get(name))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxlkafka_sequencer::control::BrokerConfigChange;

    fn change(broker: i32, replace: bool, changes: &[(&str, Option<&str>)]) -> ControlRecord {
        ControlRecord::AlterBrokerConfigs {
            broker,
            replace,
            changes: changes
                .iter()
                .map(|(name, value)| BrokerConfigChange {
                    name: (*name).to_owned(),
                    value: value.map(str::to_owned),
                })
                .collect(),
        }
    }

    #[test]
    fn a_brokers_own_value_wins_over_the_cluster_default() {
        let store = BrokerConfigStore::new(1);
        assert_eq!(store.message_max_bytes(), None);
        store.apply(&change(
            DEFAULT_BROKER,
            false,
            &[
                ("message.max.bytes", Some("5000")),
                ("log.retention.ms", Some("60000")),
            ],
        ));
        assert_eq!(store.message_max_bytes(), Some(5000));
        assert_eq!(store.log_retention_ms(), Some(60_000));
        // Another broker's value is kept but not this one's.
        store.apply(&change(0, false, &[("message.max.bytes", Some("100"))]));
        assert_eq!(store.message_max_bytes(), Some(5000));
        store.apply(&change(1, false, &[("message.max.bytes", Some("7000"))]));
        assert_eq!(store.message_max_bytes(), Some(7000));
        assert_eq!(
            store
                .of_broker(0)
                .get("message.max.bytes")
                .map(String::as_str),
            Some("100")
        );
        // Deleting this broker's value falls back to the default.
        store.apply(&change(1, false, &[("message.max.bytes", None)]));
        assert_eq!(store.message_max_bytes(), Some(5000));
        assert!(store.of_broker(1).is_empty());
    }

    #[test]
    fn replace_drops_what_the_record_leaves_out() {
        let store = BrokerConfigStore::new(0);
        store.apply(&change(
            DEFAULT_BROKER,
            false,
            &[
                ("auto.create.topics.enable", Some("false")),
                ("log.retention.bytes", Some("10")),
            ],
        ));
        assert_eq!(store.auto_create_topics(), Some(false));
        store.apply(&change(
            DEFAULT_BROKER,
            true,
            &[("log.retention.bytes", Some("20"))],
        ));
        assert_eq!(store.auto_create_topics(), None);
        assert_eq!(store.log_retention_bytes(), Some(20));
        assert_eq!(store.cluster_default().len(), 1);
        assert!(is_broker_config_tag(u16::from(tag::ALTER_BROKER_CONFIGS)));
        assert!(!is_broker_config_tag(u16::from(tag::CREATE_ACLS)));
    }
}
