//! Specification of record batch validation: each test names the input and
//! the Kafka error code a Kafka broker answers for it.

use super::*;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions};
use proptest::prelude::*;

/// A batch header with every field under the test's control; `encode`
/// computes the length and the CRC unless told to lie.
#[derive(Debug, Clone)]
struct RawBatch {
    base_offset: i64,
    partition_leader_epoch: i32,
    magic: i8,
    attributes: i16,
    last_offset_delta: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    /// Stands in for the records section; never decoded.
    records: Vec<u8>,
}

impl RawBatch {
    /// A plain (non-idempotent, uncompressed) batch of `count` records of
    /// 10 filler bytes each.
    fn plain(count: i32) -> Self {
        let filler = usize::try_from(count).unwrap_or(0) * 10;
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            magic: 2,
            attributes: 0,
            last_offset_delta: count - 1,
            first_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_500,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: count,
            records: vec![0x5a; filler],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = BytesMut::new();
        body.put_i16(self.attributes);
        body.put_i32(self.last_offset_delta);
        body.put_i64(self.first_timestamp);
        body.put_i64(self.max_timestamp);
        body.put_i64(self.producer_id);
        body.put_i16(self.producer_epoch);
        body.put_i32(self.base_sequence);
        body.put_i32(self.record_count);
        body.put_slice(&self.records);
        let mut out = BytesMut::new();
        out.put_i64(self.base_offset);
        out.put_i32(i32::try_from(4 + 1 + 4 + body.len()).expect("test batches are small"));
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(self.magic);
        out.put_u32(crc32c::crc32c(&body));
        out.put_slice(&body);
        out.to_vec()
    }
}

/// A batch as a real client encodes it (kafka-protocol's encoder).
fn client_batch(count: usize, producer_id: i64, first_sequence: i32) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: if producer_id >= 0 { 3 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence
            // is constant; a non-idempotent batch starts at sequence -1.
            sequence: first_sequence.wrapping_add(i as i32),
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; 100])),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding records");
    buf.to_vec()
}

const PRODUCE_V9: ProduceCheck = ProduceCheck {
    produce_version: 9,
    message_max_bytes: 1_048_588,
};

fn produce(bytes: &[u8]) -> Result<BatchInfo, BatchError> {
    validate_produce_records(bytes, PRODUCE_V9)
}

fn produce_code(bytes: &[u8]) -> i16 {
    produce(bytes).map_or_else(|e| e.code(), |_| 0)
}

#[test]
fn a_client_encoded_batch_is_valid_and_its_header_is_extracted() {
    let bytes = client_batch(5, 42, 7);
    let info = produce(&bytes).expect("valid batch");
    assert_eq!(info.size, bytes.len());
    assert_eq!(info.base_offset, 0);
    assert_eq!(info.record_count, 5);
    assert_eq!(info.last_offset_delta, 4);
    assert_eq!(info.producer_id, 42);
    assert_eq!(info.producer_epoch, 3);
    assert_eq!(info.base_sequence, 7);
    assert_eq!(info.first_timestamp, 1_700_000_000_000);
    assert_eq!(info.max_timestamp, 1_700_000_000_004);
    assert_eq!(info.compression, Compression::None);
    assert_eq!(info.timestamp_type, TimestampType::Creation);
    assert!(info.has_producer_id());
    assert!(!info.transactional && !info.control);
    assert_eq!(validate_batch(&bytes), Ok(info.clone()));
    assert_eq!(validate_record_set(&bytes), Ok(vec![info]));
}

#[test]
fn a_non_idempotent_batch_without_sequence_is_valid() {
    let info = produce(&client_batch(3, -1, -1)).expect("valid batch");
    assert!(!info.has_producer_id());
    assert_eq!(info.base_sequence, -1);
}

#[test]
fn attributes_are_decoded() {
    let mut batch = RawBatch::plain(2);
    batch.attributes = 0b0001_1011; // lz4, log-append time, transactional
    batch.producer_id = 9;
    batch.producer_epoch = 0;
    batch.base_sequence = 0;
    let info = produce(&batch.encode()).expect("valid batch");
    assert_eq!(info.compression, Compression::Lz4);
    assert_eq!(info.timestamp_type, TimestampType::LogAppend);
    assert!(info.transactional);
    assert!(!info.control);
    assert_eq!(info.attributes, 0b0001_1011);
}

#[test]
fn a_flipped_record_byte_fails_the_crc_with_corrupt_message() {
    let mut bytes = client_batch(2, -1, -1);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert!(matches!(
        produce(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
    assert_eq!(produce_code(&bytes), 2);
    assert!(matches!(
        validate_batch(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn a_corrupted_codec_reports_the_crc_not_the_codec() {
    let mut bytes = RawBatch::plain(1).encode();
    bytes[22] |= 0x07; // attributes low byte: codec 7, CRC now stale
    assert!(matches!(
        validate_batch(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn an_unknown_codec_with_a_valid_crc_is_corrupt() {
    let mut batch = RawBatch::plain(1);
    batch.attributes = 5;
    let error = produce(&batch.encode()).expect_err("codec 5 is unknown");
    assert_eq!(error, BatchError::UnknownCompression { codec: 5 });
    assert_eq!(error.code(), 2);
}

#[test]
fn base_offset_and_leader_epoch_rewrites_keep_the_batch_valid() {
    let mut bytes = client_batch(4, 1, 0);
    set_base_offset(&mut bytes, 1_000_000).expect("long enough");
    set_partition_leader_epoch(&mut bytes, 17).expect("long enough");
    let info = validate_batch(&bytes).expect("CRC does not cover these fields");
    assert_eq!(info.base_offset, 1_000_000);
    assert_eq!(info.last_offset(), 1_000_003);
    assert_eq!(info.partition_leader_epoch, 17);
    assert_eq!(&bytes[..8], &1_000_000_i64.to_be_bytes());
}

#[test]
fn rewrites_refuse_short_buffers() {
    let mut short = [0_u8; 7];
    assert_eq!(
        set_base_offset(&mut short, 1),
        Err(ShortBuffer {
            needed: 8,
            available: 7
        })
    );
    let mut short = [0_u8; 15];
    assert_eq!(
        set_partition_leader_epoch(&mut short, 1),
        Err(ShortBuffer {
            needed: 16,
            available: 15
        })
    );
}

#[test]
fn an_empty_partition_is_invalid_record() {
    assert_eq!(produce(&[]), Err(BatchError::Empty));
    assert_eq!(produce_code(&[]), 87);
    assert_eq!(validate_record_set(&[]), Ok(vec![]));
}

#[test]
fn a_truncated_lone_batch_is_invalid_record_like_kafka() {
    let bytes = client_batch(2, -1, -1);
    for cut in [1, 11, 12, 16, 17, 60, bytes.len() - 1] {
        let error = produce(&bytes[..cut]).expect_err("truncated");
        assert!(
            matches!(error, BatchError::Truncated { .. }),
            "cut at {cut}: {error:?}"
        );
        assert_eq!(error.code(), 87, "cut at {cut}");
        assert!(matches!(
            validate_record_set(&bytes[..cut]),
            Err(BatchError::Truncated { .. })
        ));
    }
}

#[test]
fn a_length_below_any_format_minimum_is_corrupt() {
    let mut bytes = RawBatch::plain(1).encode();
    bytes[8..12].copy_from_slice(&13_i32.to_be_bytes());
    assert_eq!(
        produce(&bytes),
        Err(BatchError::LengthTooSmall {
            length: 13,
            minimum: 14
        })
    );
    bytes[8..12].copy_from_slice(&(-5_i32).to_be_bytes());
    assert_eq!(produce_code(&bytes), 2);
}

#[test]
fn a_magic_2_length_shorter_than_the_header_is_corrupt() {
    // A 30-byte length with magic 2 leaves no room for the 61-byte header.
    let mut bytes = vec![0_u8; 42];
    bytes[8..12].copy_from_slice(&30_i32.to_be_bytes());
    bytes[16] = 2;
    let error = produce(&bytes).expect_err("too short");
    assert!(matches!(
        error,
        BatchError::LengthTooSmall {
            length: 30,
            minimum: 49
        }
    ));
    assert_eq!(error.code(), 2);
}

#[test]
fn an_unknown_magic_is_corrupt() {
    for magic in [3_i8, 0x7f, -1, -128] {
        let mut batch = RawBatch::plain(1);
        batch.magic = magic;
        let error = produce(&batch.encode()).expect_err("bad magic");
        assert_eq!(error, BatchError::InvalidMagic { magic });
        assert_eq!(error.code(), 2);
    }
}

#[test]
fn legacy_magic_0_and_1_are_invalid_record() {
    for magic in [0_i8, 1] {
        let mut batch = RawBatch::plain(1);
        batch.magic = magic;
        let error = produce(&batch.encode()).expect_err("legacy magic");
        assert_eq!(error, BatchError::LegacyMagic { magic });
        assert_eq!(error.code(), 87);
        assert_eq!(validate_record_set(&batch.encode()), Err(error));
    }
}

#[test]
fn several_batches_are_a_valid_record_set_but_not_a_valid_produce() {
    let mut bytes = client_batch(2, -1, -1);
    let mut second = client_batch(3, -1, -1);
    set_base_offset(&mut second, 2).expect("long enough");
    let first_len = bytes.len();
    bytes.extend_from_slice(&second);
    let batches = validate_record_set(&bytes).expect("two valid batches");
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].size, first_len);
    assert_eq!(batches[1].base_offset, 2);
    assert_eq!(batches[1].record_count, 3);
    assert_eq!(produce(&bytes), Err(BatchError::MultipleBatches));
    assert_eq!(produce_code(&bytes), 87);
}

#[test]
fn trailing_bytes_after_the_last_batch_are_corrupt() {
    let batch = client_batch(2, -1, -1);
    // The last one has a plausible length but stops before its magic byte.
    let short_header: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0];
    for garbage in [&[0_u8][..], &[1, 2, 3, 4, 5], short_header] {
        let mut bytes = batch.clone();
        bytes.extend_from_slice(garbage);
        let expected = BatchError::TrailingBytes {
            position: batch.len(),
            len: garbage.len(),
        };
        assert_eq!(validate_record_set(&bytes), Err(expected.clone()));
        assert_eq!(produce(&bytes), Err(expected));
        assert_eq!(produce_code(&bytes), 2);
    }
}

#[test]
fn trailing_zeros_report_their_length_like_kafka() {
    let mut bytes = client_batch(2, -1, -1);
    bytes.extend_from_slice(&[0; 16]);
    let error = BatchError::LengthTooSmall {
        length: 0,
        minimum: 14,
    };
    assert_eq!(validate_record_set(&bytes), Err(error.clone()));
    assert_eq!(produce(&bytes), Err(error));
    assert_eq!(produce_code(&bytes), 2);
}

#[test]
fn a_trailing_batch_with_bad_magic_reports_the_magic() {
    let mut bytes = client_batch(1, -1, -1);
    let mut bad = RawBatch::plain(1);
    bad.magic = 9;
    bytes.extend_from_slice(&bad.encode());
    assert_eq!(produce(&bytes), Err(BatchError::InvalidMagic { magic: 9 }));
    assert_eq!(
        validate_record_set(&bytes),
        Err(BatchError::InvalidMagic { magic: 9 })
    );
}

#[test]
fn a_producer_chosen_base_offset_is_invalid_record() {
    let mut batch = RawBatch::plain(1);
    batch.base_offset = 5;
    assert_eq!(
        produce(&batch.encode()),
        Err(BatchError::NonZeroBaseOffset { base_offset: 5 })
    );
    assert_eq!(produce_code(&batch.encode()), 87);
    // Stored batches carry real offsets.
    assert!(validate_batch(&batch.encode()).is_ok());
}

#[test]
fn a_batch_above_message_max_bytes_is_message_too_large() {
    let bytes = client_batch(10, -1, -1);
    let exact = ProduceCheck {
        produce_version: 9,
        message_max_bytes: bytes.len(),
    };
    assert!(validate_produce_records(&bytes, exact).is_ok());
    let below = ProduceCheck {
        message_max_bytes: bytes.len() - 1,
        ..exact
    };
    let error = validate_produce_records(&bytes, below).expect_err("too large");
    assert_eq!(
        error,
        BatchError::TooLarge {
            size: bytes.len(),
            max: bytes.len() - 1
        }
    );
    assert_eq!(error.code(), 10);
}

#[test]
fn checks_run_in_kafkas_order() {
    // Base offset before size before CRC.
    let mut batch = RawBatch::plain(2);
    batch.base_offset = 3;
    let mut bytes = batch.encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let tiny = ProduceCheck {
        produce_version: 9,
        message_max_bytes: 10,
    };
    assert!(matches!(
        validate_produce_records(&bytes, tiny),
        Err(BatchError::NonZeroBaseOffset { .. })
    ));
    set_base_offset(&mut bytes, 0).expect("long enough");
    assert!(matches!(
        validate_produce_records(&bytes, tiny),
        Err(BatchError::TooLarge { .. })
    ));
    assert!(matches!(
        produce(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
    // CRC before record count.
    let mut batch = RawBatch::plain(2);
    batch.record_count = 0;
    let mut bytes = batch.encode();
    bytes[last] ^= 0xff;
    assert!(matches!(
        produce(&bytes),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn record_count_must_match_the_offset_delta_for_produce() {
    for (count, delta) in [
        (0, -1),
        (0, 0),
        (3, 1),
        (1, 2),
        (-1, -2),
        (i32::MAX, i32::MAX),
    ] {
        let mut batch = RawBatch::plain(1);
        batch.record_count = count;
        batch.last_offset_delta = delta;
        let error = produce(&batch.encode()).expect_err("inconsistent");
        assert_eq!(
            error,
            BatchError::InconsistentRecordCount {
                record_count: count,
                last_offset_delta: delta
            },
            "count {count}, delta {delta}"
        );
        assert_eq!(error.code(), 87);
    }
}

#[test]
fn stored_batches_may_hold_fewer_records_than_offsets() {
    // What compaction leaves behind: an empty batch keeping its offsets.
    let mut batch = RawBatch::plain(0);
    batch.last_offset_delta = 9;
    let info = validate_batch(&batch.encode()).expect("plausible");
    assert_eq!(info.record_count, 0);
    let mut batch = RawBatch::plain(2);
    batch.last_offset_delta = 1;
    batch.record_count = 3;
    assert!(matches!(
        validate_batch(&batch.encode()),
        Err(BatchError::InconsistentRecordCount { .. })
    ));
    batch.record_count = -1;
    assert_eq!(
        validate_batch(&batch.encode()).map_err(|e| e.code()),
        Err(87)
    );
}

#[test]
fn an_uncompressed_count_the_bytes_cannot_hold_is_invalid_record() {
    let mut batch = RawBatch::plain(1);
    batch.records = vec![0; 13]; // room for one 7-byte record, not two
    batch.record_count = 2;
    batch.last_offset_delta = 1;
    assert!(matches!(
        produce(&batch.encode()),
        Err(BatchError::InconsistentRecordCount { .. })
    ));
    // Compressed records can be far smaller than their count.
    batch.attributes = 1;
    batch.record_count = 1_000;
    batch.last_offset_delta = 999;
    assert!(produce(&batch.encode()).is_ok());
}

#[test]
fn control_batches_from_clients_are_invalid_record() {
    let mut batch = RawBatch::plain(1);
    batch.attributes = 0b0011_0000;
    batch.producer_id = 1;
    batch.producer_epoch = 0;
    batch.base_sequence = 0;
    assert_eq!(produce(&batch.encode()), Err(BatchError::ControlBatch));
    assert_eq!(produce_code(&batch.encode()), 87);
    assert!(validate_batch(&batch.encode()).is_ok_and(|info| info.control));
}

#[test]
fn an_idempotent_batch_needs_a_sequence() {
    let mut batch = RawBatch::plain(1);
    batch.producer_id = 77;
    batch.producer_epoch = 0;
    batch.base_sequence = -1;
    assert_eq!(
        produce(&batch.encode()),
        Err(BatchError::InvalidSequence {
            producer_id: 77,
            base_sequence: -1
        })
    );
    assert_eq!(produce_code(&batch.encode()), 87);
}

#[test]
fn zstd_needs_produce_v7() {
    let mut batch = RawBatch::plain(1);
    batch.attributes = 4;
    let bytes = batch.encode();
    let v6 = ProduceCheck {
        produce_version: 6,
        ..PRODUCE_V9
    };
    let error = validate_produce_records(&bytes, v6).expect_err("zstd on v6");
    assert_eq!(
        error,
        BatchError::ZstdRequiresNewerProduce { produce_version: 6 }
    );
    assert_eq!(error.code(), 76);
    let v7 = ProduceCheck {
        produce_version: 7,
        ..PRODUCE_V9
    };
    let info = validate_produce_records(&bytes, v7).expect("zstd on v7");
    assert_eq!(info.compression, Compression::Zstd);
}

#[test]
fn every_error_maps_to_the_documented_kafka_code() {
    let cases: [(BatchError, i16); 16] = [
        (BatchError::Empty, 87),
        (
            BatchError::Truncated {
                needed: 70,
                available: 60,
            },
            87,
        ),
        (
            BatchError::TrailingBytes {
                position: 70,
                len: 3,
            },
            2,
        ),
        (
            BatchError::LengthTooSmall {
                length: 1,
                minimum: 14,
            },
            2,
        ),
        (BatchError::InvalidMagic { magic: 3 }, 2),
        (BatchError::LegacyMagic { magic: 1 }, 87),
        (
            BatchError::CrcMismatch {
                stored: 1,
                computed: 2,
            },
            2,
        ),
        (BatchError::UnknownCompression { codec: 6 }, 2),
        (
            BatchError::ZstdRequiresNewerProduce { produce_version: 3 },
            76,
        ),
        (
            BatchError::InconsistentRecordCount {
                record_count: 0,
                last_offset_delta: 0,
            },
            87,
        ),
        (BatchError::MultipleBatches, 87),
        (BatchError::NonZeroBaseOffset { base_offset: 1 }, 87),
        (BatchError::TooLarge { size: 2, max: 1 }, 10),
        (BatchError::ControlBatch, 87),
        (
            BatchError::InvalidSequence {
                producer_id: 1,
                base_sequence: -1,
            },
            87,
        ),
        (BatchError::LegacyMagic { magic: 0 }, 87),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        version in any::<i16>(),
        max in 0_usize..2_000,
    ) {
        let _ = validate_record_set(&bytes);
        let _ = validate_batch(&bytes);
        let check = ProduceCheck { produce_version: version, message_max_bytes: max };
        let _ = validate_produce_records(&bytes, check);
        let mut copy = bytes.clone();
        let _ = set_base_offset(&mut copy, 1);
        let _ = set_partition_leader_epoch(&mut copy, 1);
    }

    #[test]
    fn mutated_valid_batches_never_panic(
        edits in proptest::collection::vec((0_usize..200, any::<u8>()), 0..8),
        cut in 0_usize..200,
        repeat in 1_usize..3,
    ) {
        let mut bytes = client_batch(3, 5, 0).repeat(repeat);
        for (at, value) in edits {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        let _ = validate_record_set(&bytes);
        let _ = produce(&bytes);
    }

    #[test]
    fn any_change_under_the_crc_is_detected(
        count in 1_usize..5,
        offset in 0_usize..10_000,
        flip in 1_u8..=255,
    ) {
        let mut bytes = client_batch(count, 3, 0);
        let at = CRC_START + offset % (bytes.len() - CRC_START);
        bytes[at] ^= flip;
        let crc_error = matches!(validate_batch(&bytes), Err(BatchError::CrcMismatch { .. }));
        prop_assert!(crc_error);
        prop_assert_eq!(produce_code(&bytes), 2);
    }

    #[test]
    fn header_fields_round_trip(
        base_offset in any::<i64>(),
        leader_epoch in any::<i32>(),
        first_timestamp in any::<i64>(),
        max_timestamp in any::<i64>(),
        producer_id in any::<i64>(),
        producer_epoch in any::<i16>(),
        base_sequence in any::<i32>(),
        count in 1_i32..50,
    ) {
        let mut batch = RawBatch::plain(count);
        batch.base_offset = base_offset;
        batch.partition_leader_epoch = leader_epoch;
        batch.first_timestamp = first_timestamp;
        batch.max_timestamp = max_timestamp;
        batch.producer_id = producer_id;
        batch.producer_epoch = producer_epoch;
        batch.base_sequence = base_sequence;
        let bytes = batch.encode();
        let info = validate_batch(&bytes).expect("valid");
        prop_assert_eq!(info.size, bytes.len());
        prop_assert_eq!(info.base_offset, base_offset);
        prop_assert_eq!(info.partition_leader_epoch, leader_epoch);
        prop_assert_eq!(info.first_timestamp, first_timestamp);
        prop_assert_eq!(info.max_timestamp, max_timestamp);
        prop_assert_eq!(info.producer_id, producer_id);
        prop_assert_eq!(info.producer_epoch, producer_epoch);
        prop_assert_eq!(info.base_sequence, base_sequence);
        prop_assert_eq!(info.record_count, count);
    }
}

/// One client batch whose record `i` has a key unless `keyless(i)`.
fn batch_with_keys(
    count: usize,
    compression: Compression,
    keyless: impl Fn(usize) -> bool,
) -> Vec<u8> {
    client_records(count, compression, keyless, |_| 1_700_000_000_000)
}

/// One client batch whose record `i` has a key unless `keyless(i)` and the
/// timestamp `timestamp(i)`.
fn client_records(
    count: usize,
    compression: Compression,
    keyless: impl Fn(usize) -> bool,
    timestamp: impl Fn(usize) -> i64,
) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: (i as i32).wrapping_sub(1),
            timestamp: timestamp(i),
            key: (!keyless(i)).then(|| Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; 100])),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encoding records");
    buf.to_vec()
}

#[test]
fn keyless_records_are_found_by_batch_index_whatever_the_codec() {
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = batch_with_keys(100, compression, |i| i % 10 == 0);
        let expected: Vec<i32> = (0..10).map(|i| i * 10).collect();
        assert_eq!(keyless_records(&batch), Ok(expected), "{compression:?}");
        let keyed = batch_with_keys(5, compression, |_| false);
        assert_eq!(keyless_records(&keyed), Ok(Vec::new()), "{compression:?}");
    }
}

#[test]
fn records_that_do_not_decode_are_corrupt() {
    let mut batch = batch_with_keys(3, Compression::Lz4, |_| false);
    let last = batch.len() - 1;
    batch[70..=last].fill(0xff);
    let error = keyless_records(&batch).expect_err("garbage after the header");
    assert_eq!(error.error(), ResponseError::CorruptMessage);
}

/// Found by `fuzz/` (record_batch): an uncompressed batch whose first
/// record declares 2^27 headers. `kafka-protocol`'s decoder reserved a map
/// for them (36 GB) and the allocation aborted the process. The batch as
/// the fuzzer sent it; its CRC is repaired below, as the fuzz target does.
const FUZZ_HUGE_HEADER_COUNT: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x61, 0xff, 0xff, 0xff, 0xff,
    0x02, 0x23, 0xea, 0xe3, 0x9b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x8b, 0xcf,
    0xe5, 0x68, 0x00, 0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x1e, 0x0f, 0xf8,
    0xff, 0x00, 0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0xff, 0x20, 0x30, 0x00, 0x1e, 0x00, 0x02,
    0x04, 0x02, 0x6b, 0x31, 0x0e, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x20, 0x31, 0x00, 0x1e, 0x00, 0x04,
    0x04, 0x04, 0x6b, 0x32, 0x0e, 0x76, 0x61, 0x6c, 0x75, 0x65, 0x20, 0x32, 0x00,
];

fn with_repaired_crc(mut batch: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn a_record_declaring_billions_of_headers_is_read_without_allocating_for_them() {
    let batch = with_repaired_crc(FUZZ_HUGE_HEADER_COUNT.to_vec());
    let check = ProduceCheck {
        produce_version: 9,
        message_max_bytes: 1 << 20,
    };
    validate_produce_records(&batch, check).expect("a valid header");
    // Keys are all that is read: the header count is skipped with the rest
    // of its record, by the record's length. Every record has a key.
    assert_eq!(keyless_records(&batch), Ok(Vec::new()));
}

/// A batch header claiming `count` records over `records` (CRC computed).
fn claiming(count: i32, compression: Compression, records: &[u8]) -> Vec<u8> {
    let source = batch_with_keys(1, compression, |_| false);
    let mut batch = source[..BATCH_HEADER_LEN].to_vec();
    batch.extend_from_slice(records);
    let length = i32::try_from(batch.len() - LOG_OVERHEAD).expect("small");
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    with_repaired_crc(batch)
}

#[test]
fn a_compressed_batch_claiming_billions_of_records_is_refused_without_allocating_for_them() {
    for compression in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let source = batch_with_keys(3, compression, |i| i == 1);
        let batch = claiming(i32::MAX, compression, &source[BATCH_HEADER_LEN..]);
        let check = ProduceCheck {
            produce_version: 9,
            message_max_bytes: 1 << 20,
        };
        validate_produce_records(&batch, check).expect("a plausible header");
        let error = keyless_records(&batch).expect_err("three records, not two billion");
        assert_eq!(
            error.error(),
            ResponseError::CorruptMessage,
            "{compression:?}"
        );
    }
}

#[test]
fn records_that_decompress_beyond_the_cap_are_refused() {
    // Minimal keyless records: length 6, attributes, timestamp and offset
    // deltas 0, null key, null value, no headers.
    let record = [12_u8, 0, 0, 0, 1, 1, 0];
    const CAP: u64 = 1 << 20;
    let count = usize::try_from(CAP).expect("fits") / record.len() + 1;
    let plain: Vec<u8> = record.repeat(count);
    let compressed = zstd::encode_all(&plain[..], 3).expect("zstd");
    assert!(
        compressed.len() * 100 < plain.len(),
        "{} bytes",
        compressed.len()
    );
    let batch = claiming(
        i32::try_from(count).expect("fits"),
        Compression::Zstd,
        &compressed,
    );
    // A window that refuses nothing but makes the walk read every record.
    let every_record = window(i64::MAX - 1, i64::MAX);
    let within = walk::record_errors_within(&batch[..], every_record, CAP * 2)
        .expect("within twice the cap");
    assert_eq!(within, Vec::new());
    let error = walk::record_errors_within(&batch, every_record, CAP).expect_err("beyond the cap");
    assert_eq!(error.error(), ResponseError::CorruptMessage);
    assert!(error.to_string().contains("more than"), "{error}");
}

#[test]
fn a_stored_batch_crc_from_its_prefix_is_the_crc_of_every_byte() {
    for count in [1, 3, 200] {
        let mut batch = client_batch(count, 7, 0);
        // The base offset is outside the batch's own CRC; it still counts.
        batch[..8].copy_from_slice(&12_345i64.to_be_bytes());
        assert_eq!(
            stored_batch_crc32c(&batch[..BATCH_PREFIX_BEFORE_CRC_COVERAGE], batch.len()),
            Some(crc32c::crc32c(&batch))
        );
    }
}

#[test]
fn a_prefix_that_is_not_one_v2_batch_of_that_length_gives_no_crc() {
    let batch = client_batch(3, 7, 0);
    let prefix = &batch[..BATCH_PREFIX_BEFORE_CRC_COVERAGE];
    // Two batches back to back, a short prefix, another magic.
    assert_eq!(stored_batch_crc32c(prefix, batch.len() * 2), None);
    assert_eq!(stored_batch_crc32c(&prefix[..20], batch.len()), None);
    let mut legacy = prefix.to_vec();
    legacy[16] = 1;
    assert_eq!(stored_batch_crc32c(&legacy, batch.len()), None);
}

const KEYS_REQUIRED: RecordRules = RecordRules {
    keys_required: true,
    timestamps: None,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

const NOW: i64 = 1_800_000_000_000;

fn window(before_max_ms: i64, after_max_ms: i64) -> RecordRules {
    RecordRules {
        keys_required: false,
        timestamps: Some(TimestampWindow {
            now: NOW,
            before_max_ms,
            after_max_ms,
        }),
    }
}

#[test]
fn timestamps_outside_the_window_are_found_by_batch_index_whatever_the_codec() {
    let timestamps = [
        NOW - 10_000,
        NOW,
        NOW + 10_000,
        -1,
        NOW - 5_000,
        NOW + 5_001,
    ];
    for compression in CODECS {
        let batch = client_records(timestamps.len(), compression, |_| false, |i| timestamps[i]);
        let errors = record_errors(&batch, window(5_000, 5_000)).expect("decodes");
        let out_of_range = |index: i32| RecordError {
            index,
            fault: RecordFault::TimestampOutOfRange {
                timestamp: timestamps[index as usize],
                offset: i64::from(index),
            },
        };
        assert_eq!(
            errors,
            vec![out_of_range(0), out_of_range(2), out_of_range(5)],
            "{compression:?}"
        );
    }
}

#[test]
fn a_record_without_a_key_and_with_a_bad_timestamp_is_one_missing_key_error() {
    let batch = client_records(3, Compression::None, |i| i != 1, |_| NOW - 10_000);
    let rules = RecordRules {
        keys_required: true,
        ..window(1_000, 1_000)
    };
    let faults: Vec<_> = record_errors(&batch, rules)
        .expect("decodes")
        .into_iter()
        .map(|error| (error.index, error.fault))
        .collect();
    assert_eq!(faults[0], (0, RecordFault::MissingKey));
    assert!(matches!(
        faults[1],
        (1, RecordFault::TimestampOutOfRange { .. })
    ));
    assert_eq!(faults[2], (2, RecordFault::MissingKey));
    assert_eq!(faults.len(), 3);
}

#[test]
fn records_are_not_read_unless_a_rule_could_refuse_one() {
    // Garbage where the records should be: only a walk would notice.
    let mut batch = client_records(3, Compression::Lz4, |_| false, |_| NOW);
    let last = batch.len() - 1;
    batch[70..=last].fill(0xff);
    let batch = with_repaired_crc(batch);
    assert_eq!(
        record_errors(&batch, RecordRules::default()),
        Ok(Vec::new())
    );
    // Only the future is bounded and the largest timestamp is within it.
    assert_eq!(
        record_errors(&batch, window(i64::MAX, 1_000)),
        Ok(Vec::new())
    );
    // The past is bounded: every record must be read.
    let error = record_errors(&batch, window(1_000, i64::MAX)).expect_err("walked");
    assert_eq!(error.error(), ResponseError::CorruptMessage);
}

#[test]
fn an_unbounded_window_accepts_every_timestamp() {
    let unbounded = TimestampWindow {
        now: NOW,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
    };
    for timestamp in [i64::MIN / 2, -2, -1, 0, NOW, i64::MAX] {
        assert!(unbounded.accepts(timestamp), "{timestamp}");
    }
}

#[test]
fn a_log_append_stamp_keeps_the_batch_valid_whatever_its_size_and_codec() {
    for compression in CODECS {
        for count in [1, 3, 200] {
            let batch = client_records(count, compression, |_| false, |i| 1_000 + i as i64);
            let mut stamped = batch.clone();
            stamp_log_append_time(&mut stamped, NOW).expect("a whole header");
            let crc = u32::from_be_bytes(stamped[17..21].try_into().expect("4 bytes"));
            assert_eq!(
                crc,
                crc32c::crc32c(&stamped[CRC_START..]),
                "{compression:?} {count}"
            );
            let check = ProduceCheck {
                produce_version: 9,
                message_max_bytes: 1 << 20,
            };
            let info = validate_produce_records(&stamped, check).expect("valid");
            let original = validate_produce_records(&batch, check).expect("valid");
            assert_eq!(info.timestamp_type, TimestampType::LogAppend);
            assert_eq!(info.max_timestamp, NOW);
            assert_eq!(info.first_timestamp, original.first_timestamp);
            assert_eq!(info.compression, original.compression);
            assert_eq!(
                stamped[STAMPED_END..],
                batch[STAMPED_END..],
                "records untouched"
            );
        }
    }
}

#[test]
fn a_log_append_stamp_refuses_a_buffer_shorter_than_a_header() {
    let batch = batch_with_keys(1, Compression::None, |_| false);
    let mut short = batch[..BATCH_HEADER_LEN - 1].to_vec();
    assert_eq!(
        stamp_log_append_time(&mut short, NOW),
        Err(ShortBuffer {
            needed: BATCH_HEADER_LEN,
            available: BATCH_HEADER_LEN - 1
        })
    );
    assert_eq!(short, batch[..BATCH_HEADER_LEN - 1], "left as it was");
}

proptest! {
    #[test]
    fn a_log_append_stamp_crc_is_the_crc_of_every_byte(
        attributes in 0_i16..8,
        first in any::<i64>(),
        max in any::<i64>(),
        stamp in any::<i64>(),
        records in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut batch = RawBatch::plain(1);
        batch.attributes = attributes;
        batch.first_timestamp = first;
        batch.max_timestamp = max;
        batch.records = records;
        let mut bytes = batch.encode();
        stamp_log_append_time(&mut bytes, stamp).expect("a whole header");
        let crc = u32::from_be_bytes(bytes[17..21].try_into().expect("4 bytes"));
        prop_assert_eq!(crc, crc32c::crc32c(&bytes[CRC_START..]));
        prop_assert_eq!(i64::from_be_bytes(bytes[35..43].try_into().expect("8 bytes")), stamp);
    }
}

#[test]
fn record_errors_stop_at_the_most_a_response_lists() {
    // 150,000 keyless records in a small zstd batch: as many errors would be
    // gigabytes of strings in the response.
    let record = [12_u8, 0, 0, 0, 1, 1, 0];
    let count = 150_000;
    let compressed = zstd::encode_all(&record.repeat(count)[..], 3).expect("zstd");
    let batch = claiming(
        i32::try_from(count).expect("fits"),
        Compression::Zstd,
        &compressed,
    );
    let errors = record_errors(&batch, KEYS_REQUIRED).expect("decodes");
    assert_eq!(errors.len(), MAX_RECORD_ERRORS);
    assert_eq!(
        errors.last().map(|e| e.index),
        Some(MAX_RECORD_ERRORS as i32 - 1)
    );
}
