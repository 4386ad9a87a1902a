//! Kafka's idempotent-producer rules, per (producer id, stream): the last
//! five batches are remembered so a retried batch gets its original offsets,
//! a gap is refused, and an older epoch is fenced.
//!
//! A transaction marker is a batch with the producer's id and epoch and no
//! sequence (base sequence -1, as Kafka writes it): it is refused from an
//! older epoch, and one from a newer epoch (a coordinator that aborted a
//! timed-out transaction bumps the epoch) fences every batch the old
//! producer still sends there.

use std::collections::{HashMap, VecDeque};

use crate::status;

/// Batches remembered per producer and stream (Kafka's max in-flight).
const REMEMBERED: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Remembered {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
    global_sequence: u64,
}

#[derive(Debug, Default)]
struct ProducerStream {
    epoch: i16,
    recent: VecDeque<Remembered>,
}

/// The verdict on one idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Order it; then call [`ProducerTable::record`].
    Append,
    /// Already ordered: answer with these offsets, order nothing.
    Duplicate {
        base_offset: i64,
        global_sequence: u64,
    },
    /// Refuse with this sequencer status.
    Reject(i32),
}

/// The identity and sequence range of one idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotentBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub stream: u32,
    pub base_sequence: i32,
    pub record_count: u32,
}

#[derive(Debug, Default)]
pub struct ProducerTable {
    streams: HashMap<(i64, u32), ProducerStream>,
}

/// Whether a batch is a transaction marker (no sequence of its own).
fn is_marker(base_sequence: i32) -> bool {
    base_sequence < 0
}

fn last_sequence(first: i32, record_count: u32) -> i32 {
    // Sequences wrap from i32::MAX to 0, as in Kafka.
    ((i64::from(first) + i64::from(record_count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl ProducerTable {
    pub fn check(&self, batch: IdempotentBatch) -> Verdict {
        let IdempotentBatch {
            producer_id,
            epoch,
            stream,
            base_sequence,
            record_count,
        } = batch;
        let Some(state) = self.streams.get(&(producer_id, stream)) else {
            // An unknown producer (new, or its state expired) may start anywhere.
            return Verdict::Append;
        };
        if epoch < state.epoch {
            return Verdict::Reject(status::PRODUCER_FENCED);
        }
        if is_marker(base_sequence) {
            return Verdict::Append;
        }
        if epoch > state.epoch {
            // A bumped epoch starts its sequences again at 0.
            return if base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(status::OUT_OF_ORDER_SEQUENCE)
            };
        }
        let last = last_sequence(base_sequence, record_count);
        if let Some(original) = state
            .recent
            .iter()
            .find(|seen| seen.first_sequence == base_sequence && seen.last_sequence == last)
        {
            return Verdict::Duplicate {
                base_offset: original.base_offset,
                global_sequence: original.global_sequence,
            };
        }
        match state.recent.back() {
            Some(newest) if base_sequence != next_sequence(newest.last_sequence) => {
                Verdict::Reject(status::OUT_OF_ORDER_SEQUENCE)
            }
            _ => Verdict::Append,
        }
    }

    pub fn record(&mut self, batch: IdempotentBatch, base_offset: i64, global_sequence: u64) {
        let IdempotentBatch {
            producer_id,
            epoch,
            stream,
            base_sequence,
            record_count,
        } = batch;
        let state = self.streams.entry((producer_id, stream)).or_default();
        if epoch != state.epoch {
            state.epoch = epoch;
            state.recent.clear();
        }
        if is_marker(base_sequence) {
            // Sequences go on after a marker of the same epoch.
            return;
        }
        if state.recent.len() == REMEMBERED {
            state.recent.pop_front();
        }
        state.recent.push_back(Remembered {
            first_sequence: base_sequence,
            last_sequence: last_sequence(base_sequence, record_count),
            base_offset,
            global_sequence,
        });
    }

    /// Forgets every producer of a deleted stream.
    pub fn forget_stream(&mut self, stream: u32) {
        self.streams.retain(|&(_, s), _| s != stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(
        producer_id: i64,
        epoch: i16,
        stream: u32,
        base_sequence: i32,
        record_count: u32,
    ) -> IdempotentBatch {
        IdempotentBatch {
            producer_id,
            epoch,
            stream,
            base_sequence,
            record_count,
        }
    }

    #[test]
    fn a_retried_batch_gets_its_original_offsets() {
        let mut table = ProducerTable::default();
        assert_eq!(table.check(batch(1, 0, 9, 0, 10)), Verdict::Append);
        table.record(batch(1, 0, 9, 0, 10), 100, 5);
        assert_eq!(table.check(batch(1, 0, 9, 10, 5)), Verdict::Append);
        table.record(batch(1, 0, 9, 10, 5), 110, 6);
        assert_eq!(
            table.check(batch(1, 0, 9, 0, 10)),
            Verdict::Duplicate {
                base_offset: 100,
                global_sequence: 5
            }
        );
    }

    #[test]
    fn a_gap_is_out_of_order_and_an_old_epoch_is_fenced() {
        let mut table = ProducerTable::default();
        table.record(batch(1, 3, 9, 0, 10), 0, 1);
        assert_eq!(
            table.check(batch(1, 3, 9, 11, 1)),
            Verdict::Reject(status::OUT_OF_ORDER_SEQUENCE)
        );
        assert_eq!(
            table.check(batch(1, 2, 9, 10, 1)),
            Verdict::Reject(status::PRODUCER_FENCED)
        );
        assert_eq!(table.check(batch(1, 4, 9, 0, 1)), Verdict::Append);
        assert_eq!(
            table.check(batch(1, 4, 9, 7, 1)),
            Verdict::Reject(status::OUT_OF_ORDER_SEQUENCE)
        );
    }

    #[test]
    fn a_marker_keeps_sequences_and_a_bumped_one_fences_the_old_epoch() {
        let mut table = ProducerTable::default();
        table.record(batch(1, 2, 9, 0, 5), 0, 1);
        assert_eq!(table.check(batch(1, 2, 9, -1, 1)), Verdict::Append);
        table.record(batch(1, 2, 9, -1, 1), 5, 2);
        // The next transaction of the same epoch goes on where it was.
        assert_eq!(table.check(batch(1, 2, 9, 5, 1)), Verdict::Append);
        assert_eq!(
            table.check(batch(1, 2, 9, 0, 5)),
            Verdict::Duplicate {
                base_offset: 0,
                global_sequence: 1
            }
        );
        // A coordinator's abort with a bumped epoch fences the producer.
        table.record(batch(1, 3, 9, -1, 1), 6, 3);
        assert_eq!(
            table.check(batch(1, 2, 9, 5, 1)),
            Verdict::Reject(status::PRODUCER_FENCED)
        );
        assert_eq!(
            table.check(batch(1, 1, 9, -1, 1)),
            Verdict::Reject(status::PRODUCER_FENCED)
        );
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut table = ProducerTable::default();
        table.record(batch(1, 0, 9, i32::MAX - 1, 2), 0, 1);
        assert_eq!(table.check(batch(1, 0, 9, 0, 1)), Verdict::Append);
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut table = ProducerTable::default();
        for sequence in 0..6 {
            table.record(
                batch(1, 0, 9, sequence, 1),
                i64::from(sequence),
                sequence as u64 + 1,
            );
        }
        assert_eq!(
            table.check(batch(1, 0, 9, 0, 1)),
            Verdict::Reject(status::OUT_OF_ORDER_SEQUENCE)
        );
        assert!(matches!(
            table.check(batch(1, 0, 9, 1, 1)),
            Verdict::Duplicate { base_offset: 1, .. }
        ));
    }
}
