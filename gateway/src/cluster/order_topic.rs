//! The total order, readable by any Kafka client: the read-only topic
//! `__cxlkafka_order` has one partition whose record at offset `n` describes
//! the batch with global sequence `n + 1`: which topic and partition it went
//! to, at which offset, with how many records, through which gateway.
//!
//! ```sh
//! kcat -b 127.0.0.1:9092 -C -t __cxlkafka_order -o beginning -e
//! ```
//!
//! Record key: the global sequence in decimal. Record value (JSON):
//! `{"sequence":7,"topic":"orders","partition":2,"offset":120,"records":10,"gateway":1}`
//! for a data batch, `{"sequence":3,"control":true}` for a metadata change.
//! Record timestamp: when the sequencer ordered the batch. Only the part of
//! the order still in the region's order log is readable; older sequences
//! are below the partition's log start offset. Served up to what this
//! gateway has applied.
//!
//! Who may read it: the records name every topic of the cluster, so with
//! `--authorizer` a Fetch of it needs READ on `__cxlkafka_order` and
//! DESCRIBE on the cluster (as Kafka's DescribeLogDirs, which lists every
//! partition, needs); without both it is TOPIC_AUTHORIZATION_FAILED and no
//! record is read. Everyone allowed reads the same records: the check is
//! `ApiRequest::may_read_records` in `security/`, made by the Fetch
//! handler before anything is read here.

use bytes::{Bytes, BytesMut};
use cxlkafka_log::layout::{kind, OrderEntry, SequencerCheckpoint, MAX_STREAMS, MAX_TOPICS};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::{split_stream, Topic};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::FetchRead;

/// Name of the order topic.
pub const ORDER_TOPIC: &str = "__cxlkafka_order";

/// Describes one order-log entry as the JSON value of its record.
pub fn describe(entry: &OrderEntry, topic_of_slot: impl Fn(u32) -> Option<String>) -> String {
    if entry.kind != kind::DATA {
        return format!("{{\"sequence\":{},\"control\":true}}", entry.commit);
    }
    let (slot, partition) = split_stream(entry.stream);
    let topic = topic_of_slot(slot).unwrap_or_default();
    format!(
        "{{\"sequence\":{},\"topic\":{},\"partition\":{},\"offset\":{},\"records\":{},\"gateway\":{}}}",
        entry.commit,
        json_string(&topic),
        partition,
        entry.base_offset,
        entry.record_count,
        entry.gateway
    )
}

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Encodes entries (consecutive sequences) as record batches whose offsets
/// are the sequences - 1.
pub fn encode_batch(
    entries: &[OrderEntry],
    topic_of_slot: impl Fn(u32) -> Option<String>,
) -> Option<Bytes> {
    let records: Vec<Record> = entries
        .iter()
        .map(|entry| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::LogAppend,
            offset: entry.commit as i64 - 1,
            // One batch for consecutive entries: the encoder splits where
            // offset - sequence changes; -1 first means "no sequence".
            sequence: (entry.commit - entries[0].commit) as i32 - 1,
            timestamp: entry.log_append_unix_ms,
            key: Some(Bytes::from(entry.commit.to_string())),
            value: Some(Bytes::from(describe(entry, &topic_of_slot))),
            headers: IndexMap::new(),
        })
        .collect();
    if records.is_empty() {
        return None;
    }
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options).ok()?;
    Some(buffer.freeze())
}

/// The stream id the order topic's one partition answers to: just past the
/// real streams, so the sequencer refuses any batch addressed to it.
pub const ORDER_STREAM: u32 = MAX_STREAMS;

/// Entries per fetched batch at most, whatever the byte budget.
const MAX_ENTRIES_PER_READ: u64 = 4096;
/// Rough size of one encoded entry, to turn a byte budget into a count.
const ENTRY_BYTES: u64 = 128;

/// The topic as Metadata lists it.
pub fn order_topic() -> Topic {
    Topic {
        slot: MAX_TOPICS,
        name: ORDER_TOPIC.to_string(),
        topic_id: *b"cxlkafka-order\x00\x01",
        partitions: 1,
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 1,
        changed_at: 0,
    }
}

fn entry<B: MemoryBackend>(region: &Region<B>, sequence: u64) -> Option<OrderEntry> {
    region.read_committed(region.layout().order_entry(sequence), sequence)
}

/// (log start, high watermark) given the next sequence this gateway applies.
pub fn offsets<B: MemoryBackend>(region: &Region<B>, applied: u64) -> (i64, i64) {
    let layout = region.layout();
    let entries = layout.geometry.order_log_entries;
    let high_watermark = applied.saturating_sub(1) as i64;
    // The sequencer may run up to one order-log lap ahead of this gateway,
    // so only the newer half of the lap is sure to be intact. A region
    // rebuilt from segments holds before its first sequence only the
    // producer windows it kept (not a contiguous log).
    let checkpoint: SequencerCheckpoint = region.read_fresh(layout.checkpoint());
    let mut first = applied
        .saturating_sub(entries / 2)
        .max(checkpoint.region_first_sequence)
        .max(1);
    while first < applied && entry(region, first).is_none() {
        first += 1;
    }
    (first as i64 - 1, high_watermark)
}

/// Encodes the entries from `offset` on, within about `max_bytes`.
pub fn read<B: MemoryBackend>(
    region: &Region<B>,
    applied: u64,
    offset: i64,
    max_bytes: usize,
    name_of_slot: impl Fn(u32) -> Option<String>,
) -> FetchRead {
    let (log_start, high_watermark) = offsets(region, applied);
    if offset < log_start || offset > high_watermark {
        return FetchRead::OutOfRange {
            high_watermark,
            log_start,
        };
    }
    let count = (max_bytes as u64 / ENTRY_BYTES).clamp(1, MAX_ENTRIES_PER_READ);
    let first = offset as u64 + 1;
    let entries: Vec<OrderEntry> = (first..applied.min(first + count))
        .map_while(|sequence| entry(region, sequence))
        .collect();
    let batches: Vec<Bytes> = encode_batch(&entries, name_of_slot).into_iter().collect();
    FetchRead::Batches {
        batches,
        high_watermark,
        log_start,
    }
}

/// First offset whose entry was ordered at or after `timestamp`.
pub fn offset_for_timestamp<B: MemoryBackend>(
    region: &Region<B>,
    applied: u64,
    timestamp: i64,
) -> Option<(i64, i64)> {
    let (log_start, _) = offsets(region, applied);
    (log_start as u64 + 1..applied)
        .filter_map(|sequence| entry(region, sequence))
        .find(|entry| entry.log_append_unix_ms >= timestamp)
        .map(|entry| (entry.commit as i64 - 1, entry.log_append_unix_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn entry(sequence: u64, stream: u32, base_offset: i64) -> OrderEntry {
        OrderEntry {
            commit: sequence,
            base_offset,
            stream,
            record_count: 4,
            kind: kind::DATA,
            gateway: 2,
            log_append_unix_ms: 1_700_000_000_000,
            ..bytemuck::Zeroable::zeroed()
        }
    }

    #[test]
    fn each_ordered_batch_becomes_one_record_at_sequence_minus_one() {
        let entries = [entry(5, 3, 40), entry(6, 256 + 1, 0)];
        let names = |slot: u32| Some(["orders", "pay\"ments"][slot as usize].to_string());
        let mut batch = encode_batch(&entries, names).expect("encodes");
        let records: Vec<Record> = RecordBatchDecoder::decode_all(&mut batch)
            .expect("decodes")
            .into_iter()
            .flat_map(|set| set.records)
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].offset, 4);
        assert_eq!(records[0].key.as_deref(), Some(&b"5"[..]));
        assert_eq!(
            records[0].value.as_deref(),
            Some(&br#"{"sequence":5,"topic":"orders","partition":3,"offset":40,"records":4,"gateway":2}"#[..])
        );
        assert_eq!(
            records[1].value.as_deref(),
            Some(&br#"{"sequence":6,"topic":"pay\"ments","partition":1,"offset":0,"records":4,"gateway":2}"#[..])
        );
        assert_eq!(records[1].timestamp, 1_700_000_000_000);
    }

    #[test]
    fn control_entries_are_marked() {
        let mut control = entry(1, 0, 0);
        control.kind = kind::CONTROL;
        assert_eq!(
            describe(&control, |_| None),
            r#"{"sequence":1,"control":true}"#
        );
    }
}
