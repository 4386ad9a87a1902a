//! WriteTxnMarkers (key 27): what Kafka's coordinators send partition
//! leaders, and what the Admin API's abortTransaction
//! (`kafka-transactions.sh abort`) sends to end a hanging transaction.
//!
//! Served v1 (Kafka 4 dropped v0). cxlkafka's coordinators write their
//! markers themselves, so only operators send it. The producer's open
//! transaction is ended in all its partitions through the log like any
//! coordinator step (an abort bumps the producer's epoch, fencing it), so
//! the transaction table and every partition's last stable offset stay
//! consistent; a producer with nothing open is answered without a write.
//! Needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED, 31),
//! as in Kafka. Per partition: UNKNOWN_TOPIC_OR_PARTITION (3), or the
//! marker's answer (INVALID_PRODUCER_EPOCH, 47, for an older epoch than the
//! transaction's).

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, INT16, INT32, INT64};
use crate::telemetry;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::WriteTxnMarkers,
    name: "WriteTxnMarkers",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::FixedArray(4)),
];
const MARKER: &[Field] = &[
    Field::always(INT64),
    Field::always(INT16),
    Field::always(BOOLEAN),
    Field::always(Kind::Array(TOPIC)),
    Field::always(INT32),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Array(MARKER))];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: WriteTxnMarkersRequest = request.decode_bounded(REQUEST)?;
        let allowed = request.authorized(&ctx, AclOperation::ClusterAction, Resource::Cluster);
        let responder = request.responder();
        Ok(Reply::deferred(async move {
            let mut response = WriteTxnMarkersResponse::default();
            for marker in body.markers {
                let outcome = if allowed {
                    ctx.transactions
                        .end_for_operator(
                            &ctx.log,
                            marker.producer_id.0,
                            marker.producer_epoch,
                            marker.transaction_result,
                        )
                        .await
                } else {
                    Err(ResponseError::ClusterAuthorizationFailed)
                };
                let mut result = WritableTxnMarkerResult::default();
                result.producer_id = marker.producer_id;
                for topic in marker.topics {
                    let known = ctx.log.topic(&topic.name);
                    let mut entry = WritableTxnMarkerTopicResult::default();
                    entry.name = topic.name;
                    for index in topic.partition_indexes {
                        let exists = known.as_ref().is_some_and(|known| {
                            u32::try_from(index).is_ok_and(|i| known.stream(i).is_some())
                        });
                        let mut partition = WritableTxnMarkerPartitionResult::default();
                        partition.partition_index = index;
                        partition.error_code = match &outcome {
                            Err(ResponseError::ClusterAuthorizationFailed) => {
                                ResponseError::ClusterAuthorizationFailed.code()
                            }
                            _ if !exists => ResponseError::UnknownTopicOrPartition.code(),
                            Ok(()) => 0,
                            Err(error) => error.code(),
                        };
                        telemetry::record_error_code(ENTRY.name, partition.error_code);
                        entry.partitions.push(partition);
                    }
                    result.topics.push(entry);
                }
                response.markers.push(result);
            }
            responder.frame(&response).map(Some)
        }))
    })
}
