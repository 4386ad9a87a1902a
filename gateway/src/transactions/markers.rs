//! Transaction markers: the control batch a coordinator writes into every
//! partition of a transaction when it ends (Kafka's `EndTransactionMarker`):
//! one control record whose key is (version 0, type 0 abort / 1 commit)
//! and whose value is (version 0, coordinator epoch), in a batch with the
//! transactional and control attributes, the producer's id and epoch, and
//! no sequence.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Kafka's control record type of a commit marker.
const COMMIT: i16 = 1;
/// Kafka's control record type of an abort marker.
const ABORT: i16 = 0;
/// The coordinator epoch written into markers: cxlkafka's coordinators
/// are fenced through the log (`TransactionRecord::previous_sequence`),
/// not by an epoch clients or partitions check.
const COORDINATOR_EPOCH: i32 = 0;

/// The marker batch ending a transaction of `producer_id` at `epoch`.
pub fn marker_batch(producer_id: i64, producer_epoch: i16, commit: bool, timestamp: i64) -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if commit { COMMIT } else { ABORT });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(COORDINATOR_EPOCH);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: IndexMap::new(),
    };
    let mut buffer = BytesMut::with_capacity(96);
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // One uncompressed record always encodes.
    if RecordBatchEncoder::encode(&mut buffer, [&record], &options).is_err() {
        tracing::error!("a transaction marker did not encode");
    }
    buffer.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn a_marker_is_a_transactional_control_batch_without_sequence() {
        let mut bytes = marker_batch(42, 3, true, 1_700_000_000_000);
        let info = crate::records::validate_batch(&bytes).expect("valid batch");
        assert!(info.transactional && info.control);
        let records = RecordBatchDecoder::decode(&mut bytes).expect("decodes");
        let record = &records.records[0];
        assert_eq!((record.producer_id, record.producer_epoch), (42, 3));
        assert_eq!(record.sequence, -1);
        assert_eq!(record.key.as_deref(), Some(&[0, 0, 0, 1][..]));
        let mut abort = marker_batch(42, 3, false, 0);
        let records = RecordBatchDecoder::decode(&mut abort).expect("decodes");
        assert_eq!(records.records[0].key.as_deref(), Some(&[0, 0, 0, 0][..]));
    }
}
