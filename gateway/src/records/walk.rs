//! Reading inside a batch's records, the one place the gateway does: a
//! compacted topic refuses records without a key, and a topic with
//! `message.timestamp.before.max.ms` or `message.timestamp.after.max.ms`
//! refuses CreateTime timestamps outside its window (KIP-937), each with one
//! record error per offending record, as Kafka's `LogValidator` does.
//!
//! The records are walked as a stream, decompressing as they go, with
//! every length checked against the bytes that are actually there and the
//! decompressed size capped ([`MAX_DECOMPRESSED_BYTES`]): nothing is
//! allocated from a count or a length the client wrote, so neither a record
//! count of two billion nor a decompression bomb can exhaust memory.
//! (`kafka-protocol`'s decoder reserves memory from those counts and
//! decompresses whole batches; a fuzzed batch made it abort the process.)
//!
//! A v2 record: varint length, then the length's bytes: attributes (INT8),
//! timestamp delta (varlong), offset delta (varint), key length (varint, -1
//! for a null key), key, value length, value, headers.

use std::io::{self, Read};

use kafka_protocol::records::Compression;

use super::{validate_batch, BatchError, BATCH_HEADER_LEN};

/// Most bytes a batch's records may decompress to when the gateway must
/// read them: far above what a producer's batch holds, and a bound on the
/// work one batch can cause.
pub const MAX_DECOMPRESSED_BYTES: u64 = 64 << 20;

/// xerial snappy-java's stream header (magic, version 1, compatible 1), as
/// Kafka's Java clients frame snappy batches; without it, the records are
/// one raw snappy block.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

fn undecodable(reason: impl Into<String>) -> BatchError {
    BatchError::UndecodableRecords {
        reason: reason.into(),
    }
}

/// What a topic asks of each record beyond the batch checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordRules {
    /// Every record needs a key (`cleanup.policy` has `compact`).
    pub keys_required: bool,
    /// The CreateTime timestamps accepted, if the topic bounds them.
    pub timestamps: Option<TimestampWindow>,
}

/// KIP-937's window around the broker's clock: a CreateTime timestamp
/// below `now - before_max_ms` or above `now + after_max_ms` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampWindow {
    /// The broker's clock, in milliseconds since the epoch.
    pub now: i64,
    /// `message.timestamp.before.max.ms`.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub after_max_ms: i64,
}

impl TimestampWindow {
    /// The earliest timestamp accepted.
    pub fn earliest(&self) -> i64 {
        self.now.saturating_sub(self.before_max_ms)
    }

    /// The latest timestamp accepted.
    pub fn latest(&self) -> i64 {
        self.now.saturating_add(self.after_max_ms)
    }

    /// Whether a record's timestamp is accepted; records without one (-1,
    /// Kafka's `NO_TIMESTAMP`) always are.
    pub fn accepts(&self, timestamp: i64) -> bool {
        timestamp == NO_TIMESTAMP || (self.earliest()..=self.latest()).contains(&timestamp)
    }

    /// Whether every record of a batch whose largest timestamp is
    /// `max_timestamp` is accepted without looking at each one: nothing
    /// bounds the past, and the largest is not in the future.
    fn accepts_any_batch_up_to(&self, max_timestamp: i64) -> bool {
        self.before_max_ms == i64::MAX && self.accepts(max_timestamp)
    }
}

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// Most record errors listed for one batch. A batch of small records
/// decompresses to millions of them; each error becomes a string in the
/// response, so an unbounded list would let one request cost gigabytes.
/// Past this many the batch is refused all the same (clients fail the whole
/// batch with the partition's error), and Kafka's message shows three.
pub const MAX_RECORD_ERRORS: usize = 1_000;

/// Why a record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFault {
    /// No key on a compacted topic.
    MissingKey,
    /// A CreateTime timestamp outside the topic's window.
    TimestampOutOfRange {
        /// The record's timestamp.
        timestamp: i64,
        /// The record's offset in the batch (its offset delta).
        offset: i64,
    },
}

/// One refused record: its position in the batch (0-based, Kafka's
/// `RecordError.batchIndex`) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// Position in the batch.
    pub index: i32,
    /// Why.
    pub fault: RecordFault,
}

/// The records of the v2 batch `batch` that break `rules` (at most
/// [`MAX_RECORD_ERRORS`]: the walk stops there), in batch order
/// (one error per record: a missing key before a timestamp, as Kafka's
/// `LogValidator.validateRecord` checks them). Walks the records
/// only when `rules` could refuse one (see [`super::record_errors`]).
pub fn record_errors(batch: &[u8], rules: RecordRules) -> Result<Vec<RecordError>, BatchError> {
    record_errors_within(batch, rules, MAX_DECOMPRESSED_BYTES)
}

/// [`record_errors`] with the records capped at `cap` bytes.
pub(super) fn record_errors_within(
    batch: &[u8],
    rules: RecordRules,
    cap: u64,
) -> Result<Vec<RecordError>, BatchError> {
    let info = validate_batch(batch)?;
    let timestamps = rules
        .timestamps
        .filter(|window| !window.accepts_any_batch_up_to(info.max_timestamp));
    if !rules.keys_required && timestamps.is_none() {
        return Ok(Vec::new());
    }
    let records = batch
        .get(BATCH_HEADER_LEN..info.size)
        .ok_or_else(|| undecodable("the batch ends inside its header"))?;
    let stream: Box<dyn Read + '_> = match info.compression {
        Compression::None => Box::new(records),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(records)),
        Compression::Snappy => Box::new(SnappyReader::new(records)),
        Compression::Lz4 => {
            Box::new(lz4::Decoder::new(records).map_err(|e| undecodable(format!("lz4: {e}")))?)
        }
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(records)
                .map_err(|e| undecodable(format!("zstd: {e}")))?,
        ),
    };
    let mut stream = io::BufReader::new(Capped {
        inner: stream,
        cap,
        left: cap,
    });
    let checks = Checks {
        keys_required: rules.keys_required,
        timestamps,
        first_timestamp: info.first_timestamp,
    };
    walk(&mut stream, info.record_count, checks).map_err(|e| undecodable(e.to_string()))
}

/// What [`walk`] checks of each record.
struct Checks {
    keys_required: bool,
    timestamps: Option<TimestampWindow>,
    /// The batch's base timestamp, which record timestamp deltas add to.
    first_timestamp: i64,
}

/// Walks `count` records, returning those that fail `checks`.
fn walk(stream: &mut impl Read, count: i32, checks: Checks) -> io::Result<Vec<RecordError>> {
    let mut errors = Vec::new();
    for index in 0..count {
        let length = zigzag(read_varint(stream, 5)?);
        let length = u64::try_from(length)
            .map_err(|_| invalid(format!("record {index} has length {length}")))?;
        let mut record = Counted {
            inner: &mut *stream,
            read: 0,
        };
        let _attributes = read_exact::<1>(&mut record)?;
        let timestamp_delta = zigzag(read_varint(&mut record, 10)?);
        let offset_delta = zigzag(read_varint(&mut record, 5)?);
        let key_length = zigzag(read_varint(&mut record, 5)?);
        let timestamp = checks.first_timestamp.wrapping_add(timestamp_delta);
        // Kafka's LogValidator.validateRecord: the key first, then the
        // timestamp; one error per record.
        let fault = if checks.keys_required && key_length < 0 {
            Some(RecordFault::MissingKey)
        } else {
            checks
                .timestamps
                .filter(|window| !window.accepts(timestamp))
                .map(|_| RecordFault::TimestampOutOfRange {
                    timestamp,
                    offset: offset_delta,
                })
        };
        if let Some(fault) = fault {
            errors.push(RecordError { index, fault });
            if errors.len() == MAX_RECORD_ERRORS {
                break;
            }
        }
        let rest = length
            .checked_sub(record.read)
            .ok_or_else(|| invalid(format!("record {index} is shorter than its fields")))?;
        let skipped = io::copy(&mut stream.take(rest), &mut io::sink())?;
        if skipped != rest {
            return Err(invalid(format!("record {index} is cut short")));
        }
    }
    Ok(errors)
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

fn read_exact<const N: usize>(stream: &mut impl Read) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// An unsigned varint of at most `max_bytes` bytes.
fn read_varint(stream: &mut impl Read, max_bytes: u32) -> io::Result<u64> {
    let mut value = 0_u64;
    for shift in 0..max_bytes {
        let [byte] = read_exact::<1>(stream)?;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid(format!("a varint longer than {max_bytes} bytes")))
}

/// Zigzag decoding (Kafka's signed varints).
fn zigzag(value: u64) -> i64 {
    let magnitude = i64::try_from(value >> 1).unwrap_or(i64::MAX);
    if value & 1 == 0 {
        magnitude
    } else {
        -magnitude - 1
    }
}

/// Counts the bytes read through it.
struct Counted<'a, R: Read> {
    inner: &'a mut R,
    read: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Fails once more than `cap` bytes have been read.
struct Capped<R> {
    inner: R,
    cap: u64,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(invalid(format!(
                "the records decompress to more than {} bytes",
                self.cap
            )));
        }
        let room = usize::try_from(self.left).unwrap_or(usize::MAX);
        let len = buf.len().min(room);
        let n = self.inner.read(&mut buf[..len])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Snappy records, xerial-framed (blocks of a big-endian length and a raw
/// snappy block) or, without the xerial header, one raw block. Each block
/// is decompressed on its own, after its declared size is checked against
/// [`MAX_DECOMPRESSED_BYTES`].
struct SnappyReader<'a> {
    /// Blocks not decompressed yet, or `None` for a raw block.
    framed: Option<&'a [u8]>,
    /// The raw block, until decompressed.
    raw: Option<&'a [u8]>,
    block: Vec<u8>,
    at: usize,
}

impl<'a> SnappyReader<'a> {
    fn new(records: &'a [u8]) -> Self {
        let (framed, raw) = match records.strip_prefix(XERIAL_HEADER) {
            Some(blocks) => (Some(blocks), None),
            None => (None, Some(records)),
        };
        Self {
            framed,
            raw,
            block: Vec::new(),
            at: 0,
        }
    }

    /// The next compressed block, if any.
    fn next_compressed(&mut self) -> io::Result<Option<&'a [u8]>> {
        if let Some(raw) = self.raw.take() {
            return Ok(Some(raw));
        }
        let Some(blocks) = self.framed.filter(|blocks| !blocks.is_empty()) else {
            return Ok(None);
        };
        let (length, rest) = blocks
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("a snappy block length is cut short".to_owned()))?;
        let length = usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
        let block = rest
            .get(..length)
            .ok_or_else(|| invalid("a snappy block is cut short".to_owned()))?;
        self.framed = rest.get(length..);
        Ok(Some(block))
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            let Some(compressed) = self.next_compressed()? else {
                return Ok(0);
            };
            let length = snap::raw::decompress_len(compressed)
                .map_err(|e| invalid(format!("snappy: {e}")))?;
            if length as u64 > MAX_DECOMPRESSED_BYTES {
                return Err(invalid(format!(
                    "a snappy block declares {length} bytes, above {MAX_DECOMPRESSED_BYTES}"
                )));
            }
            self.block.clear();
            self.block.resize(length, 0);
            snap::raw::Decoder::new()
                .decompress(compressed, &mut self.block)
                .map_err(|e| invalid(format!("snappy: {e}")))?;
            self.at = 0;
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
