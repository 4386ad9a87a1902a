//! Reading a control record's bytes back, from the region (the tailer's
//! path) or from this gateway's segments (the start's path): one place for
//! the index's offset commits, the security store and the broker configs.

use cxlkafka_log::layout::OrderEntry;
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::read_payload;
use cxlkafka_log::segment::{SegmentFiles, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::control::ControlRecord;

/// The control record an order-log entry carries, or `None` when its bytes
/// are no longer in the region (recycled before this gateway read them: it
/// lagged a whole arena behind) or do not decode.
pub fn control_in_region<B: MemoryBackend>(
    region: &Region<B>,
    entry: &OrderEntry,
) -> Option<ControlRecord> {
    let mut payload = vec![0u8; entry.length as usize];
    read_payload(region, entry.gateway, entry.arena_position, &mut payload).ok()?;
    ControlRecord::decode(&payload).ok()
}

/// The control record of an entry of this gateway's segments, or `None`
/// when it cannot be read or does not decode.
pub fn control_in_segments(files: &SegmentFiles, stored: &StoredEntry) -> Option<ControlRecord> {
    let mut payload = vec![0u8; stored.header.length as usize];
    files.read_payload(stored.location, &mut payload).ok()?;
    ControlRecord::decode(&payload).ok()
}
