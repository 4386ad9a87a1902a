//! State shared by every connection and handler of one gateway.
//!
//! One [`GatewayContext`] is built at startup and handed to every handler as
//! an `Arc`. It holds what a handler needs to answer a request: who this
//! broker is (node id, advertised address), the limits it enforces, and the
//! topic defaults. Storage handles (the region accessor, the order-log index,
//! the group coordinator) join it as fields when those layers land; handlers
//! never reach for globals.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::broker_config::loggers::Loggers;
use crate::cluster::ClusterLog;
use crate::groups::{GroupConfig, GroupCoordinator};
use crate::security::SecurityConfig;
use crate::transactions::TransactionCoordinator;
use std::net::SocketAddr;
use std::time::Duration;

/// Kafka's default `message.max.bytes`: 1 MiB plus the 12-byte log overhead
/// of one record batch.
pub const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_048_588;
/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: u64 = 100 * 1024 * 1024;
/// Default cap on open client connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default cap on open connections from one client address: a quarter of
/// the total, so that one host cannot take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1024;
/// Default cap on requests in flight on one connection.
///
/// Java clients pipeline 5 requests per connection and librdkafka up to its
/// `max.in.flight` (5 with idempotence); 64 leaves room for both without
/// letting one connection hold unbounded memory.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Kafka's default `connections.max.idle.ms` (10 minutes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default time a response write may make no progress before the client
/// is taken to have stopped reading and the connection closes.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long shutdown waits for in-flight responses before closing anyway.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Default bound on the buffers of incomplete frames across all connections
/// (Kafka's `queued.max.request.bytes`, unbounded there by default): two
/// frames of the largest size, or 256 producers each sending a 1 MiB
/// batch at once.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: u64 = 256 * 1024 * 1024;
/// Default time an incomplete frame may receive no byte before its
/// connection closes.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// The address clients are told to connect to (Metadata's broker list and
/// FindCoordinator's answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedListener {
    /// Host name or IP literal, without brackets for IPv6.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl AdvertisedListener {
    /// Advertises a bound socket address as is.
    pub fn from_socket_addr(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for AdvertisedListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Limits the protocol layer enforces on every connection.
///
/// Each one bounds memory or time that a client could otherwise make the
/// gateway spend (TigerBeetle style: every queue and wait has a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request frame accepted, in bytes (Kafka's
    /// `socket.request.max.bytes`). A larger size prefix closes the
    /// connection before any of the frame is read.
    pub max_frame_bytes: usize,
    /// Largest record batch accepted by Produce, in bytes, counting the
    /// batch's 12-byte log overhead (Kafka's `message.max.bytes`), unless
    /// the dynamic broker config or the topic's `max.message.bytes` says
    /// otherwise (see [`GatewayContext::message_max_bytes`]).
    pub message_max_bytes: usize,
    /// Open connections; further clients wait in the kernel's accept
    /// backlog until one closes.
    pub max_connections: usize,
    /// Open connections from one client address; a further one is closed
    /// as soon as it is accepted (Kafka's `max.connections.per.ip`).
    pub max_connections_per_ip: usize,
    /// Requests in flight on one connection: read but whose response has
    /// not been written yet. At the limit the gateway stops reading that
    /// connection, which pushes back on the client through TCP.
    pub max_in_flight: usize,
    /// A connection with no complete request for this long is closed.
    pub idle_timeout: Duration,
    /// A connection whose response writes make no progress for this long
    /// (the client stopped reading) is closed.
    pub write_timeout: Duration,
    /// On shutdown, how long a connection may take to finish writing the
    /// responses it owes before it is closed anyway.
    pub shutdown_grace: Duration,
    /// Buffer bytes that incomplete frames of all connections may hold
    /// together (Kafka's `queued.max.request.bytes`); a connection that
    /// would pass it stops reading until other frames complete.
    pub queued_max_request_bytes: usize,
    /// An incomplete frame that receives no byte, or waits for the receive
    /// budget, for this long closes its connection (a stalled or
    /// deliberately slow client).
    pub frame_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: usize::try_from(DEFAULT_MAX_FRAME_BYTES).unwrap_or(usize::MAX),
            message_max_bytes: usize::try_from(DEFAULT_MESSAGE_MAX_BYTES).unwrap_or(usize::MAX),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            queued_max_request_bytes: usize::try_from(DEFAULT_QUEUED_MAX_REQUEST_BYTES)
                .unwrap_or(usize::MAX),
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
        }
    }
}

impl Limits {
    /// The shared budget of [`Limits::queued_max_request_bytes`].
    pub fn receive_budget(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(
            self.queued_max_request_bytes.min(Semaphore::MAX_PERMITS),
        ))
    }
}

/// Defaults for topics the gateway creates on its own (Metadata
/// auto-creation, CreateTopics without explicit counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Partitions of an auto-created topic (Kafka's `num.partitions`).
    pub partitions: i32,
    /// Copies of each batch, the region counting as one (see docs/design.md,
    /// Durability).
    pub replication_factor: i16,
    /// Whether Metadata creates unknown topics (Kafka's
    /// `auto.create.topics.enable`), unless the dynamic broker config says
    /// otherwise (see [`GatewayContext::auto_create_topics`]).
    pub auto_create: bool,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            partitions: 1,
            replication_factor: 2,
            auto_create: true,
        }
    }
}

/// Everything a handler may consult, shared by all connections.
#[derive(Clone)]
pub struct GatewayContext {
    /// The storage side: the region, the sequencer, the order index.
    pub log: Arc<dyn ClusterLog>,
    /// This broker's node id in Metadata (the gateway's region slot).
    pub node_id: i32,
    /// Cluster name; also names the default region file.
    pub cluster: String,
    /// Where clients should connect to reach this gateway.
    pub advertised: AdvertisedListener,
    /// Protocol limits.
    pub limits: Limits,
    /// Topic creation defaults.
    pub topics: TopicDefaults,
    /// The consumer groups this gateway coordinates.
    pub groups: Arc<GroupCoordinator>,
    /// The transactional ids this gateway coordinates.
    pub transactions: Arc<TransactionCoordinator>,
    /// Authorizer and TLS advertising settings (see [`crate::security`]).
    pub security: Arc<SecurityConfig>,
    /// This gateway's log levels (BROKER_LOGGER resources).
    pub loggers: Arc<Loggers>,
    /// What incomplete frames of every connection may hold together
    /// ([`Limits::queued_max_request_bytes`]).
    pub receive_budget: Arc<Semaphore>,
}

impl fmt::Debug for GatewayContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayContext")
            .field("node_id", &self.node_id)
            .field("cluster", &self.cluster)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl GatewayContext {
    /// A context with default limits and topic defaults.
    pub fn new(
        log: Arc<dyn ClusterLog>,
        cluster: impl Into<String>,
        advertised: AdvertisedListener,
    ) -> Self {
        Self {
            node_id: log.node_id(),
            log,
            cluster: cluster.into(),
            advertised,
            receive_budget: Limits::default().receive_budget(),
            limits: Limits::default(),
            topics: TopicDefaults::default(),
            groups: Arc::new(GroupCoordinator::new(GroupConfig::default())),
            transactions: Arc::new(TransactionCoordinator::default()),
            security: Arc::new(SecurityConfig::default()),
            loggers: Arc::new(Loggers::default()),
        }
    }

    /// This gateway's `message.max.bytes`: the dynamic broker config (its
    /// own, else the cluster default), else `--message-max-bytes`.
    pub fn message_max_bytes(&self) -> usize {
        self.log
            .broker_configs()
            .message_max_bytes()
            .unwrap_or(self.limits.message_max_bytes)
    }

    /// This gateway's `auto.create.topics.enable`: the dynamic broker
    /// config, else `--auto-create-topics`.
    pub fn auto_create_topics(&self) -> bool {
        self.log
            .broker_configs()
            .auto_create_topics()
            .unwrap_or(self.topics.auto_create)
    }

    /// Replaces the security settings.
    pub fn with_security(mut self, security: SecurityConfig) -> Self {
        self.security = Arc::new(security);
        self
    }

    /// Replaces the group settings (and with them the, still empty, group
    /// coordinator).
    pub fn with_group_config(mut self, config: GroupConfig) -> Self {
        self.groups = Arc::new(GroupCoordinator::new(config));
        self
    }

    /// Replaces the transaction coordinator's settings (and with them the,
    /// still idle, coordinator).
    pub fn with_transaction_config(mut self, config: crate::transactions::TxnConfig) -> Self {
        self.transactions = Arc::new(TransactionCoordinator::new(config));
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.receive_budget = limits.receive_budget();
        self.limits = limits;
        self
    }

    /// Replaces the log levels (with the subscriber's reload handle).
    pub fn with_loggers(mut self, loggers: Arc<Loggers>) -> Self {
        self.loggers = loggers;
        self
    }

    /// Replaces the topic defaults.
    pub fn with_topic_defaults(mut self, topics: TopicDefaults) -> Self {
        self.topics = topics;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_listener_brackets_ipv6_hosts() {
        let v6 = AdvertisedListener::from_socket_addr("[::1]:9092".parse().expect("literal"));
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:9092");
        let v4 = AdvertisedListener::from_socket_addr("10.0.0.7:19092".parse().expect("literal"));
        assert_eq!(v4.to_string(), "10.0.0.7:19092");
    }

    #[test]
    fn default_limits_match_kafka_defaults() {
        let limits = Limits::default();
        assert_eq!(limits.message_max_bytes, 1_048_588);
        assert_eq!(limits.max_frame_bytes, 104_857_600);
        assert_eq!(limits.idle_timeout, Duration::from_millis(600_000));
    }
}
