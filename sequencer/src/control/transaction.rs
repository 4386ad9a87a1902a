//! The transaction coordinator's records (KIP-98): a transaction's whole
//! state after each of the coordinator's steps, and the offsets a
//! transaction commits for a consumer group.
//!
//! The sequencer only orders them; every gateway applies them, in order,
//! to its transaction table, so any gateway can take over a transactional
//! id whose coordinator died, and a gateway rebuilt from its segments has
//! the same table. Encoding follows the module's: little-endian integers,
//! u16-length strings, u32 counts.

use super::{put_str, tag, ControlDecodeError, ControlRecord, Reader};

/// Partitions one transaction may name (bounds decoding).
const MAX_TRANSACTION_PARTITIONS: u32 = 65_536;
/// Consumer groups one transaction may commit offsets for.
const MAX_TRANSACTION_GROUPS: u32 = 1024;

/// Kafka's transaction states (`TransactionState`), as the coordinator
/// records them.
pub mod txn_state {
    /// No transaction open: after InitProducerId, or after a completed one.
    pub const EMPTY: u8 = 0;
    /// Partitions or offsets were added; EndTxn not received yet.
    pub const ONGOING: u8 = 1;
    /// EndTxn(commit) received; markers are being written.
    pub const PREPARE_COMMIT: u8 = 2;
    /// EndTxn(abort) or a timeout; markers are being written.
    pub const PREPARE_ABORT: u8 = 3;
    /// Every partition holds its commit marker.
    pub const COMPLETE_COMMIT: u8 = 4;
    /// Every partition holds its abort marker.
    pub const COMPLETE_ABORT: u8 = 5;

    /// Whether a transaction in `state` still holds back its partitions'
    /// last stable offsets.
    pub fn is_open(state: u8) -> bool {
        matches!(state, ONGOING | PREPARE_COMMIT | PREPARE_ABORT)
    }
}

/// One partition of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnPartition {
    pub stream: u32,
    /// At most the offset of the transaction's first batch there: the
    /// partition's high watermark as the coordinator saw it when the
    /// partition joined, after the producer's previous marker there.
    pub first_offset: i64,
    /// The offset of the transaction's marker there; -1 until written.
    pub marker_offset: i64,
}

/// A transaction's state after one coordinator step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRecord {
    pub transactional_id: String,
    /// The order sequence of the record of this id this one follows (0 for
    /// the first). A record whose predecessor is not the id's latest
    /// applied one is ignored by every gateway: a compare-and-set through
    /// the log, so two gateways that both believe they coordinate the id
    /// cannot interleave their steps.
    pub previous_sequence: u64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// One of [`txn_state`].
    pub state: u8,
    pub partitions: Vec<TxnPartition>,
    /// Consumer groups whose offsets the transaction commits.
    pub groups: Vec<String>,
    /// When the open transaction began (Unix ms); 0 while none is open.
    pub started_ms: i64,
    /// When the coordinator wrote this record (Unix ms).
    pub updated_ms: i64,
}

impl TransactionRecord {
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(tag::TRANSACTION);
        put_str(out, &self.transactional_id);
        out.extend_from_slice(&self.previous_sequence.to_le_bytes());
        out.extend_from_slice(&self.producer_id.to_le_bytes());
        out.extend_from_slice(&self.producer_epoch.to_le_bytes());
        out.extend_from_slice(&self.timeout_ms.to_le_bytes());
        out.push(self.state);
        out.extend_from_slice(&(self.partitions.len() as u32).to_le_bytes());
        for partition in &self.partitions {
            out.extend_from_slice(&partition.stream.to_le_bytes());
            out.extend_from_slice(&partition.first_offset.to_le_bytes());
            out.extend_from_slice(&partition.marker_offset.to_le_bytes());
        }
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for group in &self.groups {
            put_str(out, group);
        }
        out.extend_from_slice(&self.started_ms.to_le_bytes());
        out.extend_from_slice(&self.updated_ms.to_le_bytes());
    }

    pub(super) fn decode_from(reader: &mut Reader<'_>) -> Result<Self, ControlDecodeError> {
        let transactional_id = reader.string()?;
        let previous_sequence = reader.u64()?;
        let producer_id = reader.i64()?;
        let producer_epoch = reader.i16()?;
        let timeout_ms = reader.i32()?;
        let state = reader.u8()?;
        if state > txn_state::COMPLETE_ABORT {
            return Err(ControlDecodeError("unknown transaction state"));
        }
        let count = reader.u32()?;
        if count > MAX_TRANSACTION_PARTITIONS {
            return Err(ControlDecodeError("too many transaction partitions"));
        }
        let mut partitions = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            partitions.push(TxnPartition {
                stream: reader.u32()?,
                first_offset: reader.i64()?,
                marker_offset: reader.i64()?,
            });
        }
        let count = reader.u32()?;
        if count > MAX_TRANSACTION_GROUPS {
            return Err(ControlDecodeError("too many transaction groups"));
        }
        let mut groups = Vec::with_capacity(count.min(64) as usize);
        for _ in 0..count {
            groups.push(reader.string()?);
        }
        Ok(Self {
            transactional_id,
            previous_sequence,
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            groups,
            started_ms: reader.i64()?,
            updated_ms: reader.i64()?,
        })
    }
}

impl ControlRecord {
    /// The transactional id a transaction record concerns.
    pub fn transactional_id(&self) -> Option<&str> {
        match self {
            ControlRecord::Transaction(record) => Some(&record.transactional_id),
            ControlRecord::TxnOffsetCommit {
                transactional_id, ..
            } => Some(transactional_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::CommittedOffset;

    fn record() -> TransactionRecord {
        TransactionRecord {
            transactional_id: "payments-7".into(),
            previous_sequence: 41,
            producer_id: 1000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: txn_state::COMPLETE_ABORT,
            partitions: vec![TxnPartition {
                stream: 257,
                first_offset: 10,
                marker_offset: 14,
            }],
            groups: vec!["readers".into()],
            started_ms: 1_700_000_000_000,
            updated_ms: 1_700_000_000_100,
        }
    }

    #[test]
    fn transaction_records_round_trip_and_refuse_truncation() {
        for original in [
            ControlRecord::Transaction(record()),
            ControlRecord::TxnOffsetCommit {
                transactional_id: "payments-7".into(),
                producer_id: 1000,
                producer_epoch: 3,
                group: "readers".into(),
                offsets: vec![CommittedOffset {
                    stream: 257,
                    offset: 99,
                    leader_epoch: -1,
                    metadata: "m".into(),
                }],
            },
        ] {
            let encoded = original.encode();
            assert_eq!(ControlRecord::decode(&encoded), Ok(original.clone()));
            assert_eq!(original.transactional_id(), Some("payments-7"));
            for len in 0..encoded.len() {
                assert!(ControlRecord::decode(&encoded[..len]).is_err());
            }
        }
    }

    #[test]
    fn an_unknown_state_or_a_huge_count_is_refused() {
        let mut encoded = ControlRecord::Transaction(record()).encode();
        // tag, u16 length + id, u64 previous, i64 pid, i16 epoch, i32 timeout.
        let state_at = 1 + 2 + "payments-7".len() + 8 + 8 + 2 + 4;
        encoded[state_at] = 9;
        assert_eq!(
            ControlRecord::decode(&encoded),
            Err(ControlDecodeError("unknown transaction state"))
        );
        let mut encoded = ControlRecord::Transaction(record()).encode();
        encoded[state_at + 1..state_at + 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            ControlRecord::decode(&encoded),
            Err(ControlDecodeError("too many transaction partitions"))
        );
    }
}
