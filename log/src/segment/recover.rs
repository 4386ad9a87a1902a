//! Rebuilding a chain after any stop, clean or not.
//!
//! Every segment but the last was sealed with its index synced, so its
//! index is read instead of its data (a damaged index is rebuilt by a
//! scan). The last segment may end in a torn entry: it is scanned, every
//! CRC checked (payloads in data files included), the `.log` cut at the
//! first entry that does not check out, and its index rewritten and
//! synced. Data files are never cut: bytes no entry references are unread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::format::{
    data_file_name, decode_index_record, encode_index_record, log_bytes, segment_stem, EntryHeader,
    IndexedEntry, PayloadRef, ENTRY_HEADER_BYTES, INDEX_EXTENSION, INDEX_RECORD_BYTES,
    LEGACY_INDEX_EXTENSION, LEGACY_INDEX_RECORD_BYTES, PAYLOAD_REF_BYTES,
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
        let index_path = dir.join(format!("{stem}.{INDEX_EXTENSION}"));
        let legacy_index_path = dir.join(format!("{stem}.{LEGACY_INDEX_EXTENSION}"));
        let log = OpenOptions::new()
            .read(true)
            .write(repair)
            .open(&log_path)
            .map_err(|error| SegmentError::io(&log_path, error))?;
        let log_len = log
            .metadata()
            .map_err(|error| SegmentError::io(&log_path, error))?
            .len();
        let mut data = DataReaders::new(dir, first);
        let trusted = if is_last {
            None
        } else {
            read_index(&index_path, INDEX_RECORD_BYTES, log_len)
                .or_else(|| read_index(&legacy_index_path, LEGACY_INDEX_RECORD_BYTES, log_len))
                .filter(|found| data.open_all(found))
        };
        let (found, len) = match trusted {
            Some(found) => (found, log_len),
            None => {
                let (found, valid_len) = scan(&log, log_len, &mut data)
                    .map_err(|error| SegmentError::io(&log_path, error))?;
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
                    match std::fs::remove_file(&legacy_index_path) {
                        Ok(()) => {}
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        Err(error) => return Err(SegmentError::io(&legacy_index_path, error)),
                    }
                    (found, valid_len)
                }
            }
        };
        let mut last_sequence = 0;
        let mut contents = super::SegmentContents {
            first_sequence: first,
            ..super::SegmentContents::default()
        };
        let mut data_bytes = 0;
        for found in found {
            let IndexedEntry {
                position,
                header,
                payload,
            } = found;
            let in_data_file = payload.map_or(0, |_| u64::from(header.length));
            data_bytes += in_data_file;
            contents.add(&header, log_bytes(&header, payload) + in_data_file);
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
                    payload,
                },
            });
        }
        segments.push(Segment {
            first_sequence: first,
            last_sequence,
            log: Arc::new(log),
            len,
            data_bytes,
            data_readers: data.into_files(),
            contents,
        });
    }
    Ok(Recovered { segments, entries })
}

/// The data files of one segment, opened read-only as entries name them.
struct DataReaders<'a> {
    dir: &'a Path,
    segment: u64,
    /// (source gateway, file, or `None` when it does not exist).
    files: Vec<(u32, Option<Arc<File>>)>,
}

impl<'a> DataReaders<'a> {
    fn new(dir: &'a Path, segment: u64) -> Self {
        Self {
            dir,
            segment,
            files: Vec::new(),
        }
    }

    fn get(&mut self, source: u32) -> Option<&Arc<File>> {
        let at = match self.files.iter().position(|(known, _)| *known == source) {
            Some(at) => at,
            None => {
                let path = self.dir.join(data_file_name(self.segment, source));
                self.files
                    .push((source, File::open(path).ok().map(Arc::new)));
                self.files.len() - 1
            }
        };
        self.files[at].1.as_ref()
    }

    /// Opens every data file a trusted index names; false if one is missing.
    fn open_all(&mut self, found: &[IndexedEntry]) -> bool {
        found
            .iter()
            .filter_map(|entry| entry.payload)
            .all(|payload| self.get(payload.source).is_some())
    }

    fn into_files(self) -> Vec<(u32, Arc<File>)> {
        self.files
            .into_iter()
            .filter_map(|(source, file)| file.map(|file| (source, file)))
            .collect()
    }
}

/// A sealed segment's index, if it is whole and agrees with the log size.
fn read_index(path: &Path, record_bytes: usize, log_len: u64) -> Option<Vec<IndexedEntry>> {
    let mut bytes = Vec::new();
    File::open(path).ok()?.read_to_end(&mut bytes).ok()?;
    if bytes.len() % record_bytes != 0 {
        return None;
    }
    let mut found = Vec::with_capacity(bytes.len() / record_bytes);
    let mut expected_position = 0u64;
    for record in bytes.chunks_exact(record_bytes) {
        let entry = decode_index_record(record)?;
        if entry.position != expected_position {
            return None;
        }
        expected_position = entry.position + log_bytes(&entry.header, entry.payload);
        found.push(entry);
    }
    (expected_position == log_len).then_some(found)
}

/// Every entry whose header and CRC check out, up to the first that does
/// not; returns them and the length of the valid prefix of the `.log`.
fn scan(
    log: &File,
    log_len: u64,
    data: &mut DataReaders<'_>,
) -> io::Result<(Vec<IndexedEntry>, u64)> {
    let mut found = Vec::new();
    let mut position = 0u64;
    let mut payload_bytes = Vec::new();
    let mut previous_sequence = 0u64;
    while position + ENTRY_HEADER_BYTES as u64 <= log_len {
        let mut bytes = [0u8; ENTRY_HEADER_BYTES];
        log.read_exact_at(&mut bytes, position)?;
        let Some((header, crc)) = EntryHeader::decode(&bytes) else {
            break;
        };
        if header.sequence <= previous_sequence {
            break;
        }
        let after_header = position + ENTRY_HEADER_BYTES as u64;
        payload_bytes.resize(header.length as usize, 0);
        let payload = if EntryHeader::references_data_file(&bytes) {
            if after_header + PAYLOAD_REF_BYTES as u64 > log_len {
                break;
            }
            let mut reference = [0u8; PAYLOAD_REF_BYTES];
            log.read_exact_at(&mut reference, after_header)?;
            let reference = PayloadRef::decode(&reference);
            let Some(file) = data.get(reference.source) else {
                break;
            };
            match file.read_exact_at(&mut payload_bytes, reference.offset) {
                Ok(()) => {}
                // The data never reached the file: a torn entry.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(error) => return Err(error),
            }
            Some(reference)
        } else {
            if position + header.stored_len() > log_len {
                break;
            }
            log.read_exact_at(&mut payload_bytes, after_header)?;
            None
        };
        if !EntryHeader::crc_matches(&bytes, &payload_bytes, crc) {
            break;
        }
        previous_sequence = header.sequence;
        found.push(IndexedEntry {
            position,
            header,
            payload,
        });
        position += log_bytes(&header, payload);
    }
    Ok((found, position))
}

fn write_index(path: &Path, log: &File, found: &[IndexedEntry]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(found.len() * INDEX_RECORD_BYTES);
    let mut header_bytes = [0u8; ENTRY_HEADER_BYTES];
    for entry in found {
        log.read_exact_at(&mut header_bytes, entry.position)?;
        bytes.extend_from_slice(&encode_index_record(
            entry.position,
            &header_bytes,
            entry.payload,
        ));
    }
    let mut index = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    index.write_all(&bytes)?;
    index.sync_all()
}
