//! DeleteTopics (key 20): topics removed from the shared catalog, named by
//! name (every version) or, from v6, by topic id.
//!
//! As a KRaft controller answers, per topic:
//!
//! - a name or an id given twice: INVALID_REQUEST (42), "Duplicate topic
//!   name." / "Duplicate topic id."; an entry with both a name and an id, or
//!   neither: INVALID_REQUEST;
//! - an unknown name: UNKNOWN_TOPIC_OR_PARTITION (3); an unknown id:
//!   UNKNOWN_TOPIC_ID (100);
//! - the order topic `__cxlkafka_order`, a read-only view that cannot be
//!   deleted: TOPIC_DELETION_DISABLED (73), or INVALID_REQUEST below v3 as
//!   Kafka answers old clients when deletion is disabled.
//!
//! Each deletion is one `DeleteTopic` control record; the answer waits
//! (until `timeout_ms`) until this gateway has applied it, so the topic is
//! gone from Metadata when the response arrives. v6 results carry the topic
//! id, also for topics named by name.

use std::collections::HashMap;
use std::sync::Arc;

use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::api_support::admin::{self, Failure};
use crate::api_support::topics::by_id;
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, Kind, INT32, UUID};
use crate::telemetry;

/// Versions served: all the crate decodes (Kafka 4 dropped v0).
pub const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DeleteTopics,
    name: "DeleteTopics",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// First version naming topics by id.
const FIRST_VERSION_WITH_IDS: i16 = 6;
/// First version answering TOPIC_DELETION_DISABLED (older ones get
/// INVALID_REQUEST).
const FIRST_VERSION_WITH_DELETION_DISABLED: i16 = 3;

const STATE: &[Field] = &[Field::always(Kind::String), Field::always(UUID)];

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::since(Kind::Array(STATE), FIRST_VERSION_WITH_IDS),
    Field::new(Kind::StringArray, 0, FIRST_VERSION_WITH_IDS - 1),
    Field::always(INT32),
];

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request).await })
}

/// One entry of the request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Named {
    Name(String),
    Id(Uuid),
    /// Refused before any lookup: (name, id, why).
    Malformed(Option<String>, Uuid, &'static str),
}

async fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DeleteTopicsRequest = request.decode_bounded(REQUEST)?;
    let deadline = admin::deadline(request.received_at, body.timeout_ms);
    let mut named: Vec<Named> = body
        .topic_names
        .iter()
        .map(|name| Named::Name(name.to_string()))
        .collect();
    for state in &body.topics {
        named.push(match (&state.name, state.topic_id.is_nil()) {
            (None, true) => Named::Malformed(
                None,
                state.topic_id,
                "Neither topic name nor id were specified.",
            ),
            (None, false) => Named::Id(state.topic_id),
            (Some(name), true) => Named::Name(name.to_string()),
            (Some(name), false) => Named::Malformed(
                Some(name.to_string()),
                state.topic_id,
                "You may not specify both topic name and topic id.",
            ),
        });
    }
    let mut counts: HashMap<&Named, usize> = HashMap::new();
    for entry in &named {
        *counts.entry(entry).or_default() += 1;
    }
    let mut response = DeleteTopicsResponse::default();
    let mut answered: Vec<&Named> = Vec::new();
    for entry in &named {
        if answered.contains(&entry) {
            continue;
        }
        answered.push(entry);
        let duplicate = counts.get(entry).copied().unwrap_or(0) > 1;
        let (name, id, result) = match entry {
            Named::Malformed(name, id, why) => (
                name.clone(),
                *id,
                Err(Failure::new(ResponseError::InvalidRequest, *why)),
            ),
            Named::Name(name) if duplicate => (
                Some(name.clone()),
                Uuid::nil(),
                Err(Failure::new(
                    ResponseError::InvalidRequest,
                    "Duplicate topic name.",
                )),
            ),
            Named::Id(id) if duplicate => (
                None,
                *id,
                Err(Failure::new(
                    ResponseError::InvalidRequest,
                    "Duplicate topic id.",
                )),
            ),
            Named::Name(name)
                if !request.authorized(ctx, AclOperation::Delete, Resource::Topic(name)) =>
            {
                (
                    Some(name.clone()),
                    Uuid::nil(),
                    Err(Failure::bare(ResponseError::TopicAuthorizationFailed)),
                )
            }
            Named::Name(name) => match lookup_name(ctx, name, request.version) {
                Ok(topic) => delete(ctx, topic, deadline).await,
                Err(failure) => (Some(name.clone()), Uuid::nil(), Err(failure)),
            },
            Named::Id(id) => match by_id(ctx, *id) {
                Some(topic)
                    if !request.authorized(
                        ctx,
                        AclOperation::Delete,
                        Resource::Topic(&topic.name),
                    ) =>
                {
                    let denied = Failure::bare(ResponseError::TopicAuthorizationFailed);
                    (None, *id, Err(denied))
                }
                Some(topic) => delete(ctx, topic, deadline).await,
                None => (None, *id, Err(Failure::bare(ResponseError::UnknownTopicId))),
            },
        };
        let (code, message) = admin::outcome(&result);
        telemetry::record_error_code(ENTRY.name, code);
        response.responses.push(
            DeletableTopicResult::default()
                .with_name(name.map(|name| TopicName(StrBytes::from_string(name))))
                .with_topic_id(id)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    request.respond(&response)
}

/// The live topic `name`, or why it cannot be deleted.
fn lookup_name(ctx: &GatewayContext, name: &str, version: i16) -> Result<Topic, Failure> {
    if admin::is_order_topic(name) {
        let error = if version >= FIRST_VERSION_WITH_DELETION_DISABLED {
            ResponseError::TopicDeletionDisabled
        } else {
            ResponseError::InvalidRequest
        };
        return Err(Failure::new(
            error,
            format!("{name} is the read-only view of the total order and cannot be deleted."),
        ));
    }
    ctx.log
        .topic(name)
        .ok_or_else(|| Failure::bare(ResponseError::UnknownTopicOrPartition))
}

/// Deletes `topic`; returns the result entry's name, id and outcome.
async fn delete(
    ctx: &GatewayContext,
    topic: Topic,
    deadline: std::time::Instant,
) -> (Option<String>, Uuid, Result<(), Failure>) {
    let record = ControlRecord::DeleteTopic {
        name: topic.name.clone(),
    };
    let result = admin::apply(ctx, &record, deadline).await.map(|_| {
        tracing::info!(topic = topic.name, "deleted topic");
    });
    (Some(topic.name), Uuid::from_bytes(topic.topic_id), result)
}
