//! AddOffsetsToTxn (key 25): the producer's transaction will commit
//! offsets of a consumer group (KIP-98's consume-transform-produce).
//!
//! Served v0-4. The coordinator records the group with the transaction
//! (beginning the transaction if none is open); the offsets themselves
//! come with TxnOffsetCommit to the group's coordinator. Errors as EndTxn,
//! plus CONCURRENT_TRANSACTIONS (51) while the previous transaction is
//! still completing and GROUP_AUTHORIZATION_FAILED (30) without READ on
//! the group.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT16, INT64};
use crate::telemetry;
use crate::transactions::client_error;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::AddOffsetsToTxn,
    name: "AddOffsetsToTxn",
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
    Field::always(Kind::String),
];

/// First version that carries PRODUCER_FENCED.
const FENCED_SINCE: i16 = 2;

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let body: AddOffsetsToTxnRequest = request.decode_bounded(REQUEST)?;
        let denied = if !request.authorized(
            &ctx,
            AclOperation::Write,
            Resource::TransactionalId(&body.transactional_id),
        ) {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else if !request.authorized(&ctx, AclOperation::Read, Resource::Group(&body.group_id)) {
            Some(ResponseError::GroupAuthorizationFailed)
        } else {
            None
        };
        let responder = request.responder();
        let version = request.version;
        Ok(Reply::deferred(async move {
            let outcome = match denied {
                Some(error) => Err(error),
                None => {
                    ctx.transactions
                        .add_offsets(
                            &ctx.log,
                            &body.transactional_id,
                            body.producer_id.0,
                            body.producer_epoch,
                            &body.group_id,
                        )
                        .await
                }
            };
            let mut response = AddOffsetsToTxnResponse::default();
            response.error_code = client_error(outcome.err(), version, FENCED_SINCE);
            telemetry::record_error_code(ENTRY.name, response.error_code);
            responder.frame(&response).map(Some)
        }))
    })
}
