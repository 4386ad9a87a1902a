//! The topic catalog in the region: written by the sequencer, read by every
//! gateway. A topic's slot in the catalog fixes its streams:
//! `stream = slot * MAX_PARTITIONS_PER_TOPIC + partition`.

use cxlkafka_log::layout::{topic_state, TopicEntry, MAX_PARTITIONS_PER_TOPIC, MAX_TOPICS};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;

use crate::control::ControlRecord;
use crate::status;

/// Longest topic name a CreateTopic may carry (Kafka's limit).
pub const MAX_TOPIC_NAME_BYTES: usize = 249;
/// Room for a topic's other configs in its catalog entry.
pub const TOPIC_CONFIGS_BYTES: usize = 192;

/// The topic a CreateTopic record asks for, before a catalog gives it a
/// slot: the sequencer's catalog in the region and the sink's in memory
/// both start from it, so both apply the same rules.
#[derive(Clone, Copy, Debug)]
pub struct NewTopic<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Its other configs, as the control record carries them.
    pub configs: &'a str,
    /// The catalog entry's settings (id, partitions, retention, factor);
    /// name, configs, state and commit are filled in when it is placed.
    pub settings: TopicEntry,
}

impl<'a> NewTopic<'a> {
    /// The topic `record` creates; `None` when it is not a CreateTopic.
    pub fn from_record(record: &'a ControlRecord) -> Option<Self> {
        let ControlRecord::CreateTopic {
            name,
            partitions,
            topic_id,
            retention_ms,
            retention_bytes,
            configs,
            replication_factor,
        } = record
        else {
            return None;
        };
        let mut settings: TopicEntry = bytemuck::Zeroable::zeroed();
        settings.topic_id = *topic_id;
        settings.partitions = *partitions;
        settings.retention_ms = *retention_ms;
        settings.retention_bytes = *retention_bytes;
        settings.replication_factor = u32::from((*replication_factor).max(1));
        Some(Self {
            name,
            configs,
            settings,
        })
    }

    /// The refusal of a topic whose name is free: partitions out of range,
    /// or a name or configs too long for a catalog entry.
    pub fn check(&self) -> Result<(), i32> {
        if self.settings.partitions == 0 || self.settings.partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(status::INVALID_PARTITIONS);
        }
        if self.name.is_empty()
            || self.name.len() > MAX_TOPIC_NAME_BYTES
            || self.configs.len() > TOPIC_CONFIGS_BYTES
        {
            return Err(status::INVALID_CONTROL);
        }
        Ok(())
    }

    /// The catalog entry of the topic placed in a slot by the record with
    /// global sequence `sequence` (checked first with [`NewTopic::check`]).
    pub fn entry(&self, sequence: u64) -> TopicEntry {
        let mut entry = self.settings;
        entry.commit = sequence;
        entry.state = topic_state::LIVE;
        entry.name_len = self.name.len() as u32;
        entry.name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        set_topic_configs(&mut entry, self.configs);
        entry
    }

    /// The topic as gateways see it once placed in `slot`.
    pub fn topic(&self, slot: u32, sequence: u64) -> Topic {
        to_topic(slot, &self.entry(sequence)).expect("a placed topic is live")
    }
}

/// Replaces `entry`'s other topic configs with `configs` (at most
/// [`TOPIC_CONFIGS_BYTES`], checked by the caller).
pub(crate) fn set_topic_configs(entry: &mut TopicEntry, configs: &str) {
    entry.configs = [0; TOPIC_CONFIGS_BYTES];
    entry.configs_len = configs.len() as u32;
    entry.configs[..configs.len()].copy_from_slice(configs.as_bytes());
}

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
