//! The disk tier: a gateway's chain of segment files holding ordered
//! entries, written by group commit and recovered by scanning.
//!
//! - [`mod@format`]: the bytes of an entry and of an index record;
//! - [`SegmentLog`]: the writer (append, roll, sync work, retention);
//! - [`SegmentFiles`]: the reader side, shared with fetches;
//! - [`recover`](SegmentLog::open): rebuilds the chain after any stop,
//!   truncating a torn tail.
//!
//! Durability contract: an entry is durable once a [`SyncWork`] that was
//! taken after its append has run without error. The caller publishes its
//! durable frontier only from [`SyncWork::run`]'s result.

pub mod format;
mod recover;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use format::EntryHeader;
use format::{encode_index_record, segment_stem, ENTRY_HEADER_BYTES};

/// Why the disk tier could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "segment {path} holds sequence {found} after {previous}: \
         segments must hold increasing sequences"
    )]
    OutOfOrder {
        path: PathBuf,
        previous: u64,
        found: u64,
    },
}

impl SegmentError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Why [`SegmentLog::append_from`] appended nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendFromError<E> {
    #[error(transparent)]
    Segment(SegmentError),
    /// The payload writer's own error.
    #[error("the payload was not written")]
    Payload(E),
}

/// Where an entry lives on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLocation {
    /// First sequence of its segment (names the file).
    pub segment: u64,
    /// Position of the entry header in the `.log` file.
    pub position: u64,
}

/// One entry found by recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub header: EntryHeader,
    pub location: DiskLocation,
}

/// The `.log` files of a chain, for readers on any thread.
#[derive(Debug, Default)]
pub struct SegmentFiles {
    files: RwLock<BTreeMap<u64, Arc<File>>>,
}

impl SegmentFiles {
    /// Copies the payload of the entry at `location` into `dst` (whose
    /// length is the payload's). Fails if the segment was deleted by
    /// retention meanwhile.
    pub fn read_payload(&self, location: DiskLocation, dst: &mut [u8]) -> io::Result<()> {
        let file = self
            .files
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&location.segment)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "segment deleted"))?;
        file.read_exact_at(dst, location.position + ENTRY_HEADER_BYTES as u64)
    }

    fn insert(&self, segment: u64, file: Arc<File>) {
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(segment, file);
    }

    fn remove(&self, segment: u64) {
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&segment);
    }
}

/// Reads another gateway's chain without changing it: every entry that
/// checks out, and the files to read their payloads from.
pub fn read_chain(dir: &Path) -> Result<(Vec<StoredEntry>, SegmentFiles), SegmentError> {
    let recovered = recover::read_only(dir)?;
    let files = SegmentFiles::default();
    for segment in recovered.segments {
        files.insert(segment.first_sequence, segment.log);
    }
    Ok((recovered.entries, files))
}

/// What a segment holds, for retention.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentContents {
    /// First sequence (names the file).
    pub first_sequence: u64,
    /// Highest sequence stored (0 while empty).
    pub last_sequence: u64,
    /// Bytes of the `.log` file.
    pub bytes: u64,
    /// Whether it holds control entries (topic changes, offset commits,
    /// producer ids): a restore needs those.
    pub has_control: bool,
    /// Per stream, the offset after its last batch in this segment.
    pub stream_ends: std::collections::HashMap<u32, i64>,
}

impl SegmentContents {
    fn add(&mut self, header: &EntryHeader) {
        self.last_sequence = header.sequence;
        self.bytes += header.stored_len();
        if header.kind == DATA_KIND {
            let end = header.base_offset + i64::from(header.record_count);
            let slot = self.stream_ends.entry(header.stream).or_insert(end);
            *slot = (*slot).max(end);
        } else {
            self.has_control = true;
        }
    }
}

/// The entry kind of data batches (as in the region's order log).
const DATA_KIND: u16 = crate::layout::kind::DATA;

/// A sealed or active segment.
#[derive(Debug)]
struct Segment {
    first_sequence: u64,
    /// Highest sequence stored (0 while empty).
    last_sequence: u64,
    log: Arc<File>,
    /// Bytes of the `.log` file.
    len: u64,
    contents: SegmentContents,
}

/// fsyncs to run outside the writer's lock; see [`SegmentLog::sync_work`].
#[derive(Debug)]
pub struct SyncWork {
    files: Vec<Arc<File>>,
    through_sequence: u64,
}

impl SyncWork {
    /// Makes everything appended before the work was taken durable;
    /// returns the highest sequence now durable.
    pub fn run(self) -> io::Result<u64> {
        for file in &self.files {
            file.sync_data()?;
        }
        Ok(self.through_sequence)
    }
}

/// The writer of one gateway's chain.
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    files: Arc<SegmentFiles>,
    sealed: Vec<Segment>,
    active: Option<Segment>,
    /// The active segment's `.index` file, how many bytes of it are
    /// written, and its records not written yet.
    active_index: Option<File>,
    index_len: u64,
    index_buffer: Vec<u8>,
    /// `.log` files written since the last sync work was taken.
    dirty: Vec<Arc<File>>,
    last_sequence: u64,
}

/// Index records are written to the active `.index` file in chunks this big.
const INDEX_FLUSH_BYTES: usize = 64 * 1024;

impl SegmentLog {
    /// Opens (creating it if missing) the chain in `dir`, recovering from
    /// any stop: sealed segments are read through their index, the last
    /// one is rescanned and a torn tail cut off. Returns every stored entry
    /// in sequence order.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, Vec<StoredEntry>), SegmentError> {
        std::fs::create_dir_all(dir).map_err(|error| SegmentError::io(dir, error))?;
        let recovered = recover::recover(dir)?;
        let files = Arc::new(SegmentFiles::default());
        let mut sealed = Vec::new();
        for segment in recovered.segments {
            files.insert(segment.first_sequence, Arc::clone(&segment.log));
            sealed.push(segment);
        }
        // The last segment stays sealed too: appends start a new file, so a
        // recovered file is never written again.
        let last_sequence = recovered
            .entries
            .last()
            .map_or(0, |entry| entry.header.sequence);
        Ok((
            Self {
                dir: dir.to_path_buf(),
                segment_bytes: segment_bytes.max(ENTRY_HEADER_BYTES as u64),
                files,
                sealed,
                active: None,
                active_index: None,
                index_len: 0,
                index_buffer: Vec::new(),
                dirty: Vec::new(),
                last_sequence,
            },
            recovered.entries,
        ))
    }

    /// The reader side, for fetches.
    pub fn files(&self) -> Arc<SegmentFiles> {
        Arc::clone(&self.files)
    }

    /// The directory holding the chain.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Highest sequence appended (0 for an empty chain).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Bytes of every `.log` file of the chain.
    pub fn total_bytes(&self) -> u64 {
        self.sealed.iter().map(|segment| segment.len).sum::<u64>()
            + self.active.as_ref().map_or(0, |segment| segment.len)
    }

    /// Appends one entry (not yet durable: see [`SegmentLog::sync_work`]).
    pub fn append(
        &mut self,
        header: &EntryHeader,
        payload: &[u8],
    ) -> Result<DiskLocation, SegmentError> {
        assert_eq!(header.length as usize, payload.len());
        let dir = self.dir.clone();
        self.append_from(header, crc32c::crc32c(payload), |file, position| {
            file.write_all_at(payload, position)
                .map_err(|error| SegmentError::io(&dir, error))
        })
        .map_err(|error| match error {
            AppendFromError::Segment(error) | AppendFromError::Payload(error) => error,
        })
    }

    /// Appends one entry whose `header.length` payload bytes `write_payload`
    /// writes into the `.log` file at the position it is given (straight
    /// from wherever they live); `payload_crc` is their CRC32C. When it
    /// fails nothing is appended: the next entry overwrites what it wrote.
    pub fn append_from<E>(
        &mut self,
        header: &EntryHeader,
        payload_crc: u32,
        write_payload: impl FnOnce(&File, u64) -> Result<(), E>,
    ) -> Result<DiskLocation, AppendFromError<E>> {
        assert!(
            header.sequence > self.last_sequence,
            "sequence {} appended after {}",
            header.sequence,
            self.last_sequence
        );
        let stored = header.stored_len();
        let must_roll = match &self.active {
            None => true,
            Some(active) => active.len > 0 && active.len + stored > self.segment_bytes,
        };
        if must_roll {
            self.roll(header.sequence)
                .map_err(AppendFromError::Segment)?;
        }
        let active = self.active.as_mut().expect("rolled above");
        let bytes = header.encode_with_payload_crc(payload_crc);
        let position = active.len;
        active
            .log
            .write_all_at(&bytes, position)
            .map_err(|error| AppendFromError::Segment(SegmentError::io(&self.dir, error)))?;
        write_payload(&active.log, position + ENTRY_HEADER_BYTES as u64)
            .map_err(AppendFromError::Payload)?;
        active.len += stored;
        active.last_sequence = header.sequence;
        active.contents.add(header);
        if !self.dirty.iter().any(|file| Arc::ptr_eq(file, &active.log)) {
            self.dirty.push(Arc::clone(&active.log));
        }
        let location = DiskLocation {
            segment: active.first_sequence,
            position,
        };
        self.index_buffer
            .extend_from_slice(&encode_index_record(position, &bytes));
        self.last_sequence = header.sequence;
        if self.index_buffer.len() >= INDEX_FLUSH_BYTES {
            // The entry is appended whatever happens to its index record: a
            // failed flush (a full disk) keeps the records for the next
            // flush, and sealing the segment insists on it, so the index a
            // recovery trusts is whole.
            let _ = self.flush_index();
        }
        Ok(location)
    }

    /// The fsyncs that make every entry appended so far durable, or `None`
    /// when nothing was appended since the last work was taken.
    pub fn sync_work(&mut self) -> Option<SyncWork> {
        if self.dirty.is_empty() {
            return None;
        }
        Some(SyncWork {
            files: std::mem::take(&mut self.dirty),
            through_sequence: self.last_sequence,
        })
    }

    /// First and last sequence and bytes of every segment but the active
    /// one, oldest first (the candidates for retention).
    pub fn sealed_segments(&self) -> Vec<(u64, u64, u64)> {
        self.sealed
            .iter()
            .map(|segment| (segment.first_sequence, segment.last_sequence, segment.len))
            .collect()
    }

    /// What every segment but the active one holds, oldest first.
    pub fn sealed_contents(&self) -> Vec<SegmentContents> {
        self.sealed
            .iter()
            .map(|segment| segment.contents.clone())
            .collect()
    }

    /// Deletes the sealed segment starting at `first_sequence` (retention).
    /// Readers holding the file keep reading it until they drop it.
    pub fn delete_segment(&mut self, first_sequence: u64) -> Result<(), SegmentError> {
        let Some(at) = self
            .sealed
            .iter()
            .position(|segment| segment.first_sequence == first_sequence)
        else {
            return Ok(());
        };
        let segment = self.sealed.remove(at);
        self.files.remove(segment.first_sequence);
        let stem = segment_stem(segment.first_sequence);
        for extension in ["index", "log"] {
            let path = self.dir.join(format!("{stem}.{extension}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(SegmentError::io(&path, error)),
            }
        }
        Ok(())
    }

    /// Writes the buffered index records at the end of the active index.
    /// Positional, so that a write cut short (a full disk) is written again
    /// over the same bytes by the next attempt, never after them.
    fn flush_index(&mut self) -> Result<(), SegmentError> {
        if let Some(index) = self.active_index.as_ref() {
            index
                .write_all_at(&self.index_buffer, self.index_len)
                .map_err(|error| SegmentError::io(&self.dir, error))?;
            self.index_len += self.index_buffer.len() as u64;
        }
        self.index_buffer.clear();
        Ok(())
    }

    /// Seals the active segment (its index written and synced, so recovery
    /// may trust it) and starts a new one at `first_sequence`.
    fn roll(&mut self, first_sequence: u64) -> Result<(), SegmentError> {
        // Sealing can fail (a full disk): the active segment stays active
        // until its index is written and both files are synced, so a retry
        // seals the same segment rather than losing it.
        if let Some(log) = self.active.as_ref().map(|active| Arc::clone(&active.log)) {
            self.flush_index()?;
            // Data first: a synced index must never describe bytes a power
            // loss could take back.
            log.sync_data()
                .map_err(|error| SegmentError::io(&self.dir, error))?;
            if let Some(index) = self.active_index.as_ref() {
                index
                    .sync_data()
                    .map_err(|error| SegmentError::io(&self.dir, error))?;
            }
        }
        if let Some(active) = self.active.take() {
            self.active_index = None;
            self.sealed.push(active);
        }
        let stem = segment_stem(first_sequence);
        let open = |extension: &str| {
            let path = self.dir.join(format!("{stem}.{extension}"));
            OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|error| SegmentError::io(&path, error))
        };
        let log = Arc::new(open("log")?);
        let index = open("index")?;
        // The new names must survive a crash before any entry in them is
        // reported durable.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|error| SegmentError::io(&self.dir, error))?;
        self.files.insert(first_sequence, Arc::clone(&log));
        self.active = Some(Segment {
            first_sequence,
            last_sequence: 0,
            log,
            len: 0,
            contents: SegmentContents {
                first_sequence,
                ..SegmentContents::default()
            },
        });
        self.active_index = Some(index);
        self.index_len = 0;
        Ok(())
    }
}

impl Drop for SegmentLog {
    fn drop(&mut self) {
        // Best effort: recovery rebuilds the last index anyway.
        let _ = self.flush_index();
    }
}

#[cfg(test)]
mod tests;
