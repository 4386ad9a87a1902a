use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use proptest::prelude::*;

use super::format::{segment_stem, ENTRY_HEADER_BYTES};
use super::*;

fn header(sequence: u64, payload: &[u8]) -> EntryHeader {
    EntryHeader {
        sequence,
        base_offset: sequence as i64 * 10,
        max_timestamp: sequence as i64,
        log_append_ms: 0,
        producer_id: -1,
        stream: (sequence % 3) as u32,
        record_count: 10,
        length: payload.len() as u32,
        base_sequence: -1,
        kind: 1,
        control_tag: 0,
        producer_epoch: -1,
    }
}

fn payload(sequence: u64) -> Vec<u8> {
    let length = (sequence * 37 % 300) as usize + 1;
    (0..length).map(|at| (at as u64 ^ sequence) as u8).collect()
}

fn append_range(log: &mut SegmentLog, sequences: std::ops::RangeInclusive<u64>) {
    for sequence in sequences {
        let bytes = payload(sequence);
        log.append(&header(sequence, &bytes), &bytes)
            .expect("append");
    }
}

fn read_back(files: &SegmentFiles, entry: &StoredEntry) -> Vec<u8> {
    let mut bytes = vec![0u8; entry.header.length as usize];
    files
        .read_payload(entry.location, &mut bytes)
        .expect("readable");
    bytes
}

#[test]
fn entries_survive_a_reopen_across_several_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, entries) = SegmentLog::open(dir.path(), 1024).unwrap();
        assert!(entries.is_empty());
        append_range(&mut log, 1..=100);
        log.sync_work().expect("work").run().expect("synced");
        assert!(log.sealed_segments().len() > 5, "small segments roll");
    }
    let (log, entries) = SegmentLog::open(dir.path(), 1024).unwrap();
    assert_eq!(entries.len(), 100);
    assert_eq!(log.last_sequence(), 100);
    let files = log.files();
    for (at, entry) in entries.iter().enumerate() {
        let sequence = at as u64 + 1;
        assert_eq!(entry.header, header(sequence, &payload(sequence)));
        assert_eq!(read_back(&files, entry), payload(sequence));
    }
}

#[test]
fn appends_after_a_reopen_continue_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append_range(&mut log, 1..=5);
    }
    {
        let (mut log, entries) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(entries.len(), 5);
        append_range(&mut log, 6..=9);
    }
    let (_, entries) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
    let sequences: Vec<u64> = entries.iter().map(|entry| entry.header.sequence).collect();
    assert_eq!(sequences, (1..=9).collect::<Vec<_>>());
    assert_eq!(entries[5].location.segment, 6);
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append_range(&mut log, 1..=10);
    }
    let path = dir.path().join(format!("{}.log", segment_stem(1)));
    let len = std::fs::metadata(&path).unwrap().len();
    // Half of the last entry's payload never reached the disk.
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    let (log, entries) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(entries.len(), 9);
    assert_eq!(log.last_sequence(), 9);
    let kept = entries.last().unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        kept.location.position + kept.header.stored_len(),
        "the torn bytes are cut off"
    );
}

#[test]
fn a_corrupt_entry_in_the_last_segment_ends_the_chain_there() {
    let dir = tempfile::tempdir().unwrap();
    let fifth = {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append_range(&mut log, 1..=4);
        let bytes = payload(5);
        let location = log.append(&header(5, &bytes), &bytes).unwrap();
        append_range(&mut log, 6..=8);
        location
    };
    let path = dir.path().join(format!("{}.log", segment_stem(1)));
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xFF], fifth.position + ENTRY_HEADER_BYTES as u64)
        .unwrap();
    let (_, entries) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(entries.len(), 4, "nothing from the bad entry on is served");
}

#[test]
fn a_damaged_sealed_index_is_rebuilt_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1024).unwrap();
        append_range(&mut log, 1..=40);
    }
    let index = dir.path().join(format!("{}.idx", segment_stem(1)));
    let len = std::fs::metadata(&index).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let (_, entries) = SegmentLog::open(dir.path(), 1024).unwrap();
    assert_eq!(entries.len(), 40);
}

#[test]
fn a_read_only_look_at_a_torn_chain_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
        append_range(&mut log, 1..=6);
    }
    let path = dir.path().join(format!("{}.log", segment_stem(1)));
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let (entries, files) = read_chain(dir.path()).unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(read_back(&files, &entries[4]), payload(5));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len - 1,
        "untouched"
    );
}

#[test]
fn retention_deletes_sealed_segments_and_readers_see_them_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), 1024).unwrap();
    append_range(&mut log, 1..=30);
    let sealed = log.sealed_segments();
    let (first, last, _) = sealed[0];
    log.delete_segment(first).unwrap();
    drop(log);
    let (_, entries) = SegmentLog::open(dir.path(), 1024).unwrap();
    assert_eq!(entries.first().unwrap().header.sequence, last + 1);
}

#[test]
fn sync_work_covers_everything_appended_before_it_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = SegmentLog::open(dir.path(), 1 << 20).unwrap();
    assert!(log.sync_work().is_none(), "nothing to sync yet");
    append_range(&mut log, 1..=3);
    let work = log.sync_work().expect("work");
    append_range(&mut log, 4..=4);
    assert_eq!(work.run().unwrap(), 3);
    assert_eq!(log.sync_work().expect("more work").run().unwrap(), 4);
    assert!(log.sync_work().is_none());
}

/// An arena in process memory, page-aligned so `O_DIRECT` takes it, that
/// can overwrite ("recycle") the bytes of batches already written.
struct TestArena {
    storage: Vec<u8>,
    start: usize,
    /// Calls of `write_to`: one per run.
    writes: usize,
}

impl TestArena {
    fn new(len: usize) -> Self {
        let storage = vec![0u8; len + DIRECT_IO_ALIGN as usize];
        let start = storage.as_ptr().align_offset(DIRECT_IO_ALIGN as usize);
        Self {
            storage,
            start,
            writes: 0,
        }
    }

    fn bytes_mut(&mut self, position: u64, len: usize) -> &mut [u8] {
        let at = self.start + position as usize;
        &mut self.storage[at..at + len]
    }
}

impl PayloadSource for TestArena {
    type Error = std::convert::Infallible;

    fn copy(&mut self, position: u64, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.copy_from_slice(self.bytes_mut(position, dst.len()));
        Ok(())
    }

    fn write_to(
        &mut self,
        head: &[u8],
        position: u64,
        len: u64,
        tail: &[u8],
        file: &std::fs::File,
        file_offset: u64,
    ) -> Result<(), RunWriteError<Self::Error>> {
        for piece in [
            head.len() as u64,
            position,
            len,
            tail.len() as u64,
            file_offset,
        ] {
            assert_eq!(piece % DIRECT_IO_ALIGN, 0, "aligned");
        }
        self.writes += 1;
        let middle_at = file_offset + head.len() as u64;
        file.write_all_at(head, file_offset)
            .map_err(RunWriteError::Io)?;
        file.write_all_at(self.bytes_mut(position, len as usize), middle_at)
            .map_err(RunWriteError::Io)?;
        file.write_all_at(tail, middle_at + len)
            .map_err(RunWriteError::Io)?;
        Ok(())
    }
}

/// Writes the batches `(sequence, position, payload)` as one run from
/// `arena`, then overwrites their arena bytes, as a recycling arena would.
fn write_run_and_recycle(
    log: &mut SegmentLog,
    arena: &mut TestArena,
    source: u32,
    batches: &[(u64, u64, Vec<u8>)],
) -> Vec<DiskLocation> {
    for (_, position, bytes) in batches {
        arena
            .bytes_mut(*position, bytes.len())
            .copy_from_slice(bytes);
    }
    let first = batches[0].1;
    let end = batches
        .last()
        .map(|(_, position, bytes)| position + bytes.len() as u64)
        .unwrap();
    let placed = log
        .write_run(source, batches[0].0, first, end - first, arena)
        .expect("written")
        .expect("mirrored");
    let locations = batches
        .iter()
        .map(|(sequence, position, bytes)| {
            let entry = RunEntry {
                header: header(*sequence, bytes),
                payload_crc: crc32c::crc32c(bytes),
                position: *position,
            };
            log.append_placed(&placed, &entry).expect("appended")
        })
        .collect();
    for (_, position, bytes) in batches {
        arena.bytes_mut(*position, bytes.len()).fill(0xEE);
    }
    locations
}

/// Batches back to back from `position`, of the given lengths.
fn batches_from(first_sequence: u64, position: u64, lengths: &[usize]) -> Vec<(u64, u64, Vec<u8>)> {
    let mut at = position;
    lengths
        .iter()
        .enumerate()
        .map(|(index, &length)| {
            let sequence = first_sequence + index as u64;
            let bytes: Vec<u8> = (0..length)
                .map(|i| (i as u64 * 7 + sequence) as u8)
                .collect();
            let batch = (sequence, at, bytes);
            at += length as u64;
            batch
        })
        .collect()
}

#[test]
fn runs_written_from_an_arena_read_back_after_the_arena_recycled_them_and_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut arena = TestArena::new(1 << 20);
    // Unaligned starts and ends, runs sharing pages, a gap (a refused batch).
    let runs = [
        batches_from(1, 100, &[10, 5000, 3]),
        batches_from(4, 5113, &[4000, 90_000]),
        batches_from(6, 99_500, &[1]),
        batches_from(7, 99_501, &[8192, 4096]),
    ];
    let mut expected = Vec::new();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
        for run in &runs {
            let locations = write_run_and_recycle(&mut log, &mut arena, 2, run);
            expected.extend(run.iter().cloned().zip(locations));
        }
        assert_eq!(
            log.direct_io(),
            &DirectIo::On,
            "the test's tmp dir takes O_DIRECT"
        );
        assert_eq!(
            arena.writes,
            runs.len(),
            "one write per run, its ends included"
        );
        log.sync_work().expect("work").run().expect("synced");
        let files = log.files();
        for ((_, _, bytes), location) in &expected {
            let mut back = vec![0u8; bytes.len()];
            files.read_payload(*location, &mut back).unwrap();
            assert_eq!(&back, bytes);
        }
    }
    let (_, entries) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(entries.len(), expected.len());
    let (log, _) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
    for (entry, ((sequence, _, bytes), location)) in entries.iter().zip(&expected) {
        assert_eq!(entry.header.sequence, *sequence);
        assert_eq!(entry.location, *location);
        assert_eq!(read_back(&log.files(), entry), *bytes);
    }
    let data = dir.path().join(format::data_file_name(1, 2));
    let on_disk = std::fs::metadata(&data).unwrap().len();
    assert!(
        on_disk < 120_000,
        "the data file mirrors the arena, {on_disk} bytes"
    );
}

/// A test batch: (sequence, arena position, bytes).
type TestBatch = (u64, u64, Vec<u8>);

/// Reads every run of payloads that lie back to back in one data file with
/// one `read_payload_append`; returns the sequences of each run.
fn read_in_runs(files: &SegmentFiles, entries: &[(TestBatch, DiskLocation)]) -> Vec<Vec<u64>> {
    let mut runs = Vec::new();
    let mut at = 0;
    while at < entries.len() {
        let (first, location) = (&entries[at].0, entries[at].1);
        let mut run = vec![first.0];
        let mut expected = first.2.clone();
        let mut len = first.2.len() as u64;
        at += 1;
        while let Some(((sequence, _, bytes), next)) = entries.get(at) {
            if !location.follows(len, next) {
                break;
            }
            run.push(*sequence);
            expected.extend_from_slice(bytes);
            len += bytes.len() as u64;
            at += 1;
        }
        let mut out = b"kept".to_vec();
        files
            .read_payload_append(location, len as usize, &mut out)
            .unwrap();
        assert_eq!(&out[..4], b"kept", "appended after what was there");
        assert_eq!(&out[4..], &expected[..], "run {run:?}");
        runs.push(run);
    }
    runs
}

#[test]
fn payloads_back_to_back_in_a_data_file_are_read_with_one_read() {
    for direct in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut arena = TestArena::new(1 << 20);
        // Runs 1 and 2 lie back to back in the arena, then a gap, then two
        // more back to back; another source's data file; an inline entry.
        let runs = [
            batches_from(1, 100, &[10, 5000, 3]),
            batches_from(4, 5113, &[4000, 90_000]),
            batches_from(6, 99_500, &[1]),
            batches_from(7, 99_501, &[8192, 4096]),
        ];
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
        if !direct {
            log.refuse_direct_io("a test");
        }
        let mut entries = Vec::new();
        for run in &runs {
            let locations = write_run_and_recycle(&mut log, &mut arena, 2, run);
            entries.extend(run.iter().cloned().zip(locations));
        }
        let other = batches_from(9, 99_501 + 8192 + 4096, &[700]);
        let locations = write_run_and_recycle(&mut log, &mut arena, 3, &other);
        entries.extend(other.iter().cloned().zip(locations));
        let inline = payload(10);
        let location = log.append(&header(10, &inline), &inline).unwrap();
        entries.push(((10, 0, inline), location));
        assert_eq!(
            read_in_runs(&log.files(), &entries),
            vec![vec![1, 2, 3, 4, 5], vec![6, 7, 8], vec![9], vec![10]],
            "O_DIRECT {direct}"
        );
    }
}

#[test]
fn a_torn_data_file_cuts_the_entries_whose_payload_never_landed() {
    let dir = tempfile::tempdir().unwrap();
    let mut arena = TestArena::new(1 << 20);
    let run = batches_from(1, 0, &[3000, 3000, 3000, 3000]);
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
        write_run_and_recycle(&mut log, &mut arena, 0, &run);
    }
    // The last two batches' pages never reached the disk.
    let data = dir.path().join(format::data_file_name(1, 0));
    let file = OpenOptions::new().write(true).open(&data).unwrap();
    file.set_len(6000).unwrap();
    file.write_all_at(&[0u8; 96], 6000 - 96).unwrap();
    let (log, entries) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(entries.len(), 1, "the second batch lost its last bytes");
    assert_eq!(read_back(&log.files(), &entries[0]), run[0].2);
    let log_path = dir.path().join(format!("{}.log", segment_stem(1)));
    assert_eq!(
        std::fs::metadata(&log_path).unwrap().len(),
        (ENTRY_HEADER_BYTES + format::PAYLOAD_REF_BYTES) as u64,
        "the .log is cut after the last whole entry"
    );
}

#[test]
fn data_files_go_through_the_page_cache_when_o_direct_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut arena = TestArena::new(1 << 20);
    let run = batches_from(1, 77, &[9000, 1]);
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
        log.refuse_direct_io("a test");
        write_run_and_recycle(&mut log, &mut arena, 1, &run);
        assert!(matches!(log.direct_io(), DirectIo::Refused(_)));
    }
    let (log, entries) = SegmentLog::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(read_back(&log.files(), &entries[0]), run[0].2);
    assert_eq!(read_back(&log.files(), &entries[1]), run[1].2);
}

#[test]
fn sealed_segments_with_data_files_roll_read_back_and_are_deleted_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut arena = TestArena::new(1 << 20);
    let (mut log, _) = SegmentLog::open(dir.path(), 20_000).unwrap();
    let mut position = 0;
    for sequence in 1..=12u64 {
        let run = batches_from(sequence, position, &[6000]);
        position += 6000;
        write_run_and_recycle(&mut log, &mut arena, 0, &run);
    }
    let sealed = log.sealed_contents();
    assert!(sealed.len() >= 3, "runs roll segments by their data bytes");
    drop(log);
    let (mut log, entries) = SegmentLog::open(dir.path(), 20_000).unwrap();
    assert_eq!(entries.len(), 12);
    for entry in &entries {
        let expected = &batches_from(entry.header.sequence, 0, &[6000])[0].2;
        assert_eq!(&read_back(&log.files(), entry), expected);
    }
    let first = sealed[0].first_sequence;
    log.delete_segment(first).unwrap();
    assert!(!dir.path().join(format::data_file_name(first, 0)).exists());
}

#[test]
fn a_format_one_segment_is_read_and_its_rescanned_index_becomes_format_two() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, _) = SegmentLog::open(dir.path(), 1024).unwrap();
        append_range(&mut log, 1..=30);
    }
    // Rewrite every index as format 1 wrote it: `.index`, 80-byte records.
    for item in std::fs::read_dir(dir.path()).unwrap() {
        let path = item.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "idx") {
            let records = std::fs::read(&path).unwrap();
            let legacy: Vec<u8> = records
                .chunks_exact(format::INDEX_RECORD_BYTES)
                .flat_map(|record| record[..format::LEGACY_INDEX_RECORD_BYTES].to_vec())
                .collect();
            std::fs::write(path.with_extension("index"), legacy).unwrap();
            std::fs::remove_file(&path).unwrap();
        }
    }
    let (log, entries) = SegmentLog::open(dir.path(), 1024).unwrap();
    assert_eq!(entries.len(), 30);
    for (at, entry) in entries.iter().enumerate() {
        assert_eq!(read_back(&log.files(), entry), payload(at as u64 + 1));
    }
    let last = entries.last().unwrap().location.segment;
    let stem = segment_stem(last);
    assert!(dir.path().join(format!("{stem}.idx")).exists());
    assert!(!dir.path().join(format!("{stem}.index")).exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever prefix of the files survives a crash, recovery returns a
    /// prefix of what was appended, every payload intact.
    #[test]
    fn recovery_after_any_truncation_returns_an_intact_prefix(
        count in 1u64..40,
        segment_bytes in 200u64..4000,
        cut_fraction in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut log, _) = SegmentLog::open(dir.path(), segment_bytes).unwrap();
            append_range(&mut log, 1..=count);
        }
        let mut logs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|item| item.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort();
        let last = logs.last().unwrap();
        let len = std::fs::metadata(last).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(last)
            .unwrap()
            .set_len((len as f64 * cut_fraction) as u64)
            .unwrap();
        let (log, entries) = SegmentLog::open(dir.path(), segment_bytes).unwrap();
        let files = log.files();
        for (at, entry) in entries.iter().enumerate() {
            let sequence = at as u64 + 1;
            prop_assert_eq!(entry.header.sequence, sequence);
            prop_assert_eq!(read_back(&files, entry), payload(sequence));
        }
        prop_assert!(entries.len() as u64 <= count);
    }
}
