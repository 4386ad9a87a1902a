//! ListTransactions (key 66, KIP-664): the transactional ids this gateway
//! coordinates, with their producer ids and states.
//!
//! Served v0-2. Filters as Kafka: by state names (an unknown one is
//! echoed in `unknown_state_filters`), by producer ids, by duration (v1+:
//! transactions open longer than this many ms), and by a regular
//! expression over the id (v2+, matched against the whole id). Ids the
//! principal may not DESCRIBE are left out.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cxlkafka_sequencer::control::txn_state;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT64};
use crate::telemetry;
use crate::transactions::state_name;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ListTransactions,
    name: "ListTransactions",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(Kind::StringArray),
    Field::always(Kind::FixedArray(8)),
    Field::since(INT64, 1),
    Field::since(Kind::String, 2),
];

const STATES: [u8; 6] = [
    txn_state::EMPTY,
    txn_state::ONGOING,
    txn_state::PREPARE_COMMIT,
    txn_state::PREPARE_ABORT,
    txn_state::COMPLETE_COMMIT,
    txn_state::COMPLETE_ABORT,
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: ListTransactionsRequest = request.decode_bounded(REQUEST)?;
    let mut response = ListTransactionsResponse::default();
    let mut states = Vec::new();
    for filter in &body.state_filters {
        match STATES
            .iter()
            .find(|&&state| state_name(state) == filter.as_str())
        {
            Some(&state) => states.push(state),
            None => response.unknown_state_filters.push(filter.clone()),
        }
    }
    let pattern = match body
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        Some(pattern) => match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Some(regex),
            Err(_) => {
                response.error_code = ResponseError::InvalidRegularExpression.code();
                telemetry::record_error_code(ENTRY.name, response.error_code);
                return request.respond(&response);
            }
        },
        None => None,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let mut listed: Vec<TransactionState> = ctx
        .log
        .transactions()
        .all()
        .into_iter()
        .filter(|txn| {
            let record = &txn.record;
            let id = record.transactional_id.as_str();
            (states.is_empty() || states.contains(&record.state))
                && (body.producer_id_filters.is_empty()
                    || body
                        .producer_id_filters
                        .iter()
                        .any(|pid| pid.0 == record.producer_id))
                && (body.duration_filter < 0
                    || request.version < 1
                    || (txn_state::is_open(record.state)
                        && now_ms - record.started_ms > body.duration_filter))
                && pattern.as_ref().is_none_or(|regex| regex.is_match(id))
                && groups::is_coordinator(ctx.log.as_ref(), id)
                && request.authorized(ctx, AclOperation::Describe, Resource::TransactionalId(id))
        })
        .map(|txn| {
            let mut state = TransactionState::default();
            state.transactional_id =
                TransactionalId(StrBytes::from_string(txn.record.transactional_id.clone()));
            state.producer_id = ProducerId(txn.record.producer_id);
            state.transaction_state = StrBytes::from_static_str(state_name(txn.record.state));
            state
        })
        .collect();
    listed.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    response.transaction_states = listed;
    telemetry::record_error_code(ENTRY.name, response.error_code);
    request.respond(&response)
}
