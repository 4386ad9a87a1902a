//! The typed accessor: every read and write of the region goes through
//! [`Region`], which encodes the region's rules once.
//!
//! - publish (rule 3): body, flush, fence, commit word, flush, fence;
//! - read (rule 4): invalidate every line, full fence, check the commit word,
//!   then read the body;
//! - single-writer lines (heartbeats, frontiers): write, flush, fence; read
//!   after invalidating.

use std::mem::size_of;

use bytemuck::Pod;

use crate::generation::RegionGeneration;
use crate::layout::{CommitRecord, Frontier, GatewayIndex, GatewayInfo, Heartbeat, Layout, Lease};
use crate::memory::MemoryBackend;

/// One participant's handle on a formatted region.
pub struct Region<B> {
    backend: B,
    layout: Layout,
    cluster_id: [u8; 16],
    /// The superblock's generation when this handle attached or formatted.
    generation: RegionGeneration,
}

impl<B: MemoryBackend> Region<B> {
    pub(crate) fn from_parts(
        backend: B,
        layout: Layout,
        cluster_id: [u8; 16],
        generation: RegionGeneration,
    ) -> Self {
        Self {
            backend,
            layout,
            cluster_id,
            generation,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn cluster_id(&self) -> [u8; 16] {
        self.cluster_id
    }

    /// The generation this handle mapped (see [`RegionGeneration`]).
    pub fn generation(&self) -> RegionGeneration {
        self.generation
    }

    /// The generation the superblock holds now: differs from
    /// [`Region::generation`] once someone formatted this memory again.
    pub fn generation_in_memory(&self) -> RegionGeneration {
        RegionGeneration::from_bytes(self.read_fresh(self.layout.superblock_generation()))
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Publishes a commit record: everything after the commit word first,
    /// then the commit word, each made visible before the next step.
    pub fn publish<T: CommitRecord>(&self, offset: usize, record: &T) {
        let bytes = bytemuck::bytes_of(record);
        self.backend.write(offset + 8, &bytes[8..]);
        self.backend.flush(offset + 8, bytes.len() - 8);
        self.backend.store_fence();
        self.backend.store_u64(offset, record.commit());
        self.backend.flush(offset, 8);
        self.backend.store_fence();
    }

    /// Reads a commit record if its commit word equals `expected`.
    pub fn read_committed<T: CommitRecord>(&self, offset: usize, expected: u64) -> Option<T> {
        let len = size_of::<T>();
        self.backend.invalidate(offset, len);
        self.backend.full_fence();
        if self.backend.load_u64(offset) != expected {
            return None;
        }
        let mut record = T::zeroed();
        self.backend
            .read(offset, bytemuck::bytes_of_mut(&mut record));
        // The slot may have been reused between the two reads only if the
        // reader was too slow for the ring; the copy's own word says so.
        (record.commit() == expected).then_some(record)
    }

    /// Writes a line that only this participant writes and makes it visible.
    pub fn write_line<T: Pod>(&self, offset: usize, value: &T) {
        let bytes = bytemuck::bytes_of(value);
        self.backend.write(offset, bytes);
        self.backend.flush(offset, bytes.len());
        self.backend.store_fence();
    }

    /// Reads what another participant last published at `offset`.
    pub fn read_fresh<T: Pod>(&self, offset: usize) -> T {
        let mut value = T::zeroed();
        self.read_bytes_fresh(offset, bytemuck::bytes_of_mut(&mut value));
        value
    }

    /// Stores one word that only this participant writes and publishes it.
    pub fn store_word(&self, offset: usize, value: u64) {
        self.backend.store_u64(offset, value);
        self.backend.flush(offset, 8);
        self.backend.store_fence();
    }

    /// Loads one word another participant publishes, after invalidating it.
    pub fn load_word_fresh(&self, offset: usize) -> u64 {
        self.backend.invalidate(offset, 8);
        self.backend.full_fence();
        self.backend.load_u64(offset)
    }

    /// Writes payload bytes and starts their write-back; the fence before the
    /// header's commit word completes it.
    pub fn write_payload(&self, offset: usize, bytes: &[u8]) {
        self.backend.write_flushed(offset, bytes);
    }

    /// Appends `len` bytes another participant published to `dst`.
    pub fn read_bytes_fresh_append(&self, offset: usize, len: usize, dst: &mut Vec<u8>) {
        self.backend.invalidate(offset, len);
        self.backend.full_fence();
        self.backend.read_append(offset, len, dst);
    }

    /// Writes `len` bytes into `file` at `file_offset` by the device (an
    /// `O_DIRECT` write is a DMA read of the region): no invalidation, since
    /// a device reads memory, not this CPU's cache. Correct for bytes whose
    /// writer flushed them before publishing (rule 1), which is every
    /// payload; on the simulated backend a writer that skipped its flush
    /// leaves stale bytes in the file.
    pub fn device_write_to_file(
        &self,
        offset: usize,
        len: usize,
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        self.backend.write_to_file(offset, len, file, file_offset)
    }

    /// [`Region::device_write_to_file`] with `head` before the region's
    /// bytes and `tail` after them, in one write where the backend can.
    pub fn device_write_framed_to_file(
        &self,
        head: &[u8],
        offset: usize,
        len: usize,
        tail: &[u8],
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        self.backend
            .write_framed_to_file(head, offset, len, tail, file, file_offset)
    }

    /// Copies bytes another participant published.
    pub fn read_bytes_fresh(&self, offset: usize, dst: &mut [u8]) {
        self.backend.invalidate(offset, dst.len());
        self.backend.full_fence();
        self.backend.read(offset, dst);
    }

    /// Gateway `gateway`'s frontier `which`, as that gateway last published it.
    pub fn frontier(&self, gateway: GatewayIndex, which: Frontier) -> u64 {
        self.load_word_fresh(self.layout.frontier(gateway, which))
    }

    /// Publishes this gateway's frontier `which` (only gateway `gateway`
    /// may call it: one writer per line).
    pub fn set_frontier(&self, gateway: GatewayIndex, which: Frontier, value: u64) {
        self.store_word(self.layout.frontier(gateway, which), value);
    }

    /// Gateway `gateway`'s last heartbeat.
    pub fn heartbeat(&self, gateway: GatewayIndex) -> Heartbeat {
        self.read_fresh(self.layout.heartbeat(gateway))
    }

    /// Publishes gateway `gateway`'s heartbeat (only that gateway calls it).
    pub fn set_heartbeat(&self, gateway: GatewayIndex, heartbeat: &Heartbeat) {
        self.write_line(self.layout.heartbeat(gateway), heartbeat);
    }

    /// Who holds gateway `gateway`'s slot and where clients reach it.
    pub fn gateway_info(&self, gateway: GatewayIndex) -> GatewayInfo {
        self.read_fresh(self.layout.gateway_info(gateway))
    }

    /// Publishes gateway `gateway`'s info line (only that gateway calls it).
    pub fn set_gateway_info(&self, gateway: GatewayIndex, info: &GatewayInfo) {
        self.write_line(self.layout.gateway_info(gateway), info);
    }

    /// The sequencer lease as its holder last wrote it.
    pub fn lease(&self) -> Lease {
        self.read_fresh(self.layout.lease())
    }

    /// Writes the sequencer lease (only the holder, or a successor taking
    /// it over from a dead holder, calls it).
    pub fn set_lease(&self, lease: &Lease) {
        self.write_line(self.layout.lease(), lease);
    }

    /// Ring slots of gateway `gateway` below this were consumed by the
    /// sequencer (ordered or refused).
    pub fn consumed(&self, gateway: GatewayIndex) -> u64 {
        self.load_word_fresh(self.layout.consumed(gateway))
    }
}
