//! The topic catalog in the region: written by the sequencer, read by every
//! gateway. A topic's slot in the catalog fixes its streams:
//! `stream = slot * MAX_PARTITIONS_PER_TOPIC + partition`.

use cxlkafka_log::layout::{topic_state, TopicEntry, MAX_PARTITIONS_PER_TOPIC, MAX_TOPICS};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;

/// A topic as gateways see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub slot: u32,
    pub name: String,
    pub topic_id: [u8; 16],
    pub partitions: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub configs: String,
    /// Copies acks=all waits for, the region counted as one (at least 1).
    pub replication_factor: u16,
    /// Global sequence of the control record that last changed it.
    pub changed_at: u64,
}

impl Topic {
    pub fn stream(&self, partition: u32) -> Option<u32> {
        (partition < self.partitions).then(|| stream_of(self.slot, partition))
    }
}

pub fn stream_of(slot: u32, partition: u32) -> u32 {
    slot * MAX_PARTITIONS_PER_TOPIC + partition
}

/// (topic slot, partition) of a stream.
pub fn split_stream(stream: u32) -> (u32, u32) {
    (
        stream / MAX_PARTITIONS_PER_TOPIC,
        stream % MAX_PARTITIONS_PER_TOPIC,
    )
}

pub(crate) fn entry_name(entry: &TopicEntry) -> &[u8] {
    &entry.name[..(entry.name_len as usize).min(entry.name.len())]
}

pub(crate) fn to_topic(slot: u32, entry: &TopicEntry) -> Option<Topic> {
    if entry.state != topic_state::LIVE {
        return None;
    }
    let configs = &entry.configs[..(entry.configs_len as usize).min(entry.configs.len())];
    Some(Topic {
        slot,
        name: String::from_utf8_lossy(entry_name(entry)).into_owned(),
        topic_id: entry.topic_id,
        partitions: entry.partitions.min(MAX_PARTITIONS_PER_TOPIC),
        retention_ms: entry.retention_ms,
        retention_bytes: entry.retention_bytes,
        configs: String::from_utf8_lossy(configs).into_owned(),
        replication_factor: entry.replication_factor.clamp(1, u32::from(u16::MAX)) as u16,
        changed_at: entry.commit,
    })
}

/// Reads every live topic (invalidating each entry first).
pub fn read_catalog<B: MemoryBackend>(region: &Region<B>) -> Vec<Topic> {
    let layout = region.layout();
    if !layout.has_catalog() {
        return Vec::new();
    }
    (0..MAX_TOPICS)
        .filter_map(|slot| {
            let entry: TopicEntry = region.read_fresh(layout.topic_entry(slot));
            to_topic(slot, &entry)
        })
        .collect()
}
