//! The raw shared mapping: the only place in the workspace that touches the
//! region through pointers.
//!
//! Every other module reaches the region through [`MemoryBackend`] and the
//! typed accessor in [`crate::accessor`]; this file owns the `unsafe` that makes
//! that possible. Each method checks its bounds before it dereferences, so an
//! offset that a bug or a corrupted header produces panics here instead of
//! reading or writing outside the mapping.
//!
//! [`MemoryBackend`]: super::MemoryBackend

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

/// Bytes per cache line on every CPU the region is shared between.
pub const CACHE_LINE: usize = 64;

/// A shared, writable mapping of a region file or device.
///
/// Other processes (and, with CXL, other hosts) write the same bytes
/// concurrently; the memory discipline (flush, fence, commit word) and the
/// seqlock-style re-validation in the readers are what make those races
/// benign. This type only guarantees that every access stays inside the
/// mapping and that 8-byte words are accessed atomically.
pub struct MappedMemory {
    map: MmapRaw,
}

impl MappedMemory {
    /// Maps `len` bytes of `file` shared and writable.
    pub fn map(file: &File, len: usize) -> std::io::Result<Self> {
        let map = MmapOptions::new().len(len).map_raw(file)?;
        Ok(Self { map })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    fn check(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|end| end <= self.map.len()),
            "region access out of bounds: offset {offset} len {len} region {}",
            self.map.len()
        );
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8);
        assert!(offset % 8 == 0, "unaligned region word at offset {offset}");
        // SAFETY: `check` proved offset..offset+8 lies inside the mapping, the
        // mapping is page aligned so `offset % 8 == 0` makes the pointer 8-byte
        // aligned, and the mapping outlives the returned reference because it
        // borrows `self`. Every process touches region words only through
        // atomics, so this is a valid shared AtomicU64.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }

    /// Copies `dst.len()` bytes at `offset` out of the region.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len());
        // SAFETY: the source range is inside the mapping (checked above) and
        // cannot overlap `dst`, a Rust-owned buffer. A concurrent writer can
        // make the copied bytes inconsistent, never invalid: they are plain
        // bytes, and readers re-validate them against a commit word.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }

    /// Appends `len` bytes at `offset` to `dst` without zero-filling its
    /// new tail first.
    pub fn read_append(&self, offset: usize, len: usize, dst: &mut Vec<u8>) {
        self.check(offset, len);
        dst.reserve(len);
        // SAFETY: the source range is inside the mapping (checked above);
        // `reserve` made room for `len` more bytes after `dst.len()`, which
        // `copy_nonoverlapping` initialises in full before `set_len` counts
        // them. `dst` is Rust-owned, so the ranges cannot overlap. As in
        // `read`, a concurrent writer can only make the bytes inconsistent.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset),
                dst.as_mut_ptr().add(dst.len()),
                len,
            );
            dst.set_len(dst.len() + len);
        }
    }

    /// Writes `len` bytes at `offset` into `file` at `file_offset`, the
    /// kernel copying them straight out of the mapping (no bounce buffer).
    pub fn write_to_file(
        &self,
        offset: usize,
        len: usize,
        file: &File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        self.check(offset, len);
        let mut written = 0usize;
        while written < len {
            let position = libc::off_t::try_from(file_offset + written as u64)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            // SAFETY: `check` proved offset..offset+len lies inside the
            // mapping, which `self` keeps alive for the call; pwrite only
            // reads `len - written` bytes from the pointer and no Rust
            // reference to them is made. A concurrent writer can make the
            // written bytes inconsistent, never invalid, exactly as in
            // `read`: the caller re-validates them (the arena floor) after.
            let result = unsafe {
                libc::pwrite(
                    file.as_raw_fd(),
                    self.map
                        .as_ptr()
                        .add(offset + written)
                        .cast::<libc::c_void>(),
                    len - written,
                    position,
                )
            };
            match result {
                0 => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                n if n > 0 => written += n as usize,
                _ => {
                    let error = std::io::Error::last_os_error();
                    if error.kind() != std::io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `head`, then `len` bytes of the mapping at `offset`, then
    /// `tail`, back to back into `file` at `file_offset`, by one `pwritev`
    /// (one I/O for an `O_DIRECT` file, the middle read by the device
    /// straight from the mapping). A write the kernel cuts short is
    /// finished piece by piece.
    pub fn write_framed_to_file(
        &self,
        head: &[u8],
        offset: usize,
        len: usize,
        tail: &[u8],
        file: &File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::FileExt;
        self.check(offset, len);
        let position = libc::off_t::try_from(file_offset)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let pieces = [
            libc::iovec {
                iov_base: head.as_ptr().cast_mut().cast::<libc::c_void>(),
                iov_len: head.len(),
            },
            libc::iovec {
                // SAFETY: `check` proved offset..offset+len lies inside the
                // mapping; this only computes the address, nothing is read.
                iov_base: unsafe { self.map.as_ptr().add(offset) }
                    .cast_mut()
                    .cast::<libc::c_void>(),
                iov_len: len,
            },
            libc::iovec {
                iov_base: tail.as_ptr().cast_mut().cast::<libc::c_void>(),
                iov_len: tail.len(),
            },
        ];
        // SAFETY: the three iovecs name `head` and `tail` (borrowed for the
        // call) and offset..offset+len of the mapping (checked above, kept
        // alive by `self`); pwritev only reads them and no Rust reference
        // to the mapped bytes is made. A concurrent writer can make the
        // written bytes inconsistent, never invalid, as in `write_to_file`:
        // the caller re-validates them (the arena floor) after.
        let result = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                pieces.as_ptr(),
                pieces.len() as libc::c_int,
                position,
            )
        };
        let mut done = match result {
            n if n >= 0 => n as usize,
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
                0
            }
        };
        // Cut short (or interrupted): finish each piece from where it got.
        let mut at = file_offset;
        for (index, piece_len) in [head.len(), len, tail.len()].into_iter().enumerate() {
            let skip = done.min(piece_len);
            done -= skip;
            let rest = piece_len - skip;
            if rest > 0 {
                match index {
                    0 => file.write_all_at(&head[skip..], at + skip as u64)?,
                    1 => self.write_to_file(offset + skip, rest, file, at + skip as u64)?,
                    _ => file.write_all_at(&tail[skip..], at + skip as u64)?,
                }
            }
            at += piece_len as u64;
        }
        Ok(())
    }

    /// Copies `src` into the region at `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len());
        // SAFETY: the destination range is inside the mapping (checked above);
        // `src` is Rust-owned and cannot overlap the mapping. Rule 1 of the
        // region (one writer per line) means no other participant writes
        // these bytes at the same time.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                src.len(),
            );
        }
    }

    /// Copies `src` into the region with non-temporal stores where the
    /// destination is 16-byte aligned, so whole lines go to memory without
    /// passing through the cache; the partial lines at either end are
    /// written normally and flushed with `edge_flush`. Complete after the
    /// next store fence, like a flush.
    pub fn write_streaming(&self, offset: usize, src: &[u8], edge_flush: FlushInstruction) {
        self.check(offset, src.len());
        #[cfg(target_arch = "x86_64")]
        {
            let destination = self.map.as_ptr() as usize + offset;
            let head = (16 - destination % 16) % 16;
            if src.len() >= head + 64 {
                let body = (src.len() - head) / 16 * 16;
                self.write(offset, &src[..head]);
                self.flush_lines(offset, head, edge_flush);
                stream_copy(destination + head, &src[head..head + body]);
                let tail = head + body;
                self.write(offset + tail, &src[tail..]);
                self.flush_lines(offset + tail, src.len() - tail, edge_flush);
                return;
            }
        }
        self.write(offset, src);
        self.flush_lines(offset, src.len(), edge_flush);
    }

    pub fn load_u64(&self, offset: usize) -> u64 {
        self.word(offset).load(Ordering::Acquire)
    }

    pub fn store_u64(&self, offset: usize, value: u64) {
        self.word(offset).store(value, Ordering::Release)
    }

    /// Writes every cache line of `offset..offset+len` back to memory with
    /// `instruction`, keeping or evicting it as the instruction does.
    pub fn flush_lines(&self, offset: usize, len: usize, instruction: FlushInstruction) {
        if len == 0 {
            return;
        }
        self.check(offset, len);
        let base = self.map.as_ptr() as usize;
        let first = (base + offset) & !(CACHE_LINE - 1);
        let end = base + offset + len;
        let mut line = first;
        while line < end {
            // The first line may start before the range but never before the
            // page-aligned mapping, so every address flushed is mapped.
            flush_line(line as *const u8, instruction);
            line += CACHE_LINE;
        }
    }
}

/// Which x86 instruction writes a cache line back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushInstruction {
    /// Writes back and keeps the line: the cheapest way to publish.
    Clwb,
    /// Writes back and evicts, weakly ordered: publishes and invalidates.
    Clflushopt,
    /// Writes back and evicts, strongly ordered: the baseline every x86_64 has.
    Clflush,
    /// No flush instruction exists on this architecture; fences only.
    None,
}

impl FlushInstruction {
    /// The best instructions this CPU offers, as (publish, invalidate):
    /// `clwb` cannot invalidate, so invalidation falls back to `clflushopt`.
    pub fn detect() -> (FlushInstruction, FlushInstruction) {
        detect_flush_instructions()
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_flush_instructions() -> (FlushInstruction, FlushInstruction) {
    // CPUID leaf 7, sub-leaf 0: EBX bit 23 is CLFLUSHOPT, bit 24 is CLWB.
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    let has_clflushopt = leaf7.ebx & (1 << 23) != 0;
    let has_clwb = leaf7.ebx & (1 << 24) != 0;
    let invalidate = if has_clflushopt {
        FlushInstruction::Clflushopt
    } else {
        FlushInstruction::Clflush
    };
    let publish = if has_clwb {
        FlushInstruction::Clwb
    } else {
        invalidate
    };
    (publish, invalidate)
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_flush_instructions() -> (FlushInstruction, FlushInstruction) {
    (FlushInstruction::None, FlushInstruction::None)
}

#[cfg(target_arch = "x86_64")]
fn flush_line(address: *const u8, instruction: FlushInstruction) {
    use std::arch::asm;
    // The caller passes an address inside a live mapping; clwb, clflushopt
    // and clflush only write back or evict the line that holds it and never
    // fault on mapped memory. `detect` only selects an instruction that
    // CPUID reports, so none of them is illegal here.
    match instruction {
        // SAFETY: `address` is mapped and CPUID reports CLWB (see above).
        FlushInstruction::Clwb => unsafe {
            asm!("clwb [{0}]", in(reg) address, options(nostack, preserves_flags));
        },
        // SAFETY: `address` is mapped and CPUID reports CLFLUSHOPT (see above).
        FlushInstruction::Clflushopt => unsafe {
            asm!("clflushopt [{0}]", in(reg) address, options(nostack, preserves_flags));
        },
        // SAFETY: `address` is mapped and CLFLUSH is in every x86_64 (see
        // above).
        FlushInstruction::Clflush => unsafe {
            asm!("clflush [{0}]", in(reg) address, options(nostack, preserves_flags));
        },
        FlushInstruction::None => {}
    }
}

/// Non-temporal copy of whole 16-byte chunks to a 16-byte aligned address.
#[cfg(target_arch = "x86_64")]
fn stream_copy(destination: usize, src: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
    debug_assert!(destination % 16 == 0 && src.len() % 16 == 0);
    for (index, chunk) in src.chunks_exact(16).enumerate() {
        // SAFETY: `write_streaming` checked that the whole destination range
        // is inside the mapping and aligned it to 16 bytes; `chunk` is 16
        // readable bytes (unaligned loads are allowed by loadu); SSE2 is part
        // of the x86_64 baseline.
        unsafe {
            let value = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            _mm_stream_si128((destination + index * 16) as *mut __m128i, value);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn flush_line(_address: *const u8, _instruction: FlushInstruction) {}

/// Orders every earlier store and flush before every later store: the
/// "fence" between a record's body and its commit word.
pub fn store_fence() {
    // SAFETY: SSE is part of the x86_64 baseline, so sfence always exists.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(Ordering::SeqCst);
}

/// Orders every earlier load, store and flush before every later load: the
/// fence between invalidating a record and reading it.
pub fn full_fence() {
    // SAFETY: SSE2 is part of the x86_64 baseline, so mfence always exists.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_mfence()
    };
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(len: usize) -> (tempfile::NamedTempFile, MappedMemory) {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(len as u64).unwrap();
        let memory = MappedMemory::map(file.as_file(), len).unwrap();
        (file, memory)
    }

    #[test]
    fn streaming_writes_land_byte_exact_at_every_alignment() {
        let (_file, memory) = mapping(1 << 16);
        let (publish, _) = FlushInstruction::detect();
        let source: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
        for offset in [0usize, 1, 7, 15, 16, 33, 63, 64, 100] {
            for len in [0usize, 1, 15, 16, 63, 64, 65, 79, 128, 1000, 4096] {
                memory.write(offset, &vec![0xEE; len + 32]);
                memory.write_streaming(offset, &source[..len], publish);
                store_fence();
                let mut back = vec![0u8; len + 32];
                memory.read(offset, &mut back);
                assert_eq!(&back[..len], &source[..len], "offset {offset} len {len}");
                assert!(
                    back[len..].iter().all(|&b| b == 0xEE),
                    "wrote past the end at offset {offset} len {len}"
                );
            }
        }
    }

    #[test]
    fn bytes_written_to_a_file_from_the_mapping_are_the_mapped_bytes() {
        let (_file, memory) = mapping(1 << 16);
        let source: Vec<u8> = (0..40_000u32).map(|i| (i * 13 + 5) as u8).collect();
        memory.write(777, &source);
        let out = tempfile::tempfile().unwrap();
        memory.write_to_file(777, source.len(), &out, 100).unwrap();
        let mut back = vec![0u8; source.len()];
        std::os::unix::fs::FileExt::read_exact_at(&out, &mut back, 100).unwrap();
        assert_eq!(back, source);
    }

    #[test]
    fn a_framed_write_puts_head_mapping_and_tail_back_to_back_even_with_o_direct() {
        use std::os::unix::fs::OpenOptionsExt;
        let (_file, memory) = mapping(1 << 16);
        let source: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        memory.write(4096, &source);
        let (head_storage, tail_storage) = (vec![0xAAu8; 8192], vec![0xBBu8; 8192]);
        let page = |storage: &[u8]| {
            let start = storage.as_ptr().align_offset(4096);
            start..start + 4096
        };
        let head = &head_storage[page(&head_storage)];
        let tail = &tail_storage[page(&tail_storage)];
        let dir = tempfile::tempdir().unwrap();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.path().join("framed"))
            .unwrap();
        memory
            .write_framed_to_file(head, 4096, source.len(), tail, &out, 8192)
            .unwrap();
        let back = std::fs::read(dir.path().join("framed")).unwrap();
        assert_eq!(back.len(), 8192 + 4096 + 8192 + 4096);
        assert_eq!(&back[8192..12288], head);
        assert_eq!(&back[12288..20480], &source[..]);
        assert_eq!(&back[20480..], tail);
    }

    #[test]
    fn appended_bytes_follow_what_the_vector_held() {
        let (_file, memory) = mapping(1 << 16);
        let source: Vec<u8> = (0..5000u32).map(|i| (i * 11 + 1) as u8).collect();
        memory.write(300, &source);
        let mut out = b"head".to_vec();
        memory.read_append(300, source.len(), &mut out);
        assert_eq!(&out[..4], b"head");
        assert_eq!(&out[4..], &source[..]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn an_append_past_the_mapping_panics_instead_of_reading_memory() {
        let (_file, memory) = mapping(4096);
        memory.read_append(4000, 200, &mut Vec::new());
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn a_file_write_past_the_mapping_panics_instead_of_reading_memory() {
        let (_file, memory) = mapping(4096);
        let out = tempfile::tempfile().unwrap();
        let _ = memory.write_to_file(4000, 200, &out, 0);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn an_access_past_the_mapping_panics_instead_of_touching_memory() {
        let (_file, memory) = mapping(4096);
        memory.write(4090, &[0u8; 16]);
    }
}
