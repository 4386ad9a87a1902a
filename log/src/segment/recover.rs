//! Rebuilding a chain after any stop, clean or not.
//!
//! Every segment but the last was sealed with its index synced, so its
//! index is read instead of its data (a damaged index is rebuilt by a
//! scan). The last segment may end in a torn entry: it is scanned, every
//! CRC checked, the file cut at the first entry that does not check out,
//! and its index rewritten and synced.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::format::{
    decode_index_record, encode_index_record, segment_stem, EntryHeader, ENTRY_HEADER_BYTES,
    INDEX_RECORD_BYTES,
};
use super::{DiskLocation, Segment, SegmentError, StoredEntry};

pub(super) struct Recovered {
    pub segments: Vec<Segment>,
    pub entries: Vec<StoredEntry>,
}

pub(super) fn recover(dir: &Path) -> Result<Recovered, SegmentError> {
    recover_with(dir, true)
}

/// Reads a chain without changing it (another gateway's, which may be
/// running): a torn tail is left in place and simply not returned.
pub(super) fn read_only(dir: &Path) -> Result<Recovered, SegmentError> {
    recover_with(dir, false)
}

fn recover_with(dir: &Path, repair: bool) -> Result<Recovered, SegmentError> {
    let mut firsts = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|error| SegmentError::io(dir, error))? {
        let item = item.map_err(|error| SegmentError::io(dir, error))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(first) = stem.parse::<u64>() {
                firsts.push(first);
            }
        }
    }
    firsts.sort_unstable();
    let mut segments = Vec::with_capacity(firsts.len());
    let mut entries = Vec::new();
    let mut previous = 0u64;
    for (at, &first) in firsts.iter().enumerate() {
        let is_last = at + 1 == firsts.len();
        let stem = segment_stem(first);
        let log_path = dir.join(format!("{stem}.log"));
        let index_path = dir.join(format!("{stem}.index"));
        let log = OpenOptions::new()
            .read(true)
            .write(repair)
            .open(&log_path)
            .map_err(|error| SegmentError::io(&log_path, error))?;
        let log_len = log
            .metadata()
            .map_err(|error| SegmentError::io(&log_path, error))?
            .len();
        let trusted = if is_last {
            None
        } else {
            read_index(&index_path, log_len)
        };
        let (found, len) = match trusted {
            Some(found) => (found, log_len),
            None => {
                let (found, valid_len) =
                    scan(&log, log_len).map_err(|error| SegmentError::io(&log_path, error))?;
                if !repair {
                    (found, valid_len)
                } else {
                    if valid_len < log_len {
                        tracing::warn!(
                            segment = %log_path.display(),
                            kept = valid_len,
                            dropped = log_len - valid_len,
                            "cutting a torn tail off a segment"
                        );
                        log.set_len(valid_len)
                            .map_err(|error| SegmentError::io(&log_path, error))?;
                    }
                    write_index(&index_path, &log, &found)
                        .and_then(|()| log.sync_all())
                        .map_err(|error| SegmentError::io(&index_path, error))?;
                    (found, valid_len)
                }
            }
        };
        let mut last_sequence = 0;
        let mut contents = super::SegmentContents {
            first_sequence: first,
            ..super::SegmentContents::default()
        };
        for (position, header) in found {
            contents.add(&header);
            if header.sequence <= previous {
                return Err(SegmentError::OutOfOrder {
                    path: log_path,
                    previous,
                    found: header.sequence,
                });
            }
            previous = header.sequence;
            last_sequence = header.sequence;
            entries.push(StoredEntry {
                header,
                location: DiskLocation {
                    segment: first,
                    position,
                },
            });
        }
        segments.push(Segment {
            first_sequence: first,
            last_sequence,
            log: Arc::new(log),
            len,
            contents,
        });
    }
    Ok(Recovered { segments, entries })
}

/// A sealed segment's index, if it is whole and agrees with the log size.
fn read_index(path: &Path, log_len: u64) -> Option<Vec<(u64, EntryHeader)>> {
    let mut bytes = Vec::new();
    File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    if bytes.len() % INDEX_RECORD_BYTES != 0 {
        return None;
    }
    let mut found = Vec::with_capacity(bytes.len() / INDEX_RECORD_BYTES);
    let mut expected_position = 0u64;
    for record in bytes.chunks_exact(INDEX_RECORD_BYTES) {
        let (position, header) = decode_index_record(record.try_into().ok()?)?;
        if position != expected_position {
            return None;
        }
        expected_position = position + header.stored_len();
        found.push((position, header));
    }
    (expected_position == log_len).then_some(found)
}

/// Every entry whose header and CRC check out, up to the first that does
/// not; returns them and the length of the valid prefix.
fn scan(log: &File, log_len: u64) -> io::Result<(Vec<(u64, EntryHeader)>, u64)> {
    let mut found = Vec::new();
    let mut position = 0u64;
    let mut payload = Vec::new();
    let mut previous_sequence = 0u64;
    while position + ENTRY_HEADER_BYTES as u64 <= log_len {
        let mut bytes = [0u8; ENTRY_HEADER_BYTES];
        log.read_exact_at(&mut bytes, position)?;
        let Some((header, crc)) = EntryHeader::decode(&bytes) else {
            break;
        };
        if position + header.stored_len() > log_len || header.sequence <= previous_sequence {
            break;
        }
        payload.resize(header.length as usize, 0);
        log.read_exact_at(&mut payload, position + ENTRY_HEADER_BYTES as u64)?;
        if !EntryHeader::crc_matches(&bytes, &payload, crc) {
            break;
        }
        previous_sequence = header.sequence;
        found.push((position, header));
        position += header.stored_len();
    }
    Ok((found, position))
}

fn write_index(path: &Path, log: &File, found: &[(u64, EntryHeader)]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(found.len() * INDEX_RECORD_BYTES);
    let mut header_bytes = [0u8; ENTRY_HEADER_BYTES];
    for &(position, _) in found {
        log.read_exact_at(&mut header_bytes, position)?;
        bytes.extend_from_slice(&encode_index_record(position, &header_bytes));
    }
    let mut index = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    index.write_all(&bytes)?;
    index.sync_all()
}
