//! What the Kafka API handlers share, so that no handler imports another:
//! each file holds one job.
//!
//! - [`errors`]: storage answers (sequencer statuses, publishing failures)
//!   as Kafka error codes;
//! - [`topics`]: topic name rules, topic ids, lookup by id, the partition
//!   cap;
//! - [`brokers`]: the live gateways as brokers, partition replicas, the
//!   cluster id;
//! - [`admin`]: what the admin APIs share (deadlines, applying a control
//!   record, replica assignment checks, Kafka's refusal messages);
//! - [`topic_config`]: Kafka's topic configs and how a topic stores them;
//! - [`config_entries`]: configs as DescribeConfigs reports them;
//! - [`config_changes`]: the checks and application of AlterConfigs and
//!   IncrementalAlterConfigs;
//! - [`acl_wire`]: ACL bindings and filters on the wire;
//! - [`offset_commits`]: the partitions of OffsetCommit and
//!   TxnOffsetCommit checked, the offsets to order;
//! - [`timeouts`]: timeouts shared between handlers.
//!
//! Group coordination itself (including which gateway coordinates a group)
//! is [`crate::groups`]; the request/response machinery is
//! [`crate::dispatch`].

pub mod acl_wire;
pub mod admin;
pub mod broker_configs;
pub mod brokers;
pub mod config_changes;
pub mod config_entries;
pub mod errors;
pub mod offset_commits;
pub mod timeouts;
pub mod topic_config;
pub mod topics;
