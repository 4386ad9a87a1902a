//! The Kafka gateway: the Kafka wire protocol in front of the shared log.
//!
//! Reading order, outside in:
//!
//! - [`server`]: the listener (connection cap, graceful shutdown) and
//!   [`serve`], which the `cxlkafka serve` binary and the tests call;
//! - [`connection`]: framing, and the pipeline that answers each connection's
//!   requests in order;
//! - [`dispatch`]: the request/response machinery: header decoding, the
//!   dispatch table type, version checks, response encoding;
//! - [`api`]: one file per Kafka API (families in folders: groups, topics,
//!   configs, acls, sasl) and the table that routes to them,
//!   [`DispatchTable::standard`];
//! - [`api_support`]: what the handlers share (error mapping, topic and
//!   broker lookups, admin helpers, topic configs), so none imports another;
//! - [`cluster`]: the storage side behind [`cluster::ClusterLog`], one
//!   file per role (publisher, sequencer lease, tailer, reader, replica,
//!   retention, the sink);
//! - [`groups`]: consumer group coordination (the classic protocol);
//! - [`records`]: record batch validation, shared by Produce and Fetch;
//! - [`shape`]: request layouts that bound array counts before decoding;
//! - [`security`]: TLS listeners, SASL authentication, ACL authorization;
//! - [`context`]: [`GatewayContext`], the state every handler shares;
//! - [`limits`]: what happens when a client reaches a connection limit;
//! - [`config`]: the command line (clap tree, serve wiring, value parsers);
//!   [`telemetry`]: the metrics, [`partition_metrics`] the per-partition
//!   gauges, [`counter_keeper`] what keeps counters in the scrape; [`mod@bench`]: the load generators; [`admin`]: the `topic`,
//!   `group`, `cluster` and `acl` admin tools, Kafka clients of any broker.
//!
//! Bad input never panics: it becomes a Kafka error code in a response or a
//! closed connection with a log line and a metric ([`error::CloseReason`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod api;
pub mod api_support;
pub mod bench;
pub mod broker_config;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod context;
pub mod counter_keeper;
pub mod dispatch;
pub mod error;
pub mod groups;
pub mod limits;
pub mod partition_metrics;
pub mod records;
pub mod security;
pub mod server;
pub mod shape;
pub mod telemetry;
pub mod transactions;

pub use context::GatewayContext;
pub use dispatch::DispatchTable;
pub use server::{serve, serve_with_loggers, Server, ServerHandle, Stopped};
