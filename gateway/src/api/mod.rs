//! One file per Kafka API, each exporting an `ENTRY` for the dispatch table
//! ([`crate::dispatch::DispatchTable::standard`]).
//!
//! A handler decodes its request with [`ApiRequest::decode`], does its
//! ordered work, and answers with [`ApiRequest::respond`] (or a
//! [`Reply::Deferred`] when the answer waits on the sequencer or on new
//! data). Error codes it puts in a response are counted with
//! [`crate::telemetry::record_error_code`].
//!
//! [`ApiRequest::decode`]: crate::dispatch::ApiRequest::decode
//! [`ApiRequest::respond`]: crate::dispatch::ApiRequest::respond
//! [`Reply::Deferred`]: crate::dispatch::Reply::Deferred

pub mod alter_configs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_user_scram_credentials;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
