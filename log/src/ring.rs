//! A gateway's batch ring: the writer side ([`RingWriter`], owned by the
//! gateway) and the reader side ([`RingReader`], owned by the sequencer).
//!
//! The writer reserves arena space, copies the payload once, publishes the
//! header with its commit word last, and reuses ring slots and arena bytes
//! only after the reader's consumed frontier has passed them. The reader
//! accepts a slot only when its commit word equals the absolute slot index,
//! which also tells a stale slot from the previous lap apart (no ABA).

use std::collections::VecDeque;

use crate::accessor::Region;
use crate::arena::{ArenaAllocator, ArenaError};
use crate::layout::{BatchHeader, Frontier, GatewayIndex};
use crate::memory::MemoryBackend;
use crate::segment::{PayloadSource, RunWriteError};

/// Why a batch was not published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("every ring slot is waiting for the sequencer")]
    RingFull,
    #[error(transparent)]
    Arena(#[from] ArenaError),
}

/// Why a payload could not be copied out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("header describes {length} bytes at {position}, outside an arena of {size}")]
    OutOfBounds {
        position: u64,
        length: u64,
        size: u64,
    },
    #[error("arena bytes at {position} were recycled (floor {floor})")]
    Recycled { position: u64, floor: u64 },
}

fn arena_floor_offset<B: MemoryBackend>(region: &Region<B>, gateway: GatewayIndex) -> usize {
    region.layout().frontier(gateway, Frontier::ArenaFloor)
}

/// The publishing side of one gateway's ring. Not shared between processes:
/// one gateway process owns it (behind a mutex if several tasks publish).
pub struct RingWriter {
    gateway: GatewayIndex,
    ring_slots: u64,
    next_slot: u64,
    consumed: u64,
    arena: ArenaAllocator,
    /// (slot, arena end) of every published batch not yet released.
    in_flight: VecDeque<(u64, u64)>,
    /// When set, slots at or above it stay held even once consumed: the
    /// disk tier has not copied them everywhere yet.
    recycle_limit: Option<u64>,
}

impl RingWriter {
    /// A writer for a freshly formatted ring: first slot 1, arena position 0.
    pub fn new<B: MemoryBackend>(region: &Region<B>, gateway: GatewayIndex) -> Self {
        let geometry = region.layout().geometry;
        Self {
            gateway,
            ring_slots: u64::from(geometry.ring_slots),
            next_slot: 1,
            consumed: 1,
            arena: ArenaAllocator::new(geometry.arena_bytes, 0),
            in_flight: VecDeque::new(),
            recycle_limit: None,
        }
    }

    /// A writer for a gateway slot a previous process held: it continues
    /// after the last slot that process committed, keeps the arena bytes of
    /// its batches the sequencer has not consumed yet (they are still
    /// ordered), and never moves an arena position backwards.
    pub fn resume<B: MemoryBackend>(region: &Region<B>, gateway: GatewayIndex) -> Self {
        let layout = region.layout();
        let geometry = layout.geometry;
        let consumed = region.consumed(gateway).max(1);
        // Slots the sequencer consumed but the disk tier had not released
        // are still held: their bytes may not be on every disk yet.
        let recycled = region.frontier(gateway, Frontier::RecycledSlot);
        let consumed = if recycled > 0 {
            consumed.min(recycled)
        } else {
            consumed
        };
        let header_at = |slot: u64| {
            region.read_committed::<BatchHeader>(layout.batch_header(gateway, slot), slot)
        };
        let mut head = if consumed > 1 {
            header_at(consumed - 1)
                .map_or(0, |header| header.arena_position + u64::from(header.length))
        } else {
            0
        };
        head = head.max(region.frontier(gateway, Frontier::ArenaFloor));
        let mut released = head;
        let mut in_flight = VecDeque::new();
        let mut slot = consumed;
        while slot - consumed < u64::from(geometry.ring_slots) {
            let Some(header) = header_at(slot) else { break };
            let end = header.arena_position + u64::from(header.length);
            if in_flight.is_empty() {
                released = released.min(header.arena_position);
            }
            in_flight.push_back((slot, end));
            head = head.max(end);
            slot += 1;
        }
        Self {
            gateway,
            ring_slots: u64::from(geometry.ring_slots),
            next_slot: slot,
            consumed,
            arena: ArenaAllocator::resume(geometry.arena_bytes, released.min(head), head),
            in_flight,
            recycle_limit: None,
        }
    }

    pub fn gateway(&self) -> GatewayIndex {
        self.gateway
    }

    /// The absolute slot the next batch will take.
    pub fn next_slot(&self) -> u64 {
        self.next_slot
    }

    /// Arena bytes reserved and not yet released.
    pub fn arena_used(&self) -> u64 {
        self.arena.used()
    }

    /// Holds every slot at or above `slot` even once consumed (the disk
    /// tier's gate); the limit only moves forward.
    pub fn set_recycle_limit(&mut self, slot: u64) {
        self.recycle_limit = Some(self.recycle_limit.map_or(slot, |limit| limit.max(slot)));
    }

    /// Reads the consumer frontier and releases what it (and the recycle
    /// limit, when set) has passed.
    pub fn refresh_consumed<B: MemoryBackend>(&mut self, region: &Region<B>) -> u64 {
        let consumed = region.consumed(self.gateway);
        assert!(
            consumed <= self.next_slot,
            "consumer frontier {consumed} is past the last published slot {}",
            self.next_slot - 1
        );
        let consumed = self
            .recycle_limit
            .map_or(consumed, |limit| consumed.min(limit));
        // Never move backwards: a stale frontier read changes nothing.
        self.consumed = self.consumed.max(consumed);
        while let Some(&(slot, arena_end)) = self.in_flight.front() {
            if slot >= self.consumed {
                break;
            }
            self.arena.release(arena_end);
            self.in_flight.pop_front();
        }
        self.consumed
    }

    /// Publishes `payload` with `header`'s descriptive fields and returns the
    /// absolute slot. `commit`, `arena_position` and `length` are filled in
    /// here; `payload_crc` is the caller's (0 when the payload carries its
    /// own checksum, as Kafka batches do).
    pub fn publish<B: MemoryBackend>(
        &mut self,
        region: &Region<B>,
        mut header: BatchHeader,
        payload: &[u8],
    ) -> Result<u64, PublishError> {
        let length = payload.len() as u64;
        if self.next_slot - self.consumed >= self.ring_slots {
            self.refresh_consumed(region);
            if self.next_slot - self.consumed >= self.ring_slots {
                return Err(PublishError::RingFull);
            }
        }
        let position = match self.arena.reserve(length) {
            Ok(position) => position,
            Err(ArenaError::Full { .. }) => {
                self.refresh_consumed(region);
                self.arena.reserve(length)?
            }
            Err(error) => return Err(error.into()),
        };
        // Readers copying old payloads re-check the floor after copying, so it
        // must move before the bytes below it are overwritten.
        let floor_offset = arena_floor_offset(region, self.gateway);
        if self.arena.floor() > 0 {
            region.store_word(floor_offset, self.arena.floor());
        }
        let arena_offset =
            region.layout().arena(self.gateway) + self.arena.physical(position) as usize;
        region.write_payload(arena_offset, payload);

        let slot = self.next_slot;
        header.commit = slot;
        header.arena_position = position;
        header.length = payload.len() as u32;
        region.publish(region.layout().batch_header(self.gateway, slot), &header);
        self.in_flight.push_back((slot, position + length));
        self.next_slot += 1;
        Ok(slot)
    }
}

/// The consuming side of one gateway's ring.
pub struct RingReader {
    gateway: GatewayIndex,
    next_slot: u64,
}

impl RingReader {
    /// A reader that expects slot `next_slot` next (1 for a fresh ring).
    pub fn new(gateway: GatewayIndex, next_slot: u64) -> Self {
        Self { gateway, next_slot }
    }

    pub fn gateway(&self) -> GatewayIndex {
        self.gateway
    }

    pub fn next_slot(&self) -> u64 {
        self.next_slot
    }

    /// The next header if the writer has committed it; advances past it.
    pub fn poll<B: MemoryBackend>(&mut self, region: &Region<B>) -> Option<BatchHeader> {
        let offset = region.layout().batch_header(self.gateway, self.next_slot);
        let header = region.read_committed::<BatchHeader>(offset, self.next_slot)?;
        self.next_slot += 1;
        Some(header)
    }

    /// Publishes that every slot below `next_slot` is consumed, so the writer
    /// may reuse those slots and their arena bytes.
    pub fn release<B: MemoryBackend>(&self, region: &Region<B>) {
        region.store_word(region.layout().consumed(self.gateway), self.next_slot);
    }
}

/// Copies the payload at `position` out of `gateway`'s arena into `dst`
/// (whose length is the payload's), checking that the writer did not recycle
/// the bytes during the copy (seqlock). Any reader may call it: the
/// sequencer, a replica, a fetch.
pub fn read_payload<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    position: u64,
    dst: &mut [u8],
) -> Result<(), PayloadError> {
    let length = dst.len() as u64;
    with_payload(region, gateway, position, length, |offset| {
        region.read_bytes_fresh(offset, dst);
        Ok::<(), PayloadError>(())
    })
}

/// Appends the `length`-byte payload at `position` of `gateway`'s arena to
/// `dst`, as [`read_payload`] copies it; on an error `dst` is as it was.
pub fn read_payload_append<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    position: u64,
    length: u64,
    dst: &mut Vec<u8>,
) -> Result<(), PayloadError> {
    let start = dst.len();
    let copied = with_payload(region, gateway, position, length, |offset| {
        region.read_bytes_fresh_append(offset, length as usize, dst);
        Ok::<(), PayloadError>(())
    });
    if copied.is_err() {
        dst.truncate(start);
    }
    copied
}

/// Why a payload could not be written to a file.
#[derive(Debug, thiserror::Error)]
pub enum PayloadWriteError {
    #[error(transparent)]
    Unavailable(#[from] PayloadError),
    #[error("cannot write the payload: {0}")]
    Io(#[from] std::io::Error),
}

/// Gateway `gateway`'s arena as the disk tier's payload source: small
/// copies by the CPU (invalidated first), and aligned runs written to a file
/// by the device straight from the mapping. Every access re-checks the
/// arena floor after it, so bytes recycled meanwhile are reported, never
/// passed off as the payload.
pub struct ArenaPayloads<'a, B: MemoryBackend> {
    region: &'a Region<B>,
    gateway: GatewayIndex,
}

impl<'a, B: MemoryBackend> ArenaPayloads<'a, B> {
    pub fn new(region: &'a Region<B>, gateway: GatewayIndex) -> Self {
        Self { region, gateway }
    }
}

impl<B: MemoryBackend> PayloadSource for ArenaPayloads<'_, B> {
    type Error = PayloadWriteError;

    fn copy(&mut self, position: u64, dst: &mut [u8]) -> Result<(), PayloadWriteError> {
        Ok(read_payload(self.region, self.gateway, position, dst)?)
    }

    fn write_to(
        &mut self,
        head: &[u8],
        position: u64,
        len: u64,
        tail: &[u8],
        file: &std::fs::File,
        file_offset: u64,
    ) -> Result<(), RunWriteError<PayloadWriteError>> {
        // A run of batches back to back may pass the arena's end (the next
        // batch starts again at 0): write each side from where it lives.
        // The arena's size is a whole number of pages, so both stay aligned.
        let size = self.region.layout().geometry.arena_bytes;
        let first = len.min(size - position % size);
        let pieces = [
            (
                head,
                position,
                first,
                if first == len { tail } else { &[][..] },
            ),
            (&[][..], position + first, len - first, tail),
        ];
        let mut at = file_offset;
        for (index, (head, position, len, tail)) in pieces.into_iter().enumerate() {
            if index == 1 && len == 0 {
                break;
            }
            let written = with_payload(self.region, self.gateway, position, len, |offset| {
                self.region
                    .device_write_framed_to_file(head, offset, len as usize, tail, file, at)
                    .map_err(PayloadWriteError::Io)
            });
            match written {
                Ok(()) => {}
                Err(PayloadWriteError::Io(error)) => return Err(RunWriteError::Io(error)),
                Err(unavailable) => return Err(RunWriteError::Source(unavailable)),
            }
            at += head.len() as u64 + len;
        }
        Ok(())
    }
}

/// Runs `copy` on the region offset of the payload at `position` if it is
/// inside the arena and not recycled, before and after the copy (seqlock).
fn with_payload<B: MemoryBackend, E: From<PayloadError>>(
    region: &Region<B>,
    gateway: GatewayIndex,
    position: u64,
    length: u64,
    copy: impl FnOnce(usize) -> Result<(), E>,
) -> Result<(), E> {
    let size = region.layout().geometry.arena_bytes;
    let physical = position % size;
    if length > size || physical + length > size {
        return Err(PayloadError::OutOfBounds {
            position,
            length,
            size,
        }
        .into());
    }
    let floor_offset = arena_floor_offset(region, gateway);
    let floor = region.load_word_fresh(floor_offset);
    if position < floor {
        return Err(PayloadError::Recycled { position, floor }.into());
    }
    copy(region.layout().arena(gateway) + physical as usize)?;
    let floor = region.load_word_fresh(floor_offset);
    if position < floor {
        return Err(PayloadError::Recycled { position, floor }.into());
    }
    Ok(())
}
