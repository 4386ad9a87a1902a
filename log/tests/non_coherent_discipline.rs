//! The region's publish and read rules, proven on the simulated non-coherent
//! backend: a reader that skips an invalidation (the bug that stalled
//! Embarcadero's ACKs, docs/design.md rule 4) fails, the correct reader passes,
//! and no fault ever lets a torn or lost batch through.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cxlkafka_log::layout::{kind, BatchHeader};
use cxlkafka_log::memory::{MemoryBackend, SimFaults, Simulated, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format};
use cxlkafka_log::ring::{ArenaPayloads, RingReader, RingWriter};
use cxlkafka_log::segment::{EntryHeader, PayloadRef, RunEntry, SegmentLog, DIRECT_IO_ALIGN};
use cxlkafka_log::Region;
use support::{geometry, publish_all, read_all, ReadSummary};

fn simulated_pair(
    ring_slots: u32,
    arena_bytes: u64,
    writer_faults: SimFaults,
    reader_faults: SimFaults,
) -> (Region<Simulated>, Region<Simulated>) {
    let geometry = geometry(ring_slots, arena_bytes);
    let bytes = geometry.layout().unwrap().total_bytes;
    let memory = SimulatedMemory::new(bytes as usize);
    let id = cluster_id("sim").unwrap();
    let writer = format(memory.participant(writer_faults), geometry, bytes, id).unwrap();
    let reader = attach(
        memory.participant(reader_faults),
        Path::new("simulated"),
        Some(&geometry),
        Some(id),
        Duration::ZERO,
    )
    .unwrap();
    (writer, reader)
}

/// Polls slot 1's commit word the way Embarcadero's scanner did: straight
/// from the cache, never invalidating. Returns whether it ever saw the commit.
fn reader_without_invalidation_sees_commit(region: &Region<Simulated>, polls: u32) -> bool {
    let offset = region.layout().batch_header(0, 1);
    (0..polls).any(|_| region.backend().load_u64(offset) == 1)
}

#[test]
fn a_reader_that_skips_invalidation_stalls_and_the_correct_reader_does_not() {
    let (writer_region, reader_region) =
        simulated_pair(64, 1 << 16, SimFaults::none(1), SimFaults::none(2));

    // Both readers look once before anything is published: the line is now cached.
    assert!(!reader_without_invalidation_sees_commit(&reader_region, 1));
    let mut reader = RingReader::new(0, 1);
    assert!(reader.poll(&reader_region).is_none());

    let mut writer = RingWriter::new(&writer_region, 0);
    let header = BatchHeader {
        kind: kind::DATA,
        record_count: 1,
        ..bytemuck::Zeroable::zeroed()
    };
    assert_eq!(writer.publish(&writer_region, header, b"hello").unwrap(), 1);

    assert!(
        !reader_without_invalidation_sees_commit(&reader_region, 100_000),
        "without invalidation the reader must keep its stale line and stall"
    );
    let seen = reader
        .poll(&reader_region)
        .expect("the invalidating reader sees the commit at once");
    assert_eq!((seen.commit, seen.length), (1, 5));
}

#[test]
fn a_writer_that_skips_the_flush_is_never_seen() {
    let (writer_region, reader_region) =
        simulated_pair(64, 1 << 16, SimFaults::none(3), SimFaults::none(4));
    let offset = writer_region.layout().batch_header(0, 1);
    // The commit word stored but never flushed: the bug on the other side.
    writer_region.backend().store_u64(offset, 1);
    writer_region.backend().store_fence();
    let mut reader = RingReader::new(0, 1);
    for _ in 0..1000 {
        assert!(reader.poll(&reader_region).is_none());
    }
}

#[test]
fn every_batch_arrives_intact_through_wraparound_under_hostile_faults() {
    for seed in 0..4u64 {
        let (writer_region, reader_region) = simulated_pair(
            64,
            256 << 10,
            SimFaults::hostile(seed),
            SimFaults::hostile(seed + 100),
        );
        let count = 5_000;
        let max_len = 64 << 10;
        let reader = std::thread::spawn(move || {
            read_all(
                &reader_region,
                seed,
                max_len,
                count,
                Duration::from_secs(60),
            )
        });
        let published = publish_all(
            &writer_region,
            seed,
            max_len,
            count,
            Duration::from_secs(120),
            || false,
        );
        let summary = reader.join().unwrap();
        assert_eq!(published, count);
        assert_eq!(
            summary,
            ReadSummary {
                received: count,
                corrupted: 0,
                recycled: 0
            },
            "seed {seed}"
        );
    }
}

#[test]
fn a_writer_crashing_mid_publish_never_exposes_a_torn_batch() {
    for seed in 0..16u64 {
        let crash_after = 200 + seed * 97;
        let writer_faults = SimFaults {
            crash_after_stores: Some(crash_after),
            ..SimFaults::hostile(seed)
        };
        let (writer_region, reader_region) =
            simulated_pair(16, 64 << 10, writer_faults, SimFaults::hostile(seed + 7));
        let crashed = Arc::new(AtomicBool::new(false));
        let writer_crashed = Arc::clone(&crashed);
        let writer = std::thread::spawn(move || {
            let published = publish_all(
                &writer_region,
                seed,
                4096,
                u64::MAX,
                Duration::from_secs(60),
                || writer_region.backend().is_crashed(),
            );
            writer_crashed.store(true, Ordering::Release);
            published
        });
        let summary = read_all(
            &reader_region,
            seed,
            4096,
            u64::MAX,
            Duration::from_millis(300),
        );
        let published = writer.join().unwrap();
        assert!(crashed.load(Ordering::Acquire));
        assert_eq!(
            summary.corrupted, 0,
            "seed {seed}: a torn batch was accepted"
        );
        assert_eq!(summary.recycled, 0, "seed {seed}");
        // Every batch accepted was one the writer finished publishing; the
        // one in flight at the crash may or may not have made it.
        assert!(
            summary.received <= published + 1,
            "seed {seed}: {summary:?} vs {published}"
        );
        assert!(
            summary.received + 1 >= published,
            "seed {seed}: completed batches lost: {summary:?} vs {published}"
        );
    }
}

#[test]
fn a_restarted_writer_resumes_after_its_predecessors_batches() {
    let (writer_region, reader_region) =
        simulated_pair(16, 16 << 10, SimFaults::hostile(21), SimFaults::hostile(22));
    let header = BatchHeader {
        kind: kind::DATA,
        record_count: 1,
        ..bytemuck::Zeroable::zeroed()
    };
    let payload = |slot: u64| vec![slot as u8; 1000 + slot as usize];
    let mut writer = RingWriter::new(&writer_region, 0);
    for slot in 1..=10 {
        assert_eq!(
            writer
                .publish(&writer_region, header, &payload(slot))
                .unwrap(),
            slot
        );
    }
    let mut reader = RingReader::new(0, 1);
    let mut positions = Vec::new();
    for _ in 0..4 {
        positions.push(reader.poll(&reader_region).unwrap().arena_position);
    }
    reader.release(&reader_region);
    drop(writer);

    // The process restarts: its successor must neither reuse slots 5..=10
    // (still unconsumed) nor overwrite their arena bytes.
    let mut writer = RingWriter::resume(&writer_region, 0);
    assert_eq!(writer.next_slot(), 11);
    let mut buffer = vec![0u8; 4096];
    let mut last_position = *positions.last().unwrap();
    let mut received = 0;
    // Reads and checks every visible batch before releasing its space.
    let mut drain = |reader: &mut RingReader| {
        while let Some(header) = reader.poll(&reader_region) {
            assert!(
                header.arena_position > last_position,
                "arena positions only move forward"
            );
            last_position = header.arena_position;
            let bytes = &mut buffer[..header.length as usize];
            cxlkafka_log::ring::read_payload(&reader_region, 0, header.arena_position, bytes)
                .unwrap();
            assert_eq!(
                bytes.to_vec(),
                payload(header.commit),
                "slot {}",
                header.commit
            );
            received += 1;
        }
        reader.release(&reader_region);
    };
    let mut next = 11;
    while next <= 30 {
        match writer.publish(&writer_region, header, &payload(next)) {
            Ok(slot) => {
                assert_eq!(slot, next);
                next += 1;
            }
            Err(_) => drain(&mut reader),
        }
    }
    drain(&mut reader);
    assert_eq!(received, 26, "slots 5..=30 all arrive");
}

/// Writes `len` bytes of gateway 0's arena from `position` into a fresh
/// segment chain in `dir` as the disk tier does (by the device, straight
/// from the region), reopens the chain, and returns the payload read back.
fn device_copy_read_back(
    region: &Region<Simulated>,
    dir: &Path,
    sequence: u64,
    position: u64,
    len: usize,
) -> Vec<u8> {
    let header = EntryHeader {
        sequence,
        length: len as u32,
        kind: kind::DATA,
        ..EntryHeader::default()
    };
    {
        let (mut segments, _) = SegmentLog::open(dir, 1 << 30).unwrap();
        let mut payloads = ArenaPayloads::new(region, 0);
        let placed = segments
            .write_run(0, sequence, position, len as u64, &mut payloads)
            .expect("written")
            .expect("mirrored");
        // The CRC is the writer's intended bytes' (the batch's own CRC in
        // the gateway), so recovery would cut a stale copy; read the file
        // before that to see exactly what the device wrote.
        segments
            .append_placed(
                &placed,
                &RunEntry {
                    header,
                    payload_crc: 0,
                    position,
                },
            )
            .unwrap();
        let mut back = vec![0u8; len];
        segments
            .files()
            .read_payload(
                cxlkafka_log::segment::DiskLocation {
                    segment: sequence,
                    position: 0,
                    payload: Some(PayloadRef {
                        source: 0,
                        offset: position % DIRECT_IO_ALIGN,
                    }),
                },
                &mut back,
            )
            .unwrap();
        back
    }
}

#[test]
fn the_disk_tier_writes_what_memory_holds_so_a_writer_that_skips_its_flush_is_caught() {
    let (writer_region, replica_region) =
        simulated_pair(64, 1 << 16, SimFaults::hostile(11), SimFaults::none(12));
    let mut writer = RingWriter::new(&writer_region, 0);
    let flushed: Vec<u8> = (0..6000u32).map(|i| (i * 31 + 7) as u8).collect();
    let header = BatchHeader {
        kind: kind::DATA,
        record_count: 1,
        ..bytemuck::Zeroable::zeroed()
    };
    writer.publish(&writer_region, header, &flushed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        device_copy_read_back(&replica_region, &dir.path().join("a"), 1, 0, flushed.len()),
        flushed,
        "a payload published by the rules reaches the file whole"
    );

    // A writer that skips its flush: the bytes stay in its own cache.
    let unflushed: Vec<u8> = (0..5000u32).map(|i| (i * 13 + 1) as u8 | 1).collect();
    let position = 8192 + 100;
    let offset = writer_region.layout().arena(0) + position as usize;
    let backend = writer_region.backend();
    backend.write(offset, &unflushed);
    let stale = device_copy_read_back(
        &replica_region,
        &dir.path().join("b"),
        1,
        position,
        unflushed.len(),
    );
    assert_ne!(
        stale, unflushed,
        "the device reads memory, not the writer's cache"
    );
    backend.flush(offset, unflushed.len());
    backend.store_fence();
    assert_eq!(
        device_copy_read_back(
            &replica_region,
            &dir.path().join("c"),
            1,
            position,
            unflushed.len()
        ),
        unflushed,
        "once flushed, the same bytes reach the file"
    );
}
