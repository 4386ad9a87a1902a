//! DescribeTransactions (key 65, KIP-664): the state of transactional ids
//! this gateway coordinates, so operators can find a hanging transaction
//! (and abort it by fencing its producer with InitProducerId, as
//! `kafka-transactions.sh` does).
//!
//! Served v0. Per id, as Kafka: TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53)
//! without DESCRIBE on it, NOT_COORDINATOR (16) from a gateway that does
//! not coordinate it, TRANSACTIONAL_ID_NOT_FOUND (105) for an id never
//! initialised; otherwise the state, timeout, start time (-1 with no
//! transaction open), producer id and epoch, and the partitions of the
//! open transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use cxlkafka_sequencer::catalog::split_stream;
use cxlkafka_sequencer::control::txn_state;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::groups;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind};
use crate::telemetry;
use crate::transactions::state_name;

/// Versions served.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeTransactions,
    name: "DescribeTransactions",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::StringArray)];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DescribeTransactionsRequest = request.decode_bounded(REQUEST)?;
    let store = ctx.log.transactions();
    let topic_names: BTreeMap<u32, String> = ctx
        .log
        .topics()
        .into_iter()
        .map(|topic| (topic.slot, topic.name))
        .collect();
    let mut response = DescribeTransactionsResponse::default();
    for id in &body.transactional_ids {
        let mut state = TransactionState::default();
        state.transactional_id = id.clone();
        state.producer_id = ProducerId(-1);
        state.producer_epoch = -1;
        state.transaction_start_time_ms = -1;
        state.transaction_state = StrBytes::from_static_str("");
        let error =
            if !request.authorized(ctx, AclOperation::Describe, Resource::TransactionalId(id)) {
                Some(ResponseError::TransactionalIdAuthorizationFailed)
            } else if !groups::is_coordinator(ctx.log.as_ref(), id) {
                Some(ResponseError::NotCoordinator)
            } else {
                match store.get(id) {
                    None => Some(ResponseError::TransactionalIdNotFound),
                    Some(current) => {
                        let record = &current.record;
                        state.transaction_state =
                            StrBytes::from_static_str(state_name(record.state));
                        state.transaction_timeout_ms = record.timeout_ms;
                        state.producer_id = ProducerId(record.producer_id);
                        state.producer_epoch = record.producer_epoch;
                        if txn_state::is_open(record.state) {
                            state.transaction_start_time_ms = record.started_ms;
                            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                            for partition in &record.partitions {
                                let (slot, index) = split_stream(partition.stream);
                                if let Some(name) = topic_names.get(&slot) {
                                    by_topic
                                        .entry(name)
                                        .or_default()
                                        .push(i32::try_from(index).unwrap_or(i32::MAX));
                                }
                            }
                            state.topics = by_topic
                                .into_iter()
                                .map(|(name, partitions)| {
                                    let mut topic = TopicData::default();
                                    topic.topic =
                                        TopicName(StrBytes::from_string(name.to_string()));
                                    topic.partitions = partitions;
                                    topic
                                })
                                .collect();
                        }
                        None
                    }
                }
            };
        if let Some(error) = error {
            state.error_code = error.code();
        }
        telemetry::record_error_code(ENTRY.name, state.error_code);
        response.transaction_states.push(state);
    }
    request.respond(&response)
}
