//! EndTxn (key 26): commits or aborts the producer's open transaction.
//!
//! Served v0-5. The coordinator writes PREPARE, a marker in every
//! partition, then COMPLETE, and answers when all are ordered (see
//! [`crate::transactions`]). As Kafka: NOT_COORDINATOR (16) from a gateway
//! that does not coordinate the id; PRODUCER_FENCED (90, or
//! INVALID_PRODUCER_EPOCH 47 below v2) for an older epoch;
//! INVALID_PRODUCER_ID_MAPPING (49) for another producer id;
//! CONCURRENT_TRANSACTIONS (51) never (the end is synchronous);
//! INVALID_TXN_STATE (48) to commit an aborted transaction, or with none
//! open; TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) without WRITE on the
//! id. v5 (KIP-890's second phase) answers the same producer id and epoch:
//! epochs are not bumped per transaction here.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse};
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
    key: ApiKey::EndTxn,
    name: "EndTxn",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::String),
    Field::always(INT64),
    Field::always(INT16),
    Field::always(BOOLEAN),
];

/// First version that carries PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: EndTxnRequest = request.decode_bounded(REQUEST)?;
        let denied = !request.authorized(
            &ctx,
            AclOperation::Write,
            Resource::TransactionalId(&body.transactional_id),
        );
        let responder = request.responder();
        let version = request.version;
        Ok(Reply::deferred(async move {
            let outcome = if denied {
                Err(ResponseError::TransactionalIdAuthorizationFailed)
            } else {
                ctx.transactions
                    .end(
                        &ctx.log,
                        &body.transactional_id,
                        body.producer_id.0,
                        body.producer_epoch,
                        body.committed,
                    )
                    .await
            };
            let mut response = EndTxnResponse::default();
            response.producer_id = body.producer_id;
            response.producer_epoch = body.producer_epoch;
            response.error_code = client_error(outcome.err(), version, FENCED_SINCE);
            telemetry::record_error_code(ENTRY.name, response.error_code);
            responder.frame(&response).map(Some)
        }))
    })
}
