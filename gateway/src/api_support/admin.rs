//! What the admin APIs (CreateTopics, DeleteTopics, CreatePartitions and
//! the config APIs) share: how long a request may wait, publishing a control
//! record and turning its outcome into a Kafka error, checks of manual
//! replica assignments, and Kafka's topic-name messages.
//!
//! Admin handlers do their work before they return, not in a deferred
//! reply: Kafka answers the requests of one connection one at a time, so a
//! client that creates a topic and then asks Metadata on the same connection
//! sees the topic.

use std::time::{Duration, Instant};

use cxlkafka_log::layout::Completion;
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::errors::{control_append_error, status_error};
use super::topic_config::ConfigError;
use super::topics::{validate_topic_name, InvalidTopicName, MAX_TOPIC_NAME_LEN};
use crate::cluster::ORDER_TOPIC;
use crate::context::GatewayContext;

/// Config resource types (`ConfigResource.Type` ids) of the config APIs.
pub mod resource_type {
    /// A topic, named by its name.
    pub const TOPIC: i8 = 2;
    /// A broker, named by its node id, or "" for the cluster-wide default.
    pub const BROKER: i8 = 4;
    /// A broker's loggers, named by its node id.
    pub const BROKER_LOGGER: i8 = 8;
}

/// Kafka's authorization of a config resource: `operation`
/// (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic, else
/// TOPIC_AUTHORIZATION_FAILED (29); on the cluster for broker resources,
/// else CLUSTER_AUTHORIZATION_FAILED (31).
pub fn authorize_config(
    ctx: &GatewayContext,
    request: &crate::dispatch::ApiRequest,
    kind: i8,
    name: &str,
    operation: crate::security::AclOperation,
) -> Result<(), Failure> {
    use crate::security::Resource;
    let (resource, denied) = if kind == resource_type::TOPIC {
        (
            Resource::Topic(name),
            ResponseError::TopicAuthorizationFailed,
        )
    } else {
        (Resource::Cluster, ResponseError::ClusterAuthorizationFailed)
    };
    if request.authorized(ctx, operation, resource) {
        Ok(())
    } else {
        Err(Failure::bare(denied))
    }
}

/// How long an admin request waits for its changes when its `timeout_ms`
/// is 0 or negative. Kafka then still makes the change and only skips
/// waiting for it to reach every broker; here the change is visible on this
/// gateway as soon as it is ordered, so the wait is for the ordering.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest an admin request waits, whatever its `timeout_ms`: the
/// connection answers nothing else meanwhile.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// When a request that arrived at `received_at` with `timeout_ms` must be
/// answered.
pub fn deadline(received_at: Instant, timeout_ms: i32) -> Instant {
    let wait = u64::try_from(timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    received_at + wait
}

/// A per-resource failure: the Kafka error and, when Kafka gives one, its
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error.
    pub error: ResponseError,
    /// Kafka's message for it, if any.
    pub message: Option<String>,
}

impl Failure {
    /// A failure with a message.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error,
            message: Some(message.into()),
        }
    }

    /// A failure with the error's standard message only.
    pub fn bare(error: ResponseError) -> Self {
        Self {
            error,
            message: None,
        }
    }

    /// The error code.
    pub fn code(&self) -> i16 {
        self.error.code()
    }

    /// The message as the responses carry it.
    pub fn message(&self) -> Option<StrBytes> {
        self.message.clone().map(StrBytes::from_string)
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self::new(error.error, error.message)
    }
}

/// The code and message of a result, (0, None) for success.
pub fn outcome<T>(result: &Result<T, Failure>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (0, None),
        Err(failure) => (failure.code(), failure.message()),
    }
}

/// Publishes `record` and waits, until `deadline`, for the sequencer to
/// order it and this gateway to apply it. Past the deadline the answer is
/// REQUEST_TIMED_OUT and, as with Kafka, the change may still happen.
pub async fn apply(
    ctx: &GatewayContext,
    record: &ControlRecord,
    deadline: Instant,
) -> Result<Completion, Failure> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(Failure::new(
            ResponseError::RequestTimedOut,
            "The request timed out before the change was made.",
        ));
    }
    let completion = ctx
        .log
        .control(record, remaining)
        .await
        .map_err(|error| Failure::new(control_append_error(&error), error.to_string()))?;
    match status_error(completion.error) {
        None => Ok(completion),
        Some(error) => Err(Failure::bare(error)),
    }
}

/// Kafka's `Topic.validate`, with its messages, as INVALID_TOPIC_EXCEPTION.
pub fn check_topic_name(name: &str) -> Result<(), Failure> {
    let message = match validate_topic_name(name) {
        Ok(()) => return Ok(()),
        Err(InvalidTopicName::Empty) => "Topic name is illegal, it can't be empty".to_owned(),
        Err(InvalidTopicName::Dots) => "Topic name cannot be \".\" or \"..\"".to_owned(),
        Err(InvalidTopicName::TooLong) => format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, \
             topic name: {name}"
        ),
        Err(InvalidTopicName::IllegalCharacter) => format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ),
    };
    Err(Failure::new(ResponseError::InvalidTopicException, message))
}

/// Whether `name` is the read-only order topic, which exists on every
/// cluster without a catalog entry (see [`crate::cluster::order_topic`]).
pub fn is_order_topic(name: &str) -> bool {
    name == ORDER_TOPIC
}

/// A live topic whose name differs from `name` only by '.' versus '_':
/// Kafka refuses such a pair because their metric names collide.
pub fn colliding<'a>(name: &str, topics: &'a [Topic]) -> Option<&'a Topic> {
    let canonical = |s: &str| s.replace('.', "_");
    let wanted = canonical(name);
    topics
        .iter()
        .find(|topic| topic.name != name && canonical(&topic.name) == wanted)
}

/// The topic named `name`, or UNKNOWN_TOPIC_OR_PARTITION as Kafka answers
/// it for admin requests.
pub fn existing(ctx: &GatewayContext, name: &str) -> Result<Topic, Failure> {
    ctx.log.topic(name).ok_or_else(|| {
        Failure::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    })
}

/// Checks manually assigned replica lists (one per new partition) against
/// the live brokers, with KRaft's messages; returns the replication factor
/// they imply. Placement itself is not kept: any gateway serves any
/// partition, and leaders follow membership (see the Metadata handler).
pub fn check_replica_lists(lists: &[&[i32]], live: &[i32]) -> Result<usize, Failure> {
    let invalid = |message: String| Failure::new(ResponseError::InvalidReplicaAssignment, message);
    let mut replication = None;
    for brokers in lists {
        if brokers.is_empty() {
            return Err(invalid(
                "The manual partition assignment includes an empty replica list.".to_owned(),
            ));
        }
        for (position, broker) in brokers.iter().enumerate() {
            if brokers[..position].contains(broker) {
                return Err(invalid(format!(
                    "The manual partition assignment includes the broker {broker} more than once."
                )));
            }
            if !live.contains(broker) {
                return Err(invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered."
                )));
            }
        }
        match replication {
            None => replication = Some(brokers.len()),
            Some(previous) if previous != brokers.len() => {
                return Err(invalid(format!(
                    "The manual partition assignment includes a partition with {} replica(s), \
                     but this is not consistent with previous partitions, which have {previous} \
                     replica(s).",
                    brokers.len()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(replication.unwrap_or(0))
}

/// The node ids of the live gateways, lowest first.
pub fn live_node_ids(ctx: &GatewayContext) -> Vec<i32> {
    super::brokers::live_brokers(ctx)
        .iter()
        .map(|member| i32::from(member.gateway))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> Topic {
        Topic {
            slot: 0,
            name: name.into(),
            topic_id: [1; 16],
            partitions: 1,
            retention_ms: -1,
            retention_bytes: -1,
            configs: String::new(),
            replication_factor: 2,
            changed_at: 1,
        }
    }

    #[test]
    fn deadlines_follow_the_timeout_within_bounds() {
        let now = Instant::now();
        assert_eq!(deadline(now, 1500), now + Duration::from_millis(1500));
        assert_eq!(deadline(now, 0), now + DEFAULT_WAIT);
        assert_eq!(deadline(now, -1), now + DEFAULT_WAIT);
        assert_eq!(deadline(now, i32::MAX), now + MAX_WAIT);
    }

    #[test]
    fn topic_names_get_kafkas_messages() {
        assert!(check_topic_name("orders.v1_x-y").is_ok());
        let message = |name: &str| {
            let failure = check_topic_name(name).expect_err("illegal");
            assert_eq!(failure.code(), 17);
            failure.message.unwrap_or_default()
        };
        assert_eq!(message(""), "Topic name is illegal, it can't be empty");
        assert_eq!(message(".."), "Topic name cannot be \".\" or \"..\"");
        assert!(message(&"x".repeat(250)).contains("longer than 249 characters"));
        assert!(message("a b").contains("character other than ASCII alphanumerics"));
    }

    #[test]
    fn dots_and_underscores_collide() {
        let topics = [topic("metrics_eu"), topic("orders")];
        assert_eq!(
            colliding("metrics.eu", &topics).map(|t| t.name.as_str()),
            Some("metrics_eu")
        );
        assert!(
            colliding("metrics_eu", &topics).is_none(),
            "the same name is not a collision"
        );
        assert!(colliding("orders2", &topics).is_none());
    }

    #[test]
    fn replica_lists_are_checked_like_kraft() {
        let live = [0, 1, 2];
        assert_eq!(check_replica_lists(&[&[0, 1], &[2, 0]], &live), Ok(2));
        let code = |lists: &[&[i32]]| check_replica_lists(lists, &live).map_err(|f| f.code());
        assert_eq!(code(&[&[]]), Err(39));
        assert_eq!(code(&[&[1, 1]]), Err(39));
        assert_eq!(code(&[&[7]]), Err(39));
        assert_eq!(code(&[&[0], &[0, 1]]), Err(39));
    }
}
