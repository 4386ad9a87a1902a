//! Gateways that share nothing but the region: one that joins late with an
//! empty data dir (as on a new host) lacks the entries recycled from the
//! region before it came, so it must neither lead, coordinate nor answer
//! reads of older offsets; the gateways that hold every entry do, and while
//! all of them are down nobody serves a copy with holes. On the simulated
//! non-coherent backend (hostile faults).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{start, AppendBatch, ClusterLog, ClusterOptions, FetchRead};
use cxlkafka_log::layout::{Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_log::memory::{SimFaults, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format};
use cxlkafka_sequencer::catalog::stream_of;
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Several times what the arena and the order log hold.
const BATCHES: usize = 150;

fn geometry() -> Geometry {
    Geometry {
        max_gateways: 3,
        ring_slots: 32,
        arena_bytes: 64 << 10,
        order_log_entries: 64,
        sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
    }
}

fn options(node_id: u16, data_dir: &Path) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(node_id),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 19_600 + node_id,
        lease_timeout: Duration::from_millis(300),
        data_dir: data_dir.to_path_buf(),
        segment_bytes: 32 << 10,
        region_path: None,
        adopt_data_dir: false,
    }
}

/// A Kafka-shaped batch (length, magic 2, CRC32C of bytes 21..).
fn batch_bytes(index: usize) -> Vec<u8> {
    let length = 300 + (index * 977) % 2000;
    let mut bytes: Vec<u8> = (0..length).map(|at| (at * 29 + index * 5) as u8).collect();
    bytes[..8].copy_from_slice(&[0; 8]);
    bytes[8..12].copy_from_slice(&(length as i32 - 12).to_be_bytes());
    bytes[16] = 2;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

async fn produce(log: &dyn ClusterLog, stream: u32, range: std::ops::Range<usize>) {
    for index in range {
        let payload = batch_bytes(index);
        let batch = AppendBatch {
            stream,
            payload: &payload,
            record_count: 1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            max_timestamp: index as i64,
        };
        let completion = log.append(batch, TIMEOUT).await.expect("ordered");
        assert_eq!(completion.error, 0);
        assert_eq!(completion.base_offset, index as i64);
        log.wait_durable(completion.global_sequence, 1, Instant::now() + TIMEOUT)
            .await
            .expect("on a disk");
    }
}

/// Reads offsets 0..count from `log` and checks every batch byte for byte.
async fn assert_all_readable(log: &dyn ClusterLog, stream: u32, count: usize) {
    let deadline = Instant::now() + TIMEOUT;
    let mut offset = 0i64;
    while offset < count as i64 {
        match log.read(stream, offset, 1 << 20) {
            FetchRead::Batches { batches, .. } if !batches.is_empty() => {
                for batch in batches {
                    let expected = batch_bytes(offset as usize);
                    assert_eq!(&batch[8..], &expected[8..], "batch {offset} byte-identical");
                    offset += 1;
                }
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "offset {offset} of {count} never became readable: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

fn slots(members: &[cxlkafka_gateway::cluster::Member]) -> Vec<u16> {
    members.iter().map(|member| member.gateway).collect()
}

/// Waits until `check` holds, or fails with `what`.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A formatted simulated region that gateways join, each as its own host
/// (its own participant with hostile cache faults).
struct SimRegion {
    memory: Arc<SimulatedMemory>,
    geometry: Geometry,
}

impl SimRegion {
    fn format(cluster: &str, seed: u64) -> Self {
        let geometry = geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let memory = SimulatedMemory::new(bytes as usize);
        let id = cluster_id(cluster).unwrap();
        drop(
            format(
                memory.participant(SimFaults::none(seed)),
                geometry,
                bytes,
                id,
            )
            .unwrap(),
        );
        Self { memory, geometry }
    }

    /// Starts gateway `slot` with its segments in `dir`.
    fn join(&self, slot: u16, seed: u64, dir: &Path) -> Arc<dyn ClusterLog> {
        let region = attach(
            self.memory.participant(SimFaults::hostile(seed)),
            Path::new("sim"),
            Some(&self.geometry),
            None,
            Duration::ZERO,
        )
        .unwrap();
        start(region, options(slot, dir)).expect("gateway starts")
    }
}

/// Creates a one-partition topic; returns its stream.
async fn create_topic(log: &dyn ClusterLog, name: &str, replication_factor: u16) -> u32 {
    let created = ControlRecord::CreateTopic {
        name: name.into(),
        partitions: 1,
        topic_id: [4; 16],
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor,
    };
    let completion = log.control(&created, TIMEOUT).await.expect("created");
    stream_of(completion.base_offset as u32, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_with_an_empty_data_dir_serves_nothing_it_lacks() {
    let region = SimRegion::format("late", 1);
    let first_dir = tempfile::tempdir().unwrap();
    let late_dir = tempfile::tempdir().unwrap();

    let first = region.join(0, 10, first_dir.path());
    let stream = create_topic(first.as_ref(), "kept", 2).await;
    produce(first.as_ref(), stream, 0..BATCHES / 2).await;
    let commit = ControlRecord::CommitOffsets {
        group: "readers".into(),
        offsets: vec![CommittedOffset {
            stream,
            offset: 33,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    first.control(&commit, TIMEOUT).await.expect("committed");
    // Far past the arena and the order log: what came before is on gateway
    // 0's disk only.
    produce(first.as_ref(), stream, BATCHES / 2..BATCHES).await;

    let late = region.join(1, 11, late_dir.path());
    assert!(first.holds_everything());
    assert!(
        !late.holds_everything(),
        "it lacks what was recycled before it came"
    );
    assert_eq!(slots(&first.holders()), vec![0]);
    assert_eq!(slots(&late.holders()), vec![0], "every gateway agrees");
    assert_eq!(slots(&late.members()), vec![0, 1], "yet it is live");

    // Both take writes; the one that holds everything serves everything.
    produce(late.as_ref(), stream, BATCHES..BATCHES + 10).await;
    assert_all_readable(first.as_ref(), stream, BATCHES + 10).await;
    assert_eq!(
        first
            .committed_offsets("readers")
            .get(&stream)
            .map(|c| c.offset),
        Some(33)
    );

    // With the only complete gateway down, nobody serves the partial copy.
    first.shutdown();
    drop(first);
    eventually("gateway 0 is no longer live", || {
        slots(&late.members()) == vec![1]
    })
    .await;
    assert!(
        late.holders().is_empty(),
        "no leader rather than a copy with holes"
    );
    assert!(!late.holds_everything());

    // It comes back with its data dir and leads again; what is produced
    // from now on reaches both disks.
    let first = region.join(0, 12, first_dir.path());
    assert!(first.holds_everything());
    produce(late.as_ref(), stream, BATCHES + 10..BATCHES + 20).await;
    assert_all_readable(first.as_ref(), stream, BATCHES + 20).await;
    assert_eq!(slots(&late.holders()), vec![0]);
    late.shutdown();
    first.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_restarts_where_it_left_off_still_holds_everything() {
    let region = SimRegion::format("again", 2);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let gateway = |slot: u16, seed: u64| region.join(slot, seed, dirs[usize::from(slot)].path());
    let zero = gateway(0, 20);
    let one = gateway(1, 21);
    let stream = create_topic(zero.as_ref(), "both", 3).await;
    produce(zero.as_ref(), stream, 0..40).await;
    assert_eq!(
        slots(&zero.holders()),
        vec![0, 1],
        "both were there from the start"
    );

    // Gateway 1 stops and comes back before anything it lacks is recycled.
    one.shutdown();
    drop(one);
    let one = gateway(1, 22);
    assert!(one.holds_everything());
    assert_eq!(slots(&one.holders()), vec![0, 1]);
    produce(one.as_ref(), stream, 40..BATCHES).await;
    assert_all_readable(one.as_ref(), stream, BATCHES).await;
    assert_all_readable(zero.as_ref(), stream, BATCHES).await;
    one.shutdown();
    zero.shutdown();
}
