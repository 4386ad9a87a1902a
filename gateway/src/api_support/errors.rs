//! The one place where what the storage side answers becomes a Kafka error:
//! sequencer statuses (carried in `Completion::error`) and the reasons a
//! batch could not be published ([`AppendError`]).
//!
//! | storage answer | Kafka error | why |
//! |---|---|---|
//! | `UNKNOWN_STREAM` | UNKNOWN_TOPIC_OR_PARTITION (3) | the topic was deleted (or shrank) after the handler looked it up |
//! | `OUT_OF_ORDER_SEQUENCE` | OUT_OF_ORDER_SEQUENCE_NUMBER (45) | a gap in an idempotent producer's sequence, as Kafka answers |
//! | `PRODUCER_FENCED` | INVALID_PRODUCER_EPOCH (47) | an older epoch of an idempotent producer; Kafka answers 47 to Produce (PRODUCER_FENCED, 90, belongs to transactional APIs) |
//! | `CORRUPT_BATCH` | CORRUPT_MESSAGE (2) | the sequencer could not read what was published |
//! | `INVALID_CONTROL` | INVALID_REQUEST (42) | a control record the sequencer refused to decode |
//! | `TOPIC_EXISTS` | TOPIC_ALREADY_EXISTS (36) | CreateTopic for a live name |
//! | `UNKNOWN_TOPIC` | UNKNOWN_TOPIC_OR_PARTITION (3) | a control record for a topic that is gone |
//! | `CATALOG_FULL` | POLICY_VIOLATION (44) | no catalog slot left: a cluster limit, which Kafka reports as a policy |
//! | `INVALID_PARTITIONS` | INVALID_PARTITIONS (37) | a partition count out of range or not an increase |
//! | any other status | UNKNOWN_SERVER_ERROR (-1) | a sequencer newer than this gateway |
//! | [`AppendError::Full`] | REQUEST_TIMED_OUT (7) | no region space, or no answer, within the request's timeout |
//! | [`AppendError::ReplicaTimeout`] | REQUEST_TIMED_OUT (7) | acks=all: ordered, but not on enough disks within the request's timeout |
//! | not enough live gateways for the topic's replication factor | NOT_ENOUGH_REPLICAS (19) | acks=all, checked before publishing, as Kafka checks min.insync.replicas |
//! | [`AppendError::TooLarge`] | MESSAGE_TOO_LARGE (10) | larger than the arena can ever hold |
//! | [`AppendError::ShuttingDown`] | NOT_LEADER_OR_FOLLOWER (6) | the client retries on another gateway after refreshing Metadata |
//! | [`AppendError::RegionLost`] | NOT_LEADER_OR_FOLLOWER (6) | this gateway's region was unlinked or replaced: it is about to leave, as one shutting down |
//!
//! InitProducerId reports append failures its own way ([`allocation_error`]),
//! and so do offset commits ([`commit_error`]).
//!
//! Admin requests (CreateTopics, DeleteTopics, CreatePartitions, the config
//! APIs) publish control records; [`control_append_error`] maps their
//! publishing failures, differing in one row: a gateway shutting down
//! answers NOT_CONTROLLER (41), on which admin clients refresh Metadata and
//! resend to the controller it names, as they would to a Kafka controller
//! that lost its role.

use cxlkafka_log::layout::Completion;
use cxlkafka_sequencer::status;
use kafka_protocol::ResponseError;

use crate::cluster::AppendError;

/// The Kafka error for a sequencer status, or `None` for [`status::OK`].
pub fn status_error(code: i32) -> Option<ResponseError> {
    Some(match code {
        status::OK => return None,
        status::UNKNOWN_STREAM | status::UNKNOWN_TOPIC => ResponseError::UnknownTopicOrPartition,
        status::OUT_OF_ORDER_SEQUENCE => ResponseError::OutOfOrderSequenceNumber,
        status::PRODUCER_FENCED => ResponseError::InvalidProducerEpoch,
        status::CORRUPT_BATCH => ResponseError::CorruptMessage,
        status::INVALID_CONTROL => ResponseError::InvalidRequest,
        status::TOPIC_EXISTS => ResponseError::TopicAlreadyExists,
        status::CATALOG_FULL => ResponseError::PolicyViolation,
        status::INVALID_PARTITIONS => ResponseError::InvalidPartitions,
        status::OFFSET_OUT_OF_RANGE => ResponseError::OffsetOutOfRange,
        _ => ResponseError::UnknownServerError,
    })
}

/// The Kafka error for a batch that could not be published or answered:
/// KAFKA_STORAGE_ERROR (56, retriable) when this gateway's disk tier cannot
/// write, as Kafka answers when a partition's log dir fails.
pub fn append_error(error: &AppendError) -> ResponseError {
    match error {
        AppendError::Full | AppendError::ReplicaTimeout => ResponseError::RequestTimedOut,
        AppendError::Storage(_) => ResponseError::KafkaStorageError,
        AppendError::TooLarge(_) => ResponseError::MessageTooLarge,
        AppendError::ShuttingDown | AppendError::RegionLost => ResponseError::NotLeaderOrFollower,
    }
}

/// The Kafka error for a control record (an admin change) that could not
/// be published or answered: as [`append_error`], except that a gateway
/// shutting down is NOT_CONTROLLER (41) and a record too large for the arena
/// (which admin handlers never build) INVALID_REQUEST (42).
pub fn control_append_error(error: &AppendError) -> ResponseError {
    match error {
        AppendError::Full | AppendError::ReplicaTimeout => ResponseError::RequestTimedOut,
        AppendError::Storage(_) => ResponseError::KafkaStorageError,
        AppendError::TooLarge(_) => ResponseError::InvalidRequest,
        AppendError::ShuttingDown | AppendError::RegionLost => ResponseError::NotController,
    }
}

/// The Kafka error for a producer id that could not be allocated: Kafka's
/// COORDINATOR_LOAD_IN_PROGRESS (14) when it has no id block yet (clients
/// retry), NOT_COORDINATOR (16) from a gateway shutting down (clients ask
/// another broker).
pub fn allocation_error(error: &AppendError) -> ResponseError {
    match error {
        AppendError::Full | AppendError::ReplicaTimeout | AppendError::Storage(_) => {
            ResponseError::CoordinatorLoadInProgress
        }
        AppendError::ShuttingDown | AppendError::RegionLost => ResponseError::NotCoordinator,
        AppendError::TooLarge(_) => ResponseError::UnknownServerError,
    }
}

/// The Kafka error for an offset commit (OffsetCommit, OffsetDelete,
/// DeleteGroups) that could not be published or answered, as Kafka maps
/// failed appends to its offsets topic: no space or no answer in time is
/// COORDINATOR_NOT_AVAILABLE (15) and a gateway shutting down
/// NOT_COORDINATOR (16), both retried by clients after a coordinator
/// lookup; a commit too large for the arena INVALID_COMMIT_OFFSET_SIZE
/// (28); a sequencer refusal as in [`status_error`].
pub fn commit_error(result: &Result<Completion, AppendError>) -> Option<ResponseError> {
    match result {
        Ok(completion) => status_error(completion.error),
        Err(AppendError::Full | AppendError::ReplicaTimeout | AppendError::Storage(_)) => {
            Some(ResponseError::CoordinatorNotAvailable)
        }
        Err(AppendError::ShuttingDown | AppendError::RegionLost) => {
            Some(ResponseError::NotCoordinator)
        }
        Err(AppendError::TooLarge(_)) => Some(ResponseError::InvalidCommitOffsetSize),
    }
}

/// The error of a whole append: the publishing failure, or the sequencer's
/// refusal in the completion; `None` when the batch was ordered.
pub fn completion_error(result: &Result<Completion, AppendError>) -> Option<ResponseError> {
    match result {
        Ok(completion) => status_error(completion.error),
        Err(error) => Some(append_error(error)),
    }
}

/// The numeric code of an optional error (0 for none).
pub fn code_of(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |error| error.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencer_statuses_map_to_kafkas_codes() {
        let code = |status| code_of(status_error(status));
        assert_eq!(code(status::OK), 0);
        assert_eq!(code(status::UNKNOWN_STREAM), 3);
        assert_eq!(code(status::OUT_OF_ORDER_SEQUENCE), 45);
        assert_eq!(code(status::PRODUCER_FENCED), 47);
        assert_eq!(code(status::CORRUPT_BATCH), 2);
        assert_eq!(code(status::TOPIC_EXISTS), 36);
        assert_eq!(code(status::UNKNOWN_TOPIC), 3);
        assert_eq!(code(status::INVALID_PARTITIONS), 37);
        assert_eq!(code(status::CATALOG_FULL), 44);
        assert_eq!(code(status::INVALID_CONTROL), 42);
        assert_eq!(code(9_999), -1);
    }

    #[test]
    fn append_errors_map_to_kafkas_codes() {
        assert_eq!(append_error(&AppendError::Full).code(), 7);
        assert_eq!(append_error(&AppendError::TooLarge(1 << 30)).code(), 10);
        assert_eq!(append_error(&AppendError::ShuttingDown).code(), 6);
        assert_eq!(append_error(&AppendError::RegionLost).code(), 6);
        let refused: Completion = Completion {
            error: status::OUT_OF_ORDER_SEQUENCE,
            ..bytemuck::Zeroable::zeroed()
        };
        assert_eq!(code_of(completion_error(&Ok(refused))), 45);
        assert_eq!(code_of(completion_error(&Err(AppendError::Full))), 7);
        assert_eq!(allocation_error(&AppendError::Full).code(), 14);
        assert_eq!(allocation_error(&AppendError::ShuttingDown).code(), 16);
    }

    #[test]
    fn offset_commits_that_fail_map_to_coordinator_codes() {
        let code = |result| code_of(commit_error(&result));
        assert_eq!(code(Err(AppendError::Full)), 15);
        assert_eq!(code(Err(AppendError::ShuttingDown)), 16);
        assert_eq!(code(Err(AppendError::RegionLost)), 16);
        assert_eq!(code(Err(AppendError::TooLarge(1 << 30))), 28);
        let ordered: Completion = bytemuck::Zeroable::zeroed();
        assert_eq!(code(Ok(ordered)), 0);
    }

    #[test]
    fn control_records_that_fail_to_publish_map_to_admin_codes() {
        assert_eq!(control_append_error(&AppendError::Full).code(), 7);
        assert_eq!(
            control_append_error(&AppendError::TooLarge(1 << 30)).code(),
            42
        );
        assert_eq!(control_append_error(&AppendError::ShuttingDown).code(), 41);
        assert_eq!(control_append_error(&AppendError::RegionLost).code(), 41);
    }
}
