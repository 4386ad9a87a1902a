//! The transaction table every gateway keeps: each transactional id's
//! latest [`TransactionRecord`], applied from the order log in order, and
//! what follows from it for reads: each partition's open transactions
//! (which hold its last stable offset back) and aborted transactions
//! (which Fetch lists for read_committed consumers).
//!
//! Everything here is derived from ordered records alone, so every gateway
//! (and one rebuilt from its segments) holds the same table.

use std::collections::HashMap;
use std::sync::RwLock;

use cxlkafka_sequencer::control::{txn_state, CommittedOffset, ControlRecord, TransactionRecord};

/// One transactional id as the log last left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Its latest record.
    pub record: TransactionRecord,
    /// The order sequence of that record (the next record's
    /// `previous_sequence`).
    pub sequence: u64,
}

/// An aborted transaction in one partition, as Fetch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The transaction's producer.
    pub producer_id: i64,
    /// At most the offset of its first batch there.
    pub first_offset: i64,
    /// The offset of its abort marker there.
    pub last_offset: i64,
}

/// Offsets a completed commit hands to its groups: (group, offsets).
pub type GroupCommits = Vec<(String, Vec<CommittedOffset>)>;

#[derive(Debug, Default)]
struct Inner {
    transactions: HashMap<String, Transaction>,
    /// Per transactional id, per group, per stream: offsets committed
    /// within the open transaction.
    pending: HashMap<String, HashMap<String, HashMap<u32, CommittedOffset>>>,
    /// Per stream: open transactions' producer id and first offset.
    open: HashMap<u32, HashMap<i64, i64>>,
    /// Per stream: aborted transactions in marker order.
    aborted: HashMap<u32, Vec<AbortedTxn>>,
    /// Each producer id's latest epoch, from its transactional id's record.
    epochs: HashMap<i64, i16>,
}

/// The table (see the module documentation).
#[derive(Debug, Default)]
pub struct TransactionStore {
    inner: RwLock<Inner>,
}

impl TransactionStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a transaction record ordered at `sequence` (other records
    /// are ignored); returns the offsets a completed commit hands to its
    /// groups, for the caller to apply as ordered at `sequence`.
    pub fn apply(&self, record: &ControlRecord, sequence: u64) -> GroupCommits {
        match record {
            ControlRecord::Transaction(record) => self.write().apply_state(record, sequence),
            ControlRecord::TxnOffsetCommit {
                transactional_id,
                producer_id,
                producer_epoch,
                group,
                offsets,
            } => {
                let mut inner = self.write();
                let accepted = inner
                    .transactions
                    .get(transactional_id)
                    .is_some_and(|current| {
                        current.record.state == txn_state::ONGOING
                            && current.record.producer_id == *producer_id
                            && current.record.producer_epoch == *producer_epoch
                    });
                if accepted {
                    let by_stream = inner
                        .pending
                        .entry(transactional_id.clone())
                        .or_default()
                        .entry(group.clone())
                        .or_default();
                    for offset in offsets {
                        by_stream.insert(offset.stream, offset.clone());
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// One transactional id's latest state.
    pub fn get(&self, transactional_id: &str) -> Option<Transaction> {
        self.read().transactions.get(transactional_id).cloned()
    }

    /// Every transactional id's latest state.
    pub fn all(&self) -> Vec<Transaction> {
        self.read().transactions.values().cloned().collect()
    }

    /// Whether the transaction of `transactional_id` is open and holds
    /// `stream` (Produce's check that a transactional batch was added).
    pub fn holds(&self, transactional_id: &str, producer_id: i64, stream: u32) -> bool {
        self.read()
            .transactions
            .get(transactional_id)
            .is_some_and(|current| {
                current.record.producer_id == producer_id
                    && txn_state::is_open(current.record.state)
                    && current
                        .record
                        .partitions
                        .iter()
                        .any(|partition| partition.stream == stream)
            })
    }

    /// Whether `producer_id` has a transaction open in `stream`.
    pub fn is_open_in(&self, stream: u32, producer_id: i64) -> bool {
        self.read()
            .open
            .get(&stream)
            .is_some_and(|open| open.contains_key(&producer_id))
    }

    /// The latest epoch of a transactional producer id.
    pub fn producer_epoch(&self, producer_id: i64) -> Option<i16> {
        self.read().epochs.get(&producer_id).copied()
    }

    /// The partition's last stable offset: the first offset of its oldest
    /// open transaction, else the high watermark.
    pub fn last_stable_offset(&self, stream: u32, high_watermark: i64) -> i64 {
        self.read()
            .open
            .get(&stream)
            .and_then(|open| open.values().min().copied())
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// The partition's open transactions: (producer id, first offset).
    pub fn open_in(&self, stream: u32) -> Vec<(i64, i64)> {
        let mut open: Vec<(i64, i64)> = self
            .read()
            .open
            .get(&stream)
            .map(|open| open.iter().map(|(&pid, &first)| (pid, first)).collect())
            .unwrap_or_default();
        open.sort_unstable();
        open
    }

    /// Aborted transactions of `stream` that may hold records in
    /// `from..to`: their marker at or after `from`, their first offset
    /// before `to` (what Kafka's Fetch returns for read_committed).
    pub fn aborted_between(&self, stream: u32, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.read()
            .aborted
            .get(&stream)
            .map(|aborted| {
                aborted
                    .iter()
                    .filter(|txn| txn.last_offset >= from && txn.first_offset < to)
                    .copied()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets aborted transactions wholly below a partition's log start.
    pub fn forget_below(&self, stream: u32, log_start: i64) {
        let mut inner = self.write();
        if let Some(aborted) = inner.aborted.get_mut(&stream) {
            aborted.retain(|txn| txn.last_offset >= log_start);
        }
    }
}

impl Inner {
    fn apply_state(&mut self, record: &TransactionRecord, sequence: u64) -> GroupCommits {
        let id = &record.transactional_id;
        let expected = self
            .transactions
            .get(id)
            .map_or(0, |current| current.sequence);
        if record.previous_sequence != expected {
            // Another coordinator's step came first: this one lost.
            tracing::debug!(
                transactional_id = %id,
                sequence,
                expected,
                found = record.previous_sequence,
                "transaction record follows a stale state; ignored"
            );
            return Vec::new();
        }
        let was_open = if let Some(current) = self.transactions.get(id) {
            let current = current.record.clone();
            self.close_open(&current);
            txn_state::is_open(current.state)
        } else {
            false
        };
        if txn_state::is_open(record.state) {
            if !was_open {
                // A new transaction: nothing of an earlier one is pending.
                self.pending.remove(id);
            }
            for partition in &record.partitions {
                self.open
                    .entry(partition.stream)
                    .or_default()
                    .insert(record.producer_id, partition.first_offset);
            }
        }
        let commits = match record.state {
            txn_state::COMPLETE_COMMIT => self
                .pending
                .remove(id)
                .map(|groups| {
                    groups
                        .into_iter()
                        .map(|(group, offsets)| (group, offsets.into_values().collect()))
                        .collect()
                })
                .unwrap_or_default(),
            txn_state::COMPLETE_ABORT => {
                for partition in &record.partitions {
                    if partition.marker_offset >= 0 {
                        self.aborted
                            .entry(partition.stream)
                            .or_default()
                            .push(AbortedTxn {
                                producer_id: record.producer_id,
                                first_offset: partition.first_offset,
                                last_offset: partition.marker_offset,
                            });
                    }
                }
                self.pending.remove(id);
                Vec::new()
            }
            _ => Vec::new(),
        };
        self.epochs
            .insert(record.producer_id, record.producer_epoch);
        self.transactions.insert(
            id.clone(),
            Transaction {
                record: record.clone(),
                sequence,
            },
        );
        commits
    }

    fn close_open(&mut self, record: &TransactionRecord) {
        if !txn_state::is_open(record.state) {
            return;
        }
        for partition in &record.partitions {
            if let Some(open) = self.open.get_mut(&partition.stream) {
                open.remove(&record.producer_id);
                if open.is_empty() {
                    self.open.remove(&partition.stream);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxlkafka_sequencer::control::TxnPartition;

    fn step(state: u8, previous_sequence: u64, partitions: &[(u32, i64, i64)]) -> ControlRecord {
        ControlRecord::Transaction(TransactionRecord {
            transactional_id: "t".into(),
            previous_sequence,
            producer_id: 7,
            producer_epoch: 0,
            timeout_ms: 60_000,
            state,
            partitions: partitions
                .iter()
                .map(|&(stream, first_offset, marker_offset)| TxnPartition {
                    stream,
                    first_offset,
                    marker_offset,
                })
                .collect(),
            groups: vec!["g".into()],
            started_ms: 1,
            updated_ms: 1,
        })
    }

    fn offsets(epoch: i16, offset: i64) -> ControlRecord {
        ControlRecord::TxnOffsetCommit {
            transactional_id: "t".into(),
            producer_id: 7,
            producer_epoch: epoch,
            group: "g".into(),
            offsets: vec![CommittedOffset {
                stream: 1,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        }
    }

    #[test]
    fn an_open_transaction_holds_the_lso_until_its_abort_is_recorded() {
        let store = TransactionStore::default();
        store.apply(&step(txn_state::EMPTY, 0, &[]), 10);
        store.apply(&step(txn_state::ONGOING, 10, &[(1, 5, -1), (2, 0, -1)]), 11);
        assert_eq!(store.last_stable_offset(1, 9), 5);
        assert_eq!(store.last_stable_offset(3, 9), 9);
        assert!(store.holds("t", 7, 2));
        store.apply(
            &step(txn_state::PREPARE_ABORT, 11, &[(1, 5, -1), (2, 0, -1)]),
            12,
        );
        assert_eq!(store.last_stable_offset(1, 9), 5);
        store.apply(
            &step(txn_state::COMPLETE_ABORT, 12, &[(1, 5, 8), (2, 0, 3)]),
            13,
        );
        assert_eq!(store.last_stable_offset(1, 9), 9);
        assert!(!store.holds("t", 7, 2));
        assert_eq!(
            store.aborted_between(1, 0, 100),
            vec![AbortedTxn {
                producer_id: 7,
                first_offset: 5,
                last_offset: 8
            }]
        );
        assert!(store.aborted_between(1, 9, 100).is_empty());
        assert!(store.aborted_between(1, 0, 5).is_empty());
        store.forget_below(1, 9);
        assert!(store.aborted_between(1, 0, 100).is_empty());
    }

    #[test]
    fn a_step_from_a_stale_state_is_ignored() {
        let store = TransactionStore::default();
        store.apply(&step(txn_state::EMPTY, 0, &[]), 10);
        store.apply(&step(txn_state::ONGOING, 10, &[(1, 0, -1)]), 11);
        // A second coordinator still working from sequence 10.
        store.apply(&step(txn_state::ONGOING, 10, &[(4, 0, -1)]), 12);
        let current = store.get("t").expect("known");
        assert_eq!(current.sequence, 11);
        assert_eq!(store.last_stable_offset(4, 3), 3);
    }

    #[test]
    fn offsets_reach_the_group_only_when_the_transaction_commits() {
        let store = TransactionStore::default();
        store.apply(&step(txn_state::EMPTY, 0, &[]), 10);
        // Before the transaction begins: refused.
        store.apply(&offsets(0, 3), 11);
        store.apply(&step(txn_state::ONGOING, 10, &[(1, 0, -1)]), 12);
        store.apply(&offsets(0, 4), 13);
        // A fenced epoch: refused.
        store.apply(&offsets(-1, 99), 14);
        store.apply(&offsets(0, 6), 15);
        store.apply(&step(txn_state::PREPARE_COMMIT, 12, &[(1, 0, -1)]), 16);
        let commits = store.apply(&step(txn_state::COMPLETE_COMMIT, 16, &[(1, 0, 7)]), 17);
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].0, "g");
        assert_eq!(commits[0].1[0].offset, 6);
        // An aborted transaction's offsets go nowhere.
        store.apply(&step(txn_state::ONGOING, 17, &[(1, 8, -1)]), 18);
        store.apply(&offsets(0, 9), 19);
        store.apply(&step(txn_state::PREPARE_ABORT, 18, &[(1, 8, -1)]), 20);
        let commits = store.apply(&step(txn_state::COMPLETE_ABORT, 20, &[(1, 8, 10)]), 21);
        assert!(commits.is_empty());
    }
}
