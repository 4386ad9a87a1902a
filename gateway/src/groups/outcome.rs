//! What the group state machine takes and answers: its states, a decoded
//! JoinGroup, the JoinGroup and SyncGroup outcomes, and [`Pending`].

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

/// Kafka's group states, named as DescribeGroups and ListGroups report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Removed.
    Dead,
}

impl State {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// A JoinGroup request, decoded.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The member id the client sent ("" for a new member).
    pub member_id: String,
    /// `group.instance.id` for static members.
    pub instance_id: Option<String>,
    /// The client's id, the prefix of a new member id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout (the session timeout before v1).
    pub rebalance_timeout: Duration,
    /// "consumer", "connect", ...
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
}

/// What a JoinGroup gets back.
#[derive(Clone, Debug, Default)]
pub struct JoinOutcome {
    /// The error, if any.
    pub error: Option<ResponseError>,
    /// The generation joined.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's id.
    pub member_id: String,
    /// For the leader: every member's (id, instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader rejoining a stable group: no new assignment needed.
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub(super) fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_owned(),
            ..Self::default()
        }
    }
}

/// What a SyncGroup gets back.
#[derive(Clone, Debug, Default)]
pub struct SyncOutcome {
    /// The error, if any.
    pub error: Option<ResponseError>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The member's assignment (opaque).
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub(super) fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// An answer now, or a channel it arrives on.
#[derive(Debug)]
pub enum Pending<T> {
    /// Answered at once.
    Now(T),
    /// Answered when the rebalance (or the leader's sync) completes.
    Wait(oneshot::Receiver<T>),
}
