use super::{MappedMemory, MemoryBackend};

/// Cache-coherent memory: every process on one host sees every store, so
/// flush and invalidate compile to nothing. The default for `/dev/shm`.
pub struct Coherent {
    memory: MappedMemory,
}

impl Coherent {
    pub fn new(memory: MappedMemory) -> Self {
        Self { memory }
    }
}

impl MemoryBackend for Coherent {
    fn name(&self) -> &'static str {
        "coherent"
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
    fn flush(&self, _offset: usize, _len: usize) {}
    #[inline]
    fn invalidate(&self, _offset: usize, _len: usize) {}
    #[inline]
    fn store_fence(&self) {
        // Same-host stores are ordered by the Release/Acquire word accesses;
        // a compiler fence keeps body copies before the commit store.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::Release);
    }
    #[inline]
    fn full_fence(&self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}
