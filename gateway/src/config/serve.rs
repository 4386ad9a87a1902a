//! From parsed `serve` flags to what the gateway runs with: the region
//! settings, the cluster options, the limits and the shared
//! [`GatewayContext`]; [`ConfigError`] for flags that parse but cannot be
//! used; and [`ServeArgs`]'s `Default`, the flags' defaults without the
//! environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::EnvFilter;

use super::cli::{LogFormat, MemoryBackendKind, ServeArgs};
use super::values::{duration_ms, ByteSize, PeerListen};
use crate::cluster::{slot_for_node_id, ClusterLog, ClusterOptions, RegionSettings};
use crate::context::{
    AdvertisedListener, GatewayContext, Limits, TopicDefaults, DEFAULT_FRAME_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MESSAGE_MAX_BYTES,
    DEFAULT_QUEUED_MAX_REQUEST_BYTES, DEFAULT_WRITE_TIMEOUT,
};
use crate::groups::GroupConfig;

/// A configuration that parses but cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A size does not fit the Kafka field that carries it.
    #[error("--{flag} is {value}, above the protocol's maximum of {max} bytes")]
    SizeTooLarge {
        /// The flag's name.
        flag: &'static str,
        /// The configured size.
        value: ByteSize,
        /// The largest allowed.
        max: u64,
    },
    /// The node id is not a region slot.
    #[error("--node-id: {0}")]
    NodeId(String),
    /// A size of zero would reject every request.
    #[error("--{flag} must be above zero")]
    SizeZero {
        /// The flag's name.
        flag: &'static str,
    },
    /// The cluster name cannot name a region (at most 16 bytes).
    #[error("--cluster: {0}")]
    Cluster(String),
    /// The TLS listener's certificate or key cannot be used.
    #[error("TLS listener: {0}")]
    Tls(String),
    /// The receive budget cannot hold one frame of the largest size, which
    /// would then wait for ever.
    #[error(
        "--queued-max-request-bytes {value} is below --max-frame-bytes plus 2MiB ({min} bytes)"
    )]
    QueuedBelowFrame {
        /// The configured budget.
        value: ByteSize,
        /// The least it may be.
        min: u64,
    },
}

impl ServeArgs {
    /// The region path, defaulting to `/dev/shm/cxlkafka-<cluster>`.
    pub fn region_path(&self) -> PathBuf {
        self.region_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/cxlkafka-{}", self.cluster)))
    }

    /// Checks what the flags alone decide (sizes, node id, cluster name,
    /// TLS files), so that a start refused for its configuration binds no
    /// port and maps no region.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.limits()?;
        slot_for_node_id(self.node_id).map_err(ConfigError::NodeId)?;
        if !self.sink {
            cxlkafka_log::open::cluster_id(&self.cluster)
                .map_err(|error| ConfigError::Cluster(error.to_string()))?;
        }
        self.security.tls_listener().map_err(ConfigError::Tls)?;
        Ok(())
    }

    /// The log filter `--log-level` describes.
    pub fn log_filter(&self) -> Result<EnvFilter, ParseError> {
        EnvFilter::try_new(&self.log_level)
    }

    /// The protocol limits these flags describe.
    ///
    /// Both sizes travel in Kafka's signed 32-bit fields (frame size prefix,
    /// batch length), so anything above `i32::MAX` is refused here rather
    /// than silently truncated.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let max_frame_bytes = checked_i32_size("max-frame-bytes", self.max_frame_bytes)?;
        let message_max_bytes = checked_i32_size("message-max-bytes", self.message_max_bytes)?;
        // One frame of the largest size, with the read chunks its buffer
        // grows by, must fit the budget alone.
        let least_budget = max_frame_bytes as u64 + 2 * 1024 * 1024;
        if self.queued_max_request_bytes.0 < least_budget {
            return Err(ConfigError::QueuedBelowFrame {
                value: self.queued_max_request_bytes,
                min: least_budget,
            });
        }
        Ok(Limits {
            max_frame_bytes,
            message_max_bytes,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_in_flight: self.max_in_flight_per_connection,
            idle_timeout: Duration::from_millis(self.connections_max_idle_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            queued_max_request_bytes: usize::try_from(self.queued_max_request_bytes.0)
                .unwrap_or(usize::MAX),
            frame_timeout: Duration::from_millis(self.frame_timeout_ms),
            ..Limits::default()
        })
    }

    /// Consumer group settings from the flags.
    pub fn group_config(&self) -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay: std::time::Duration::from_millis(
                self.group_initial_rebalance_delay_ms,
            ),
            consumer_heartbeat_interval: std::time::Duration::from_millis(
                self.group_consumer_heartbeat_interval_ms,
            ),
            consumer_session_timeout: std::time::Duration::from_millis(
                self.group_consumer_session_timeout_ms,
            ),
            ..GroupConfig::default()
        }
    }

    /// Topic defaults from the flags.
    pub fn topic_defaults(&self) -> TopicDefaults {
        TopicDefaults {
            partitions: self.default_partitions,
            replication_factor: self.default_replication_factor,
            auto_create: self.auto_create_topics,
        }
    }

    /// The listener to advertise once the Kafka listener is bound to
    /// `bound`: the configured one, else the bound address, else (when bound
    /// to all interfaces, which no client can connect to) this host's name.
    pub fn advertised_for(&self, bound: SocketAddr) -> AdvertisedListener {
        if let Some(advertised) = &self.advertised_listener {
            return advertised.clone();
        }
        if bound.ip().is_unspecified() {
            if let Some(host) = local_hostname() {
                return AdvertisedListener {
                    host,
                    port: bound.port(),
                };
            }
        }
        AdvertisedListener::from_socket_addr(bound)
    }

    /// Where the region is and how to open it.
    pub fn region_settings(&self) -> RegionSettings {
        RegionSettings {
            path: self.region_path(),
            bytes: self.region_size.0,
            max_gateways: self.max_gateways,
            cluster: self.cluster.clone(),
            non_coherent: self.memory_backend == MemoryBackendKind::NonCoherent,
        }
    }

    /// How this gateway joins the region once its listener is bound to `bound`.
    pub fn cluster_options(&self, bound: SocketAddr) -> Result<ClusterOptions, ConfigError> {
        let advertised = self.advertised_for(bound);
        Ok(ClusterOptions {
            node_id: slot_for_node_id(self.node_id).map_err(ConfigError::NodeId)?,
            advertised_host: advertised.host,
            advertised_port: advertised.port,
            lease_timeout: std::time::Duration::from_millis(self.lease_timeout_ms),
            data_dir: self.data_dir.clone(),
            segment_bytes: self.segment_bytes.0,
            region_path: Some(self.region_path()),
            adopt_data_dir: self.adopt_data_dir,
            unclean_region_rebuild: self.unclean_region_rebuild,
            peer_listen: match self.peer_listen {
                None => Some(SocketAddr::new(bound.ip(), 0)),
                Some(PeerListen::Off) => None,
                Some(PeerListen::At(address)) => Some(address),
            },
        })
    }

    /// The shared context for a gateway whose listener is bound to `bound`
    /// and whose storage side is `log`.
    pub fn context(
        &self,
        log: Arc<dyn ClusterLog>,
        bound: SocketAddr,
    ) -> Result<GatewayContext, ConfigError> {
        Ok(
            GatewayContext::new(log, self.cluster.clone(), self.advertised_for(bound))
                .with_limits(self.limits()?)
                .with_topic_defaults(self.topic_defaults())
                .with_group_config(self.group_config())
                .with_transaction_config(crate::transactions::TxnConfig {
                    max_timeout_ms: self.transaction_max_timeout_ms,
                }),
        )
    }
}

impl Default for ServeArgs {
    /// The same values as the flags' defaults, without reading the
    /// environment (for tests and embedding).
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9092".to_owned(),
            advertised_listener: None,
            node_id: None,
            region_path: None,
            region_size: ByteSize(1 << 30),
            cluster: "default".to_owned(),
            data_dir: PathBuf::from("./data"),
            adopt_data_dir: false,
            unclean_region_rebuild: false,
            peer_listen: None,
            segment_bytes: ByteSize(256 << 20),
            log_retention_check_interval_ms: 300_000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9644)),
            metrics_idle_timeout_ms: 60_000,
            no_metrics: false,
            config: None,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            default_partitions: 1,
            default_replication_factor: 2,
            auto_create_topics: true,
            message_max_bytes: ByteSize(DEFAULT_MESSAGE_MAX_BYTES),
            max_frame_bytes: ByteSize(DEFAULT_MAX_FRAME_BYTES),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_in_flight_per_connection: DEFAULT_MAX_IN_FLIGHT,
            connections_max_idle_ms: duration_ms(DEFAULT_IDLE_TIMEOUT),
            write_timeout_ms: duration_ms(DEFAULT_WRITE_TIMEOUT),
            queued_max_request_bytes: ByteSize(DEFAULT_QUEUED_MAX_REQUEST_BYTES),
            frame_timeout_ms: duration_ms(DEFAULT_FRAME_TIMEOUT),
            memory_backend: MemoryBackendKind::Coherent,
            sink: false,
            max_gateways: 8,
            lease_timeout_ms: 1000,
            group_initial_rebalance_delay_ms: 3000,
            group_consumer_heartbeat_interval_ms: 5000,
            group_consumer_session_timeout_ms: 45_000,
            transaction_max_timeout_ms: crate::transactions::DEFAULT_MAX_TIMEOUT_MS,
            security: crate::security::args::SecurityArgs::default(),
        }
    }
}

fn checked_i32_size(flag: &'static str, value: ByteSize) -> Result<usize, ConfigError> {
    const MAX: u64 = i32::MAX as u64;
    if value.0 == 0 {
        return Err(ConfigError::SizeZero { flag });
    }
    if value.0 > MAX {
        return Err(ConfigError::SizeTooLarge {
            flag,
            value,
            max: MAX,
        });
    }
    usize::try_from(value.0).map_err(|_| ConfigError::SizeTooLarge {
        flag,
        value,
        max: MAX,
    })
}

/// This host's name, as the kernel reports it (Linux only, like the rest of
/// the gateway's region handling).
fn local_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_budget_below_one_largest_frame_is_refused() {
        let args = ServeArgs {
            max_frame_bytes: ByteSize(8 << 20),
            queued_max_request_bytes: ByteSize(8 << 20),
            ..ServeArgs::default()
        };
        assert!(matches!(
            args.limits(),
            Err(ConfigError::QueuedBelowFrame { .. })
        ));
        let args = ServeArgs {
            queued_max_request_bytes: ByteSize(10 << 20),
            frame_timeout_ms: 250,
            ..args
        };
        let limits = args.limits().expect("a budget above one frame");
        assert_eq!(limits.queued_max_request_bytes, 10 << 20);
        assert_eq!(limits.frame_timeout, Duration::from_millis(250));
    }
    use crate::config::{Cli, Command};
    use clap::Parser;

    #[test]
    fn defaults_match_the_default_impl() {
        let cli = Cli::try_parse_from(["cxlkafka", "serve"]).expect("defaults parse");
        let Command::Serve(parsed) = cli.command else {
            panic!("serve flags parse as serve");
        };
        // The environment may legitimately override some flags where these
        // tests run, so only compare when none is set.
        if std::env::vars().any(|(k, _)| k.starts_with("CXLKAFKA_")) {
            return;
        }
        let default = ServeArgs::default();
        assert_eq!(parsed.listen, default.listen);
        assert_eq!(parsed.region_size, default.region_size);
        assert_eq!(parsed.cluster, default.cluster);
        assert_eq!(parsed.data_dir, default.data_dir);
        assert_eq!(parsed.metrics_addr, default.metrics_addr);
        assert_eq!(parsed.no_metrics, default.no_metrics);
        assert_eq!(parsed.log_level, default.log_level);
        assert_eq!(parsed.default_partitions, default.default_partitions);
        assert_eq!(
            parsed.default_replication_factor,
            default.default_replication_factor
        );
        assert_eq!(parsed.auto_create_topics, default.auto_create_topics);
        assert_eq!(parsed.message_max_bytes, default.message_max_bytes);
        assert_eq!(parsed.max_frame_bytes, default.max_frame_bytes);
        assert_eq!(parsed.max_connections, default.max_connections);
        assert_eq!(
            parsed.max_connections_per_ip,
            default.max_connections_per_ip
        );
        assert_eq!(
            parsed.max_in_flight_per_connection,
            default.max_in_flight_per_connection
        );
        assert_eq!(
            parsed.connections_max_idle_ms,
            default.connections_max_idle_ms
        );
        assert_eq!(parsed.write_timeout_ms, default.write_timeout_ms);
        assert_eq!(default.limits(), Ok(Limits::default()));
        assert_eq!(parsed.memory_backend, default.memory_backend);
        assert_eq!(
            parsed.group_initial_rebalance_delay_ms,
            default.group_initial_rebalance_delay_ms
        );
        assert_eq!(
            default.group_config().initial_rebalance_delay,
            std::time::Duration::from_secs(3)
        );
        assert_eq!(
            (
                parsed.group_consumer_heartbeat_interval_ms,
                parsed.group_consumer_session_timeout_ms
            ),
            (
                default.group_consumer_heartbeat_interval_ms,
                default.group_consumer_session_timeout_ms
            )
        );
        assert_eq!(parsed.node_id, None);
        assert_eq!(
            parsed.region_path(),
            PathBuf::from("/dev/shm/cxlkafka-default")
        );
    }

    #[test]
    fn flags_parse_into_limits_and_topic_defaults() {
        let cli = Cli::try_parse_from([
            "cxlkafka",
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--advertised-listener",
            "PLAINTEXT://broker-1.example:19092",
            "--node-id",
            "3",
            "--cluster",
            "blue",
            "--message-max-bytes",
            "2MiB",
            "--max-frame-bytes",
            "8MiB",
            "--max-connections",
            "10",
            "--max-connections-per-ip",
            "3",
            "--max-in-flight-per-connection",
            "7",
            "--connections-max-idle-ms",
            "1500",
            "--write-timeout-ms",
            "250",
            "--auto-create-topics",
            "false",
            "--default-partitions",
            "4",
            "--memory-backend",
            "non-coherent",
        ])
        .expect("flags parse");
        let Command::Serve(args) = cli.command else {
            panic!("serve flags parse as serve");
        };
        let bound = SocketAddr::from(([0, 0, 0, 0], 4242));
        let options = args.cluster_options(bound).expect("valid config");
        assert_eq!(options.node_id, Some(3));
        assert_eq!(args.cluster, "blue");
        assert_eq!(
            args.advertised_for(bound).to_string(),
            "broker-1.example:19092"
        );
        let limits = args.limits().expect("valid limits");
        assert_eq!(limits.message_max_bytes, 2 << 20);
        assert_eq!(limits.max_frame_bytes, 8 << 20);
        assert_eq!(limits.max_connections, 10);
        assert_eq!(limits.max_connections_per_ip, 3);
        assert_eq!(limits.max_in_flight, 7);
        assert_eq!(limits.idle_timeout, Duration::from_millis(1500));
        assert_eq!(limits.write_timeout, Duration::from_millis(250));
        let topics = args.topic_defaults();
        assert!(!topics.auto_create);
        assert_eq!(topics.partitions, 4);
        assert!(args.region_settings().non_coherent);
        assert_eq!(args.memory_backend, MemoryBackendKind::NonCoherent);
        assert_eq!(args.region_path(), PathBuf::from("/dev/shm/cxlkafka-blue"));
    }

    #[test]
    fn sizes_beyond_the_protocol_fields_are_rejected() {
        let args = ServeArgs {
            max_frame_bytes: ByteSize(4 << 30),
            ..ServeArgs::default()
        };
        assert!(matches!(
            args.limits(),
            Err(ConfigError::SizeTooLarge {
                flag: "max-frame-bytes",
                ..
            })
        ));
        let args = ServeArgs {
            message_max_bytes: ByteSize(0),
            ..ServeArgs::default()
        };
        assert_eq!(
            args.limits(),
            Err(ConfigError::SizeZero {
                flag: "message-max-bytes"
            })
        );
    }

    #[test]
    fn log_level_becomes_a_log_filter() {
        let args = ServeArgs {
            log_level: "warn,cxlkafka_gateway=debug".to_owned(),
            ..ServeArgs::default()
        };
        assert!(args.log_filter().is_ok());
        let args = ServeArgs {
            log_level: "info,cxlkafka_gateway=chatty".to_owned(),
            ..ServeArgs::default()
        };
        assert!(args.log_filter().is_err());
    }

    #[test]
    fn advertised_address_defaults_to_the_bound_address() {
        let args = ServeArgs::default();
        let bound = SocketAddr::from(([127, 0, 0, 1], 40123));
        assert_eq!(args.advertised_for(bound).to_string(), "127.0.0.1:40123");
    }
}
