//! Every structure that lives in the shared region, with its layout.
//!
//! All integers are little-endian (the region is shared between x86_64 hosts;
//! a big-endian build refuses to compile). Each structure is
//! `#[repr(C, align(128))]` or a whole number of lines inside a section that
//! one participant writes, and its size and field offsets are asserted at
//! compile time, so a change to this file that moves a byte fails the build.
//! Changing any of it means bumping [`FORMAT_VERSION`].
//!
//! ```text
//! offset 0            Superblock                          formatter, once
//! gateway_lines       GatewayLines × max_gateways         gateway g
//! sequencer_lines     SequencerLines                      sequencer (lease holder)
//! gateway_views       SequencerView × max_gateways        sequencer
//! sequencer_state     sequencer_state_bytes               sequencer
//! per gateway g:
//!   ring(g)           BatchHeader × ring_slots            gateway g
//!   completions(g)    Completion × ring_slots             sequencer
//!   arena(g)          arena_bytes of batch payloads       gateway g
//! order_log           OrderEntry × order_log_entries      sequencer
//! ```
//!
//! Commit words: a record is valid only when its first word equals the
//! absolute index it was written for. Absolute indices start at 1, so the
//! zeroed memory of a fresh region never looks committed.

use std::mem::{offset_of, size_of};

use bytemuck::{Pod, Zeroable};

#[cfg(not(target_endian = "little"))]
compile_error!("the region format is little-endian");

/// "CXLKAFKA" as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CXLKAFKA");
/// Bumped on every change to this file's structures or section order.
pub const FORMAT_VERSION: u32 = 4;
/// Sections start on page boundaries so device-DAX huge pages and THP map cleanly.
pub const SECTION_ALIGN: u64 = 4096;
pub const SUPERBLOCK_BYTES: u64 = 4096;
/// Largest arena or sequencer state a geometry may declare (256 TiB).
/// With at most 1024 gateways, 2^31 ring slots and [`MAX_ORDER_LOG_ENTRIES`],
/// the whole layout stays below 2^60 bytes, so its arithmetic cannot
/// overflow whatever a superblock read from a region declares.
pub const MAX_SECTION_BYTES: u64 = 1 << 48;
/// Most order-log entries a geometry may declare.
pub const MAX_ORDER_LOG_ENTRIES: u64 = 1 << 40;

/// Per-gateway and sequencer sizes, fixed when the region is formatted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Geometry {
    /// Gateway slots; a gateway's slot is its Kafka node id.
    pub max_gateways: u32,
    /// Batch-header ring slots per gateway (power of two).
    pub ring_slots: u32,
    /// Payload arena bytes per gateway (multiple of 4096).
    pub arena_bytes: u64,
    /// Order-log entries (power of two).
    pub order_log_entries: u64,
    /// Bytes reserved for the sequencer's own state (multiple of 4096).
    pub sequencer_state_bytes: u64,
}

const _: () = assert!(size_of::<Geometry>() == 32);

/// Where each section starts, derived from a [`Geometry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub geometry: Geometry,
    pub gateway_lines: u64,
    pub sequencer_lines: u64,
    pub gateway_views: u64,
    pub sequencer_state: u64,
    pub first_gateway_area: u64,
    pub gateway_area_stride: u64,
    pub order_log: u64,
    pub total_bytes: u64,
}

fn align_up(value: u64) -> u64 {
    value.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

impl Geometry {
    /// The largest arena that fits `region_bytes` with the other sizes fixed.
    pub fn for_region_size(region_bytes: u64, max_gateways: u32) -> Result<Geometry, String> {
        let mut geometry = Geometry {
            max_gateways,
            ring_slots: 4096,
            arena_bytes: 0,
            order_log_entries: 1 << 18,
            sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
        };
        let fixed = geometry.layout_unchecked().total_bytes;
        let per_gateway_fixed = geometry.ring_area_bytes();
        let spare = region_bytes
            .checked_sub(fixed + per_gateway_fixed * u64::from(max_gateways))
            .ok_or_else(|| {
                format!("region of {region_bytes} bytes is too small for {max_gateways} gateways")
            })?;
        geometry.arena_bytes =
            spare / u64::from(max_gateways.max(1)) / SECTION_ALIGN * SECTION_ALIGN;
        geometry.validate()?;
        Ok(geometry)
    }

    /// Checks the sizes that the arithmetic relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_gateways == 0 || self.max_gateways > 1024 {
            return Err(format!(
                "max_gateways {} is not in 1..=1024",
                self.max_gateways
            ));
        }
        if !self.ring_slots.is_power_of_two() || self.ring_slots < 2 {
            return Err(format!(
                "ring_slots {} is not a power of two >= 2",
                self.ring_slots
            ));
        }
        if self.arena_bytes < SECTION_ALIGN || self.arena_bytes % SECTION_ALIGN != 0 {
            return Err(format!(
                "arena_bytes {} is not a positive multiple of 4096",
                self.arena_bytes
            ));
        }
        if !self.order_log_entries.is_power_of_two() || self.order_log_entries < 2 {
            return Err(format!(
                "order_log_entries {} is not a power of two >= 2",
                self.order_log_entries
            ));
        }
        if self.sequencer_state_bytes % SECTION_ALIGN != 0 {
            return Err(format!(
                "sequencer_state_bytes {} is not a multiple of 4096",
                self.sequencer_state_bytes
            ));
        }
        // A region read back from memory may declare any sizes: bound them
        // so that every offset of the layout fits in 64 bits.
        if self.arena_bytes > MAX_SECTION_BYTES || self.sequencer_state_bytes > MAX_SECTION_BYTES {
            return Err(format!(
                "arena_bytes {} or sequencer_state_bytes {} is above {MAX_SECTION_BYTES}",
                self.arena_bytes, self.sequencer_state_bytes
            ));
        }
        if self.order_log_entries > MAX_ORDER_LOG_ENTRIES {
            return Err(format!(
                "order_log_entries {} is above {MAX_ORDER_LOG_ENTRIES}",
                self.order_log_entries
            ));
        }
        Ok(())
    }

    fn ring_area_bytes(&self) -> u64 {
        let slots = u64::from(self.ring_slots);
        align_up(slots * size_of::<BatchHeader>() as u64)
            + align_up(slots * size_of::<Completion>() as u64)
    }

    /// Section offsets; call [`Geometry::validate`] first.
    pub fn layout(&self) -> Result<Layout, String> {
        self.validate()?;
        Ok(self.layout_unchecked())
    }

    fn layout_unchecked(&self) -> Layout {
        let gateways = u64::from(self.max_gateways);
        let gateway_lines = SUPERBLOCK_BYTES;
        let sequencer_lines = align_up(gateway_lines + gateways * size_of::<GatewayLines>() as u64);
        let gateway_views = align_up(sequencer_lines + size_of::<SequencerLines>() as u64);
        let sequencer_state =
            align_up(gateway_views + gateways * size_of::<SequencerView>() as u64);
        let first_gateway_area = align_up(sequencer_state + self.sequencer_state_bytes);
        let gateway_area_stride = self.ring_area_bytes() + self.arena_bytes;
        let order_log = first_gateway_area + gateways * gateway_area_stride;
        let total_bytes =
            align_up(order_log + self.order_log_entries * size_of::<OrderEntry>() as u64);
        Layout {
            geometry: *self,
            gateway_lines,
            sequencer_lines,
            gateway_views,
            sequencer_state,
            first_gateway_area,
            gateway_area_stride,
            order_log,
            total_bytes,
        }
    }
}

/// Index of a gateway slot in the region.
pub type GatewayIndex = u16;

impl Layout {
    fn gateway_area(&self, gateway: GatewayIndex) -> u64 {
        assert!(
            u32::from(gateway) < self.geometry.max_gateways,
            "gateway {gateway} out of range"
        );
        self.first_gateway_area + u64::from(gateway) * self.gateway_area_stride
    }

    pub fn gateway_lines(&self, gateway: GatewayIndex) -> usize {
        assert!(
            u32::from(gateway) < self.geometry.max_gateways,
            "gateway {gateway} out of range"
        );
        (self.gateway_lines + u64::from(gateway) * size_of::<GatewayLines>() as u64) as usize
    }

    pub fn sequencer_view(&self, gateway: GatewayIndex) -> usize {
        assert!(
            u32::from(gateway) < self.geometry.max_gateways,
            "gateway {gateway} out of range"
        );
        (self.gateway_views + u64::from(gateway) * size_of::<SequencerView>() as u64) as usize
    }

    /// Offset of the batch header for absolute slot `slot` of `gateway`'s ring.
    pub fn batch_header(&self, gateway: GatewayIndex, slot: u64) -> usize {
        let position = slot & (u64::from(self.geometry.ring_slots) - 1);
        (self.gateway_area(gateway) + position * size_of::<BatchHeader>() as u64) as usize
    }

    pub fn completion(&self, gateway: GatewayIndex, slot: u64) -> usize {
        let slots = u64::from(self.geometry.ring_slots);
        let position = slot & (slots - 1);
        let base = self.gateway_area(gateway) + align_up(slots * size_of::<BatchHeader>() as u64);
        (base + position * size_of::<Completion>() as u64) as usize
    }

    /// Offset of byte `position % arena_bytes` of `gateway`'s arena.
    pub fn arena(&self, gateway: GatewayIndex) -> usize {
        (self.gateway_area(gateway) + self.geometry.ring_area_bytes()) as usize
    }

    pub fn order_entry(&self, sequence: u64) -> usize {
        let position = sequence & (self.geometry.order_log_entries - 1);
        (self.order_log + position * size_of::<OrderEntry>() as u64) as usize
    }
}

/// One word of a gateway's [`GatewayFrontiers`] line: what a caller names
/// instead of computing the word's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontier {
    /// [`GatewayFrontiers::arena_floor`].
    ArenaFloor,
    /// [`GatewayFrontiers::order_log_applied`].
    OrderLogApplied,
    /// [`GatewayFrontiers::durable`].
    Durable,
    /// [`GatewayFrontiers::recycled_slot`].
    RecycledSlot,
    /// [`GatewayFrontiers::holds_from`].
    HoldsFrom,
}

impl Frontier {
    const fn offset_in_line(self) -> usize {
        match self {
            Frontier::ArenaFloor => offset_of!(GatewayFrontiers, arena_floor),
            Frontier::OrderLogApplied => offset_of!(GatewayFrontiers, order_log_applied),
            Frontier::Durable => offset_of!(GatewayFrontiers, durable),
            Frontier::RecycledSlot => offset_of!(GatewayFrontiers, recycled_slot),
            Frontier::HoldsFrom => offset_of!(GatewayFrontiers, holds_from),
        }
    }
}

/// The single-writer lines every participant reads, by name: the only
/// place outside the structures themselves that knows their offsets.
impl Layout {
    /// Gateway `gateway`'s [`GatewayInfo`] line (written by that gateway).
    pub fn gateway_info(&self, gateway: GatewayIndex) -> usize {
        self.gateway_lines(gateway) + offset_of!(GatewayLines, info)
    }

    /// Gateway `gateway`'s [`Heartbeat`] line (written by that gateway).
    pub fn heartbeat(&self, gateway: GatewayIndex) -> usize {
        self.gateway_lines(gateway) + offset_of!(GatewayLines, heartbeat)
    }

    /// One word of gateway `gateway`'s frontier line (written by that gateway).
    pub fn frontier(&self, gateway: GatewayIndex, frontier: Frontier) -> usize {
        self.gateway_lines(gateway)
            + offset_of!(GatewayLines, frontiers)
            + frontier.offset_in_line()
    }

    /// The sequencer [`Lease`] line (written by the lease holder).
    pub fn lease(&self) -> usize {
        self.sequencer_lines as usize + offset_of!(SequencerLines, lease)
    }

    /// [`SequencerView::consumed`] for gateway `gateway`'s ring (written by
    /// the sequencer).
    pub fn consumed(&self, gateway: GatewayIndex) -> usize {
        self.sequencer_view(gateway) + offset_of!(SequencerView, consumed)
    }

    /// [`Superblock::generation`] (written once, by the formatter).
    pub fn superblock_generation(&self) -> usize {
        offset_of!(Superblock, generation)
    }
}

/// Offset 0: written once by the gateway that formats the region.
///
/// The formatter writes every field with `magic = 0`, flushes and fences, then
/// writes `magic` last: an attacher that sees the magic sees the rest.
///
/// | offset | field | meaning |
/// |---|---|---|
/// | 0 | `magic` | "CXLKAFKA" ([`MAGIC`]), written last |
/// | 8 | `format_version` | [`FORMAT_VERSION`] of the build that formatted it |
/// | 12 | `superblock_bytes` | [`SUPERBLOCK_BYTES`] |
/// | 16 | `cluster_id` | the cluster name, zero-padded to 16 bytes |
/// | 32 | `created_unix_ns` | wall-clock time of the format |
/// | 40 | `region_bytes` | size the region was formatted with |
/// | 48 | `geometry` | [`Geometry`], 32 bytes |
/// | 80 | `generation` | 128 random bits drawn at every format, never zero (since version 3) |
/// | 96 | `crc` | CRC32C of bytes 0..96 |
///
/// The generation tells one formatting of a path from the next: a gateway
/// that mapped generation G and finds another generation at its region's
/// path (or no file at all) is serving a region nobody else sees and must
/// stop (the gateway's `cluster/fence.rs`).
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct Superblock {
    pub magic: u64,
    pub format_version: u32,
    pub superblock_bytes: u32,
    pub cluster_id: [u8; 16],
    pub created_unix_ns: u64,
    pub region_bytes: u64,
    pub geometry: Geometry,
    /// Drawn at random each time a region is formatted; never zero.
    pub generation: [u8; 16],
    /// CRC32C of this structure up to `crc`, computed with the magic set.
    pub crc: u32,
    pub _pad: [u8; 28],
}

const _: () = assert!(size_of::<Superblock>() == 128);
const _: () = assert!(offset_of!(Superblock, magic) == 0);
const _: () = assert!(offset_of!(Superblock, geometry) == 48);
const _: () = assert!(offset_of!(Superblock, generation) == 80);
const _: () = assert!(offset_of!(Superblock, crc) == 96);

impl Superblock {
    pub const CRC_COVERS: usize = offset_of!(Superblock, crc);

    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&bytemuck::bytes_of(self)[..Self::CRC_COVERS])
    }
}

/// Gateway g's own lines (512 bytes), written only by gateway g.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct GatewayLines {
    pub info: GatewayInfo,
    pub heartbeat: Heartbeat,
    pub frontiers: GatewayFrontiers,
}

const _: () = assert!(size_of::<GatewayLines>() == 512);
const _: () = assert!(offset_of!(GatewayLines, heartbeat) == 256);
const _: () = assert!(offset_of!(GatewayLines, frontiers) == 384);

/// Who holds a gateway slot and where clients reach it. Rewritten on join.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct GatewayInfo {
    /// Incremented each time a process takes the slot; 0 = never used.
    pub incarnation: u64,
    pub pid: u32,
    pub advertised_port: u16,
    pub advertised_host_len: u16,
    /// Port on the advertised host where this gateway serves copies of its
    /// segments to peers that lack entries (0: it serves none). Added in
    /// format version 4.
    pub peer_port: u16,
    pub _reserved: [u8; 6],
    pub advertised_host: [u8; 232],
}

const _: () = assert!(size_of::<GatewayInfo>() == 256);
const _: () = assert!(offset_of!(GatewayInfo, peer_port) == 16);
const _: () = assert!(offset_of!(GatewayInfo, advertised_host) == 24);

/// Liveness: a live gateway bumps `beats` several times per lease timeout.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct Heartbeat {
    pub incarnation: u64,
    pub beats: u64,
    pub unix_ns: u64,
    /// 1 while serving, 0 after a clean shutdown.
    pub alive: u64,
    pub _pad: [u8; 96],
}

const _: () = assert!(size_of::<Heartbeat>() == 128);

/// Progress that gateway g reports to the others.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct GatewayFrontiers {
    /// Arena positions below this may already be overwritten; a reader that
    /// copied a payload re-checks it afterwards (seqlock).
    pub arena_floor: u64,
    /// Next order-log sequence this gateway has not applied yet.
    pub order_log_applied: u64,
    /// Next order-log sequence not yet fsynced to this gateway's segments
    /// (every entry below it is on this gateway's disk, or was already gone
    /// from the region when this gateway reached it).
    pub durable: u64,
    /// Ring slots of this gateway below this are released for reuse: the
    /// sequencer consumed them and every live gateway holds them on disk.
    /// 0 = never written (a fresh ring).
    pub recycled_slot: u64,
    /// Lowest order sequence from which this gateway's disk has held every
    /// entry up to its durable frontier (entries retention deleted since
    /// count as held). 0 = not known yet (the gateway is starting): it holds
    /// nothing another gateway may rely on. A gateway that joined late, or
    /// missed entries while paused, has a higher value than its peers.
    pub holds_from: u64,
    pub _pad: [u8; 88],
}

const _: () = assert!(size_of::<GatewayFrontiers>() == 128);
const _: () = assert!(offset_of!(GatewayFrontiers, arena_floor) == 0);

/// The sequencer's global lines: lease and cursors.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct SequencerLines {
    pub lease: Lease,
}

const _: () = assert!(size_of::<SequencerLines>() == 128);

/// Which gateway runs the sequencer. Written by the holder only; a successor
/// writes it, once the holder's heartbeat has stopped, with an epoch above
/// the holder's and above every epoch the successor recorded before (in its
/// data dir): epochs only increase, across a rebuilt region too.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct Lease {
    pub epoch: u64,
    /// Holder gateway slot + 1; 0 = nobody yet.
    pub holder: u64,
    pub holder_incarnation: u64,
    /// Next global sequence the sequencer will assign (starts at 1).
    pub next_sequence: u64,
    pub _pad: [u8; 96],
}

const _: () = assert!(size_of::<Lease>() == 128);

/// What the sequencer tells gateway g about its ring.
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
#[repr(C, align(128))]
pub struct SequencerView {
    /// Every slot below this was consumed (ordered or retired): its header and
    /// ring slot may be reused. Starts at 1.
    pub consumed: u64,
    /// Unused: no slot is ever skipped, so none needs retiring (a restarted
    /// gateway reuses its predecessor's first uncommitted slot). Kept zero.
    pub _reserved: u64,
    /// The incarnation of gateway g this view belongs to.
    pub incarnation: u64,
    pub _pad: [u8; 104],
}

const _: () = assert!(size_of::<SequencerView>() == 128);
const _: () = assert!(offset_of!(SequencerView, consumed) == 0);

/// Topics the catalog can hold.
pub const MAX_TOPICS: u32 = 1024;
/// Partitions one topic can have: stream = topic slot * this + partition.
pub const MAX_PARTITIONS_PER_TOPIC: u32 = 256;
/// Streams (partitions) the region can order.
pub const MAX_STREAMS: u32 = MAX_TOPICS * MAX_PARTITIONS_PER_TOPIC;
/// Checkpoint line, catalog, one next-offset word per stream, then one
/// log-start word per stream.
pub const SEQUENCER_STATE_MIN_BYTES: u64 = {
    let bytes = size_of::<SequencerCheckpoint>() as u64
        + MAX_TOPICS as u64 * size_of::<TopicEntry>() as u64
        + 2 * MAX_STREAMS as u64 * 8;
    bytes.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
};

impl Layout {
    /// True when the sequencer state area holds the catalog and offsets
    /// (tiny test regions of the ring alone leave it out).
    pub fn has_catalog(&self) -> bool {
        self.geometry.sequencer_state_bytes >= SEQUENCER_STATE_MIN_BYTES
    }

    pub fn checkpoint(&self) -> usize {
        self.sequencer_state as usize
    }

    pub fn topic_entry(&self, topic: u32) -> usize {
        assert!(topic < MAX_TOPICS, "topic slot {topic} out of range");
        self.checkpoint()
            + size_of::<SequencerCheckpoint>()
            + topic as usize * size_of::<TopicEntry>()
    }

    /// The next offset of `stream`: its high watermark.
    pub fn stream_next_offset(&self, stream: u32) -> usize {
        assert!(stream < MAX_STREAMS, "stream {stream} out of range");
        self.topic_entry(0) + MAX_TOPICS as usize * size_of::<TopicEntry>() + stream as usize * 8
    }

    /// The first offset of `stream` still readable (DeleteRecords moves it).
    pub fn stream_log_start_offset(&self, stream: u32) -> usize {
        assert!(stream < MAX_STREAMS, "stream {stream} out of range");
        self.stream_next_offset(0) + MAX_STREAMS as usize * 8 + stream as usize * 8
    }
}

/// The sequencer's counters, rewritten after every pass. A successor reads
/// it and replays committed order-log entries past `next_sequence`.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct SequencerCheckpoint {
    /// Next global sequence to assign (starts at 1).
    pub next_sequence: u64,
    /// Next producer id to hand out (starts at 1000).
    pub next_producer_id: u64,
    /// Bumped on every catalog change, so gateways know to reload it.
    pub catalog_version: u64,
    /// First sequence whose order entry this region holds: above 1 when the
    /// region was rebuilt from segments after it was lost (older entries
    /// are on disk only, but for the producer windows kept below it: see
    /// [`OrderEntry`]). 0 = 1.
    pub region_first_sequence: u64,
    pub _pad: [u8; 96],
}

const _: () = assert!(size_of::<SequencerCheckpoint>() == 128);

/// Catalog states of a topic slot.
pub mod topic_state {
    pub const EMPTY: u32 = 0;
    pub const LIVE: u32 = 1;
    pub const DELETED: u32 = 2;
}

/// One topic of the catalog. Written by the sequencer when it orders the
/// control record that creates, changes or deletes the topic.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct TopicEntry {
    /// The global sequence of the control record that last wrote it; 0 = never.
    pub commit: u64,
    pub topic_id: [u8; 16],
    pub state: u32,
    pub partitions: u32,
    pub name_len: u32,
    /// Copies acks=all waits for, the region counted as one.
    pub replication_factor: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// Topic configs beyond retention, as `key=value\n` text.
    pub configs_len: u32,
    pub _pad1: [u8; 4],
    pub name: [u8; 256],
    pub configs: [u8; 192],
}

const _: () = assert!(size_of::<TopicEntry>() == 512);
const _: () = assert!(offset_of!(TopicEntry, commit) == 0);

impl CommitRecord for TopicEntry {
    fn commit(&self) -> u64 {
        self.commit
    }
}

/// Record kinds carried in [`BatchHeader::kind`] and [`OrderEntry::kind`].
pub mod kind {
    /// A batch of records for one stream.
    pub const DATA: u16 = 1;
    /// A control record (metadata, group offsets) applied by every gateway.
    pub const CONTROL: u16 = 2;
}

/// One published batch, in gateway g's ring. Written by gateway g.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct BatchHeader {
    /// = the absolute slot index; written last (rule 3).
    pub commit: u64,
    /// Absolute arena position of the payload (physical = position % arena_bytes).
    pub arena_position: u64,
    pub length: u32,
    pub kind: u16,
    pub flags: u16,
    /// The stream (partition) the batch belongs to.
    pub stream: u32,
    /// Records in the batch: the stream's offsets advance by this much.
    pub record_count: u32,
    pub producer_id: i64,
    pub base_sequence: i32,
    pub producer_epoch: i16,
    pub _pad0: u16,
    pub max_timestamp: i64,
    /// CLOCK_REALTIME at publish, for the ordering-lag metric.
    pub publish_unix_ns: u64,
    /// CRC32C of the payload when the publisher computed one, else 0.
    pub payload_crc: u32,
    pub _pad1: [u8; 60],
}

const _: () = assert!(size_of::<BatchHeader>() == 128);
const _: () = assert!(offset_of!(BatchHeader, commit) == 0);
const _: () = assert!(offset_of!(BatchHeader, payload_crc) == 64);

/// The sequencer's answer for one slot of gateway g. Written by the sequencer.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct Completion {
    /// = the absolute slot index it answers; written last.
    pub commit: u64,
    pub global_sequence: u64,
    pub base_offset: i64,
    pub log_append_unix_ms: i64,
    /// 0 = ordered; otherwise a sequencer error code (see cxlkafka-sequencer).
    pub error: i32,
    pub _pad: [u8; 92],
}

const _: () = assert!(size_of::<Completion>() == 128);
const _: () = assert!(offset_of!(Completion, commit) == 0);

/// One ordered batch in the global order. Written by the sequencer.
///
/// It carries the idempotent producer's identity too, so a successor
/// sequencer rebuilds producer state from the retained order log. A region
/// rebuilt from segments holds, below its `region_first_sequence`, the
/// idempotent batches of the last lap written back from disk for that
/// alone: `gateway` = `GatewayIndex::MAX`, no payload in any arena.
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
#[repr(C, align(128))]
pub struct OrderEntry {
    /// = the global sequence; written last.
    pub commit: u64,
    pub base_offset: i64,
    pub arena_position: u64,
    pub max_timestamp: i64,
    pub log_append_unix_ms: i64,
    pub stream: u32,
    pub record_count: u32,
    pub length: u32,
    pub kind: u16,
    pub gateway: GatewayIndex,
    /// The slot of `gateway`'s ring the batch came from.
    pub slot: u64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    pub base_sequence: i32,
    pub producer_epoch: i16,
    /// For control entries, which control record it was (its encoding tag).
    pub control_tag: u16,
    pub _pad1: [u8; 48],
}

const _: () = assert!(size_of::<OrderEntry>() == 128);
const _: () = assert!(offset_of!(OrderEntry, commit) == 0);

/// A record whose first word is its commit word.
pub trait CommitRecord: Pod {
    fn commit(&self) -> u64;
}

impl CommitRecord for BatchHeader {
    fn commit(&self) -> u64 {
        self.commit
    }
}
impl CommitRecord for Completion {
    fn commit(&self) -> u64 {
        self.commit
    }
}
impl CommitRecord for OrderEntry {
    fn commit(&self) -> u64 {
        self.commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_do_not_overlap_and_are_page_aligned() {
        let geometry = Geometry::for_region_size(1 << 30, 8).unwrap();
        let layout = geometry.layout().unwrap();
        let starts = [
            layout.gateway_lines,
            layout.sequencer_lines,
            layout.gateway_views,
            layout.sequencer_state,
            layout.first_gateway_area,
            layout.order_log,
        ];
        assert!(starts.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(starts.iter().all(|start| start % SECTION_ALIGN == 0));
        assert!(layout.total_bytes <= 1 << 30);
        assert_eq!(layout.arena(0) as u64 % SECTION_ALIGN, 0);
        let last_arena_end = layout.arena(7) as u64 + geometry.arena_bytes;
        assert_eq!(last_arena_end, layout.order_log);
    }

    #[test]
    fn a_too_small_region_is_refused() {
        assert!(Geometry::for_region_size(1 << 20, 8).is_err());
    }

    #[test]
    fn sizes_whose_layout_would_overflow_are_refused() {
        let largest = Geometry {
            max_gateways: 1024,
            ring_slots: 1 << 31,
            arena_bytes: MAX_SECTION_BYTES,
            order_log_entries: MAX_ORDER_LOG_ENTRIES,
            sequencer_state_bytes: MAX_SECTION_BYTES,
        };
        let layout = largest.layout().expect("the largest geometry lays out");
        assert!(layout.total_bytes < 1 << 60);
        for too_large in [
            Geometry {
                arena_bytes: MAX_SECTION_BYTES + SECTION_ALIGN,
                ..largest
            },
            Geometry {
                sequencer_state_bytes: u64::MAX - (SECTION_ALIGN - 1),
                ..largest
            },
            Geometry {
                order_log_entries: 1 << 63,
                ..largest
            },
        ] {
            assert!(too_large.layout().is_err(), "{too_large:?}");
        }
    }
}
