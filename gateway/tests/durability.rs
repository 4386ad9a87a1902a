//! The disk tier through the storage side of real gateways: acks=all waits
//! for a durable copy, data recycled from the arena is served from the
//! segments byte for byte, a restarted gateway rebuilds its index (and its
//! group offsets) from its segments, and a gateway killed while producing
//! leaves every acknowledged batch readable. Each runs on the simulated
//! non-coherent backend (hostile faults: stale lines, torn records, delayed
//! flushes) and on a real mapped file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{
    start, AppendBatch, ClusterLog, ClusterOptions, FetchRead, ORDER_STREAM,
};
use cxlkafka_log::layout::{Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_log::memory::{Coherent, MemoryBackend, SimFaults, Simulated, SimulatedMemory};
use cxlkafka_log::open::{attach, attach_file, cluster_id, format, open_or_create, RegionOptions};
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::stream_of;
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Batches per test: several times what the arena holds.
const BATCHES: usize = 120;

fn geometry() -> Geometry {
    Geometry {
        max_gateways: 2,
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
        advertised_port: 19_500 + node_id,
        lease_timeout: Duration::from_millis(300),
        data_dir: data_dir.to_path_buf(),
        segment_bytes: 32 << 10,
        region_path: None,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: None,
    }
}

/// A Kafka-shaped batch: length, magic 2 and the CRC32C of bytes 21.. where
/// a client puts them (the disk tier derives its entry CRC from them); its
/// first 8 bytes (the base offset) are rewritten on fetch, everything after
/// is compared.
fn batch_bytes(index: usize) -> Vec<u8> {
    let length = 200 + (index * 977) % 3000;
    let mut bytes: Vec<u8> = (0..length).map(|at| (at * 31 + index * 7) as u8).collect();
    bytes[..8].copy_from_slice(&[0; 8]);
    bytes[8..12].copy_from_slice(&(length as i32 - 12).to_be_bytes());
    bytes[16] = 2;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Reads every entry of every segment under `dir` and checks its CRC over
/// header and payload (inline or in a data file), as recovery does for a
/// last segment: an entry written with a wrong CRC would be cut there as
/// torn. Returns the count.
fn assert_every_segment_entry_checks_out(dir: &Path) -> usize {
    use cxlkafka_log::segment::format::{data_file_name, ENTRY_HEADER_BYTES, PAYLOAD_REF_BYTES};
    use cxlkafka_log::segment::{EntryHeader, PayloadRef};
    let mut entries = 0;
    for file in std::fs::read_dir(dir).expect("segment dir") {
        let path = file.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "log") {
            continue;
        }
        let segment: u64 = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| stem.parse().ok())
            .expect("a segment named by its first sequence");
        let bytes = std::fs::read(&path).expect("segment");
        let mut position = 0;
        while position < bytes.len() {
            let header: [u8; ENTRY_HEADER_BYTES] = bytes[position..position + ENTRY_HEADER_BYTES]
                .try_into()
                .expect("a whole header");
            let (decoded, crc) = EntryHeader::decode(&header).expect("entry magic");
            let after = position + ENTRY_HEADER_BYTES;
            let length = decoded.length as usize;
            let (payload, next) = if EntryHeader::references_data_file(&header) {
                let reference = PayloadRef::decode(
                    bytes[after..after + PAYLOAD_REF_BYTES]
                        .try_into()
                        .expect("a whole reference"),
                );
                let data = std::fs::read(dir.join(data_file_name(segment, reference.source)))
                    .expect("the data file an entry names");
                let at = reference.offset as usize;
                (data[at..at + length].to_vec(), after + PAYLOAD_REF_BYTES)
            } else {
                (bytes[after..after + length].to_vec(), after + length)
            };
            assert!(
                EntryHeader::crc_matches(&header, &payload, crc),
                "{}: entry {} at {position} fails its CRC",
                path.display(),
                decoded.sequence
            );
            entries += 1;
            position = next;
        }
    }
    entries
}

fn topic_record(name: &str, replication_factor: u16) -> ControlRecord {
    ControlRecord::CreateTopic {
        name: name.into(),
        partitions: 1,
        topic_id: [9; 16],
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor,
    }
}

/// Creates the topic; returns its stream.
async fn create_topic(log: &dyn ClusterLog, name: &str) -> u32 {
    let completion = log
        .control(&topic_record(name, 2), TIMEOUT)
        .await
        .expect("ordered");
    assert_eq!(completion.error, 0);
    stream_of(completion.base_offset as u32, 0)
}

/// Batch `index` of a test: one record, no producer id, its index as its
/// timestamp.
fn one_record(stream: u32, payload: &[u8], index: usize) -> AppendBatch<'_> {
    AppendBatch {
        stream,
        payload,
        record_count: 1,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        max_timestamp: index as i64,
    }
}

/// Produces `count` batches with acks=all semantics (ordered, then held by
/// one disk); returns each acknowledged base offset.
async fn produce_acks_all(
    log: &dyn ClusterLog,
    stream: u32,
    from: usize,
    count: usize,
) -> Vec<i64> {
    let mut offsets = Vec::with_capacity(count);
    for index in from..from + count {
        let payload = batch_bytes(index);
        let completion = log
            .append(one_record(stream, &payload, index), TIMEOUT)
            .await
            .expect("ordered");
        assert_eq!(completion.error, 0);
        log.wait_durable(completion.global_sequence, 1, Instant::now() + TIMEOUT)
            .await
            .expect("on disk");
        offsets.push(completion.base_offset);
    }
    offsets
}

/// Reads every batch of the stream from offset 0 and checks each against
/// what was produced at that offset.
async fn assert_all_readable(log: &dyn ClusterLog, stream: u32, count: usize) {
    let deadline = Instant::now() + TIMEOUT;
    let mut offset = 0i64;
    while offset < count as i64 {
        match log.read(stream, offset, 1 << 20) {
            FetchRead::Batches { batches, .. } if !batches.is_empty() => {
                for batch in batches {
                    let base = i64::from_be_bytes(batch[..8].try_into().unwrap());
                    assert_eq!(base, offset, "batches come back in offset order");
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

fn data_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cxlkafka-durability-{name}-"))
        .tempdir()
        .expect("temp dir")
}

/// Everything but the region: the same checks on both backends.
async fn acks_all_recycling_and_restart(
    open: impl Fn() -> Arc<dyn ClusterLog>,
    reopen: impl Fn() -> Arc<dyn ClusterLog>,
    segments: &Path,
) {
    let log = open();
    let stream = create_topic(log.as_ref(), "durable").await;
    let offsets = produce_acks_all(log.as_ref(), stream, 0, BATCHES).await;
    assert_eq!(offsets, (0..BATCHES as i64).collect::<Vec<_>>());
    // Far more than the 64 KiB arena: the early batches come from disk.
    assert_all_readable(log.as_ref(), stream, BATCHES).await;
    let commit = ControlRecord::CommitOffsets {
        group: "readers".into(),
        offsets: vec![CommittedOffset {
            stream,
            offset: 77,
            leader_epoch: -1,
            metadata: "m".into(),
        }],
    };
    log.control(&commit, TIMEOUT).await.expect("committed");
    // Push the commit out of the order log's lap and the arena.
    produce_acks_all(log.as_ref(), stream, BATCHES, 40).await;
    log.shutdown();
    drop(log);

    let log = reopen();
    assert_all_readable(log.as_ref(), stream, BATCHES + 40).await;
    assert_eq!(log.offsets(stream), (0, (BATCHES + 40) as i64));
    let committed = log.committed_offsets("readers");
    assert_eq!(committed.get(&stream).map(|c| c.offset), Some(77));
    // And it goes on accepting.
    produce_acks_all(log.as_ref(), stream, BATCHES + 40, 5).await;
    assert_all_readable(log.as_ref(), stream, BATCHES + 45).await;
    log.shutdown();
    // The batches, the topic and the commit: every one on disk, each CRC
    // right (the batches' derived from their own CRC field).
    let entries = assert_every_segment_entry_checks_out(segments);
    assert!(entries >= BATCHES + 47, "{entries} entries on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_acks_all_recycling_and_restart() {
    for seed in 0..2u64 {
        let dir = data_dir("sim");
        let geometry = geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let memory = SimulatedMemory::new(bytes as usize);
        let formatted = format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            cluster_id("dur").unwrap(),
        )
        .unwrap();
        drop(formatted);
        let participant = |salt: u64| {
            let region = attach(
                memory.participant(SimFaults::hostile(seed * 100 + salt)),
                Path::new("sim"),
                Some(&geometry),
                None,
                Duration::ZERO,
            )
            .unwrap();
            start_log(region, options(0, dir.path()))
        };
        acks_all_recycling_and_restart(
            || participant(1),
            || participant(2),
            &dir.path().join("gateway-0"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_acks_all_recycling_and_restart() {
    let dir = data_dir("file");
    let region_path = dir.path().join("region");
    let geometry = geometry();
    let region_bytes = geometry.layout().unwrap().total_bytes;
    let open = || {
        let region_options = RegionOptions {
            path: region_path.clone(),
            region_bytes,
            geometry,
            cluster_id: cluster_id("dur").unwrap(),
            format_wait: Duration::from_secs(5),
        };
        let (region, _) = open_or_create::<Coherent>(&region_options).expect("region");
        start_log(region, options(0, &dir.path().join("data")))
    };
    acks_all_recycling_and_restart(open, open, &dir.path().join("data/gateway-0")).await;
    let _ = attach_file::<Coherent>(&region_path, None, None, Duration::ZERO).expect("intact");
}

fn start_log<B: MemoryBackend>(region: Region<B>, options: ClusterOptions) -> Arc<dyn ClusterLog> {
    start(region, options).expect("gateway starts")
}

/// The region is lost after acks=all production; a gateway started on a
/// blank region rebuilds it from its segments: same topic, offsets and
/// committed offsets, and production continues at the next offset.
async fn region_rebuilt_from_segments(
    open_first: impl Fn() -> Arc<dyn ClusterLog>,
    open_after_loss: impl Fn() -> Arc<dyn ClusterLog>,
) {
    let log = open_first();
    let stream = create_topic(log.as_ref(), "survivor").await;
    produce_acks_all(log.as_ref(), stream, 0, BATCHES).await;
    let commit = ControlRecord::CommitOffsets {
        group: "readers".into(),
        offsets: vec![CommittedOffset {
            stream,
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    log.control(&commit, TIMEOUT).await.expect("committed");
    log.shutdown();
    drop(log);

    let log = open_after_loss();
    let topic = log.topic("survivor").expect("the topic is back");
    assert_eq!(topic.stream(0), Some(stream), "in the same catalog slot");
    assert_eq!(log.offsets(stream), (0, BATCHES as i64));
    assert_all_readable(log.as_ref(), stream, BATCHES).await;
    assert_eq!(
        log.committed_offsets("readers")
            .get(&stream)
            .map(|c| c.offset),
        Some(42)
    );
    let next = produce_acks_all(log.as_ref(), stream, BATCHES, 3).await;
    assert_eq!(
        next,
        vec![BATCHES as i64, BATCHES as i64 + 1, BATCHES as i64 + 2]
    );
    assert_all_readable(log.as_ref(), stream, BATCHES + 3).await;
    log.shutdown();
}

/// The offset after a record batch's last record (base offset plus last
/// offset delta, plus one).
fn offset_after(batch: &[u8]) -> i64 {
    let base = i64::from_be_bytes(batch[..8].try_into().unwrap());
    let last_delta = i32::from_be_bytes(batch[23..27].try_into().unwrap());
    base + i64::from(last_delta) + 1
}

/// A blank simulated region, formatted.
fn formatted_sim_memory(seed: u64) -> Arc<SimulatedMemory> {
    let geometry = geometry();
    let bytes = geometry.layout().unwrap().total_bytes;
    let memory = SimulatedMemory::new(bytes as usize);
    drop(
        format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            cluster_id("dur").unwrap(),
        )
        .unwrap(),
    );
    memory
}

/// A gateway's view of `memory`, with hostile cache faults.
fn attach_sim(memory: &Arc<SimulatedMemory>, seed: u64) -> Region<Simulated> {
    attach(
        memory.participant(SimFaults::hostile(seed)),
        Path::new("sim"),
        Some(&geometry()),
        None,
        Duration::ZERO,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_region_lost_and_rebuilt() {
    let dir = data_dir("sim-lost");
    let fresh_region = |seed: u64| {
        let memory = formatted_sim_memory(seed);
        start_log(attach_sim(&memory, seed), options(0, dir.path()))
    };
    region_rebuilt_from_segments(|| fresh_region(7), || fresh_region(8)).await;
}

/// An idempotent producer whose last batches were ordered and made durable
/// just before the region was lost, and who never heard back, retries
/// them on the rebuilt region: each gets the offsets it was first given,
/// none is stored twice, and the producer's next batch follows on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_idempotent_retries_across_a_rebuilt_region_are_not_stored_twice() {
    let dir = data_dir("sim-idempotent");
    let fresh_region = |seed: u64| {
        let memory = formatted_sim_memory(seed);
        start_log(attach_sim(&memory, seed), options(0, dir.path()))
    };
    let payloads: Vec<Vec<u8>> = (0..6).map(batch_bytes).collect();
    let idempotent = |stream: u32, sequence: usize| AppendBatch {
        base_sequence: sequence as i32,
        producer_id: 4_242,
        producer_epoch: 3,
        ..one_record(stream, &payloads[sequence], sequence)
    };
    let log = fresh_region(21);
    let stream = create_topic(log.as_ref(), "retried").await;
    let mut first_offsets = Vec::new();
    for sequence in 0..5 {
        let completion = log
            .append(idempotent(stream, sequence), TIMEOUT)
            .await
            .expect("ordered");
        assert_eq!(completion.error, 0);
        log.wait_durable(completion.global_sequence, 1, Instant::now() + TIMEOUT)
            .await
            .expect("on disk");
        first_offsets.push(completion.base_offset);
    }
    // A batch of no idempotent producer: the order log kept in the rebuilt
    // region below its first sequence has a hole where it was.
    let plain = batch_bytes(99);
    let completion = log
        .append(one_record(stream, &plain, 99), TIMEOUT)
        .await
        .expect("ordered");
    log.wait_durable(completion.global_sequence, 1, Instant::now() + TIMEOUT)
        .await
        .expect("on disk");
    log.shutdown();
    drop(log);

    let log = fresh_region(22);
    // The producer retries its in-flight batches (up to five).
    for (sequence, first_offset) in first_offsets.into_iter().enumerate() {
        let completion = log
            .append(idempotent(stream, sequence), TIMEOUT)
            .await
            .expect("answered");
        assert_eq!(completion.error, 0, "batch {sequence}");
        assert_eq!(
            completion.base_offset, first_offset,
            "batch {sequence} keeps its first offset"
        );
    }
    assert_eq!(log.offsets(stream), (0, 6), "nothing was stored twice");
    let next = log
        .append(idempotent(stream, 5), TIMEOUT)
        .await
        .expect("ordered");
    assert_eq!((next.error, next.base_offset), (0, 6));
    // The order topic starts where the rebuilt region's own log does.
    let mut offset = log.offsets(ORDER_STREAM).0;
    let high_watermark = log.offsets(ORDER_STREAM).1;
    while offset < high_watermark {
        match log.read(ORDER_STREAM, offset, 1 << 20) {
            FetchRead::Batches { batches, .. } if !batches.is_empty() => {
                offset = batches
                    .iter()
                    .map(|batch| offset_after(batch))
                    .max()
                    .unwrap()
            }
            other => panic!("the order topic stops at {offset} of {high_watermark}: {other:?}"),
        }
    }
    log.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_region_deleted_and_rebuilt() {
    let dir = data_dir("file-lost");
    let region_path = dir.path().join("region");
    let geometry = geometry();
    let region_bytes = geometry.layout().unwrap().total_bytes;
    let open = || {
        let region_options = RegionOptions {
            path: region_path.clone(),
            region_bytes,
            geometry,
            cluster_id: cluster_id("dur").unwrap(),
            format_wait: Duration::from_secs(5),
        };
        let (region, _) = open_or_create::<Coherent>(&region_options).expect("region");
        start_log(region, options(0, &dir.path().join("data")))
    };
    let lose_and_open = || {
        std::fs::remove_file(&region_path).expect("the region file is lost");
        open()
    };
    region_rebuilt_from_segments(open, lose_and_open).await;
}

/// How a retention scenario reopens the log.
#[derive(Clone, Copy, Debug)]
enum Opening {
    /// The first start, on a blank region.
    First,
    /// A restart on the same region.
    Restart,
    /// A start after the region was lost (rebuilt from the segments).
    RegionLost,
}

/// retention.bytes and retention.ms move the log start (through the
/// order, so every gateway agrees), delete the segment files nothing
/// readable is left in, and survive a restart and the loss of the region.
async fn retention_moves_the_log_start_and_deletes_segments(
    data: &Path,
    open: impl Fn(Opening) -> Arc<dyn ClusterLog>,
) {
    let segment_files = || {
        std::fs::read_dir(data.join("gateway-0"))
            .unwrap()
            .filter(|item| {
                item.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|ext| ext == "log")
            })
            .count()
    };
    let log = open(Opening::First);
    let by_size = {
        let record = ControlRecord::CreateTopic {
            name: "by-size".into(),
            partitions: 1,
            topic_id: [3; 16],
            retention_ms: -1,
            retention_bytes: 40 << 10,
            configs: String::new(),
            replication_factor: 2,
        };
        let completion = log.control(&record, TIMEOUT).await.expect("ordered");
        stream_of(completion.base_offset as u32, 0)
    };
    // Timestamps 0..BATCHES: far older than a day.
    let by_time = {
        let record = ControlRecord::CreateTopic {
            name: "by-time".into(),
            partitions: 1,
            topic_id: [4; 16],
            retention_ms: 86_400_000,
            retention_bytes: -1,
            configs: String::new(),
            replication_factor: 2,
        };
        let completion = log.control(&record, TIMEOUT).await.expect("ordered");
        stream_of(completion.base_offset as u32, 0)
    };
    produce_acks_all(log.as_ref(), by_size, 0, BATCHES).await;
    produce_acks_all(log.as_ref(), by_time, 0, 20).await;
    let files_before = segment_files();

    let report = cxlkafka_gateway::cluster::retention::run_once(log.as_ref()).await;
    assert_eq!(report.log_starts_moved, 2);
    let (start, high_watermark) = log.offsets(by_size);
    assert_eq!(high_watermark, BATCHES as i64);
    let kept: usize = (start as usize..BATCHES)
        .map(|i| batch_bytes(i).len())
        .sum();
    assert!(kept <= 40 << 10, "at most retention.bytes kept ({kept})");
    assert!(
        kept + batch_bytes(start as usize - 1).len() > 40 << 10,
        "no more than needed dropped"
    );
    assert_eq!(
        log.offsets(by_time),
        (20, 20),
        "every batch older than retention.ms"
    );
    assert!(matches!(
        log.read(by_size, 0, 1 << 20),
        FetchRead::OutOfRange { .. }
    ));
    // The files holding only expired batches are gone (the first holds the
    // topic creations and stays).
    assert!(report.segments_deleted > 0 && segment_files() < files_before);
    log.shutdown();
    drop(log);

    let same_after = |log: &dyn ClusterLog, when: &str| {
        assert_eq!(log.offsets(by_size), (start, BATCHES as i64), "{when}");
        assert_eq!(log.offsets(by_time), (20, 20), "{when}");
        let mut offset = start;
        while offset < BATCHES as i64 {
            let FetchRead::Batches { batches, .. } = log.read(by_size, offset, 1 << 20) else {
                panic!("offset {offset} readable {when}");
            };
            for batch in batches {
                assert_eq!(&batch[8..], &batch_bytes(offset as usize)[8..]);
                offset += 1;
            }
        }
    };
    let log = open(Opening::Restart);
    same_after(log.as_ref(), "after the restart");
    log.shutdown();
    drop(log);

    // The region lost after retention deleted segments: the rebuild
    // replays what is left, and the DeleteRecords records keep the offsets
    // of the deleted batches taken.
    let log = open(Opening::RegionLost);
    same_after(log.as_ref(), "after the region was rebuilt");
    log.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_retention_restart_and_region_lost() {
    let dir = data_dir("sim-retention");
    let memory = std::sync::Mutex::new(formatted_sim_memory(10));
    let seed = std::sync::atomic::AtomicU64::new(11);
    let open = |opening: Opening| {
        let seed = seed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut memory = memory.lock().unwrap();
        if matches!(opening, Opening::First | Opening::RegionLost) {
            *memory = formatted_sim_memory(seed);
        }
        start_log(attach_sim(&memory, seed), options(0, dir.path()))
    };
    retention_moves_the_log_start_and_deletes_segments(dir.path(), open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_retention_restart_and_region_deleted() {
    let dir = data_dir("retention");
    let region_path = dir.path().join("region");
    let geometry = geometry();
    let region_bytes = geometry.layout().unwrap().total_bytes;
    let data = dir.path().join("data");
    let open = |opening: Opening| {
        if matches!(opening, Opening::RegionLost) {
            std::fs::remove_file(&region_path).expect("the region file is lost");
        }
        let region_options = RegionOptions {
            path: region_path.clone(),
            region_bytes,
            geometry,
            cluster_id: cluster_id("dur").unwrap(),
            format_wait: Duration::from_secs(5),
        };
        let (region, _) = open_or_create::<Coherent>(&region_options).expect("region");
        start_log(region, options(0, &data))
    };
    retention_moves_the_log_start_and_deletes_segments(&data, open).await;
}

/// A tmpfs of a given size mounted over a folder (unmounted on drop): a
/// real file system that fills up. Mounting needs root, which the tests
/// have where `.ci/run` runs them.
struct SmallTmpfs {
    path: std::path::PathBuf,
}

impl SmallTmpfs {
    fn mount(path: &Path, bytes: u64) -> Self {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {bytes}-byte tmpfs at {} (needs root)",
            path.display()
        );
        Self {
            path: path.to_path_buf(),
        }
    }

    /// Gives the file system `bytes` of room (more than it holds frees space).
    fn resize(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "resizing the tmpfs at {}",
            self.path.display()
        );
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// A full data dir answers acks=all (and, once the arena is full of what
/// the disk cannot take, any publish) with a storage error instead of
/// letting it run into the request timeout; once there is room again the
/// same gateway, not restarted, copies what it missed and accepts again,
/// and every batch ordered meanwhile reads back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_full_disk_is_a_storage_error_and_recovers() {
    use cxlkafka_gateway::cluster::AppendError;
    let dir = data_dir("full");
    let disk = SmallTmpfs::mount(dir.path(), 256 << 10);
    let memory = formatted_sim_memory(11);
    let log = start_log(attach_sim(&memory, 11), options(0, dir.path()));
    let stream = create_topic(log.as_ref(), "full").await;
    // Far longer than a storage error may take: only the timeout would end
    // a wait that no answer ends.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ordered = 0usize;
    let mut last_sequence = 0;
    let mut refusal = None;
    for index in 0..1_000 {
        let payload = batch_bytes(index);
        let batch = one_record(stream, &payload, index);
        let completion = match log.append(batch, Duration::from_secs(120)).await {
            Ok(completion) => completion,
            Err(error) => {
                refusal = Some(error);
                break;
            }
        };
        assert_eq!(completion.error, 0);
        ordered += 1;
        last_sequence = completion.global_sequence;
        if let Err(error) = log
            .wait_durable(completion.global_sequence, 1, deadline)
            .await
        {
            refusal = Some(error);
            break;
        }
    }
    match refusal {
        Some(AppendError::Storage(why)) => assert!(!why.is_empty()),
        other => panic!("a 256 KiB data dir must fill up with a storage error, got {other:?}"),
    }
    assert!(ordered > 0, "some batches fit before the disk filled");

    disk.resize(64 << 20);
    // A client retries a storage error; the batches ordered meanwhile
    // become durable as soon as the replicator's next attempt finds room.
    let recovered_by = Instant::now() + TIMEOUT;
    loop {
        match log.wait_durable(last_sequence, 1, recovered_by).await {
            Ok(()) => break,
            Err(AppendError::Storage(_)) if Instant::now() < recovered_by => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(error) => panic!("room again, yet {error:?}"),
        }
    }
    let next = produce_acks_all(log.as_ref(), stream, ordered, 5).await;
    assert_eq!(
        next,
        (ordered as i64..ordered as i64 + 5).collect::<Vec<_>>()
    );
    assert_all_readable(log.as_ref(), stream, ordered + 5).await;
    log.shutdown();
    drop(log);
    // What the full disk left behind (writes cut short, a seal that failed)
    // recovers whole: every entry checks out and a restart reads them all.
    let entries = assert_every_segment_entry_checks_out(&dir.path().join("gateway-0"));
    assert!(entries > ordered + 5, "{entries} entries on disk");
    let log = start_log(attach_sim(&memory, 12), options(0, dir.path()));
    assert_all_readable(log.as_ref(), stream, ordered + 5).await;
    log.shutdown();
}
