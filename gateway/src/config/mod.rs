//! Command line and environment configuration of the `cxlkafka` binary.
//!
//! Every flag can also be set through a `CXLKAFKA_*` environment variable
//! (shown in `--help`), so containers and CI can configure a gateway without
//! templating command lines. A flag given on the command line wins over the
//! environment.
//!
//! - `cli`: the clap command tree ([`Cli`], [`Command`], [`BenchCommand`])
//!   and [`ServeArgs`], every flag with its help text and variable;
//! - `serve`: what the gateway builds from [`ServeArgs`] (region settings,
//!   cluster options, limits, its [`GatewayContext`](crate::GatewayContext))
//!   and [`ConfigError`];
//! - `file`: `serve --config`, a TOML file whose keys are the flags;
//! - `values`: [`ByteSize`] and the parsers that check flag values.

mod cli;
mod file;
mod serve;
mod values;

pub use cli::{BenchCommand, Cli, Command, LogFormat, MemoryBackendKind, ServeArgs};
pub use file::with_config_file;
pub use serve::ConfigError;
pub use values::{parse_socket_addr, ByteSize, ByteSizeError, PeerListen};
