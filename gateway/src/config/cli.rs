//! The clap command tree: [`Cli`] and its subcommands, and [`ServeArgs`]
//! with every `serve` flag, its help text and its `CXLKAFKA_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use super::values::{
    duration_ms, parse_advertised, parse_cluster_name, parse_peer_listen, parse_positive_usize,
    parse_socket_addr, ByteSize, PeerListen,
};
use crate::context::{
    AdvertisedListener, DEFAULT_FRAME_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MESSAGE_MAX_BYTES, DEFAULT_QUEUED_MAX_REQUEST_BYTES, DEFAULT_WRITE_TIMEOUT,
};

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
    ///
    /// Exit status: 0 after SIGINT or SIGTERM; 75 when the region it mapped
    /// was unlinked, replaced by another file or formatted again, or it was
    /// paused so long that a whole order log was written past it (it
    /// stopped acknowledging at once): restart it to join the region now at
    /// the path (systemd: Restart=on-failure or RestartForceExitStatus=75); 1 or
    /// 2 when it cannot start.
    Serve(ServeArgs),
    /// Load generators that print what Kafka's perf-test tools print.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Manage SCRAM users through a running gateway.
    #[command(subcommand)]
    User(crate::security::cli::UserCommand),
    /// Topics: create, list, describe, alter configs, add partitions,
    /// delete, produce, consume, trim (any Kafka-compatible broker).
    #[command(subcommand)]
    Topic(crate::admin::TopicCommand),
    /// Consumer groups: list, describe (offsets and lag), seek, delete.
    #[command(subcommand)]
    Group(crate::admin::GroupCommand),
    /// The cluster: brokers and controller, health check.
    #[command(subcommand)]
    Cluster(crate::admin::ClusterCommand),
    /// ACLs: create, list, delete.
    #[command(subcommand)]
    Acl(crate::admin::AclCommand),
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

/// The form of the gateway's log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How the shared region is accessed (see docs/design.md, "The shared region"):
/// which implementation of log's
/// [`MemoryBackend`](cxlkafka_log::memory::MemoryBackend) trait
/// (`Coherent` or `NonCoherent`) the gateway maps the region with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MemoryBackendKind {
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

    /// Serve a data dir another cluster wrote. The data dir's `cluster` file
    /// names the cluster whose log it holds; a gateway of another --cluster
    /// refuses it (it would rebuild its region from that cluster's segments
    /// and serve its topics as its own) unless this is set, and then the
    /// file is rewritten to name this cluster.
    #[arg(long, env = "CXLKAFKA_ADOPT_DATA_DIR", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub adopt_data_dir: bool,

    /// Rebuild a lost region from the segments of the gateways present even
    /// when gateways that were live before it was lost are not back (their
    /// data dirs' `gateway-<id>.members` name them). Without it a gateway
    /// waits for them (and exits after two minutes, to be restarted): their
    /// segments may hold acknowledged records the others lack, as Kafka
    /// keeps a partition offline rather than elect an out-of-sync replica
    /// (`unclean.leader.election.enable=false`). With it, records only they
    /// hold are lost, and their segments, when they come back, are set
    /// aside (`gateway-<id>.diverged`) rather than merged.
    #[arg(long, env = "CXLKAFKA_UNCLEAN_REGION_REBUILD", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub unclean_region_rebuild: bool,

    /// Where this gateway serves copies of its segments to peers that lack
    /// entries (a gateway that joins late, restarts with an empty data dir
    /// or missed entries copies them from a gateway that holds everything
    /// before it serves them): ip:port, port 0 picks a free one, published
    /// in the region beside the advertised host; `off` serves none.
    /// Defaults to the Kafka listener's IP, any free port. Peers prove they
    /// map the same region; the listener needs no other access control,
    /// but bind it where only the gateways reach it.
    #[arg(long, env = "CXLKAFKA_PEER_LISTEN", value_parser = parse_peer_listen)]
    pub peer_listen: Option<PeerListen>,

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

    /// Address of the Prometheus /metrics endpoint (`ip:port` or
    /// `host:port`).
    #[arg(long, env = "CXLKAFKA_METRICS_ADDR", default_value = "127.0.0.1:9644",
          value_parser = parse_socket_addr)]
    pub metrics_addr: SocketAddr,

    /// How long a gauge or counter series that is not touched stays in the
    /// scrape: the series of a deleted topic or group leave after it. Every
    /// live series is touched at least every 10 s.
    #[arg(long, env = "CXLKAFKA_METRICS_IDLE_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(15_000..))]
    pub metrics_idle_timeout_ms: u64,

    /// Record no metrics and serve no /metrics endpoint (no recorder is
    /// installed, so every metric call is a no-op). For measuring what the
    /// metrics cost; --metrics-addr is then ignored.
    #[arg(long, env = "CXLKAFKA_NO_METRICS", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub no_metrics: bool,

    /// A TOML file of serve flags: keys are the flags' long names
    /// (`region-size = "2GiB"`, `node-id = 1`). The command line and the
    /// CXLKAFKA_* variables win over the file.
    #[arg(long, env = "CXLKAFKA_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter: a level (error, warn, info, debug, trace) or tracing
    /// directives such as "info,cxlkafka_gateway=debug".
    #[arg(long, env = "CXLKAFKA_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// How log lines are written to stdout: `text` for people (coloured
    /// only on a terminal with NO_COLOR unset), `json` for log shippers (one
    /// JSON object per line: timestamp, level, target, fields).
    #[arg(long, env = "CXLKAFKA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

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

    /// Buffer bytes that incomplete request frames of all connections may
    /// hold together; a connection that would pass it stops reading until
    /// other frames complete (Kafka's queued.max.request.bytes). At least
    /// --max-frame-bytes plus 2MiB.
    #[arg(long, env = "CXLKAFKA_QUEUED_MAX_REQUEST_BYTES",
          default_value_t = ByteSize(DEFAULT_QUEUED_MAX_REQUEST_BYTES))]
    pub queued_max_request_bytes: ByteSize,

    /// A connection whose incomplete request frame receives no byte, or
    /// waits for --queued-max-request-bytes, for this many milliseconds is
    /// closed (a stalled or deliberately slow client).
    #[arg(long, env = "CXLKAFKA_FRAME_TIMEOUT_MS",
          default_value_t = duration_ms(DEFAULT_FRAME_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub frame_timeout_ms: u64,

    /// Run as a sink: acknowledge every produce at once and store nothing,
    /// touching no region. Only for measuring clients against a broker with
    /// no storage cost; nothing produced can be read back.
    #[arg(long, env = "CXLKAFKA_SINK", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub sink: bool,

    /// How the shared region is accessed.
    #[arg(long, env = "CXLKAFKA_MEMORY_BACKEND", value_enum, default_value_t = MemoryBackendKind::Coherent)]
    pub memory_backend: MemoryBackendKind,

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

    /// How often members of a consumer-protocol group (KIP-848,
    /// group.protocol=consumer) heartbeat; a partition moving between
    /// members takes about two intervals (Kafka's
    /// group.consumer.heartbeat.interval.ms).
    #[arg(long, env = "CXLKAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(50..=300_000))]
    pub group_consumer_heartbeat_interval_ms: u64,

    /// How long a consumer-protocol group member may go without a
    /// heartbeat before it is removed and its partitions move (Kafka's
    /// group.consumer.session.timeout.ms).
    #[arg(long, env = "CXLKAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS", default_value_t = 45_000,
          value_parser = clap::value_parser!(u64).range(100..=1_800_000))]
    pub group_consumer_session_timeout_ms: u64,

    /// The largest transaction.timeout.ms a transactional producer may
    /// ask for; InitProducerId with a larger one is refused with
    /// INVALID_TRANSACTION_TIMEOUT (Kafka's transaction.max.timeout.ms).
    #[arg(long, env = "CXLKAFKA_TRANSACTION_MAX_TIMEOUT_MS", default_value_t = 900_000,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub transaction_max_timeout_ms: i32,

    /// TLS listener, SASL and authorizer flags.
    #[command(flatten)]
    pub security: crate::security::args::SecurityArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
    fn adopting_another_clusters_data_dir_takes_a_flag_or_its_variable() {
        let parse = |extra: &[&str]| {
            let argv = ["cxlkafka", "serve"].iter().chain(extra).copied();
            let Command::Serve(args) = Cli::try_parse_from(argv).expect("parses").command else {
                panic!("serve flags parse as serve");
            };
            args.adopt_data_dir
        };
        assert!(!parse(&[]), "refused unless asked");
        assert!(parse(&["--adopt-data-dir"]));
        assert!(!parse(&["--adopt-data-dir", "false"]));
        let help = Cli::command()
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        assert!(help.contains("CXLKAFKA_ADOPT_DATA_DIR"), "{help}");
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
}
