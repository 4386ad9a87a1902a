//! Validation of Kafka v2 record batches as bytes.
//!
//! A Produce request carries, per partition, a record set: record batches
//! laid end to end. The gateway stores batches exactly as the client encoded
//! them, so it checks them without decompressing or decoding a single record:
//! the 61-byte header, the declared length against the bytes present, the
//! magic byte, the CRC32C, and the header fields a broker must trust (record
//! count, offsets, producer id/epoch/sequence, timestamps, attributes). The
//! typed [`BatchError`] maps to the Kafka error code a Kafka broker answers
//! for the same input ([`BatchError::error`]), in this one place.
//!
//! ```text
//! offset  size  field                 covered by CRC
//!      0     8  base offset           no   (the broker rewrites it)
//!      8     4  batch length          no   (bytes after this field)
//!     12     4  partition leader epoch no  (the broker rewrites it)
//!     16     1  magic (2)             no
//!     17     4  CRC32C                -
//!     21     2  attributes            yes  (bits 0-2 codec, 3 timestamp type,
//!                                           4 transactional, 5 control)
//!     23     4  last offset delta     yes
//!     27     8  first timestamp       yes
//!     35     8  max timestamp         yes
//!     43     8  producer id           yes
//!     51     2  producer epoch        yes
//!     53     4  base sequence         yes
//!     57     4  record count          yes
//!     61     -  records (maybe compressed)  yes
//! ```
//!
//! # What Kafka answers, and where we differ
//!
//! Worked out from Kafka's `ByteBufferLogInputStream`, `ProduceRequest.validateRecords`,
//! `UnifiedLog.analyzeAndValidateRecords` and `LogValidator` (Kafka 3.x/4.x):
//!
//! | input | Kafka | here |
//! |---|---|---|
//! | batch length below 14 | CORRUPT_MESSAGE (2) | same |
//! | magic below 0 or above 2 | CORRUPT_MESSAGE (2) | same |
//! | magic 0 or 1 in Produce v3+ | INVALID_RECORD (87) | same |
//! | no complete batch (empty, or the only batch truncated) | INVALID_RECORD (87) | same |
//! | more than one batch in a partition | INVALID_RECORD (87) | same |
//! | bytes after the batch too short to be a batch | silently trimmed | CORRUPT_MESSAGE (2) |
//! | base offset not 0 | INVALID_RECORD (87) | same |
//! | batch (with its 12-byte log overhead) above `message.max.bytes` | MESSAGE_TOO_LARGE (10) | same |
//! | magic 2 but shorter than the 61-byte header, or CRC mismatch | CORRUPT_MESSAGE (2) | same |
//! | unknown compression codec (5-7) | UNKNOWN_SERVER_ERROR (-1), an unchecked exception | CORRUPT_MESSAGE (2) |
//! | ZSTD in Produce below v7 | UNSUPPORTED_COMPRESSION_TYPE (76) | same |
//! | record count not above 0, or not last offset delta + 1 | INVALID_RECORD (87) | same |
//! | control batch from a client | INVALID_RECORD (87) | same |
//! | producer id set but base sequence negative | INVALID_RECORD (87) | same |
//! | a record without a key, topic compacted | INVALID_RECORD (87), one record error per keyless record | same ([`record_errors`]) |
//! | a CreateTime timestamp outside `message.timestamp.before.max.ms`/`after.max.ms` | INVALID_TIMESTAMP (32), one record error per such record | same ([`record_errors`]) |
//! | a batch from a client marked LogAppendTime | INVALID_TIMESTAMP (32), one record error per record | same (the produce handler) |
//!
//! UNSUPPORTED_FOR_MESSAGE_FORMAT (43) is what Kafka answers when idempotent
//! or transactional batches meet a topic whose `message.format.version` is
//! below 2; Kafka 4 removed that setting, and magic 0/1 batches themselves
//! are INVALID_RECORD, so this module never returns 43. Produce v0-2 (the
//! only versions allowed to carry magic 0/1) are refused by version before
//! any record is looked at.
//!
//! The timestamp checks compare records with the broker's clock under the
//! topic's configs, so the produce handler asks for them
//! ([`record_errors`]); for a LogAppendTime topic it stamps each batch
//! ([`stamp_log_append_time`]) instead.

use bytes::Buf;
use kafka_protocol::records::{Compression, TimestampType};
use kafka_protocol::ResponseError;
use thiserror::Error;

/// Bytes before the batch length field's end: base offset and length. The
/// length counts the bytes after it, so a batch is `LOG_OVERHEAD + length`.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, records excluded.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only record batch format the gateway stores.
pub const MAGIC_V2: i8 = 2;

/// Offset of the magic byte.
const MAGIC_OFFSET: usize = 16;
/// Bytes up to and including the magic byte.
const HEADER_LEN_UP_TO_MAGIC: usize = MAGIC_OFFSET + 1;
/// Offset of the partition leader epoch.
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Where the CRC-covered bytes begin (the attributes).
const CRC_START: usize = 21;
/// Kafka's `LegacyRecord.RECORD_OVERHEAD_V0`: the smallest length any
/// format allows, checked before the magic byte is even read.
const MIN_LENGTH_ANY_MAGIC: i32 = 14;
/// The smallest record a v2 batch can hold: length, attributes, timestamp
/// delta, offset delta, key length, value length and header count are each
/// at least one byte.
const MIN_RECORD_LEN: usize = 7;

const CODEC_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// First Produce version allowed to carry ZSTD batches (KIP-110).
const FIRST_PRODUCE_VERSION_WITH_ZSTD: i16 = 7;

/// The header of one v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Size of the whole batch in bytes, log overhead included.
    pub size: usize,
    /// Offset of the first record (0 from producers; rewritten on fetch).
    pub base_offset: i64,
    /// Leader epoch stamped by the broker that appended the batch.
    pub partition_leader_epoch: i32,
    /// The stored CRC32C, which the validation checked.
    pub crc: u32,
    /// The raw attributes field.
    pub attributes: i16,
    /// Codec of the records section.
    pub compression: Compression,
    /// Whether timestamps are create or log-append times.
    pub timestamp_type: TimestampType,
    /// Part of a transaction.
    pub transactional: bool,
    /// Holds control records (transaction markers), never from clients.
    pub control: bool,
    /// Offset of the last record relative to the base offset.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (-1 if none).
    pub first_timestamp: i64,
    /// Largest record timestamp (-1 if none).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 when not idempotent.
    pub producer_id: i64,
    /// Producer epoch, -1 when not idempotent.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 when not idempotent.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchInfo {
    /// Whether an idempotent (or transactional) producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Offset of the last record, given the batch's base offset.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

/// Why a record set was refused. [`BatchError::error`] gives the Kafka error
/// code for the partition's response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The partition carried no record batch at all.
    #[error("the record set holds no record batch")]
    Empty,
    /// The first batch declares more bytes than are present (Kafka's reader
    /// then finds no batch).
    #[error("the record batch needs {needed} bytes but only {available} are present")]
    Truncated {
        /// Bytes the batch header or length field calls for.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// Bytes after the last complete batch that do not form a batch.
    #[error("{len} trailing bytes at position {position} do not form a record batch")]
    TrailingBytes {
        /// Where the trailing bytes begin.
        position: usize,
        /// How many there are.
        len: usize,
    },
    /// The length field is below what any batch format allows.
    #[error("record batch length {length} is below the minimum of {minimum}")]
    LengthTooSmall {
        /// The declared length.
        length: i32,
        /// The minimum for the batch's format.
        minimum: i32,
    },
    /// A magic byte no Kafka format uses.
    #[error("invalid record batch magic {magic}")]
    InvalidMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// A pre-0.11 message set (magic 0 or 1), which Produce v3+ cannot carry.
    #[error("record batches with magic {magic} are not accepted; produce magic 2")]
    LegacyMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The stored CRC32C does not match the bytes.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// Compression codec bits 5, 6 or 7.
    #[error("unknown compression codec {codec}")]
    UnknownCompression {
        /// The codec bits.
        codec: u8,
    },
    /// ZSTD in a Produce request older than v7.
    #[error("ZSTD-compressed batches need Produce v7 or later, got v{produce_version}")]
    ZstdRequiresNewerProduce {
        /// The request's version.
        produce_version: i16,
    },
    /// Record count, last offset delta and size disagree.
    #[error(
        "record count {record_count} is inconsistent with last offset delta {last_offset_delta}"
    )]
    InconsistentRecordCount {
        /// Declared records.
        record_count: i32,
        /// Declared last offset delta.
        last_offset_delta: i32,
    },
    /// More than one batch for one partition of a Produce request.
    #[error("a produce request may carry exactly one record batch per partition")]
    MultipleBatches,
    /// A producer set the base offset, which only brokers assign.
    #[error("the base offset of a produced batch must be 0, got {base_offset}")]
    NonZeroBaseOffset {
        /// The base offset found.
        base_offset: i64,
    },
    /// The batch exceeds `message.max.bytes`.
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Batch size with log overhead.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A client sent control records (only brokers write transaction markers).
    #[error("clients may not write control batches")]
    ControlBatch,
    /// An idempotent batch without a sequence number.
    #[error("producer {producer_id} sent base sequence {base_sequence}")]
    InvalidSequence {
        /// The producer id.
        producer_id: i64,
        /// The negative base sequence.
        base_sequence: i32,
    },
    /// The records section does not decode (or decompress); only looked at
    /// where records must be read (keys on a compacted topic).
    #[error("the records do not decode: {reason}")]
    UndecodableRecords {
        /// The decoder's complaint.
        reason: String,
    },
}

impl BatchError {
    /// The Kafka error a Kafka broker answers for this input (see the module
    /// documentation for the derivation and the two deliberate differences).
    pub fn error(&self) -> ResponseError {
        match self {
            BatchError::TrailingBytes { .. }
            | BatchError::LengthTooSmall { .. }
            | BatchError::InvalidMagic { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::UnknownCompression { .. }
            | BatchError::UndecodableRecords { .. } => ResponseError::CorruptMessage,
            BatchError::Empty
            | BatchError::Truncated { .. }
            | BatchError::LegacyMagic { .. }
            | BatchError::InconsistentRecordCount { .. }
            | BatchError::MultipleBatches
            | BatchError::NonZeroBaseOffset { .. }
            | BatchError::ControlBatch
            | BatchError::InvalidSequence { .. } => ResponseError::InvalidRecord,
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
            BatchError::ZstdRequiresNewerProduce { .. } => {
                ResponseError::UnsupportedCompressionType
            }
        }
    }

    /// The numeric Kafka error code.
    pub fn code(&self) -> i16 {
        self.error().code()
    }
}

/// Structural problems found before the header is fully read. Kept apart
/// from [`BatchError`] because whether "truncated" means "no batch" or
/// "trailing garbage" depends on where it happens.
enum Framing {
    Truncated { needed: usize, available: usize },
    Invalid(BatchError),
}

/// Reads a big-endian `i32` at `at`, if the bytes are there.
fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes(field.try_into().ok()?))
}

/// Finds the extent of the batch at the start of `bytes`, following the
/// order of Kafka's `ByteBufferLogInputStream` so that the first problem
/// found is the one Kafka would report. Returns the batch's bytes and magic.
fn frame_batch(bytes: &[u8]) -> Result<(&[u8], i8), Framing> {
    let available = bytes.len();
    let length = i32_at(bytes, 8).ok_or(Framing::Truncated {
        needed: LOG_OVERHEAD,
        available,
    })?;
    if length < MIN_LENGTH_ANY_MAGIC {
        return Err(Framing::Invalid(BatchError::LengthTooSmall {
            length,
            minimum: MIN_LENGTH_ANY_MAGIC,
        }));
    }
    let magic = match bytes.get(MAGIC_OFFSET) {
        Some(&byte) => i8::from_be_bytes([byte]),
        None => {
            return Err(Framing::Truncated {
                needed: HEADER_LEN_UP_TO_MAGIC,
                available,
            })
        }
    };
    if !(0..=MAGIC_V2).contains(&magic) {
        return Err(Framing::Invalid(BatchError::InvalidMagic { magic }));
    }
    // `length` is at least 14 here, so the conversion cannot fail on any
    // platform with 32-bit or wider `usize`.
    let size = usize::try_from(length)
        .map_err(|_| Framing::Invalid(BatchError::LengthTooSmall { length, minimum: 0 }))?
        .saturating_add(LOG_OVERHEAD);
    let batch = bytes.get(..size).ok_or(Framing::Truncated {
        needed: size,
        available,
    })?;
    Ok((batch, magic))
}

/// The header fields as stored, before the attributes are interpreted.
struct RawHeader {
    base_offset: i64,
    partition_leader_epoch: i32,
    crc: u32,
    attributes: i16,
    last_offset_delta: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
}

impl RawHeader {
    /// Reads the header of a complete batch of `size` bytes.
    fn read(batch: &[u8], size: usize) -> Result<Self, BatchError> {
        let header: &[u8; BATCH_HEADER_LEN] = batch
            .get(..BATCH_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(BatchError::LengthTooSmall {
                length: i32::try_from(size.saturating_sub(LOG_OVERHEAD)).unwrap_or(i32::MAX),
                minimum: (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32,
            })?;
        // Sequential reads over a fixed 61-byte array: every read is in bounds.
        let mut cur = &header[..];
        let base_offset = cur.get_i64();
        let _length = cur.get_i32();
        let partition_leader_epoch = cur.get_i32();
        let _magic = cur.get_i8();
        let raw = RawHeader {
            base_offset,
            partition_leader_epoch,
            crc: cur.get_u32(),
            attributes: cur.get_i16(),
            last_offset_delta: cur.get_i32(),
            first_timestamp: cur.get_i64(),
            max_timestamp: cur.get_i64(),
            producer_id: cur.get_i64(),
            producer_epoch: cur.get_i16(),
            base_sequence: cur.get_i32(),
            record_count: cur.get_i32(),
        };
        debug_assert!(cur.is_empty(), "the header layout covers all 61 bytes");
        Ok(raw)
    }

    /// The codec bits (0-7).
    fn codec(&self) -> i16 {
        self.attributes & CODEC_MASK
    }

    /// Interprets the attributes; run after the CRC check, so that a
    /// corrupted attributes field reports as the corruption it is.
    fn into_info(self, size: usize) -> Result<BatchInfo, BatchError> {
        let compression = match self.codec() {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            // Masked to three bits, so the cast keeps the value.
            other => return Err(BatchError::UnknownCompression { codec: other as u8 }),
        };
        let timestamp_type = if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppend
        } else {
            TimestampType::Creation
        };
        Ok(BatchInfo {
            size,
            base_offset: self.base_offset,
            partition_leader_epoch: self.partition_leader_epoch,
            crc: self.crc,
            attributes: self.attributes,
            compression,
            timestamp_type,
            transactional: self.attributes & TRANSACTIONAL_BIT != 0,
            control: self.attributes & CONTROL_BIT != 0,
            last_offset_delta: self.last_offset_delta,
            first_timestamp: self.first_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: self.record_count,
        })
    }
}

/// Bytes of a batch up to where its CRC coverage starts: enough to know
/// the whole batch's CRC32C through [`stored_batch_crc32c`].
pub const BATCH_PREFIX_BEFORE_CRC_COVERAGE: usize = CRC_START;

/// The CRC32C of a whole stored `length`-byte batch (every byte, the base
/// offset included), from its first [`BATCH_PREFIX_BEFORE_CRC_COVERAGE`]
/// bytes: the rest is covered by the batch's own CRC field, which the
/// gateway checked before storing it. `None` when `prefix` does not start
/// a single v2 batch of exactly `length` bytes.
pub fn stored_batch_crc32c(prefix: &[u8], length: usize) -> Option<u32> {
    let prefix = prefix.get(..CRC_START)?;
    let batch_length = i32::from_be_bytes(prefix[8..12].try_into().ok()?);
    let framed = usize::try_from(batch_length)
        .ok()?
        .checked_add(LOG_OVERHEAD)?;
    if framed != length || length < BATCH_HEADER_LEN || prefix[MAGIC_OFFSET] as i8 != MAGIC_V2 {
        return None;
    }
    let covered_crc = u32::from_be_bytes(prefix[17..CRC_START].try_into().ok()?);
    Some(cxlkafka_log::crc::crc32c_combine(
        crc32c::crc32c(prefix),
        covered_crc,
        (length - CRC_START) as u64,
    ))
}

/// Checks the CRC32C of a complete batch against its header.
fn check_crc(batch: &[u8], stored: u32) -> Result<(), BatchError> {
    let covered = batch.get(CRC_START..).unwrap_or_default();
    let computed = crc32c::crc32c(covered);
    if computed == stored {
        Ok(())
    } else {
        Err(BatchError::CrcMismatch { stored, computed })
    }
}

/// Count checks any stored batch passes: a non-negative count, never more
/// records than offsets (compaction may leave fewer), and, when uncompressed,
/// never more records than the bytes could hold.
fn check_count_plausible(info: &BatchInfo) -> Result<(), BatchError> {
    let inconsistent = || BatchError::InconsistentRecordCount {
        record_count: info.record_count,
        last_offset_delta: info.last_offset_delta,
    };
    let count = usize::try_from(info.record_count).map_err(|_| inconsistent())?;
    if info.last_offset_delta < 0
        || i64::from(info.record_count) > i64::from(info.last_offset_delta) + 1
    {
        return Err(inconsistent());
    }
    let records_len = info.size.saturating_sub(BATCH_HEADER_LEN);
    if info.compression == Compression::None && count.saturating_mul(MIN_RECORD_LEN) > records_len {
        return Err(inconsistent());
    }
    Ok(())
}

/// Validates the complete v2 batch at the start of `bytes` (more bytes may
/// follow it): extent, magic, header, CRC and record-count plausibility.
/// `info.size` tells where the batch ends.
pub fn validate_batch(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    let (batch, raw) = framed_header(bytes)?;
    check_crc(batch, raw.crc)?;
    let info = raw.into_info(batch.len())?;
    check_count_plausible(&info)?;
    Ok(info)
}

/// Frames the batch at the start of `bytes` and reads its v2 header.
fn framed_header(bytes: &[u8]) -> Result<(&[u8], RawHeader), BatchError> {
    let (batch, magic) = frame_batch(bytes).map_err(|framing| match framing {
        Framing::Truncated { needed, available } => BatchError::Truncated { needed, available },
        Framing::Invalid(error) => error,
    })?;
    if magic != MAGIC_V2 {
        return Err(BatchError::LegacyMagic { magic });
    }
    Ok((batch, RawHeader::read(batch, batch.len())?))
}

/// Validates every batch of a record set (as stored, or as a Fetch returns
/// it): each batch as [`validate_batch`], and no bytes after the last one.
/// An empty set is valid and yields no batch.
pub fn validate_record_set(bytes: &[u8]) -> Result<Vec<BatchInfo>, BatchError> {
    let mut batches = Vec::new();
    let mut position = 0;
    let mut rest = bytes;
    while !rest.is_empty() {
        match validate_batch(rest) {
            Ok(info) => {
                position += info.size;
                rest = rest.get(info.size..).unwrap_or_default();
                batches.push(info);
            }
            Err(BatchError::Truncated { .. }) if position > 0 => {
                return Err(BatchError::TrailingBytes {
                    position,
                    len: rest.len(),
                })
            }
            Err(error) => return Err(error),
        }
    }
    Ok(batches)
}

/// Limits a Produce request's records are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceCheck {
    /// The Produce request's version (ZSTD needs v7+).
    pub produce_version: i16,
    /// Kafka's `message.max.bytes`: largest batch, log overhead included.
    pub message_max_bytes: usize,
}

/// Validates one partition's records of a Produce request the way a Kafka
/// broker does before appending: exactly one magic 2 batch, base offset 0,
/// within `message.max.bytes`, CRC, then the client rules on record count,
/// control batches and sequences. Checks run in Kafka's order, so the error
/// reported for a batch with several problems is the one Kafka reports.
pub fn validate_produce_records(
    bytes: &[u8],
    check: ProduceCheck,
) -> Result<BatchInfo, BatchError> {
    if bytes.is_empty() {
        return Err(BatchError::Empty);
    }
    // ProduceRequest.validateRecords: the first batch's magic and codec, then
    // whether a second batch follows.
    let (batch, raw) = framed_header(bytes)?;
    let size = batch.len();
    if raw.codec() == Compression::Zstd as i16
        && check.produce_version < FIRST_PRODUCE_VERSION_WITH_ZSTD
    {
        return Err(BatchError::ZstdRequiresNewerProduce {
            produce_version: check.produce_version,
        });
    }
    if let Some(rest) = bytes.get(size..).filter(|rest| !rest.is_empty()) {
        return Err(match frame_batch(rest) {
            Ok(_) => BatchError::MultipleBatches,
            Err(Framing::Truncated { .. }) => BatchError::TrailingBytes {
                position: size,
                len: rest.len(),
            },
            Err(Framing::Invalid(error)) => error,
        });
    }
    // UnifiedLog.analyzeAndValidateRecords.
    if raw.base_offset != 0 {
        return Err(BatchError::NonZeroBaseOffset {
            base_offset: raw.base_offset,
        });
    }
    if size > check.message_max_bytes {
        return Err(BatchError::TooLarge {
            size,
            max: check.message_max_bytes,
        });
    }
    check_crc(batch, raw.crc)?;
    let info = raw.into_info(size)?;
    // LogValidator.validateBatch, for batches from clients.
    let count_from_offsets = i64::from(info.last_offset_delta) + 1;
    if count_from_offsets <= 0
        || info.record_count <= 0
        || count_from_offsets != i64::from(info.record_count)
    {
        return Err(BatchError::InconsistentRecordCount {
            record_count: info.record_count,
            last_offset_delta: info.last_offset_delta,
        });
    }
    if info.control {
        return Err(BatchError::ControlBatch);
    }
    if info.has_producer_id() && info.base_sequence < 0 {
        return Err(BatchError::InvalidSequence {
            producer_id: info.producer_id,
            base_sequence: info.base_sequence,
        });
    }
    // Kafka decodes uncompressed records here; we don't, but a count the
    // bytes cannot hold is caught without decoding.
    check_count_plausible(&info)?;
    Ok(info)
}

/// Error of the in-place header rewrites: the buffer is too short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a record batch header needs {needed} bytes, the buffer has {available}")]
pub struct ShortBuffer {
    /// Bytes the rewrite touches.
    pub needed: usize,
    /// Bytes present.
    pub available: usize,
}

/// The records of `batch` that break a topic's [`RecordRules`]: without a
/// key on a compacted topic (Kafka's `LogValidator.validateKey`:
/// INVALID_RECORD), or with a CreateTime timestamp outside the topic's
/// `message.timestamp.before.max.ms`/`after.max.ms` window
/// (`validateTimestamp`: INVALID_TIMESTAMP); one record error each. This is
/// the one place that decodes, and decompresses, a produced batch, and only
/// when the rules could refuse a record: no rules, or a window only the
/// batch's max timestamp needs to be compared with, read nothing.
///
/// The records are walked as a stream with every length bounded by the bytes
/// present and decompression capped at [`MAX_DECOMPRESSED_BYTES`] (see
/// `records/walk.rs`): no count or length from the client sizes an
/// allocation.
pub fn record_errors(batch: &[u8], rules: RecordRules) -> Result<Vec<RecordError>, BatchError> {
    walk::record_errors(batch, rules)
}

/// The positions in `batch` of its records without a key
/// ([`record_errors`] for a compacted topic without a timestamp window).
pub fn keyless_records(batch: &[u8]) -> Result<Vec<i32>, BatchError> {
    let rules = RecordRules {
        keys_required: true,
        timestamps: None,
    };
    Ok(record_errors(batch, rules)?
        .into_iter()
        .map(|error| error.index)
        .collect())
}

/// Rewrites a batch's base offset in place. The base offset is outside the
/// CRC, so the batch stays valid; this is how the gateway turns a producer's
/// offset-0 batch into the offsets the sequencer assigned, on the copy it
/// serves.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), ShortBuffer> {
    write_be(batch, 0, &base_offset.to_be_bytes())
}

/// Rewrites a batch's partition leader epoch in place (also outside the CRC),
/// as a Kafka leader stamps its epoch on append.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), ShortBuffer> {
    write_be(batch, PARTITION_LEADER_EPOCH_OFFSET, &epoch.to_be_bytes())
}

/// Offset of the CRC field.
const CRC_OFFSET: usize = 17;
/// Offset of the max timestamp, the last header field a log-append stamp
/// changes; the CRC-covered bytes from [`CRC_START`] up to its end are the
/// only ones [`stamp_log_append_time`] rewrites.
const MAX_TIMESTAMP_OFFSET: usize = 35;
/// End of the header bytes a log-append stamp rewrites.
const STAMPED_END: usize = MAX_TIMESTAMP_OFFSET + 8;

/// Stamps a batch with the broker's append time, as a Kafka leader does for
/// topics with `message.timestamp.type=LogAppendTime`: the timestamp-type
/// attribute set and the max timestamp replaced (consumers then give every
/// record of the batch that time; the records themselves are untouched).
///
/// The CRC is updated without reading the records: a CRC32C is affine, so
/// the new one is the old one xor the CRC of the change (the rewritten
/// header bytes' difference, followed by as many zero bytes as the records
/// take, [`cxlkafka_log::crc::crc32c_combine`] with a zero CRC shifting it
/// past them), minus the CRC of zeros of the same length.
pub fn stamp_log_append_time(batch: &mut [u8], timestamp: i64) -> Result<(), ShortBuffer> {
    let available = batch.len();
    if available < BATCH_HEADER_LEN {
        return Err(ShortBuffer {
            needed: BATCH_HEADER_LEN,
            available,
        });
    }
    // Checked above: the header is there.
    let mut change = [0_u8; STAMPED_END - CRC_START];
    change.copy_from_slice(&batch[CRC_START..STAMPED_END]);
    let mut stored = [0_u8; 4];
    stored.copy_from_slice(&batch[CRC_OFFSET..CRC_START]);
    let attributes = i16::from_be_bytes([change[0], change[1]]);
    write_be(
        batch,
        CRC_START,
        &(attributes | TIMESTAMP_TYPE_BIT).to_be_bytes(),
    )?;
    write_be(batch, MAX_TIMESTAMP_OFFSET, &timestamp.to_be_bytes())?;
    for (changed, after) in change.iter_mut().zip(&batch[CRC_START..STAMPED_END]) {
        *changed ^= after;
    }
    let change_crc = crc32c::crc32c(&change) ^ crc32c::crc32c(&[0; STAMPED_END - CRC_START]);
    let records_len = (available - STAMPED_END) as u64;
    let stored = u32::from_be_bytes(stored);
    let crc = stored ^ cxlkafka_log::crc::crc32c_combine(change_crc, 0, records_len);
    write_be(batch, CRC_OFFSET, &crc.to_be_bytes())
}

fn write_be(batch: &mut [u8], at: usize, value: &[u8]) -> Result<(), ShortBuffer> {
    let available = batch.len();
    let needed = at + value.len();
    batch
        .get_mut(at..needed)
        .ok_or(ShortBuffer { needed, available })?
        .copy_from_slice(value);
    Ok(())
}

mod walk;

pub use walk::{
    RecordError, RecordFault, RecordRules, TimestampWindow, MAX_DECOMPRESSED_BYTES,
    MAX_RECORD_ERRORS,
};

#[cfg(test)]
mod tests;
