//! The Kafka API handlers, one file per API, and the dispatch table that
//! names them ([`DispatchTable::standard`]).
//!
//! Each handler exports an `ENTRY` ([`ApiEntry`]: key, versions, handler
//! function). APIs of one family share a folder: [`groups`], [`topics`],
//! [`configs`], [`acls`], [`sasl`], [`transactions`]; the others stand
//! alone. A handler
//! never imports another: what handlers share is in
//! [`crate::api_support`], the request/response machinery in
//! [`crate::dispatch`].
//!
//! A handler decodes its request with [`ApiRequest::decode`], does its
//! ordered work, and answers with [`ApiRequest::respond`] (or a
//! [`Reply::Deferred`] when the answer waits on the sequencer or on new
//! data). Error codes it puts in a response are counted with
//! [`crate::telemetry::record_error_code`].
//!
//! [`ApiEntry`]: crate::dispatch::ApiEntry
//! [`ApiRequest::decode`]: crate::dispatch::ApiRequest::decode
//! [`ApiRequest::respond`]: crate::dispatch::ApiRequest::respond
//! [`Reply::Deferred`]: crate::dispatch::Reply::Deferred

use crate::dispatch::DispatchTable;

pub mod acls;
pub mod api_versions;
pub mod configs;
pub mod describe_cluster;
pub mod fetch;
pub mod find_coordinator;
pub mod groups;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod sasl;
pub mod topics;
pub mod transactions;

impl DispatchTable {
    /// Every API this gateway serves. Add a handler here to serve, and
    /// advertise, its API.
    pub fn standard() -> Self {
        Self::empty()
            .with(api_versions::ENTRY)
            .with(metadata::ENTRY)
            .with(produce::ENTRY)
            .with(fetch::ENTRY)
            .with(list_offsets::ENTRY)
            .with(init_producer_id::ENTRY)
            .with(topics::create_topics::ENTRY)
            .with(topics::delete_topics::ENTRY)
            .with(topics::create_partitions::ENTRY)
            .with(configs::describe_configs::ENTRY)
            .with(configs::alter_configs::ENTRY)
            .with(configs::incremental_alter_configs::ENTRY)
            .with(describe_cluster::ENTRY)
            .with(topics::delete_records::ENTRY)
            .with(find_coordinator::ENTRY)
            .with(groups::join_group::ENTRY)
            .with(groups::sync_group::ENTRY)
            .with(groups::heartbeat::ENTRY)
            .with(groups::leave_group::ENTRY)
            .with(groups::offset_commit::ENTRY)
            .with(groups::offset_fetch::ENTRY)
            .with(groups::describe_groups::ENTRY)
            .with(groups::list_groups::ENTRY)
            .with(groups::delete_groups::ENTRY)
            .with(groups::offset_delete::ENTRY)
            .with(groups::consumer_group_heartbeat::ENTRY)
            .with(groups::consumer_group_describe::ENTRY)
            .with(sasl::sasl_handshake::ENTRY)
            .with(sasl::sasl_authenticate::ENTRY)
            .with(acls::create_acls::ENTRY)
            .with(acls::describe_acls::ENTRY)
            .with(acls::delete_acls::ENTRY)
            .with(sasl::describe_user_scram_credentials::ENTRY)
            .with(sasl::alter_user_scram_credentials::ENTRY)
            .with(transactions::add_partitions_to_txn::ENTRY)
            .with(transactions::add_offsets_to_txn::ENTRY)
            .with(transactions::end_txn::ENTRY)
            .with(transactions::txn_offset_commit::ENTRY)
            .with(transactions::describe_transactions::ENTRY)
            .with(transactions::list_transactions::ENTRY)
            .with(transactions::describe_producers::ENTRY)
            .with(transactions::write_txn_markers::ENTRY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_table_advertises_what_it_routes() {
        let table = DispatchTable::standard();
        let advertised = table.advertised();
        assert_eq!(advertised.len(), table.entries().count());
        for (entry, listed) in table.entries().zip(&advertised) {
            assert_eq!(listed.api_key, entry.key as i16);
            assert_eq!(listed.max_version, entry.versions.max);
            assert_eq!(
                entry.name,
                format!("{:?}", entry.key),
                "metric label is Kafka's name"
            );
        }
        assert!(advertised.windows(2).all(|w| w[0].api_key < w[1].api_key));
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn registering_an_api_twice_is_a_bug() {
        let _ = DispatchTable::standard().with(api_versions::ENTRY);
    }
}
