//! AddPartitionsToTxn (key 24): partitions join the producer's
//! transaction (beginning it if none is open).
//!
//! Served v0-5. Up to v3 a producer adds partitions of its one
//! transaction. v4+ is what brokers send a coordinator under KIP-890's
//! verification: several transactions, each either added or, with
//! `verify_only`, checked (a partition outside the open transaction is
//! INVALID_TXN_STATE (48)).
//!
//! Per partition, as Kafka: UNKNOWN_TOPIC_OR_PARTITION (3) for one that
//! does not exist and TOPIC_AUTHORIZATION_FAILED (29) without WRITE on its
//! topic, the others of the request then OPERATION_NOT_ATTEMPTED (55);
//! otherwise every partition gets the transaction's answer: NOT_COORDINATOR
//! (16), PRODUCER_FENCED (90, INVALID_PRODUCER_EPOCH 47 below v2),
//! INVALID_PRODUCER_ID_MAPPING (49), CONCURRENT_TRANSACTIONS (51) while the
//! previous transaction completes, TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//! (53).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, BOOLEAN, INT16, INT64};
use crate::telemetry;
use crate::transactions::client_error;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::AddPartitionsToTxn,
    name: "AddPartitionsToTxn",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

const TOPIC: &[Field] = &[
    Field::always(Kind::String),
    Field::always(Kind::FixedArray(4)),
];
const TRANSACTION: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT64),
    Field::always(INT16),
    Field::always(BOOLEAN),
    Field::always(Kind::Array(TOPIC)),
];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::since(Kind::Array(TRANSACTION), 4),
    Field::new(Kind::String, 0, 3),
    Field::new(INT64, 0, 3),
    Field::new(INT16, 0, 3),
    Field::new(Kind::Array(TOPIC), 0, 3),
];

/// First version that carries PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

/// One transaction of a request, its partitions resolved.
struct Adding {
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
    /// The partitions' streams, when all exist and may be written.
    streams: Result<Vec<u32>, ()>,
    /// Per topic, per partition: an error found before the coordinator.
    early: Vec<Vec<Option<ResponseError>>>,
}

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: AddPartitionsToTxnRequest = request.decode_bounded(REQUEST)?;
        let transactions: Vec<(String, i64, i16, bool, Vec<AddPartitionsToTxnTopic>)> =
            if request.version >= 4 {
                body.transactions
                    .into_iter()
                    .map(|txn| {
                        (
                            txn.transactional_id.to_string(),
                            txn.producer_id.0,
                            txn.producer_epoch,
                            txn.verify_only,
                            txn.topics,
                        )
                    })
                    .collect()
            } else {
                vec![(
                    body.v3_and_below_transactional_id.to_string(),
                    body.v3_and_below_producer_id.0,
                    body.v3_and_below_producer_epoch,
                    false,
                    body.v3_and_below_topics,
                )]
            };
        let adding: Vec<Adding> = transactions
            .into_iter()
            .map(
                |(transactional_id, producer_id, producer_epoch, verify_only, topics)| {
                    resolve(
                        &ctx,
                        &request,
                        transactional_id,
                        producer_id,
                        producer_epoch,
                        verify_only,
                        topics,
                    )
                },
            )
            .collect();
        let responder = request.responder();
        let version = request.version;
        Ok(Reply::deferred(async move {
            let mut results = Vec::with_capacity(adding.len());
            for txn in adding {
                let answer = match &txn.streams {
                    Err(()) => None,
                    Ok(_) if !request_allowed(&txn) => None,
                    Ok(streams) if txn.verify_only => Some(verify(&ctx, &txn, streams)),
                    Ok(streams) => Some(
                        ctx.transactions
                            .add_partitions(
                                &ctx.log,
                                &txn.transactional_id,
                                txn.producer_id,
                                txn.producer_epoch,
                                streams,
                            )
                            .await,
                    ),
                };
                results.push(answer_transaction(&txn, answer, version));
            }
            let mut response = AddPartitionsToTxnResponse::default();
            if version >= 4 {
                response.results_by_transaction = results;
            } else if let Some(result) = results.pop() {
                response.results_by_topic_v3_and_below = result.topic_results;
            }
            let codes = response
                .results_by_transaction
                .iter()
                .flat_map(|txn| &txn.topic_results)
                .chain(&response.results_by_topic_v3_and_below)
                .flat_map(|topic| &topic.results_by_partition)
                .map(|partition| partition.partition_error_code);
            for code in codes {
                telemetry::record_error_code(ENTRY.name, code);
            }
            responder.frame(&response).map(Some)
        }))
    })
}

/// Whether no partition of the transaction had an error of its own.
fn request_allowed(txn: &Adding) -> bool {
    txn.early.iter().flatten().all(Option::is_none)
}

/// Resolves a transaction's partitions and checks what can be checked
/// before the coordinator.
fn resolve(
    ctx: &GatewayContext,
    request: &ApiRequest,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
) -> Adding {
    let id_allowed = request.authorized(
        ctx,
        AclOperation::Write,
        Resource::TransactionalId(&transactional_id),
    );
    let mut streams = Vec::new();
    let mut early = Vec::with_capacity(topics.len());
    for topic in &topics {
        let writable = request.authorized(ctx, AclOperation::Write, Resource::Topic(&topic.name));
        let known = ctx.log.topic(&topic.name);
        let mut errors = Vec::with_capacity(topic.partitions.len());
        for &partition in &topic.partitions {
            let stream = known.as_ref().and_then(|known| {
                u32::try_from(partition)
                    .ok()
                    .and_then(|index| known.stream(index))
            });
            errors.push(match stream {
                _ if !id_allowed => Some(ResponseError::TransactionalIdAuthorizationFailed),
                _ if !writable => Some(ResponseError::TopicAuthorizationFailed),
                None => Some(ResponseError::UnknownTopicOrPartition),
                Some(stream) => {
                    streams.push(stream);
                    None
                }
            });
        }
        early.push(errors);
    }
    let any_error = early.iter().flatten().any(Option::is_some);
    Adding {
        transactional_id,
        producer_id,
        producer_epoch,
        verify_only,
        topics,
        streams: if any_error { Err(()) } else { Ok(streams) },
        early,
    }
}

/// KIP-890 verification: every partition must be in the open transaction.
fn verify(ctx: &GatewayContext, txn: &Adding, streams: &[u32]) -> Result<(), ResponseError> {
    crate::transactions::TransactionCoordinator::check_coordinator(
        ctx.log.as_ref(),
        &txn.transactional_id,
    )?;
    let store = ctx.log.transactions();
    match store.get(&txn.transactional_id) {
        Some(current)
            if current.record.producer_id == txn.producer_id
                && current.record.producer_epoch == txn.producer_epoch =>
        {
            let all_held = streams
                .iter()
                .all(|&stream| store.holds(&txn.transactional_id, txn.producer_id, stream));
            if all_held {
                Ok(())
            } else {
                Err(ResponseError::InvalidTxnState)
            }
        }
        Some(current) if current.record.producer_id == txn.producer_id => {
            Err(ResponseError::ProducerFenced)
        }
        _ => Err(ResponseError::InvalidProducerIdMapping),
    }
}

/// The per-partition answers of one transaction: its early errors (the
/// rest OPERATION_NOT_ATTEMPTED), or the coordinator's answer for all.
fn answer_transaction(
    txn: &Adding,
    answer: Option<Result<(), ResponseError>>,
    version: i16,
) -> AddPartitionsToTxnResult {
    let mut result = AddPartitionsToTxnResult::default();
    result.transactional_id =
        kafka_protocol::messages::TransactionalId(txn.transactional_id.clone().into());
    for (topic, errors) in txn.topics.iter().zip(&txn.early) {
        let mut entry = AddPartitionsToTxnTopicResult::default();
        entry.name = topic.name.clone();
        for (&partition, early) in topic.partitions.iter().zip(errors) {
            let mut partition_result = AddPartitionsToTxnPartitionResult::default();
            partition_result.partition_index = partition;
            partition_result.partition_error_code = match (&answer, early) {
                (_, Some(error)) => error.code(),
                (Some(outcome), None) => client_error(outcome.err(), version, FENCED_SINCE),
                (None, None) => ResponseError::OperationNotAttempted.code(),
            };
            entry.results_by_partition.push(partition_result);
        }
        result.topic_results.push(entry);
    }
    result
}
