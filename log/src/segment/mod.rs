//! The disk tier: a gateway's chain of segment files holding ordered
//! entries, written by group commit and recovered by scanning.
//!
//! - [`mod@format`]: the bytes of an entry and of an index record;
//! - [`data`]: the data files that hold data batches' payloads, written
//!   from the region with `O_DIRECT` in aligned runs;
//! - [`SegmentLog`]: the writer (append, roll, sync work, retention);
//! - [`SegmentFiles`]: the reader side, shared with fetches;
//! - [`recover`](SegmentLog::open): rebuilds the chain after any stop,
//!   truncating a torn tail.
//!
//! Durability contract: an entry is durable once a [`SyncWork`] that was
//! taken after its append has run without error. The caller publishes its
//! durable frontier only from [`SyncWork::run`]'s result.

mod data;
pub mod format;
mod recover;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use data::{DataFile, DataReader};
pub use data::{DirectIo, PayloadSource, RunWriteError, DIRECT_IO_ALIGN};
use format::{encode_index_record, log_bytes, segment_stem, ENTRY_HEADER_BYTES};
pub use format::{EntryHeader, PayloadRef};

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
    /// Where its payload lives when not right after the header.
    pub payload: Option<PayloadRef>,
}

impl DiskLocation {
    /// Whether `next`'s payload starts right where this entry's (of `len`
    /// bytes, or a run of payloads from it) ends, in the same data file,
    /// so that both are read with one read.
    pub fn follows(&self, len: u64, next: &DiskLocation) -> bool {
        match (self.payload, next.payload) {
            (Some(first), Some(then)) => {
                self.segment == next.segment
                    && first.source == then.source
                    && first.offset + len == then.offset
            }
            _ => false,
        }
    }
}

/// One entry found by recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub header: EntryHeader,
    pub location: DiskLocation,
}

/// The files of one segment a reader opens: its `.log` and its data files.
#[derive(Debug, Default)]
struct SegmentReaders {
    log: Option<Arc<File>>,
    /// (source gateway, data file).
    data: Vec<(u32, Arc<DataReader>)>,
}

/// The file a payload is read from.
enum PayloadFile {
    Log(Arc<File>),
    Data(Arc<DataReader>),
}

/// The files of a chain, for readers on any thread.
#[derive(Debug, Default)]
pub struct SegmentFiles {
    files: RwLock<BTreeMap<u64, SegmentReaders>>,
}

impl SegmentFiles {
    /// Copies the payload of the entry at `location` into `dst` (whose
    /// length is the payload's). Fails if the segment was deleted by
    /// retention meanwhile.
    pub fn read_payload(&self, location: DiskLocation, dst: &mut [u8]) -> io::Result<()> {
        let gone = || io::Error::new(io::ErrorKind::NotFound, "segment deleted");
        // Only the one file leaves the lock (an Arc): a fetch allocates
        // nothing here and reads without holding the lock.
        let (file, at) = {
            let files = self
                .files
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let readers = files.get(&location.segment).ok_or_else(gone)?;
            match location.payload {
                None => (
                    PayloadFile::Log(readers.log.clone().ok_or_else(gone)?),
                    location.position + ENTRY_HEADER_BYTES as u64,
                ),
                Some(payload) => (
                    PayloadFile::Data(
                        readers
                            .data
                            .iter()
                            .find(|(source, _)| *source == payload.source)
                            .map(|(_, file)| Arc::clone(file))
                            .ok_or_else(gone)?,
                    ),
                    payload.offset,
                ),
            }
        };
        match file {
            PayloadFile::Log(file) => file.read_exact_at(dst, at),
            PayloadFile::Data(file) => file.read_exact_at(dst, at),
        }
    }

    /// Appends the `len` payload bytes that start at `location` to `out`
    /// with one read: `len` may span the payloads of several entries that
    /// lie back to back in one data file (see [`DiskLocation::follows`]).
    /// On an error `out` is as it was.
    pub fn read_payload_append(
        &self,
        location: DiskLocation,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let gone = || io::Error::new(io::ErrorKind::NotFound, "segment deleted");
        let Some(payload) = location.payload else {
            let start = out.len();
            out.resize(start + len, 0);
            let read = self.read_payload(location, &mut out[start..]);
            if read.is_err() {
                out.truncate(start);
            }
            return read;
        };
        let file = {
            let files = self
                .files
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let readers = files.get(&location.segment).ok_or_else(gone)?;
            readers
                .data
                .iter()
                .find(|(source, _)| *source == payload.source)
                .map(|(_, file)| Arc::clone(file))
                .ok_or_else(gone)?
        };
        file.read_append(payload.offset, len, out)
    }

    fn insert(&self, segment: u64, file: Arc<File>) {
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(segment)
            .or_default()
            .log = Some(file);
    }

    fn insert_data(&self, segment: u64, source: u32, file: Arc<DataReader>) {
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(segment)
            .or_default()
            .data
            .push((source, file));
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
        for (source, data) in segment.data_readers {
            files.insert_data(segment.first_sequence, source, data);
        }
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
    /// Counts an entry that takes `disk_bytes` in the segment's files.
    fn add(&mut self, header: &EntryHeader, disk_bytes: u64) {
        self.last_sequence = header.sequence;
        self.bytes += disk_bytes;
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
    /// Payload bytes in its data files.
    data_bytes: u64,
    /// Read handles of its data files: (source gateway, file).
    data_readers: Vec<(u32, Arc<DataReader>)>,
    contents: SegmentContents,
}

/// One data batch of a run: its header, its payload's CRC32C, and where its
/// payload starts in the source's arena.
#[derive(Clone, Copy, Debug)]
pub struct RunEntry {
    pub header: EntryHeader,
    pub payload_crc: u32,
    pub position: u64,
}

/// Where [`SegmentLog::write_run`] put a run's payloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedRun {
    segment: u64,
    source: u32,
    /// Arena position of the run's first byte, and its file offset.
    position: u64,
    offset: u64,
    len: u64,
}

impl PlacedRun {
    /// The reference of the payload at arena `position` of this run.
    fn reference(&self, position: u64, length: u32) -> Option<PayloadRef> {
        let within = position.checked_sub(self.position)?;
        (within + u64::from(length) <= self.len).then_some(PayloadRef {
            source: self.source,
            offset: self.offset + within,
        })
    }
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
    /// The active segment's data files, one per source gateway.
    active_data: Vec<DataFile>,
    /// Whether data files are written with `O_DIRECT`.
    direct_io: DirectIo,
    /// Files written since the last sync work was taken.
    dirty: Vec<Arc<File>>,
    /// The header of the last entry appended (`None` for an empty chain).
    last: Option<EntryHeader>,
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
            for (source, data) in &segment.data_readers {
                files.insert_data(segment.first_sequence, *source, Arc::clone(data));
            }
            sealed.push(segment);
        }
        // The last segment stays sealed too: appends start a new file, so a
        // recovered file is never written again.
        let last = recovered.entries.last().map(|entry| entry.header);
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
                active_data: Vec::new(),
                direct_io: DirectIo::On,
                dirty: Vec::new(),
                last,
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
        self.last.map_or(0, |header| header.sequence)
    }

    /// The header of the last entry appended (`None` for an empty chain):
    /// what a peer checks a copy continues.
    pub fn last_header(&self) -> Option<EntryHeader> {
        self.last
    }

    /// Bytes of every segment of the chain: `.log` files and payloads in
    /// data files.
    pub fn total_bytes(&self) -> u64 {
        self.sealed
            .iter()
            .chain(self.active.as_ref())
            .map(|segment| segment.len + segment.data_bytes)
            .sum()
    }

    /// Whether data files are written with `O_DIRECT`, or why not.
    pub fn direct_io(&self) -> &DirectIo {
        &self.direct_io
    }

    /// Starts writing data files through the page cache (a test of the
    /// fallback, or an operator's choice).
    pub fn refuse_direct_io(&mut self, why: &str) {
        self.direct_io = DirectIo::Refused(why.to_string());
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
        self.roll_if_full(header.sequence, header.stored_len())
            .map_err(AppendFromError::Segment)?;
        let bytes = header.encode_with_payload_crc(payload_crc);
        self.append_record(header, &bytes, None, write_payload)
    }

    /// Writes the payloads of a run of data batches that lie back to back
    /// in gateway `source`'s arena, from arena position `position` for
    /// `len` bytes, into the active segment's data file for `source`
    /// (rolling first if the run does not fit), by `O_DIRECT` from wherever
    /// `payloads` keeps them. The entries are not appended yet: the caller
    /// checks that the bytes it wrote were still the batches' (not
    /// recycled) and then appends each with [`SegmentLog::append_placed`].
    /// `None` when this run cannot be mirrored (it starts before bytes the
    /// data file already holds): the caller appends it inline.
    pub fn write_run<S: PayloadSource>(
        &mut self,
        source: u32,
        first_sequence: u64,
        position: u64,
        len: u64,
        payloads: &mut S,
    ) -> Result<Option<PlacedRun>, AppendFromError<RunWriteError<S::Error>>> {
        assert!(
            first_sequence > self.last_sequence(),
            "sequence {first_sequence} appended after {}",
            self.last_sequence()
        );
        self.roll_if_full(first_sequence, len)
            .map_err(AppendFromError::Segment)?;
        let active = self.active.as_ref().expect("rolled above");
        let segment = active.first_sequence;
        let at = match self
            .active_data
            .iter()
            .position(|data| data.source() == source)
        {
            Some(at) => at,
            None => {
                let data =
                    DataFile::create(&self.dir, segment, source, position, &mut self.direct_io)
                        .map_err(|error| {
                            AppendFromError::Segment(SegmentError::io(&self.dir, error))
                        })?;
                // The new name must survive a crash before anything in it is
                // reported durable.
                sync_dir(&self.dir).map_err(AppendFromError::Segment)?;
                self.files
                    .insert_data(segment, source, Arc::clone(data.reader()));
                self.active_data.push(data);
                self.active_data.len() - 1
            }
        };
        let data = &mut self.active_data[at];
        if data.offset_of(position).is_none() {
            return Ok(None);
        }
        let before = data.payload_bytes();
        let offset = data
            .write_run(payloads, position, len, &mut self.direct_io)
            .map_err(AppendFromError::Payload)?;
        let written = data.payload_bytes() - before;
        let file = Arc::clone(data.file());
        let active = self.active.as_mut().expect("rolled above");
        active.data_bytes += written;
        mark_dirty(&mut self.dirty, &file);
        Ok(Some(PlacedRun {
            segment,
            source,
            position,
            offset,
            len,
        }))
    }

    /// Appends a data batch whose payload [`SegmentLog::write_run`] wrote
    /// as part of `run` (not yet durable: see [`SegmentLog::sync_work`]).
    pub fn append_placed(
        &mut self,
        run: &PlacedRun,
        entry: &RunEntry,
    ) -> Result<DiskLocation, SegmentError> {
        let reference = run
            .reference(entry.position, entry.header.length)
            .filter(|_| {
                self.active.as_ref().map(|active| active.first_sequence) == Some(run.segment)
            })
            .expect("an entry of the run, in the segment the run was written to");
        let bytes = entry.header.encode_referencing(entry.payload_crc);
        let dir = self.dir.clone();
        self.append_record(&entry.header, &bytes, Some(reference), |file, at| {
            file.write_all_at(&reference.encode(), at)
                .map_err(|error| SegmentError::io(&dir, error))
        })
        .map_err(|error| match error {
            AppendFromError::Segment(error) | AppendFromError::Payload(error) => error,
        })
    }

    /// Rolls to a new segment starting at `first_sequence` when the active
    /// one is missing or `more` bytes would take it past the segment size.
    fn roll_if_full(&mut self, first_sequence: u64, more: u64) -> Result<(), SegmentError> {
        let must_roll = match &self.active {
            None => true,
            Some(active) => {
                let used = active.len + active.data_bytes;
                used > 0 && used + more > self.segment_bytes
            }
        };
        if must_roll {
            self.roll(first_sequence)?;
        }
        Ok(())
    }

    /// Appends an entry to the active segment: its encoded header, then
    /// what `write_rest` writes after it (the payload, or the reference).
    fn append_record<E>(
        &mut self,
        header: &EntryHeader,
        bytes: &[u8; ENTRY_HEADER_BYTES],
        payload: Option<PayloadRef>,
        write_rest: impl FnOnce(&File, u64) -> Result<(), E>,
    ) -> Result<DiskLocation, AppendFromError<E>> {
        assert!(
            header.sequence > self.last_sequence(),
            "sequence {} appended after {}",
            header.sequence,
            self.last_sequence()
        );
        let active = self.active.as_mut().expect("the caller rolled");
        let position = active.len;
        active
            .log
            .write_all_at(bytes, position)
            .map_err(|error| AppendFromError::Segment(SegmentError::io(&self.dir, error)))?;
        write_rest(&active.log, position + ENTRY_HEADER_BYTES as u64)
            .map_err(AppendFromError::Payload)?;
        let log_len = log_bytes(header, payload);
        active.len += log_len;
        active.last_sequence = header.sequence;
        let disk_bytes = log_len + payload.map_or(0, |_| u64::from(header.length));
        active.contents.add(header, disk_bytes);
        let log = Arc::clone(&active.log);
        mark_dirty(&mut self.dirty, &log);
        let location = DiskLocation {
            segment: active.first_sequence,
            position,
            payload,
        };
        self.index_buffer
            .extend_from_slice(&encode_index_record(position, bytes, payload));
        self.last = Some(*header);
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
            through_sequence: self.last_sequence(),
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
        let mut names: Vec<String> = [
            format::INDEX_EXTENSION,
            format::LEGACY_INDEX_EXTENSION,
            "log",
        ]
        .iter()
        .map(|extension| format!("{stem}.{extension}"))
        .collect();
        names.extend(
            segment
                .data_readers
                .iter()
                .map(|(source, _)| format::data_file_name(segment.first_sequence, *source)),
        );
        for name in names {
            let path = self.dir.join(name);
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
            for data in &self.active_data {
                data.file()
                    .sync_data()
                    .map_err(|error| SegmentError::io(&self.dir, error))?;
            }
            log.sync_data()
                .map_err(|error| SegmentError::io(&self.dir, error))?;
            if let Some(index) = self.active_index.as_ref() {
                index
                    .sync_data()
                    .map_err(|error| SegmentError::io(&self.dir, error))?;
            }
        }
        if let Some(mut active) = self.active.take() {
            self.active_index = None;
            active.data_readers = self
                .active_data
                .drain(..)
                .map(|data| (data.source(), Arc::clone(data.reader())))
                .collect();
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
        let index = open(format::INDEX_EXTENSION)?;
        // The new names must survive a crash before any entry in them is
        // reported durable.
        sync_dir(&self.dir)?;
        self.files.insert(first_sequence, Arc::clone(&log));
        self.active = Some(Segment {
            first_sequence,
            last_sequence: 0,
            log,
            len: 0,
            data_bytes: 0,
            data_readers: Vec::new(),
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

/// Makes the names in `dir` survive a crash.
fn sync_dir(dir: &Path) -> Result<(), SegmentError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| SegmentError::io(dir, error))
}

/// Adds `file` to the files the next sync work covers.
fn mark_dirty(dirty: &mut Vec<Arc<File>>, file: &Arc<File>) {
    if !dirty.iter().any(|known| Arc::ptr_eq(known, file)) {
        dirty.push(Arc::clone(file));
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
