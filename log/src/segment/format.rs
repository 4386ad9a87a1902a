//! The bytes of a segment: entry headers in `.log` files and index records
//! in `.index` files.
//!
//! A gateway's disk tier is a chain of segment files holding ordered
//! entries (data batches and control records) in global-sequence order:
//!
//! ```text
//! <dir>/<first sequence, 20 digits>.log             entries, back to back
//! <dir>/<first sequence, 20 digits>.idx             one index record per entry
//! <dir>/<first sequence, 20 digits>.g<source>.data  payloads of data batches
//!                                                   that came from gateway <source>
//! ```
//!
//! `.log` entry = `EntryHeader` (72 bytes, little-endian, below) followed by
//! either the payload itself (flags bit 0 clear: control entries, and every
//! entry of a format-1 segment) or a 16-byte payload reference (flags bit 0
//! set: data batches, whose bytes live in a data file; see [`super::data`]):
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | source gateway (names the data file) | u32 |
//! | 4 | reserved, 0 | u32 |
//! | 8 | offset of the payload in the data file | u64 |
//!
//! The entry's CRC covers its header and the payload's bytes, wherever they
//! live, never the reference: a torn reference points at bytes whose CRC does
//! not match, so recovery cuts the entry like any torn one.
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | magic `CXKS` | u32 |
//! | 4 | CRC32C of bytes 8..72 and the payload | u32 |
//! | 8 | global sequence | u64 |
//! | 16 | base offset (data) or the sequencer's value (control) | i64 |
//! | 24 | max timestamp | i64 |
//! | 32 | log append time, ms | i64 |
//! | 40 | producer id | i64 |
//! | 48 | stream | u32 |
//! | 52 | record count | u32 |
//! | 56 | payload length | u32 |
//! | 60 | base sequence | i32 |
//! | 64 | kind | u16 |
//! | 66 | control tag | u16 |
//! | 68 | producer epoch | i16 |
//! | 70 | flags (bit 0: payload in a data file) | u16 |
//!
//! `.idx` record = the entry's position in the `.log` file (u64), a copy of
//! its 72-byte header and its payload reference (zero for an inline
//! payload): 96 bytes. It serves as the offset index (stream, base offset →
//! position) and the time index (max timestamp) at once, so a restart
//! rebuilds a gateway's partition index without reading the data. The index
//! of the last segment is never trusted: recovery rescans that `.log`
//! (checking every CRC) and rewrites it.
//!
//! Format 1 (before data files) named its index `.index` with 80-byte
//! records (no reference); its entries are format-2 entries with flags 0,
//! so such segments are read as they are, and a rescanned one gets a `.idx`.

/// `CXKS` read as a little-endian u32.
pub const ENTRY_MAGIC: u32 = u32::from_le_bytes(*b"CXKS");
/// Bytes of an entry header.
pub const ENTRY_HEADER_BYTES: usize = 72;
/// Extension of a segment's index file.
pub const INDEX_EXTENSION: &str = "idx";
/// Extension of a format-1 segment's index file.
pub const LEGACY_INDEX_EXTENSION: &str = "index";
/// Bytes of a payload reference.
pub const PAYLOAD_REF_BYTES: usize = 16;
/// Bytes of an index record.
pub const INDEX_RECORD_BYTES: usize = 8 + ENTRY_HEADER_BYTES + PAYLOAD_REF_BYTES;
/// Bytes of a format-1 index record (no payload reference).
pub const LEGACY_INDEX_RECORD_BYTES: usize = 8 + ENTRY_HEADER_BYTES;
/// Entry flag: the payload lives in a data file, the entry holds a reference.
pub const FLAG_PAYLOAD_IN_DATA_FILE: u16 = 1;

/// Where a data batch's payload lives: which data file of the segment and
/// at which offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PayloadRef {
    /// The gateway whose arena the payload came from (names the data file).
    pub source: u32,
    /// Offset of the payload's first byte in that data file.
    pub offset: u64,
}

impl PayloadRef {
    pub fn encode(&self) -> [u8; PAYLOAD_REF_BYTES] {
        let mut bytes = [0u8; PAYLOAD_REF_BYTES];
        bytes[0..4].copy_from_slice(&self.source.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.offset.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; PAYLOAD_REF_BYTES]) -> Self {
        Self {
            source: u32::from_le_bytes(bytes[0..4].try_into().unwrap()),
            offset: u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
        }
    }
}

/// What the order log said about one entry, as stored on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryHeader {
    pub sequence: u64,
    pub base_offset: i64,
    pub max_timestamp: i64,
    pub log_append_ms: i64,
    pub producer_id: i64,
    pub stream: u32,
    pub record_count: u32,
    pub length: u32,
    pub base_sequence: i32,
    pub kind: u16,
    pub control_tag: u16,
    pub producer_epoch: i16,
}

impl EntryHeader {
    /// The header bytes with the CRC over them and `payload`.
    pub fn encode(&self, payload: &[u8]) -> [u8; ENTRY_HEADER_BYTES] {
        debug_assert_eq!(payload.len(), self.length as usize);
        self.encode_with_payload_crc(crc32c::crc32c(payload))
    }

    /// The header bytes with the CRC over them and a payload of
    /// `self.length` bytes whose own CRC32C is `payload_crc`, so a payload
    /// that carries its CRC need not be read to be stored.
    pub fn encode_with_payload_crc(&self, payload_crc: u32) -> [u8; ENTRY_HEADER_BYTES] {
        self.encode_with_flags(payload_crc, 0)
    }

    /// The header of an entry whose payload lives in a data file.
    pub fn encode_referencing(&self, payload_crc: u32) -> [u8; ENTRY_HEADER_BYTES] {
        self.encode_with_flags(payload_crc, FLAG_PAYLOAD_IN_DATA_FILE)
    }

    fn encode_with_flags(&self, payload_crc: u32, flags: u16) -> [u8; ENTRY_HEADER_BYTES] {
        let mut bytes = [0u8; ENTRY_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&ENTRY_MAGIC.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.base_offset.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.max_timestamp.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.log_append_ms.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.producer_id.to_le_bytes());
        bytes[48..52].copy_from_slice(&self.stream.to_le_bytes());
        bytes[52..56].copy_from_slice(&self.record_count.to_le_bytes());
        bytes[56..60].copy_from_slice(&self.length.to_le_bytes());
        bytes[60..64].copy_from_slice(&self.base_sequence.to_le_bytes());
        bytes[64..66].copy_from_slice(&self.kind.to_le_bytes());
        bytes[66..68].copy_from_slice(&self.control_tag.to_le_bytes());
        bytes[68..70].copy_from_slice(&self.producer_epoch.to_le_bytes());
        bytes[70..72].copy_from_slice(&flags.to_le_bytes());
        let crc = crate::crc::crc32c_combine(
            crc32c::crc32c(&bytes[8..]),
            payload_crc,
            u64::from(self.length),
        );
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Parses a header; `None` when the magic is wrong. Returns the stored
    /// CRC beside it (checked by [`EntryHeader::crc_matches`] once the
    /// payload is read).
    pub fn decode(bytes: &[u8; ENTRY_HEADER_BYTES]) -> Option<(Self, u32)> {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
        if u32_at(0) != ENTRY_MAGIC {
            return None;
        }
        let header = Self {
            sequence: u64_at(8),
            base_offset: u64_at(16) as i64,
            max_timestamp: u64_at(24) as i64,
            log_append_ms: u64_at(32) as i64,
            producer_id: u64_at(40) as i64,
            stream: u32_at(48),
            record_count: u32_at(52),
            length: u32_at(56),
            base_sequence: u32_at(60) as i32,
            kind: u16_at(64),
            control_tag: u16_at(66),
            producer_epoch: u16_at(68) as i16,
        };
        Some((header, u32_at(4)))
    }

    /// Whether `stored_crc` covers these header bytes and `payload`.
    pub fn crc_matches(bytes: &[u8; ENTRY_HEADER_BYTES], payload: &[u8], stored_crc: u32) -> bool {
        crc32c::crc32c_append(crc32c::crc32c(&bytes[8..]), payload) == stored_crc
    }

    /// Whether encoded header bytes say the payload lives in a data file.
    pub fn references_data_file(bytes: &[u8; ENTRY_HEADER_BYTES]) -> bool {
        u16::from_le_bytes([bytes[70], bytes[71]]) & FLAG_PAYLOAD_IN_DATA_FILE != 0
    }

    /// Bytes the entry takes in its `.log` file with its payload inline.
    pub fn stored_len(&self) -> u64 {
        ENTRY_HEADER_BYTES as u64 + u64::from(self.length)
    }
}

/// Bytes an entry takes in its `.log` file: its payload, or a reference.
pub fn log_bytes(header: &EntryHeader, payload: Option<PayloadRef>) -> u64 {
    match payload {
        Some(_) => (ENTRY_HEADER_BYTES + PAYLOAD_REF_BYTES) as u64,
        None => header.stored_len(),
    }
}

/// What an index record says of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexedEntry {
    /// Position of the entry in the `.log` file.
    pub position: u64,
    pub header: EntryHeader,
    /// Where its payload lives when not inline.
    pub payload: Option<PayloadRef>,
}

/// An index record: where an entry starts, its header and its reference.
pub fn encode_index_record(
    position: u64,
    header: &[u8; ENTRY_HEADER_BYTES],
    payload: Option<PayloadRef>,
) -> [u8; INDEX_RECORD_BYTES] {
    let mut record = [0u8; INDEX_RECORD_BYTES];
    record[..8].copy_from_slice(&position.to_le_bytes());
    record[8..8 + ENTRY_HEADER_BYTES].copy_from_slice(header);
    if let Some(payload) = payload {
        record[8 + ENTRY_HEADER_BYTES..].copy_from_slice(&payload.encode());
    }
    record
}

/// Parses an index record of either format; `None` when its header's magic
/// is wrong or a format-1 record claims a data file.
pub fn decode_index_record(record: &[u8]) -> Option<IndexedEntry> {
    if record.len() != INDEX_RECORD_BYTES && record.len() != LEGACY_INDEX_RECORD_BYTES {
        return None;
    }
    let position = u64::from_le_bytes(record[..8].try_into().unwrap());
    let header_bytes: &[u8; ENTRY_HEADER_BYTES] =
        record[8..8 + ENTRY_HEADER_BYTES].try_into().unwrap();
    let (header, _) = EntryHeader::decode(header_bytes)?;
    let payload = if EntryHeader::references_data_file(header_bytes) {
        let reference = record.get(8 + ENTRY_HEADER_BYTES..)?.try_into().ok()?;
        Some(PayloadRef::decode(reference))
    } else {
        None
    };
    Some(IndexedEntry {
        position,
        header,
        payload,
    })
}

/// File name stem of the segment whose first entry is `first_sequence`.
pub fn segment_stem(first_sequence: u64) -> String {
    format!("{first_sequence:020}")
}

/// File name of the data file of segment `first_sequence` holding the
/// payloads that came from gateway `source`.
pub fn data_file_name(first_sequence: u64, source: u32) -> String {
    format!("{}.g{source:03}.data", segment_stem(first_sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EntryHeader {
        EntryHeader {
            sequence: 42,
            base_offset: 1000,
            max_timestamp: -1,
            log_append_ms: 1_700_000_000_000,
            producer_id: 7,
            stream: 256 * 3 + 1,
            record_count: 10,
            length: 5,
            base_sequence: 99,
            kind: 1,
            control_tag: 0,
            producer_epoch: 2,
        }
    }

    #[test]
    fn a_header_round_trips_and_its_crc_covers_the_payload() {
        let header = sample();
        let bytes = header.encode(b"hello");
        let (decoded, crc) = EntryHeader::decode(&bytes).expect("magic");
        assert_eq!(decoded, header);
        assert!(EntryHeader::crc_matches(&bytes, b"hello", crc));
        assert!(!EntryHeader::crc_matches(&bytes, b"hellp", crc));
    }

    #[test]
    fn a_header_built_from_the_payload_crc_is_the_header_built_from_the_payload() {
        for payload in [&b""[..], b"x", &[7u8; 5000][..]] {
            let header = EntryHeader {
                length: payload.len() as u32,
                ..sample()
            };
            assert_eq!(
                header.encode_with_payload_crc(crc32c::crc32c(payload)),
                header.encode(payload)
            );
        }
    }

    #[test]
    fn a_flipped_header_bit_fails_the_crc() {
        let header = sample();
        let mut bytes = header.encode(b"hello");
        bytes[20] ^= 1;
        let (_, crc) = EntryHeader::decode(&bytes).expect("magic");
        assert!(!EntryHeader::crc_matches(&bytes, b"hello", crc));
    }

    #[test]
    fn an_index_record_round_trips() {
        let header = sample();
        let record = encode_index_record(4096, &header.encode(b"hello"), None);
        let expected = IndexedEntry {
            position: 4096,
            header,
            payload: None,
        };
        assert_eq!(decode_index_record(&record), Some(expected));
        assert_eq!(
            decode_index_record(&record[..LEGACY_INDEX_RECORD_BYTES]),
            Some(expected),
            "a format-1 record reads the same"
        );
    }

    #[test]
    fn a_referencing_record_round_trips_and_the_flag_is_covered_by_the_crc() {
        let header = sample();
        let reference = PayloadRef {
            source: 3,
            offset: 1 << 33,
        };
        let bytes = header.encode_referencing(crc32c::crc32c(b"hello"));
        assert!(EntryHeader::references_data_file(&bytes));
        let (_, crc) = EntryHeader::decode(&bytes).expect("magic");
        assert!(EntryHeader::crc_matches(&bytes, b"hello", crc));
        let mut cleared = bytes;
        cleared[70] = 0;
        assert!(!EntryHeader::crc_matches(&cleared, b"hello", crc));
        let record = encode_index_record(88, &bytes, Some(reference));
        assert_eq!(
            decode_index_record(&record).map(|entry| entry.payload),
            Some(Some(reference))
        );
        assert_eq!(
            decode_index_record(&record[..LEGACY_INDEX_RECORD_BYTES]),
            None,
            "a reference cannot be missing"
        );
    }
}
