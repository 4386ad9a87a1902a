//! DeleteRecords (key 21): moves partitions' log start offsets forward.
//!
//! Per partition, as Kafka answers: an unknown topic or partition gets
//! UNKNOWN_TOPIC_OR_PARTITION (3); an offset above the high watermark, or
//! negative other than -1 (meaning "up to the high watermark"), gets
//! OFFSET_OUT_OF_RANGE (1); the order topic `__cxlkafka_order`, whose start
//! follows the region's order log, gets POLICY_VIOLATION (44). Each change is
//! a `DeleteRecords` control record ordered by the sequencer, which stores
//! the new log start in the region, so every gateway refuses fetches below it
//! at once. A log start never moves backwards: the answer's low watermark is
//! the larger of the old start and the requested offset.

use std::sync::Arc;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::admin;
use crate::cluster::ORDER_TOPIC;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32, INT64};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DeleteRecords,
    name: "DeleteRecords",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const PARTITION: &[Field] = &[Field::always(INT32), Field::always(INT64)];
const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::Array(PARTITION)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(TOPIC)), Field::always(INT32)];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request).await })
}

async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DeleteRecordsRequest = request.decode_bounded(REQUEST)?;
    let deadline = admin::deadline(request.received_at, body.timeout_ms);
    let mut response = DeleteRecordsResponse::default();
    for topic in &body.topics {
        let known = ctx.log.topic(topic.name.as_str());
        let deletable = request.authorized(ctx, AclOperation::Delete, Resource::Topic(&topic.name));
        let mut result = DeleteRecordsTopicResult::default().with_name(topic.name.clone());
        for partition in &topic.partitions {
            let stream = known.as_ref().and_then(|t| {
                u32::try_from(partition.partition_index)
                    .ok()
                    .and_then(|p| t.stream(p))
            });
            let answer = match stream {
                _ if !deletable => Err(ResponseError::TopicAuthorizationFailed),
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(_) if topic.name.as_str() == ORDER_TOPIC => {
                    Err(ResponseError::PolicyViolation)
                }
                Some(_) if partition.offset < -1 => Err(ResponseError::OffsetOutOfRange),
                Some(stream) => {
                    let record = ControlRecord::DeleteRecords {
                        stream,
                        offset: partition.offset,
                    };
                    admin::apply(ctx, &record, deadline)
                        .await
                        .map(|completion| completion.base_offset)
                        .map_err(|failure| failure.error)
                }
            };
            let (code, low_watermark) = match answer {
                Ok(low_watermark) => (0, low_watermark),
                Err(error) => (error.code(), -1),
            };
            telemetry::record_error_code(ENTRY.name, code);
            result.partitions.push(
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(partition.partition_index)
                    .with_low_watermark(low_watermark)
                    .with_error_code(code),
            );
        }
        response.topics.push(result);
    }
    request.respond(&response)
}
