//! Memory backends: how a participant reads, writes, flushes and invalidates
//! the shared region.
//!
//! The typed accessor ([`crate::accessor::Region`]) is generic over
//! [`MemoryBackend`], so each backend is monomorphized into the hot path and a
//! no-op flush costs nothing on coherent memory.
//!
//! | backend | flush | invalidate | use |
//! |---|---|---|---|
//! | [`Coherent`] | no-op | no-op | one host, `/dev/shm` emulation |
//! | [`NonCoherent`] | `clwb`/`clflushopt`/`clflush` + `sfence` | `clflushopt`/`clflush` + `mfence` | CXL shared between hosts |
//! | [`Simulated`] | writes a private cache back | drops private cache lines | tests: stale reads, torn lines, crashes |

mod coherent;
pub mod mapped;
mod noncoherent;
pub mod simulated;

pub use coherent::Coherent;
pub use mapped::{MappedMemory, CACHE_LINE};
pub use noncoherent::NonCoherent;
pub use simulated::{SimFaults, Simulated, SimulatedMemory};

/// One participant's view of the shared region.
///
/// Offsets are bytes from the start of the region (rule 2: offsets, never
/// pointers). Implementations panic on an out-of-range offset: offsets come
/// from validated geometry, so one out of range is a bug, not bad input.
pub trait MemoryBackend: Send + Sync + 'static {
    /// Human name for logs and errors.
    fn name(&self) -> &'static str;
    /// Size of the region in bytes.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes out of this participant's view of the region.
    fn read(&self, offset: usize, dst: &mut [u8]);
    /// Copies bytes into this participant's view; invisible to others until
    /// flushed on non-coherent memory.
    fn write(&self, offset: usize, src: &[u8]);
    /// Writes bytes and starts their write-back at once: what a payload copy
    /// wants. Non-coherent memory overrides it with non-temporal stores.
    fn write_flushed(&self, offset: usize, src: &[u8]) {
        self.write(offset, src);
        self.flush(offset, src.len());
    }
    /// Appends `len` bytes of this participant's view at `offset` to `dst`.
    /// Mappings override it to copy into the vector's spare capacity; this
    /// default zero-fills the tail first.
    fn read_append(&self, offset: usize, len: usize, dst: &mut Vec<u8>) {
        let start = dst.len();
        dst.resize(start + len, 0);
        self.read(offset, &mut dst[start..]);
    }
    /// Writes `len` bytes at `offset` into `file` at `file_offset` as a
    /// device reading memory does (a DMA for an `O_DIRECT` file): mappings
    /// hand the kernel the mapping itself, so nothing is copied through
    /// this process. This default copies this participant's view through a
    /// page-aligned buffer, so `file` may be opened with `O_DIRECT`.
    fn write_to_file(
        &self,
        offset: usize,
        len: usize,
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        write_through_aligned_buffer(len, file, file_offset, |buffer| self.read(offset, buffer))
    }
    /// Writes `head`, then `len` bytes at `offset` as [`Self::write_to_file`]
    /// writes them, then `tail`, back to back into `file` at `file_offset`.
    /// Mappings do it in one `pwritev` (one I/O); this default in three
    /// writes. `head` and `tail` must be page-aligned for an `O_DIRECT` file.
    fn write_framed_to_file(
        &self,
        head: &[u8],
        offset: usize,
        len: usize,
        tail: &[u8],
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if !head.is_empty() {
            file.write_all_at(head, file_offset)?;
        }
        let middle_at = file_offset + head.len() as u64;
        if len > 0 {
            self.write_to_file(offset, len, file, middle_at)?;
        }
        if !tail.is_empty() {
            file.write_all_at(tail, middle_at + len as u64)?;
        }
        Ok(())
    }
    /// Loads an 8-byte aligned word atomically.
    fn load_u64(&self, offset: usize) -> u64;
    /// Stores an 8-byte aligned word atomically.
    fn store_u64(&self, offset: usize, value: u64);
    /// Starts writing back every line of the range (completes at the next fence).
    fn flush(&self, offset: usize, len: usize);
    /// Discards this participant's cached copy of every line of the range, so
    /// the next read fetches what others published.
    fn invalidate(&self, offset: usize, len: usize);
    /// Completes earlier flushes and orders earlier stores before later ones.
    fn store_fence(&self);
    /// Orders everything earlier before every later load.
    fn full_fence(&self);
}

/// Fills a page-aligned buffer of `len` bytes with `fill` and writes it
/// into `file` at `file_offset` (an `O_DIRECT` file needs the alignment).
pub(crate) fn write_through_aligned_buffer(
    len: usize,
    file: &std::fs::File,
    file_offset: u64,
    fill: impl FnOnce(&mut [u8]),
) -> std::io::Result<()> {
    const PAGE: usize = 4096;
    let mut storage = vec![0u8; len + PAGE];
    let start = storage.as_ptr().align_offset(PAGE);
    let buffer = &mut storage[start..start + len];
    fill(buffer);
    std::os::unix::fs::FileExt::write_all_at(file, buffer, file_offset)
}

/// Which backend a gateway maps its region with (a `--memory-backend` value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Coherent,
    NonCoherent,
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "coherent" => Ok(BackendKind::Coherent),
            "non-coherent" | "noncoherent" => Ok(BackendKind::NonCoherent),
            other => Err(format!(
                "unknown memory backend {other:?}: expected coherent or non-coherent"
            )),
        }
    }
}
