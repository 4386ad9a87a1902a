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
    let index = dir.path().join(format!("{}.index", segment_stem(1)));
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
