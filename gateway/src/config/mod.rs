//! Command line and environment configuration of the `cxlkafka` binary.
//!
//! Every flag can also be set through a `CXLKAFKA_*` environment variable
//! (shown in `--help`), so containers and CI can configure a gateway without
//! templating command lines. A flag given on the command line wins over the
//! environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use thiserror::Error;

use crate::cluster::{slot_for_node_id, ClusterLog, ClusterOptions, RegionSettings};
use crate::context::{
    AdvertisedListener, GatewayContext, Limits, TopicDefaults, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_MAX_IN_FLIGHT, DEFAULT_MESSAGE_MAX_BYTES, DEFAULT_WRITE_TIMEOUT,
};
use crate::groups::GroupConfig;

/// `cxlkafka`: a Kafka-compatible broker over a shared CXL memory log.
#[derive(Debug, Parser)]
#[command(name = "cxlkafka", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The binary's subcommands.
// Parsed once at startup: boxing `ServeArgs` to even out the variants
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a gateway: a Kafka broker attached to the cluster's shared region.
    Serve(ServeArgs),
    /// Load generators that print what Kafka's perf-test tools print.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage SCRAM users through a running gateway.
    #[command(subcommand)]
    User(crate::security::cli::UserCommand),
}

/// `cxlkafka bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Produce records as fast as the broker acknowledges them.
    Produce(crate::bench::ProduceBenchArgs),
    /// Fetch a topic's records as fast as the broker serves them.
    Consume(crate::bench::ConsumeBenchArgs),
    /// Run `serve --sink` whose fetches return copies of the first batch
    /// produced to each partition: the baseline for `bench consume`.
    Sink(crate::bench::SinkBenchArgs),
}

/// How the shared region is accessed (see DESIGN.md, "The shared region").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MemoryBackend {
    /// Plain shared mapping; flushes and invalidations are no-ops. For
    /// gateways on one host (`/dev/shm`, tmpfs).
    Coherent,
    /// Explicit cache-line flushes and invalidations, for CXL memory shared
    /// by several hosts.
    NonCoherent,
}

/// Flags of `cxlkafka serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the Kafka listener binds (host:port; port 0 picks a free one).
    #[arg(long, env = "CXLKAFKA_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,

    /// Address advertised to clients in Metadata, as host:port (an optional
    /// `PLAINTEXT://` prefix is accepted). Defaults to the bound listen
    /// address, or this host's name when listening on all interfaces.
    #[arg(long, env = "CXLKAFKA_ADVERTISED_LISTENER", value_parser = parse_advertised)]
    pub advertised_listener: Option<AdvertisedListener>,

    /// Kafka node id of this gateway. Defaults to the gateway's slot in the
    /// shared region.
    #[arg(long, env = "CXLKAFKA_NODE_ID", value_parser = clap::value_parser!(i32).range(0..))]
    pub node_id: Option<i32>,

    /// Path of the shared region: a file on /dev/shm or tmpfs, a file on a DAX
    /// filesystem, or a device-DAX node such as /dev/dax0.0. Defaults to
    /// `/dev/shm/cxlkafka-<cluster>`.
    #[arg(long, env = "CXLKAFKA_REGION_PATH")]
    pub region_path: Option<PathBuf>,

    /// Size of the shared region when this gateway formats it (e.g. 512MiB,
    /// 1GiB, 1073741824). K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024;
    /// KB/MB/GB/TB are powers of 1000.
    #[arg(long, env = "CXLKAFKA_REGION_SIZE", default_value = "1GiB")]
    pub region_size: ByteSize,

    /// Cluster name. Gateways of one cluster share one region; the name also
    /// forms the default region path. Letters, digits, '.', '_' and '-'.
    #[arg(long, env = "CXLKAFKA_CLUSTER", default_value = "default", value_parser = parse_cluster_name)]
    pub cluster: String,

    /// Directory of this gateway's segment files (its disk copy of the log).
    #[arg(long, env = "CXLKAFKA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// A segment file of the disk tier is closed and a new one started once
    /// it would pass this size (same units as --region-size). Retention
    /// deletes whole segments.
    #[arg(long, env = "CXLKAFKA_SEGMENT_BYTES", default_value = "256MiB")]
    pub segment_bytes: ByteSize,

    /// How often retention (topics' retention.ms and retention.bytes) moves
    /// log starts and deletes expired segment files, in milliseconds
    /// (Kafka's log.retention.check.interval.ms).
    #[arg(
        long,
        env = "CXLKAFKA_LOG_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub log_retention_check_interval_ms: u64,

    /// Address of the Prometheus /metrics endpoint.
    #[arg(long, env = "CXLKAFKA_METRICS_ADDR", default_value = "127.0.0.1:9644")]
    pub metrics_addr: SocketAddr,

    /// Record no metrics and serve no /metrics endpoint (no recorder is
    /// installed, so every metric call is a no-op). For measuring what the
    /// metrics cost; --metrics-addr is then ignored.
    #[arg(long, env = "CXLKAFKA_NO_METRICS", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub no_metrics: bool,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing
    /// directives such as "info,cxlkafka_gateway=debug".
    #[arg(long, env = "CXLKAFKA_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Partitions of an auto-created topic (Kafka's num.partitions).
    #[arg(long, env = "CXLKAFKA_DEFAULT_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub default_partitions: i32,

    /// Copies of each record batch, the shared region counting as one; each
    /// further copy is a gateway's fsynced disk.
    #[arg(long, env = "CXLKAFKA_DEFAULT_REPLICATION_FACTOR", default_value_t = 2,
          value_parser = clap::value_parser!(i16).range(1..))]
    pub default_replication_factor: i16,

    /// Create unknown topics when a client asks Metadata for them (Kafka's
    /// auto.create.topics.enable).
    #[arg(long, env = "CXLKAFKA_AUTO_CREATE_TOPICS", default_value_t = true,
          action = ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Largest record batch a Produce may carry, counting the batch's 12-byte
    /// log overhead (Kafka's message.max.bytes).
    #[arg(long, env = "CXLKAFKA_MESSAGE_MAX_BYTES",
          default_value_t = ByteSize(DEFAULT_MESSAGE_MAX_BYTES))]
    pub message_max_bytes: ByteSize,

    /// Largest request frame accepted; a larger size prefix closes the
    /// connection (Kafka's socket.request.max.bytes). At most 2GiB-1.
    #[arg(long, env = "CXLKAFKA_MAX_FRAME_BYTES",
          default_value_t = ByteSize(DEFAULT_MAX_FRAME_BYTES))]
    pub max_frame_bytes: ByteSize,

    /// Open client connections; further clients wait in the accept backlog.
    #[arg(long, env = "CXLKAFKA_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_positive_usize)]
    pub max_connections: usize,

    /// Open client connections from one address; a further one is closed as
    /// soon as it is accepted (Kafka's max.connections.per.ip).
    #[arg(long, env = "CXLKAFKA_MAX_CONNECTIONS_PER_IP",
          default_value_t = DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = parse_positive_usize)]
    pub max_connections_per_ip: usize,

    /// Requests read from one connection and not yet answered; at the limit
    /// the gateway stops reading that connection until a response is
    /// written (backpressure through TCP, not an error).
    #[arg(long, env = "CXLKAFKA_MAX_IN_FLIGHT_PER_CONNECTION",
          default_value_t = DEFAULT_MAX_IN_FLIGHT, value_parser = parse_positive_usize)]
    pub max_in_flight_per_connection: usize,

    /// A connection that sends no complete request for this many
    /// milliseconds is closed (Kafka's connections.max.idle.ms).
    #[arg(long, env = "CXLKAFKA_CONNECTIONS_MAX_IDLE_MS",
          default_value_t = duration_ms(DEFAULT_IDLE_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connections_max_idle_ms: u64,

    /// A connection whose response writes make no progress for this many
    /// milliseconds (the client stopped reading) is closed.
    #[arg(long, env = "CXLKAFKA_WRITE_TIMEOUT_MS",
          default_value_t = duration_ms(DEFAULT_WRITE_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_ms: u64,

    /// Run as a sink: acknowledge every produce at once and store nothing,
    /// touching no region. Only for measuring clients against a broker with
    /// no storage cost; nothing produced can be read back.
    #[arg(long, env = "CXLKAFKA_SINK", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub sink: bool,

    /// How the shared region is accessed.
    #[arg(long, env = "CXLKAFKA_MEMORY_BACKEND", value_enum, default_value_t = MemoryBackend::Coherent)]
    pub memory_backend: MemoryBackend,

    /// Gateway slots of a region this gateway formats (the most gateways one
    /// cluster can have).
    #[arg(long, env = "CXLKAFKA_MAX_GATEWAYS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_gateways: u32,

    /// A gateway whose heartbeat is older than this many milliseconds is
    /// dead: Metadata stops listing it and, if it ran the sequencer, the
    /// lowest live gateway takes over.
    #[arg(long, env = "CXLKAFKA_LEASE_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub lease_timeout_ms: u64,

    /// How long a new consumer group waits for more members before its
    /// first generation, counted from the last member to join, at most the
    /// rebalance timeout (Kafka's group.initial.rebalance.delay.ms).
    #[arg(long, env = "CXLKAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(0..=300_000))]
    pub group_initial_rebalance_delay_ms: u64,

    /// TLS listener, SASL and authorizer flags.
    #[command(flatten)]
    pub security: crate::security::args::SecurityArgs,
}

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
}

impl ServeArgs {
    /// The region path, defaulting to `/dev/shm/cxlkafka-<cluster>`.
    pub fn region_path(&self) -> PathBuf {
        self.region_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/cxlkafka-{}", self.cluster)))
    }

    /// The protocol limits these flags describe.
    ///
    /// Both sizes travel in Kafka's signed 32-bit fields (frame size prefix,
    /// batch length), so anything above `i32::MAX` is refused here rather
    /// than silently truncated.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let max_frame_bytes = checked_i32_size("max-frame-bytes", self.max_frame_bytes)?;
        let message_max_bytes = checked_i32_size("message-max-bytes", self.message_max_bytes)?;
        Ok(Limits {
            max_frame_bytes,
            message_max_bytes,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_in_flight: self.max_in_flight_per_connection,
            idle_timeout: Duration::from_millis(self.connections_max_idle_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            ..Limits::default()
        })
    }

    /// Consumer group settings from the flags.
    pub fn group_config(&self) -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay: std::time::Duration::from_millis(
                self.group_initial_rebalance_delay_ms,
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
            non_coherent: self.memory_backend == MemoryBackend::NonCoherent,
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
                .with_group_config(self.group_config()),
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
            segment_bytes: ByteSize(256 << 20),
            log_retention_check_interval_ms: 300_000,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9644)),
            no_metrics: false,
            log_level: "info".to_owned(),
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
            memory_backend: MemoryBackend::Coherent,
            sink: false,
            max_gateways: 8,
            lease_timeout_ms: 1000,
            group_initial_rebalance_delay_ms: 3000,
            security: crate::security::args::SecurityArgs::default(),
        }
    }
}

/// A default duration as the whole milliseconds its flag takes.
const fn duration_ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
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

fn parse_positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_cluster_name(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !s.starts_with('.');
    if valid {
        Ok(s.to_owned())
    } else {
        Err("use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'".to_owned())
    }
}

/// Parses `host:port`, `[v6]:port`, or either behind `PLAINTEXT://`.
fn parse_advertised(s: &str) -> Result<AdvertisedListener, String> {
    let rest = s.strip_prefix("PLAINTEXT://").unwrap_or(s);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("expected host:port, got {s:?}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!("invalid host in {s:?}"));
    }
    let port: u16 = port.parse().map_err(|_| format!("invalid port in {s:?}"))?;
    if port == 0 {
        return Err("the advertised port cannot be 0".to_owned());
    }
    Ok(AdvertisedListener {
        host: host.to_owned(),
        port,
    })
}

/// A byte count written for humans: `1048588`, `64KiB`, `1GiB`, `500MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Why a size did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ByteSizeError {
    /// No leading digits.
    #[error("expected a number of bytes with an optional unit (e.g. 1048576, 64KiB, 1GiB)")]
    MissingNumber,
    /// A suffix that is not a known unit.
    #[error("unknown size unit {0:?}; use B, K/KiB, M/MiB, G/GiB, T/TiB or KB/MB/GB/TB")]
    UnknownUnit(String),
    /// The value does not fit 64 bits.
    #[error("size overflows 64 bits")]
    Overflow,
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits_end);
        if number.is_empty() {
            return Err(ByteSizeError::MissingNumber);
        }
        let number: u64 = number.parse().map_err(|_| ByteSizeError::Overflow)?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(ByteSizeError::UnknownUnit(unit.trim().to_owned())),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or(ByteSizeError::Overflow)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the value exactly, so defaults in
    /// `--help` read as `100MiB` yet round-trip through [`FromStr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn size(s: &str) -> Result<u64, ByteSizeError> {
        s.parse::<ByteSize>().map(|b| b.0)
    }

    #[test]
    fn sizes_parse_plain_numbers_and_units() {
        assert_eq!(size("1048588"), Ok(1_048_588));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("12B"), Ok(12));
        assert_eq!(size("64KiB"), Ok(65_536));
        assert_eq!(size("64k"), Ok(65_536));
        assert_eq!(size("100MiB"), Ok(104_857_600));
        assert_eq!(size("1GiB"), Ok(1_073_741_824));
        assert_eq!(size("1gib"), Ok(1_073_741_824));
        assert_eq!(size("2T"), Ok(2 << 40));
        assert_eq!(size("500MB"), Ok(500_000_000));
        assert_eq!(size("1 GiB"), Ok(1_073_741_824));
        assert_eq!(size(" 3kb "), Ok(3_000));
    }

    #[test]
    fn sizes_reject_garbage_and_overflow() {
        assert_eq!(size(""), Err(ByteSizeError::MissingNumber));
        assert_eq!(size("GiB"), Err(ByteSizeError::MissingNumber));
        assert_eq!(size("-1"), Err(ByteSizeError::MissingNumber));
        assert_eq!(
            size("1.5GiB"),
            Err(ByteSizeError::UnknownUnit(".5GiB".into()))
        );
        assert_eq!(
            size("10 parsecs"),
            Err(ByteSizeError::UnknownUnit("parsecs".into()))
        );
        assert_eq!(size("99999999999999999999"), Err(ByteSizeError::Overflow));
        assert_eq!(size("16777216TiB"), Err(ByteSizeError::Overflow));
    }

    #[test]
    fn sizes_display_round_trips() {
        for value in [
            0,
            1,
            1_048_588,
            1 << 10,
            100 << 20,
            3 << 30,
            5 << 40,
            1_000_000,
        ] {
            let shown = ByteSize(value).to_string();
            assert_eq!(size(&shown), Ok(value), "{shown}");
        }
        assert_eq!(ByteSize(100 << 20).to_string(), "100MiB");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_has_an_env_var_named_after_it() {
        let command = Cli::command();
        let serve = command
            .find_subcommand("serve")
            .expect("serve subcommand exists");
        for arg in serve.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let expected = format!("CXLKAFKA_{}", long.replace('-', "_").to_uppercase());
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(expected.as_str()), "--{long}");
            assert!(arg.get_help().is_some(), "--{long} has help text");
        }
    }

    #[test]
    fn every_bench_flag_has_an_env_var_named_after_it() {
        let command = Cli::command();
        let bench = command
            .find_subcommand("bench")
            .expect("bench subcommand exists");
        let mut checked = 0;
        for tool in bench.get_subcommands() {
            for arg in tool.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if matches!(long, "help" | "version") {
                    continue;
                }
                let expected = format!("CXLKAFKA_BENCH_{}", long.replace('-', "_").to_uppercase());
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                let name = tool.get_name();
                assert_eq!(env.as_deref(), Some(expected.as_str()), "{name} --{long}");
                assert!(arg.get_help().is_some(), "{name} --{long} has help text");
                checked += 1;
            }
        }
        assert!(checked > 20, "produce, consume and sink flags were checked");
    }

    #[test]
    fn bench_flags_parse_sizes_and_defaults_match_new() {
        let cli = Cli::try_parse_from([
            "cxlkafka",
            "bench",
            "produce",
            "--bytes",
            "100MB",
            "--record-size",
            "1000",
            "--acks",
            "-1",
            "--compression",
            "lz4",
        ])
        .expect("flags parse");
        let Command::Bench(BenchCommand::Produce(args)) = cli.command else {
            panic!("bench produce flags parse as bench produce");
        };
        assert_eq!(args.total_records(), 100_000);
        assert_eq!(args.compression, crate::bench::CompressionArg::Lz4);
        assert!(Cli::try_parse_from(["cxlkafka", "bench", "produce", "--acks", "2"]).is_err());
        if std::env::vars().any(|(k, _)| k.starts_with("CXLKAFKA_")) {
            return;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], 9092));
        let Command::Bench(BenchCommand::Produce(parsed)) =
            Cli::try_parse_from(["cxlkafka", "bench", "produce"])
                .expect("parses")
                .command
        else {
            panic!("bench produce");
        };
        let default = crate::bench::ProduceBenchArgs::new(addr);
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
        let Command::Bench(BenchCommand::Consume(parsed)) =
            Cli::try_parse_from(["cxlkafka", "bench", "consume"])
                .expect("parses")
                .command
        else {
            panic!("bench consume");
        };
        let default = crate::bench::ConsumeBenchArgs::new(addr);
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }

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
        assert_eq!(args.memory_backend, MemoryBackend::NonCoherent);
        assert_eq!(args.region_path(), PathBuf::from("/dev/shm/cxlkafka-blue"));
    }

    #[test]
    fn no_metrics_is_a_switch_with_an_optional_value() {
        let parse = |extra: &[&str]| {
            let argv = ["cxlkafka", "serve"].iter().chain(extra).copied();
            let Command::Serve(args) = Cli::try_parse_from(argv).expect("parses").command else {
                panic!("serve flags parse as serve");
            };
            args.no_metrics
        };
        assert!(parse(&["--no-metrics"]));
        assert!(parse(&["--no-metrics", "true"]));
        assert!(!parse(&["--no-metrics", "false"]));
        assert!(Cli::try_parse_from(["cxlkafka", "serve", "--no-metrics", "maybe"]).is_err());
    }

    #[test]
    fn invalid_values_are_rejected_at_parse_time() {
        for bad in [
            ["--node-id", "-1"],
            ["--default-partitions", "0"],
            ["--default-replication-factor", "0"],
            ["--max-connections", "0"],
            ["--max-connections-per-ip", "0"],
            ["--max-in-flight-per-connection", "0"],
            ["--connections-max-idle-ms", "0"],
            ["--write-timeout-ms", "0"],
            ["--cluster", "../etc"],
            ["--advertised-listener", "no-port"],
            ["--advertised-listener", "host:0"],
            ["--memory-backend", "magnetic"],
            ["--region-size", "lots"],
        ] {
            let argv = ["cxlkafka", "serve", bad[0], bad[1]];
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} should fail");
        }
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
    fn advertised_address_defaults_to_the_bound_address() {
        let args = ServeArgs::default();
        let bound = SocketAddr::from(([127, 0, 0, 1], 40123));
        assert_eq!(args.advertised_for(bound).to_string(), "127.0.0.1:40123");
        assert_eq!(
            parse_advertised("[::1]:9092").map(|a| a.host),
            Ok("::1".to_owned())
        );
    }
}
