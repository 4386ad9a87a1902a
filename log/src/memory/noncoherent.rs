use super::mapped::{self, FlushInstruction};
use super::{MappedMemory, MemoryBackend};

/// Memory that other hosts write without snooping our caches (CXL type-3
/// shared between hosts): publish writes lines back, reads evict first.
///
/// On x86_64 the instructions come from CPUID: `clwb` (else `clflushopt`, else
/// `clflush`) to publish, `clflushopt` (else `clflush`) to invalidate, since
/// `clwb` may leave a stale copy cached. Other architectures have no
/// user-mode line flush in this crate; there the backend issues fences only
/// and logs once that it relies on hardware coherence.
pub struct NonCoherent {
    memory: MappedMemory,
    publish: FlushInstruction,
    invalidate: FlushInstruction,
}

impl NonCoherent {
    pub fn new(memory: MappedMemory) -> Self {
        let (publish, invalidate) = FlushInstruction::detect();
        if publish == FlushInstruction::None {
            tracing::warn!(
                "non-coherent backend on an architecture without cache-line flush support: \
                 fences only, relying on hardware coherence"
            );
        } else {
            tracing::debug!(
                ?publish,
                ?invalidate,
                "non-coherent backend flush instructions"
            );
        }
        Self {
            memory,
            publish,
            invalidate,
        }
    }

    /// The (publish, invalidate) instructions this CPU was given.
    pub fn instructions(&self) -> (FlushInstruction, FlushInstruction) {
        (self.publish, self.invalidate)
    }
}

impl MemoryBackend for NonCoherent {
    fn name(&self) -> &'static str {
        "non-coherent"
    }
    fn len(&self) -> usize {
        self.memory.len()
    }
    #[inline]
    fn read(&self, offset: usize, dst: &mut [u8]) {
        self.memory.read(offset, dst)
    }
    #[inline]
    fn write(&self, offset: usize, src: &[u8]) {
        self.memory.write(offset, src)
    }
    #[inline]
    fn write_flushed(&self, offset: usize, src: &[u8]) {
        if self.publish == FlushInstruction::None {
            self.memory.write(offset, src);
        } else {
            self.memory.write_streaming(offset, src, self.publish);
        }
    }
    fn write_framed_to_file(
        &self,
        head: &[u8],
        offset: usize,
        len: usize,
        tail: &[u8],
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        self.memory
            .write_framed_to_file(head, offset, len, tail, file, file_offset)
    }
    fn write_to_file(
        &self,
        offset: usize,
        len: usize,
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        self.memory.write_to_file(offset, len, file, file_offset)
    }
    #[inline]
    fn read_append(&self, offset: usize, len: usize, dst: &mut Vec<u8>) {
        self.memory.read_append(offset, len, dst)
    }
    #[inline]
    fn load_u64(&self, offset: usize) -> u64 {
        self.memory.load_u64(offset)
    }
    #[inline]
    fn store_u64(&self, offset: usize, value: u64) {
        self.memory.store_u64(offset, value)
    }
    #[inline]
    fn flush(&self, offset: usize, len: usize) {
        self.memory.flush_lines(offset, len, self.publish)
    }
    #[inline]
    fn invalidate(&self, offset: usize, len: usize) {
        self.memory.flush_lines(offset, len, self.invalidate)
    }
    #[inline]
    fn store_fence(&self) {
        mapped::store_fence()
    }
    #[inline]
    fn full_fence(&self) {
        mapped::full_fence()
    }
}
