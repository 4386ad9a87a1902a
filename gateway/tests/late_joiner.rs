//! Gateways that share nothing but the region: one that joins late with an
//! empty data dir (as on a new host) lacks the entries recycled from the
//! region before it came. It copies them from a live gateway that holds
//! every entry and serves copies (`peer_copy/`), and then holds everything
//! itself; when no such gateway is there, it must neither lead, coordinate
//! nor answer reads of older offsets, and while all complete gateways are
//! down nobody serves a copy with holes. On the simulated non-coherent
//! backend (hostile faults).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{start, AppendBatch, ClusterLog, ClusterOptions, FetchRead};
use cxlkafka_log::layout::{Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_log::memory::{SimFaults, Simulated, SimulatedMemory};
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

fn options(node_id: u16, data_dir: &Path, serves_copies: bool) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(node_id),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 19_600 + node_id,
        lease_timeout: Duration::from_millis(300),
        data_dir: data_dir.to_path_buf(),
        segment_bytes: 32 << 10,
        region_path: None,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: serves_copies.then(|| "127.0.0.1:0".parse().unwrap()),
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
    produce_held_by(log, stream, range, 1).await;
}

/// [`produce`], each batch waited for until `disks` gateway disks hold it.
async fn produce_held_by(
    log: &dyn ClusterLog,
    stream: u32,
    range: std::ops::Range<usize>,
    disks: usize,
) {
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
        log.wait_durable(completion.global_sequence, disks, Instant::now() + TIMEOUT)
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
        Self::format_with(cluster, seed, geometry())
    }

    fn format_with(cluster: &str, seed: u64, geometry: Geometry) -> Self {
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

    /// Starts gateway `slot` with its segments in `dir`, serving no copies
    /// of them to peers.
    fn join(&self, slot: u16, seed: u64, dir: &Path) -> Arc<dyn ClusterLog> {
        start(self.participant(seed), options(slot, dir, false)).expect("gateway starts")
    }

    /// Starts gateway `slot` with its segments in `dir`, serving copies of
    /// them to peers that lack entries.
    fn join_serving(&self, slot: u16, seed: u64, dir: &Path) -> Arc<dyn ClusterLog> {
        start(self.participant(seed), options(slot, dir, true)).expect("gateway starts")
    }

    fn participant(&self, seed: u64) -> cxlkafka_log::Region<Simulated> {
        attach(
            self.memory.participant(SimFaults::hostile(seed)),
            Path::new("sim"),
            Some(&self.geometry),
            None,
            Duration::ZERO,
        )
        .unwrap()
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

/// Produces far past what the arena and the order log hold, with a
/// committed offset in the middle; returns the stream.
async fn produce_past_the_region(log: &dyn ClusterLog, topic: &str) -> u32 {
    let stream = create_topic(log, topic, 2).await;
    produce(log, stream, 0..BATCHES / 2).await;
    let commit = ControlRecord::CommitOffsets {
        group: "readers".into(),
        offsets: vec![CommittedOffset {
            stream,
            offset: 33,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    log.control(&commit, TIMEOUT).await.expect("committed");
    produce(log, stream, BATCHES / 2..BATCHES).await;
    stream
}

fn committed(log: &dyn ClusterLog, stream: u32) -> Option<i64> {
    log.committed_offsets("readers")
        .get(&stream)
        .map(|committed| committed.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_copies_what_it_lacks_from_a_holder_and_then_holds_everything() {
    let region = SimRegion::format("copied", 3);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = region.join_serving(0, 30, dirs[0].path());
    let stream = produce_past_the_region(first.as_ref(), "copied").await;

    // An empty data dir, as on a new host: it copies from gateway 0 first.
    let late = region.join_serving(1, 31, dirs[1].path());
    assert!(late.holds_everything(), "it copied what left the region");
    assert_eq!(slots(&late.holders()), vec![0, 1]);
    assert_eq!(slots(&first.holders()), vec![0, 1], "every gateway agrees");
    produce(late.as_ref(), stream, BATCHES..BATCHES + 10).await;

    // With the gateway it copied from down, it alone serves every offset.
    first.shutdown();
    drop(first);
    eventually("gateway 0 is no longer live", || {
        slots(&late.members()) == vec![1]
    })
    .await;
    assert_eq!(slots(&late.holders()), vec![1]);
    assert_all_readable(late.as_ref(), stream, BATCHES + 10).await;
    assert_eq!(committed(late.as_ref(), stream), Some(33));

    // Gateway 0 comes back with an empty data dir: it copies everything
    // back from gateway 1, the entries gateway 1 itself copied included.
    std::fs::remove_dir_all(dirs[0].path().join("gateway-0")).unwrap();
    let first = region.join_serving(0, 32, dirs[0].path());
    assert!(first.holds_everything());
    late.shutdown();
    drop(late);
    eventually("gateway 1 is no longer live", || {
        slots(&first.members()) == vec![0]
    })
    .await;
    assert_eq!(slots(&first.holders()), vec![0]);
    assert_all_readable(first.as_ref(), stream, BATCHES + 10).await;
    first.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_with_a_gap_is_copied_anew_from_a_holder() {
    let region = SimRegion::format("gap", 4);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = region.join_serving(0, 40, dirs[0].path());
    let one = region.join_serving(1, 41, dirs[1].path());
    let stream = produce_past_the_region(first.as_ref(), "gap").await;
    one.shutdown();
    drop(one);
    // What a gateway that missed entries while paused records: it holds
    // every entry only from sequence 60 on.
    let chain = dirs[1].path().join("gateway-1");
    std::fs::write(chain.join("holds-from"), "60\n").unwrap();

    let one = region.join_serving(1, 42, dirs[1].path());
    assert!(one.holds_everything(), "the gap was filled");
    assert_eq!(
        std::fs::read_to_string(chain.join("holds-from")).unwrap(),
        "1\n",
        "it holds everything from the start again"
    );
    assert!(
        !dirs[1].path().join("gateway-1.gap").exists(),
        "the copy with the gap is gone once the new one is complete"
    );
    first.shutdown();
    drop(first);
    eventually("gateway 0 is no longer live", || {
        slots(&one.members()) == vec![1]
    })
    .await;
    assert_all_readable(one.as_ref(), stream, BATCHES).await;
    assert_eq!(committed(one.as_ref(), stream), Some(33));
    one.shutdown();
}

/// A gateway paused past its lease while the arena recycles what is
/// produced (the order log, longer here, still holds the entries) finds
/// their payloads gone when it resumes, and copies them from a holder into
/// its running chain: no gap opens, and it alone serves every one of them
/// once the holder is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_gateway_fills_its_gap_from_a_holder_while_it_runs() {
    let region = SimRegion::format_with(
        "paused",
        9,
        Geometry {
            order_log_entries: 1024,
            ..geometry()
        },
    );
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = region.join_serving(0, 90, dirs[0].path());
    let paused =
        start(region.participant(91), options(1, dirs[1].path(), true)).expect("gateway starts");
    paused.pause_as_if_stopped(true);
    eventually("the paused gateway is counted dead", || {
        slots(&first.members()) == vec![0]
    })
    .await;
    let stream = produce_past_the_region(first.as_ref(), "paused").await;

    paused.pause_as_if_stopped(false);
    eventually("the paused gateway is live again", || {
        slots(&first.members()) == vec![0, 1]
    })
    .await;
    // Durable on both disks: the resumed gateway copied up to here.
    let deadline = Instant::now() + TIMEOUT;
    let completion = first
        .append(
            AppendBatch {
                stream,
                payload: &batch_bytes(BATCHES),
                record_count: 1,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                max_timestamp: 0,
            },
            TIMEOUT,
        )
        .await
        .expect("ordered");
    first
        .wait_durable(completion.global_sequence, 2, deadline)
        .await
        .expect("on both disks");
    assert!(paused.holds_everything(), "no gap opened");
    assert_eq!(slots(&first.holders()), vec![0, 1]);

    first.shutdown();
    drop(first);
    eventually("gateway 0 is no longer live", || {
        slots(&paused.members()) == vec![1]
    })
    .await;
    assert_all_readable(paused.as_ref(), stream, BATCHES + 1).await;
    assert_eq!(committed(paused.as_ref(), stream), Some(33));
    paused.shutdown();
}

/// A gateway paused while the sequencer writes a whole order log past what
/// it applied can never apply those entries: when it resumes it fences
/// itself off and leaves at once (its stale applied frontier would hold
/// the sequencer back for good), the others go on ordering, and a restart
/// copies what it lacks from a holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_overtaken_by_the_order_log_leaves_and_a_restart_catches_up() {
    let region = SimRegion::format("overtaken", 10);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let first = region.join_serving(0, 100, dirs[0].path());
    let paused =
        start(region.participant(101), options(1, dirs[1].path(), true)).expect("gateway starts");
    paused.pause_as_if_stopped(true);
    eventually("the paused gateway is counted dead", || {
        slots(&first.members()) == vec![0]
    })
    .await;
    let stream = produce_past_the_region(first.as_ref(), "overtaken").await;

    paused.pause_as_if_stopped(false);
    let change = tokio::time::timeout(TIMEOUT, paused.region_lost())
        .await
        .expect("the overtaken gateway fences itself off");
    assert_eq!(change.kind(), "overtaken", "{change}");
    assert_eq!(slots(&first.members()), vec![0], "it left at once");
    // The sequencer is not held back by it.
    produce(first.as_ref(), stream, BATCHES..BATCHES + 10).await;
    paused.shutdown();
    drop(paused);

    let restarted = region.join_serving(1, 102, dirs[1].path());
    assert!(restarted.holds_everything(), "it copied what it lacked");
    first.shutdown();
    drop(first);
    eventually("gateway 0 is no longer live", || {
        slots(&restarted.members()) == vec![1]
    })
    .await;
    assert_all_readable(restarted.as_ref(), stream, BATCHES + 10).await;
    assert_eq!(committed(restarted.as_ref(), stream), Some(33));
    restarted.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_copy_listener_answers_only_a_participant_of_its_region() {
    use std::io::{Read, Write};

    let region = SimRegion::format("guarded", 5);
    let dir = tempfile::tempdir().unwrap();
    let gateway = region.join_serving(0, 50, dir.path());
    let view = region.participant(51);
    let (host, port) =
        cxlkafka_sequencer::membership::peer_address(&view, 0).expect("a peer port is published");
    let ask = |generation: [u8; 16]| {
        let mut stream = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        request.extend_from_slice(b"CXLKPEER");
        request.extend_from_slice(&1u16.to_le_bytes());
        request.extend_from_slice(&generation);
        request.extend_from_slice(&1u64.to_le_bytes());
        request.extend_from_slice(&0u32.to_le_bytes());
        stream.write_all(&request).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    };
    assert_eq!(
        ask([0xAB; 16]),
        vec![1],
        "another region's gateway is refused"
    );
    let answer = ask(view.generation().to_bytes());
    assert_eq!(answer[0], 0, "a participant is answered");
    assert_eq!(answer.last(), Some(&0), "with a complete stream");
    gateway.shutdown();
}

/// Produces batches `range` of `stream` with content shifted by `salt`
/// (another history writes other bytes at the same offsets).
async fn produce_salted(
    log: &dyn ClusterLog,
    stream: u32,
    range: std::ops::Range<usize>,
    salt: usize,
) {
    for index in range {
        let payload = batch_bytes(index + salt);
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
        assert_eq!(completion.base_offset, index as i64);
        log.wait_durable(completion.global_sequence, 1, Instant::now() + TIMEOUT)
            .await
            .expect("on a disk");
    }
}

/// Reads offsets `range` and checks them against `produce_salted(.., salt)`.
async fn assert_readable_salted(
    log: &dyn ClusterLog,
    stream: u32,
    range: std::ops::Range<usize>,
    salt: usize,
) {
    let deadline = Instant::now() + TIMEOUT;
    let mut offset = range.start as i64;
    while offset < range.end as i64 {
        match log.read(stream, offset, 1 << 20) {
            FetchRead::Batches { batches, .. } if !batches.is_empty() => {
                for batch in batches {
                    if offset >= range.end as i64 {
                        break;
                    }
                    let expected = batch_bytes(offset as usize + salt);
                    assert_eq!(&batch[8..], &expected[8..], "batch {offset} (salt {salt})");
                    offset += 1;
                }
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "offset {offset} never readable: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Starts gateway `slot` on `region` on a blocking thread: on a blank
/// region it may wait for others before it returns.
fn join_later(
    region: &Arc<SimRegion>,
    slot: u16,
    seed: u64,
    dir: &Path,
    unclean: bool,
) -> tokio::task::JoinHandle<Arc<dyn ClusterLog>> {
    let region = Arc::clone(region);
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let options = ClusterOptions {
            unclean_region_rebuild: unclean,
            ..options(slot, &dir, true)
        };
        start(region.participant(seed), options).expect("gateway starts") as Arc<dyn ClusterLog>
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_region_waits_for_the_gateways_that_were_live_and_takes_the_longest_chain() {
    let lost = SimRegion::format("lost", 6);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let zero = lost.join_serving(0, 60, dirs[0].path());
    let one = lost.join_serving(1, 61, dirs[1].path());
    let stream = create_topic(zero.as_ref(), "kept", 2).await;
    produce(zero.as_ref(), stream, 0..40).await;
    // Gateway 1 leaves; what comes after is on gateway 0's disk only.
    one.shutdown();
    drop(one);
    produce(zero.as_ref(), stream, 40..80).await;
    zero.shutdown();
    drop(zero);

    // The region is lost. Gateway 1 comes back first: gateway 0 was live
    // when it last ran, so it waits rather than rebuild from its 40.
    let region = Arc::new(SimRegion::format("lost", 7));
    let one = join_later(&region, 1, 62, dirs[1].path(), false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !one.is_finished(),
        "gateway 1 must not rebuild without gateway 0"
    );
    let zero = join_later(&region, 0, 63, dirs[0].path(), false)
        .await
        .unwrap();
    let one = one.await.unwrap();
    assert_all_readable(zero.as_ref(), stream, 80).await;
    assert_all_readable(one.as_ref(), stream, 80).await;
    assert!(
        one.holds_everything(),
        "it copied the 40 it lacked from gateway 0"
    );
    one.shutdown();
    zero.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_complete_chain_rebuilds_a_lost_region_with_a_longer_chains_end() {
    let lost = SimRegion::format("ends", 8);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let zero = lost.join_serving(0, 80, dirs[0].path());
    let one = lost.join_serving(1, 81, dirs[1].path());
    let stream = create_topic(zero.as_ref(), "ends", 2).await;
    produce(one.as_ref(), stream, 0..40).await;
    zero.shutdown();
    drop(zero);
    produce(one.as_ref(), stream, 40..80).await;
    one.shutdown();
    drop(one);
    // Gateway 1's chain reaches furthest but has a gap (as if it had been
    // paused): gateway 0's is the complete one.
    std::fs::write(dirs[1].path().join("gateway-1").join("holds-from"), "5\n").unwrap();

    let region = Arc::new(SimRegion::format("ends", 9));
    let zero = join_later(&region, 0, 82, dirs[0].path(), false);
    let one = join_later(&region, 1, 83, dirs[1].path(), false);
    let (zero, one) = (zero.await.unwrap(), one.await.unwrap());
    // Gateway 0 rebuilt the region with the 40 it lacked, copied from
    // gateway 1's end first; gateway 1 still has its gap.
    assert_all_readable(zero.as_ref(), stream, 80).await;
    assert!(zero.holds_everything());
    assert!(!one.holds_everything());
    one.shutdown();
    zero.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_of_another_history_are_set_aside_and_copied_anew() {
    for more in [30, 5] {
        let lost = SimRegion::format("split", 10);
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let zero = lost.join_serving(0, 100, dirs[0].path());
        let one = lost.join_serving(1, 101, dirs[1].path());
        let stream = create_topic(zero.as_ref(), "split", 2).await;
        // On both disks: gateway 1 alone rebuilds from them below (one disk
        // would do for the answer, and under load it is gateway 0's alone).
        produce_held_by(zero.as_ref(), stream, 0..40, 2).await;
        one.shutdown();
        drop(one);
        produce(zero.as_ref(), stream, 40..60).await;
        zero.shutdown();
        drop(zero);

        // The operator rebuilds the lost region from gateway 1 alone, and
        // gateway 1 takes other records at offsets 40 on.
        let region = Arc::new(SimRegion::format("split", 11));
        let one = join_later(&region, 1, 102, dirs[1].path(), true)
            .await
            .unwrap();
        produce_salted(one.as_ref(), stream, 40..40 + more, 1000).await;

        // Gateway 0 comes back with segments of the old history: 30 more
        // take the order past its last entry (a holder's entry there
        // differs), 5 leave it behind its last entry. Either way they are
        // set aside, kept, and replaced by a copy of the region's history.
        let zero = join_later(&region, 0, 103, dirs[0].path(), false)
            .await
            .unwrap();
        one.shutdown();
        drop(one);
        assert_readable_salted(zero.as_ref(), stream, 0..40, 0).await;
        assert_readable_salted(zero.as_ref(), stream, 40..40 + more, 1000).await;
        assert!(
            dirs[0].path().join("gateway-0.diverged").is_dir(),
            "the old history is kept for the operator"
        );
        zero.shutdown();
    }
}
