//! Helpers for tests that drive a gateway's storage side (`ClusterLog`)
//! directly, without the Kafka listener: a small geometry, options, a
//! Kafka-shaped batch, a topic, an acks=all produce.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{AppendBatch, AppendError, ClusterLog, ClusterOptions};
use cxlkafka_log::layout::{Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_sequencer::catalog::stream_of;
use cxlkafka_sequencer::control::ControlRecord;

/// Generous: waits poll until what they wait for holds; this only bounds a
/// hang.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Two gateways, small rings and arenas.
pub fn geometry() -> Geometry {
    Geometry {
        max_gateways: 2,
        ring_slots: 32,
        arena_bytes: 64 << 10,
        order_log_entries: 64,
        sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
    }
}

pub fn options(node_id: u16, data_dir: &Path, region_path: Option<PathBuf>) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(node_id),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 19_700 + node_id,
        lease_timeout: Duration::from_millis(300),
        data_dir: data_dir.to_path_buf(),
        segment_bytes: 32 << 10,
        region_path,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: None,
    }
}

/// A one-record Kafka-shaped batch (magic 2, CRC32C over bytes 21..).
pub fn batch_bytes() -> Vec<u8> {
    let mut bytes = vec![7u8; 120];
    bytes[..8].copy_from_slice(&[0; 8]);
    bytes[8..12].copy_from_slice(&(120i32 - 12).to_be_bytes());
    bytes[16] = 2;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

pub fn one_record(stream: u32, payload: &[u8]) -> AppendBatch<'_> {
    AppendBatch {
        stream,
        payload,
        record_count: 1,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        max_timestamp: 0,
    }
}

/// Creates a one-partition topic with one disk copy; returns its stream.
pub async fn create_topic(log: &dyn ClusterLog, name: &str) -> u32 {
    let record = ControlRecord::CreateTopic {
        name: name.into(),
        partitions: 1,
        topic_id: [3; 16],
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 2,
    };
    let completion = log.control(&record, DEADLINE).await.expect("ordered");
    assert_eq!(completion.error, 0);
    stream_of(completion.base_offset as u32, 0)
}

/// One acks=all produce: ordered, then on one disk; its global sequence.
pub async fn produce_acks_all(log: &dyn ClusterLog, stream: u32) -> Result<u64, AppendError> {
    let payload = batch_bytes();
    let completion = log.append(one_record(stream, &payload), DEADLINE).await?;
    assert_eq!(completion.error, 0);
    log.wait_durable(completion.global_sequence, 1, Instant::now() + DEADLINE)
        .await?;
    Ok(completion.global_sequence)
}
