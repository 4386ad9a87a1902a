//! `cxlkafka topic|group|cluster|acl ...`: admin tools that speak the Kafka
//! protocol to a running broker (any Kafka-compatible one, not only
//! cxlkafka), as `kafka-topics.sh`, `kafka-consumer-groups.sh`,
//! `kafka-acls.sh`, `rpk` and `kcat` do.
//!
//! One module per job: [`client`] owns connections, version negotiation
//! and errors; [`layout`] partitions and offsets; [`output`] tables and
//! JSON; [`topic`], [`produce`], [`consume`], [`group`], [`cluster`] and
//! [`acl`] the commands. Every command prints its result on stdout (a
//! table, or one JSON document with `--format json`) and its errors on
//! stderr as `KAFKA_ERROR_NAME: what; what to do`, exiting 1.

pub mod acl;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod layout;
pub mod login;
pub mod output;
pub mod produce;
pub mod topic;

use std::time::Duration;

use clap::{Args, Subcommand};

pub use client::AdminError;
use client::{Admin, ConnectOptions};
pub use output::Format;

/// Flags every admin command takes for reaching the cluster.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Broker to bootstrap from, as host:port (names are resolved); a
    /// comma-separated list is tried in order.
    #[arg(
        short = 'b',
        long,
        env = "CXLKAFKA_BOOTSTRAP",
        default_value = "localhost:9092"
    )]
    pub bootstrap: String,

    /// Bound on each connection attempt and each request, in milliseconds
    /// (also the broker-side timeout of CreateTopics, DeleteTopics, ...).
    #[arg(long, env = "CXLKAFKA_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    pub timeout_ms: u64,

    /// Log in with this SASL mechanism (a SASL_PLAINTEXT listener): PLAIN,
    /// SCRAM-SHA-256 or SCRAM-SHA-512. None by default.
    #[arg(long, env = "CXLKAFKA_SASL_MECHANISM", value_enum)]
    pub sasl_mechanism: Option<login::Mechanism>,

    /// The SASL user name (with --sasl-mechanism).
    #[arg(long, env = "CXLKAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,

    /// File holding the SASL password (one trailing newline is ignored);
    /// never given on the command line, where `ps` would show it.
    #[arg(long, env = "CXLKAFKA_SASL_PASSWORD_FILE")]
    pub sasl_password_file: Option<std::path::PathBuf>,

    /// Connect with TLS (an SSL or SASL_SSL listener), trusting the CA
    /// certificates in this PEM file; the broker's certificate must name
    /// the host the tools connect to.
    #[arg(long, env = "CXLKAFKA_TLS_CA_FILE")]
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl ConnArgs {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The timeout as the protocol's i32 milliseconds.
    pub fn timeout_ms_i32(&self) -> i32 {
        i32::try_from(self.timeout_ms).unwrap_or(i32::MAX)
    }

    /// How the tools connect: the timeout and the SASL login.
    pub fn options(&self) -> Result<ConnectOptions, AdminError> {
        let tls = self
            .tls_ca_file
            .as_deref()
            .map(crate::security::tls::connector)
            .transpose()
            .map_err(AdminError::Other)?;
        Ok(ConnectOptions {
            tls,
            timeout: self.timeout(),
            login: login::Login::from_flags(
                self.sasl_mechanism,
                self.sasl_username.as_deref(),
                self.sasl_password_file.as_ref(),
            )?,
        })
    }

    /// Connects to the bootstrap broker.
    pub async fn connect(&self) -> Result<Admin, AdminError> {
        Admin::connect(&self.bootstrap, self.options()?).await
    }
}

/// Flags of every admin command but `topic consume` (whose `--format` is
/// a record format).
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Bootstrap and timeout flags.
    #[command(flatten)]
    pub conn: ConnArgs,

    /// Output: `table` (aligned columns for people) or `json` (one JSON
    /// document on stdout, for scripts).
    #[arg(long, env = "CXLKAFKA_FORMAT", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `cxlkafka topic ...`
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic (CreateTopics).
    Create(topic::CreateArgs),
    /// List topics with their partition count and replication factor
    /// (Metadata).
    List(topic::ListArgs),
    /// Show a topic's partitions (leader, replicas, ISR, log start, high
    /// watermark) and its non-default configs.
    Describe(topic::DescribeArgs),
    /// Set or delete topic configs (IncrementalAlterConfigs).
    AlterConfig(topic::AlterConfigArgs),
    /// Raise a topic's partition count (CreatePartitions).
    AddPartitions(topic::AddPartitionsArgs),
    /// Delete topics (DeleteTopics).
    Delete(topic::DeleteArgs),
    /// Produce the lines of stdin as records.
    Produce(produce::ProduceArgs),
    /// Print a topic's records.
    Consume(consume::ConsumeArgs),
    /// Delete a partition's records before an offset (DeleteRecords).
    Trim(topic::TrimArgs),
}

/// `cxlkafka group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups (ListGroups on every broker).
    List(group::ListArgs),
    /// Show a group's state, members, committed offsets and lag.
    Describe(group::DescribeArgs),
    /// Move an empty group's committed offsets of a topic.
    Seek(group::SeekArgs),
    /// Delete groups (DeleteGroups); they must have no members.
    Delete(group::DeleteArgs),
}

/// `cxlkafka cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Cluster id, controller and brokers.
    Info(cluster::InfoArgs),
    /// Check every broker answers and every partition has a leader and a
    /// full ISR; exit status 0 when healthy, 1 when not.
    Health(cluster::HealthArgs),
}

/// `cxlkafka acl ...`
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Create ACLs: one per operation given (CreateAcls).
    Create(acl::CreateArgs),
    /// List ACLs matching a filter (DescribeAcls).
    List(acl::FilterArgs),
    /// Delete ACLs matching a filter (DeleteAcls).
    Delete(acl::FilterArgs),
}

/// Any admin command.
#[derive(Debug)]
pub enum AdminCommand {
    /// `topic ...`
    Topic(TopicCommand),
    /// `group ...`
    Group(GroupCommand),
    /// `cluster ...`
    Cluster(ClusterCommand),
    /// `acl ...`
    Acl(AclCommand),
}

/// What a command that printed its own result ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything asked was done (exit 0).
    Done,
    /// The command ran, and what it printed says what failed or is
    /// unhealthy (exit 1).
    Failed,
}

/// Runs an admin command. Results go to stdout; the caller prints the
/// error, if any, and exits 1.
pub async fn run(command: AdminCommand) -> Result<Status, AdminError> {
    match command {
        AdminCommand::Topic(command) => match command {
            TopicCommand::Create(args) => topic::create(args).await,
            TopicCommand::List(args) => topic::list(args).await,
            TopicCommand::Describe(args) => topic::describe(args).await,
            TopicCommand::AlterConfig(args) => topic::alter_config(args).await,
            TopicCommand::AddPartitions(args) => topic::add_partitions(args).await,
            TopicCommand::Delete(args) => topic::delete(args).await,
            TopicCommand::Produce(args) => produce::run(args).await,
            TopicCommand::Consume(args) => consume::run(args).await,
            TopicCommand::Trim(args) => topic::trim(args).await,
        },
        AdminCommand::Group(command) => match command {
            GroupCommand::List(args) => group::list(args).await,
            GroupCommand::Describe(args) => group::describe(args).await,
            GroupCommand::Seek(args) => group::seek(args).await,
            GroupCommand::Delete(args) => group::delete(args).await,
        },
        AdminCommand::Cluster(command) => match command {
            ClusterCommand::Info(args) => cluster::info(args).await,
            ClusterCommand::Health(args) => cluster::health(args).await,
        },
        AdminCommand::Acl(command) => match command {
            AclCommand::Create(args) => acl::create(args).await,
            AclCommand::List(args) => acl::list(args).await,
            AclCommand::Delete(args) => acl::delete(args).await,
        },
    }
}

/// Prints a report in `format` on stdout.
pub fn print(format: Format, report: &output::Report) {
    // A reader that went away (`| head`) is not an error worth a word.
    let _ = write_stdout(report.render(format).as_bytes());
}

/// Writes to stdout without `print!`'s panic when stdout is closed;
/// `Ok(false)` when the reader went away (a broken pipe), so a command
/// stops as if it had been asked to.
pub fn write_stdout(bytes: &[u8]) -> Result<bool, AdminError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(AdminError::Other(format!("writing stdout: {error}"))),
    }
}

/// Parses `key=value` (a config or a `--set`).
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::config::{Cli, Command};

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("cleanup.policy=compact"),
            Ok(("cleanup.policy".into(), "compact".into()))
        );
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("a="), Ok(("a".into(), String::new())));
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
    }

    /// The project rule: every flag has help and a `CXLKAFKA_*` variable;
    /// the shared ones are named after the flag, the others after the
    /// command and the flag (`topic create --partitions`:
    /// `CXLKAFKA_TOPIC_PARTITIONS`).
    #[test]
    fn every_admin_flag_has_help_and_an_env_var() {
        let command = Cli::command();
        let mut checked = 0;
        for tool in ["topic", "group", "cluster", "acl"] {
            let tool_command = command.find_subcommand(tool).expect("admin subcommand");
            for leaf in tool_command.get_subcommands() {
                for arg in leaf.get_arguments() {
                    let Some(long) = arg.get_long() else { continue };
                    if matches!(long, "help" | "version") {
                        continue;
                    }
                    let flag = long.replace('-', "_").to_uppercase();
                    let shared = matches!(
                        long,
                        "bootstrap"
                            | "format"
                            | "timeout-ms"
                            | "sasl-mechanism"
                            | "sasl-username"
                            | "sasl-password-file"
                            | "tls-ca-file"
                    );
                    let expected = if shared {
                        format!("CXLKAFKA_{flag}")
                    } else {
                        format!("CXLKAFKA_{}_{flag}", tool.to_uppercase())
                    };
                    let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                    let name = leaf.get_name();
                    assert_eq!(
                        env.as_deref(),
                        Some(expected.as_str()),
                        "{tool} {name} --{long}"
                    );
                    assert!(arg.get_help().is_some(), "{tool} {name} --{long} has help");
                    checked += 1;
                }
            }
        }
        assert!(checked > 60, "checked {checked} flags");
    }

    #[test]
    fn common_flags_parse_on_every_command() {
        let cli = Cli::try_parse_from([
            "cxlkafka",
            "topic",
            "list",
            "-b",
            "broker:9093",
            "--format",
            "json",
            "--timeout-ms",
            "500",
        ])
        .expect("parses");
        let Command::Topic(TopicCommand::List(args)) = cli.command else {
            panic!("topic list");
        };
        assert_eq!(args.common.conn.bootstrap, "broker:9093");
        assert_eq!(args.common.format, Format::Json);
        assert_eq!(args.common.conn.timeout_ms, 500);
        assert!(
            Cli::try_parse_from(["cxlkafka", "topic", "list", "--format", "yaml"]).is_err(),
            "formats are table or json"
        );
        assert!(Cli::try_parse_from(["cxlkafka", "topic", "list", "--timeout-ms", "0"]).is_err());
    }

    /// Switches take a value only after `=`, so `--from-beginning orders`
    /// reads topic orders rather than failing to parse "orders" as a bool.
    #[test]
    fn switches_before_a_topic_name_stay_switches() {
        let parse = |argv: &[&str]| {
            let argv = ["cxlkafka", "topic", "consume"].iter().chain(argv).copied();
            match Cli::try_parse_from(argv).expect("parses").command {
                Command::Topic(TopicCommand::Consume(args)) => args,
                other => panic!("parsed as {other:?}"),
            }
        };
        let args = parse(&["--from-beginning", "-e", "orders"]);
        assert_eq!(args.name, "orders");
        assert!(args.from_beginning && args.exit_at_end);
        let args = parse(&["--from-beginning=false", "orders"]);
        assert!(!args.from_beginning && !args.exit_at_end);
    }
}
