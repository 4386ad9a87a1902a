//! Transaction APIs (KIP-98, KIP-447, KIP-664): the producer's steps
//! (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn), the group coordinator's
//! TxnOffsetCommit, and the operators' DescribeTransactions,
//! ListTransactions and DescribeProducers, and WriteTxnMarkers, with which
//! they abort a hanging transaction. InitProducerId and FindCoordinator, shared with
//! idempotent producers and groups, stand alone. The coordination itself is
//! [`crate::transactions`]; these files decode, check and answer.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod list_transactions;
pub mod txn_offset_commit;
pub mod write_txn_markers;
