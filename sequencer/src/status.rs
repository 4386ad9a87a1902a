//! The sequencer's answers, carried in `Completion::error`. The gateway maps
//! them to Kafka error codes in one place.

/// Ordered (or a duplicate answered with the original offsets).
pub const OK: i32 = 0;
/// The stream is not a live partition of a live topic.
pub const UNKNOWN_STREAM: i32 = 1;
/// An idempotent batch whose sequence is not the next expected one.
pub const OUT_OF_ORDER_SEQUENCE: i32 = 2;
/// An idempotent batch from an older producer epoch.
pub const PRODUCER_FENCED: i32 = 3;
/// A control record that does not decode.
pub const INVALID_CONTROL: i32 = 4;
/// CreateTopic for a name that is already live.
pub const TOPIC_EXISTS: i32 = 5;
/// A control record naming a topic that does not exist.
pub const UNKNOWN_TOPIC: i32 = 6;
/// No free catalog slot for another topic.
pub const CATALOG_FULL: i32 = 7;
/// A partition count of 0, above the per-topic limit, or not an increase.
pub const INVALID_PARTITIONS: i32 = 8;
/// A header or payload that cannot be read (out of bounds, recycled).
pub const CORRUPT_BATCH: i32 = 9;
/// DeleteRecords beyond the high watermark (or before -1).
pub const OFFSET_OUT_OF_RANGE: i32 = 10;
