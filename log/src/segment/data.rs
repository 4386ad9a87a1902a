//! Data files: where a segment keeps the payloads of data batches, written
//! from the region by the device (`O_DIRECT`), not copied by the CPU and not
//! through the page cache.
//!
//! `<stem>.g<source>.data` mirrors gateway `source`'s arena: the payload at
//! arena position `p` lives at file offset `p - base`, `base` being the
//! segment's first payload position from that gateway rounded down to a
//! page. A file page therefore mirrors an arena page, so a run of batches
//! that lie back to back in the arena is written by one aligned `pwrite`
//! straight from the mapping. Arena bytes that never reach the file (a
//! batch refused, the skipped tail before the arena wraps) leave holes,
//! which a sparse file does not store.
//!
//! The partial pages at both ends of a run go through a page-sized bounce
//! buffer: the first page of a run starts with the end of an earlier batch,
//! whose bytes the writer kept from when it wrote them, because the arena
//! may have recycled them since. So no byte already in a file is ever
//! rewritten with anything but itself.
//!
//! Where the filesystem refuses `O_DIRECT` (it refuses the open or an
//! aligned write with `EINVAL`), the data files are written through the
//! page cache instead, and [`DirectIo::Refused`] says why.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::data_file_name;

/// Alignment of every direct write: offset, length and memory address.
/// A page satisfies every device's logical block size up to 4 KiB.
pub const DIRECT_IO_ALIGN: u64 = 4096;

/// Where payload bytes come from: a gateway's arena in the region.
pub trait PayloadSource {
    type Error;
    /// Copies the bytes at source positions `position..` into `dst` (at
    /// most a page: the ends of a run).
    fn copy(&mut self, position: u64, dst: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `head`, then the `len` bytes at source position `position`,
    /// then `tail`, back to back into `file` at `file_offset`, the source's
    /// bytes without a copy through this process (one I/O where it can).
    /// `file_offset`, every length and the memory address of `position`
    /// are multiples of [`DIRECT_IO_ALIGN`]; `head` and `tail` are pages.
    /// The file's refusal is [`RunWriteError::Io`], the source's own
    /// trouble [`RunWriteError::Source`].
    fn write_to(
        &mut self,
        head: &[u8],
        position: u64,
        len: u64,
        tail: &[u8],
        file: &File,
        file_offset: u64,
    ) -> Result<(), RunWriteError<Self::Error>>;
}

/// Why a run was not written.
#[derive(Debug)]
pub enum RunWriteError<E> {
    /// The data file could not be created or written.
    Io(io::Error),
    /// The source's own error (its bytes were recycled, say).
    Source(E),
}

/// Whether data files are written with `O_DIRECT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectIo {
    On,
    /// The filesystem refused it; data goes through the page cache.
    Refused(String),
}

/// A page-aligned, page-sized buffer, without `unsafe`: a two-page vector
/// never resized, used from its first aligned byte.
struct PageBuffer {
    storage: Vec<u8>,
    start: usize,
}

impl PageBuffer {
    fn new() -> Self {
        let storage = vec![0u8; 2 * DIRECT_IO_ALIGN as usize];
        let start = storage.as_ptr().align_offset(DIRECT_IO_ALIGN as usize);
        Self { storage, start }
    }

    fn page(&self) -> &[u8] {
        &self.storage[self.start..self.start + DIRECT_IO_ALIGN as usize]
    }

    fn page_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + DIRECT_IO_ALIGN as usize]
    }
}

/// The last page written that a later run may continue.
struct TailPage {
    /// File offset of the page.
    file_offset: u64,
    /// Bytes of it that hold payload.
    valid: usize,
    bytes: PageBuffer,
}

/// The writer of one data file.
pub(super) struct DataFile {
    source: u32,
    path: PathBuf,
    file: Arc<File>,
    /// A read-only handle for fetches.
    reader: Arc<DataReader>,
    direct: bool,
    /// Arena position of file offset 0.
    base: u64,
    /// File offset after the last payload byte written.
    end: u64,
    /// Payload bytes written (holes excluded).
    payload_bytes: u64,
    tail: Option<TailPage>,
    /// The first and last page of the run being written.
    head_page: PageBuffer,
    tail_page: PageBuffer,
}

impl std::fmt::Debug for DataFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DataFile")
            .field("path", &self.path)
            .field("direct", &self.direct)
            .field("base", &self.base)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

fn align_down(value: u64) -> u64 {
    value - value % DIRECT_IO_ALIGN
}

fn align_up(value: u64) -> u64 {
    value.div_ceil(DIRECT_IO_ALIGN) * DIRECT_IO_ALIGN
}

impl DataFile {
    /// Creates the data file of segment `segment` for `source`, whose first
    /// payload starts at arena position `first_position`; with `O_DIRECT`
    /// unless `direct` is already refused (then `*direct` says why).
    pub(super) fn create(
        dir: &Path,
        segment: u64,
        source: u32,
        first_position: u64,
        direct: &mut DirectIo,
    ) -> io::Result<Self> {
        let path = dir.join(data_file_name(segment, source));
        let (file, is_direct) = open_for_writing(&path, direct)?;
        let reader = DataReader::open(&path)?;
        Ok(Self {
            source,
            path,
            file: Arc::new(file),
            reader: Arc::new(reader),
            direct: is_direct,
            base: align_down(first_position),
            end: 0,
            payload_bytes: 0,
            tail: None,
            head_page: PageBuffer::new(),
            tail_page: PageBuffer::new(),
        })
    }

    pub(super) fn source(&self) -> u32 {
        self.source
    }

    pub(super) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(super) fn reader(&self) -> &Arc<DataReader> {
        &self.reader
    }

    pub(super) fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// File offset of the payload at arena position `position`, when a run
    /// starting there can be written: at or after everything written so far.
    pub(super) fn offset_of(&self, position: u64) -> Option<u64> {
        let offset = position.checked_sub(self.base)?;
        (offset >= self.end).then_some(offset)
    }

    /// Writes the run of payload bytes at arena positions
    /// `position..position + len` at their mirrored file offsets; returns
    /// the file offset of its first byte. On an error nothing written
    /// before is disturbed and the run may be written again.
    pub(super) fn write_run<S: PayloadSource>(
        &mut self,
        source: &mut S,
        position: u64,
        len: u64,
        direct: &mut DirectIo,
    ) -> Result<u64, RunWriteError<S::Error>> {
        let start = self
            .offset_of(position)
            .expect("runs are written in arena order");
        match self.write_run_at(source, position, start, len) {
            Err(RunWriteError::Io(error))
                if self.direct && error.raw_os_error() == Some(libc::EINVAL) =>
            {
                // The open accepted O_DIRECT but the write did not: go
                // through the page cache from now on.
                *direct = DirectIo::Refused(format!("an aligned O_DIRECT write failed: {error}"));
                let (file, _) = open_for_writing(&self.path, direct).map_err(RunWriteError::Io)?;
                self.file = Arc::new(file);
                self.direct = false;
                self.write_run_at(source, position, start, len)?;
            }
            other => other?,
        }
        self.end = start + len;
        self.payload_bytes += len;
        Ok(start)
    }

    /// One write of the run: its first page when it starts inside one
    /// (the page's earlier bytes from the kept tail, or a hole), the whole
    /// pages between straight from the source, its last page when it ends
    /// inside one.
    fn write_run_at<S: PayloadSource>(
        &mut self,
        source: &mut S,
        position: u64,
        start: u64,
        len: u64,
    ) -> Result<(), RunWriteError<S::Error>> {
        let end = start + len;
        let first_page = align_down(start);
        let full_from = align_up(start);
        let full_to = align_down(end).max(full_from);
        let last_page = align_down(end);
        let has_head = start != first_page;
        // A run inside one page has a first page only.
        let has_tail = end != last_page && last_page >= full_from;
        if has_head {
            let page = self.head_page.page_mut();
            page.fill(0);
            if let Some(tail) = self
                .tail
                .as_ref()
                .filter(|tail| tail.file_offset == first_page)
            {
                page[..tail.valid].copy_from_slice(&tail.bytes.page()[..tail.valid]);
            }
            let from = (start - first_page) as usize;
            let to = (end.min(full_from) - first_page) as usize;
            source
                .copy(position, &mut page[from..to])
                .map_err(RunWriteError::Source)?;
        }
        if has_tail {
            let page = self.tail_page.page_mut();
            page.fill(0);
            let valid = (end - last_page) as usize;
            source
                .copy(position + (last_page - start), &mut page[..valid])
                .map_err(RunWriteError::Source)?;
        }
        let head: &[u8] = if has_head { self.head_page.page() } else { &[] };
        let tail: &[u8] = if has_tail { self.tail_page.page() } else { &[] };
        let file_offset = if has_head { first_page } else { full_from };
        source.write_to(
            head,
            position + (full_from - start),
            full_to - full_from,
            tail,
            &self.file,
            file_offset,
        )?;
        // Only now, with the write done, may the kept tail change: to the
        // last page written, when the run ends inside it.
        let old_tail = self.tail.take().map(|old| old.bytes);
        let reused = old_tail.unwrap_or_else(PageBuffer::new);
        self.tail = if has_tail {
            Some(TailPage {
                file_offset: last_page,
                valid: (end - last_page) as usize,
                bytes: std::mem::replace(&mut self.tail_page, reused),
            })
        } else if has_head && end < full_from {
            Some(TailPage {
                file_offset: first_page,
                valid: (end - first_page) as usize,
                bytes: std::mem::replace(&mut self.head_page, reused),
            })
        } else {
            None
        };
        Ok(())
    }
}

/// A data file opened for reading: with `O_DIRECT` where the filesystem
/// takes it, so a consumer reading data that left the region costs no new
/// page-cache pages (about 2.5 ns a byte here, more than the read itself);
/// the bytes land in a page-aligned buffer kept per thread and the payload
/// is copied out of it.
#[derive(Debug)]
pub struct DataReader {
    file: File,
    direct: bool,
}

thread_local! {
    /// The aligned buffer of this thread's direct reads, reused.
    static DIRECT_READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl DataReader {
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true);
        match options.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => Ok(Self { file, direct: true }),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => Ok(Self {
                file: options.open(path)?,
                direct: false,
            }),
            Err(error) => Err(error),
        }
    }

    /// Fills `dst` with the bytes at `at`; `UnexpectedEof` when the file
    /// ends first (a payload that never reached the disk).
    pub fn read_exact_at(&self, dst: &mut [u8], at: u64) -> io::Result<()> {
        if !self.direct {
            return self.file.read_exact_at(dst, at);
        }
        self.read_direct(at, dst.len(), |bytes| dst.copy_from_slice(bytes))
    }

    /// Appends the `len` bytes at `at` to `out` (with one read, and no
    /// zero-filling of `out` first when reading directly); on an error
    /// `out` is as it was.
    pub fn read_append(&self, at: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        if !self.direct {
            let start = out.len();
            out.resize(start + len, 0);
            let read = self.file.read_exact_at(&mut out[start..], at);
            if read.is_err() {
                out.truncate(start);
            }
            return read;
        }
        self.read_direct(at, len, |bytes| out.extend_from_slice(bytes))
    }

    /// Reads the `len` bytes at `at` with `O_DIRECT` into this thread's
    /// aligned buffer and hands them to `take`.
    fn read_direct(&self, at: u64, len: usize, take: impl FnOnce(&[u8])) -> io::Result<()> {
        let start = align_down(at);
        let end = align_up(at + len as u64);
        let span = (end - start) as usize;
        let skip = (at - start) as usize;
        DIRECT_READ_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            if buffer.len() < span + DIRECT_IO_ALIGN as usize {
                *buffer = vec![0u8; span + DIRECT_IO_ALIGN as usize];
            }
            let aligned = buffer.as_ptr().align_offset(DIRECT_IO_ALIGN as usize);
            let window = &mut buffer[aligned..aligned + span];
            let needed = skip + len;
            let mut got = 0;
            while got < needed {
                match self.file.read_at(&mut window[got..], start + got as u64) {
                    // The file ends before the payload does.
                    Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                    Ok(read) => got += read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            take(&window[skip..needed]);
            Ok(())
        })
    }
}

/// Opens a data file for writing, with `O_DIRECT` while `direct` is on; a
/// refusal of the flag switches `direct` off and opens it buffered.
fn open_for_writing(path: &Path, direct: &mut DirectIo) -> io::Result<(File, bool)> {
    let mut options = OpenOptions::new();
    options.create(true).write(true).read(true);
    if *direct == DirectIo::On {
        match options.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => return Ok((file, true)),
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                *direct = DirectIo::Refused(format!(
                    "the filesystem of {} refuses O_DIRECT: {error}",
                    path.display()
                ));
            }
            Err(error) => return Err(error),
        }
    }
    Ok((options.open(path)?, false))
}
