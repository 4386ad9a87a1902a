//! Transactions (KIP-98, KIP-447): the transaction coordinator, the table
//! of transaction states every gateway keeps, and the markers that end a
//! transaction in its partitions.
//!
//! | file | role |
//! |---|---|
//! | `store.rs` | the transaction table applied from the log; each partition's open and aborted transactions (last stable offset, Fetch's aborted list) |
//! | `coordinator.rs` | InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, timeouts, completing what a dead coordinator left |
//! | `markers.rs` | the COMMIT/ABORT control batch |
//!
//! A transactional id is coordinated by the gateway its name hashes to
//! among the holders, as a consumer group is ([`crate::groups::coordinator`]).
//! Its state is in the log, not in the coordinator: any gateway that
//! becomes its coordinator continues from the last record.

mod coordinator;
pub mod markers;
mod store;

pub use coordinator::{TransactionCoordinator, TxnConfig, DEFAULT_MAX_TIMEOUT_MS};
pub use store::{AbortedTxn, GroupCommits, Transaction, TransactionStore};

/// Kafka's names for [`cxlkafka_sequencer::control::txn_state`], as
/// DescribeTransactions and ListTransactions show them.
pub fn state_name(state: u8) -> &'static str {
    use cxlkafka_sequencer::control::txn_state;
    match state {
        txn_state::EMPTY => "Empty",
        txn_state::ONGOING => "Ongoing",
        txn_state::PREPARE_COMMIT => "PrepareCommit",
        txn_state::PREPARE_ABORT => "PrepareAbort",
        txn_state::COMPLETE_COMMIT => "CompleteCommit",
        txn_state::COMPLETE_ABORT => "CompleteAbort",
        _ => "Unknown",
    }
}

/// The error code a transactional request of `version` answers with:
/// PRODUCER_FENCED (90) becomes INVALID_PRODUCER_EPOCH (47) for versions
/// older than `fenced_since`, whose clients do not know it (KIP-588), as
/// Kafka answers them.
pub fn client_error(
    error: Option<kafka_protocol::ResponseError>,
    version: i16,
    fenced_since: i16,
) -> i16 {
    use kafka_protocol::ResponseError;
    match error {
        None => 0,
        Some(ResponseError::ProducerFenced) if version < fenced_since => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Some(error) => error.code(),
    }
}
