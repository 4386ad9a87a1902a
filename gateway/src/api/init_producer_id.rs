//! InitProducerId (key 22): producer ids for idempotent producers.
//!
//! Idempotence is on by default in Java producers and in librdkafka with
//! `enable.idempotence=true`; both ask for a producer id before their first
//! Produce. The sequencer hands out ids
//! ([`ControlRecord::AllocateProducerId`]; the completion's base offset is
//! the id), unique in the cluster and across sequencer failovers; the epoch
//! is 0. As in Kafka, a request without a transactional id always gets a
//! fresh id, whatever producer id and epoch (v3+) it carries.
//!
//! With a transactional id, the transaction coordinator answers
//! ([`crate::transactions::TransactionCoordinator::init_producer`]): the
//! id's producer id with its epoch bumped (a new id the first time), after
//! aborting a transaction an older instance left open, which fences that
//! instance. As Kafka: NOT_COORDINATOR (16) from a gateway that does not
//! coordinate the id; INVALID_TRANSACTION_TIMEOUT (50) for a
//! `transaction.timeout.ms` above `--transaction-max-timeout-ms` (or not
//! positive); PRODUCER_FENCED (90, INVALID_PRODUCER_EPOCH 47 below v4)
//! when the producer id and epoch a v3+ request names (KIP-360) are no
//! longer the id's; INVALID_REQUEST (42) for an empty id.
//!
//! Allocation failures: COORDINATOR_LOAD_IN_PROGRESS (14) when the
//! sequencer does not answer in time, NOT_COORDINATOR (16) when this gateway
//! is shutting down; clients retry both.

use std::sync::Arc;
use std::time::Duration;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::api_support::errors::{allocation_error, status_error};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{AclOperation, Resource, ResourceType};
use crate::shape::{Field, Kind, INT16, INT32, INT64};
use crate::telemetry;
use crate::transactions::client_error;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::InitProducerId,
    name: "InitProducerId",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT32),
    Field::since(INT64, 3),
    Field::since(INT16, 3),
];

/// Longest wait for the sequencer to hand out an id.
const ALLOCATE_TIMEOUT: Duration = Duration::from_secs(10);

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: InitProducerIdRequest = request.decode_bounded(REQUEST)?;
        let denied = authorization_error(&ctx, &request, &body);
        let responder = request.responder();
        let version = request.version;
        // Nothing to order: the id is waited for in the deferred part.
        Ok(Reply::deferred(async move {
            let response = match denied {
                None => allocate(&ctx, &body, version).await,
                Some(error) => {
                    let mut response = InitProducerIdResponse::default();
                    response.producer_id = ProducerId(-1);
                    response.producer_epoch = -1;
                    response.error_code = error.code();
                    response
                }
            };
            telemetry::record_error_code(ENTRY.name, response.error_code);
            responder.frame(&response).map(Some)
        }))
    })
}

/// Kafka's checks: WRITE on the transactional id, else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53); without one, IDEMPOTENT_WRITE
/// on the cluster or WRITE on some topic, else CLUSTER_AUTHORIZATION_FAILED
/// (31).
fn authorization_error(
    ctx: &GatewayContext,
    request: &ApiRequest,
    body: &InitProducerIdRequest,
) -> Option<ResponseError> {
    match body.transactional_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => (!request.authorized(ctx, AclOperation::Write, Resource::TransactionalId(id)))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => (!request.authorized_on_some(ctx, AclOperation::Write, ResourceType::Topic)
            && !request.authorized(ctx, AclOperation::IdempotentWrite, Resource::Cluster))
        .then_some(ResponseError::ClusterAuthorizationFailed),
    }
}

/// First version that carries PRODUCER_FENCED.
const FENCED_SINCE: i16 = 4;

async fn allocate(
    ctx: &GatewayContext,
    body: &InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let outcome = match body.transactional_id.as_deref().map(|id| id.is_empty()) {
        Some(true) => Err(ResponseError::InvalidRequest),
        Some(false) => {
            let id = body
                .transactional_id
                .as_deref()
                .map_or("", |id| id.as_str());
            let expected =
                (body.producer_id.0 >= 0).then_some((body.producer_id.0, body.producer_epoch));
            match ctx
                .transactions
                .init_producer(&ctx.log, id, body.transaction_timeout_ms, expected)
                .await
            {
                Ok((producer_id, producer_epoch)) => {
                    response.producer_id = ProducerId(producer_id);
                    response.producer_epoch = producer_epoch;
                    return response;
                }
                Err(error) => {
                    response.error_code = client_error(Some(error), version, FENCED_SINCE);
                    return response;
                }
            }
        }
        None => match ctx
            .log
            .control(&ControlRecord::AllocateProducerId, ALLOCATE_TIMEOUT)
            .await
        {
            Ok(completion) => match status_error(completion.error) {
                None => Ok(completion.base_offset),
                Some(error) => Err(error),
            },
            Err(error) => Err(allocation_error(&error)),
        },
    };
    match outcome {
        Ok(producer_id) => {
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = 0;
        }
        Err(error) => response.error_code = error.code(),
    }
    response
}
