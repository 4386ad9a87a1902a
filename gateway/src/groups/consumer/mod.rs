//! Consumer groups of the next-generation protocol (KIP-848,
//! `group.protocol=consumer`): the coordinator assigns, members heartbeat.
//!
//! # Epochs
//!
//! A group has a *group epoch*, bumped whenever what the assignment depends
//! on changes (a member joins or leaves, a subscription changes, a
//! subscribed topic is created, deleted or grows), and an *assignment
//! epoch*, the group epoch its target assignment was computed at (by
//! [`assignor`]). Each member has a *member epoch*: the assignment epoch it
//! has reconciled to.
//!
//! # Reconciliation
//!
//! A member moves to its target without ever holding a partition another
//! member still holds (Kafka's `CurrentAssignmentBuilder`):
//! - partitions it holds and must give up are revoked first: it is told
//!   its assignment without them and keeps its epoch until a heartbeat shows
//!   it no longer owns them (UNREVOKED);
//! - then it takes the target epoch and every new partition that no other
//!   member still holds; those still held come on a later heartbeat, once
//!   their owner released them (UNRELEASED).
//!
//! Other members keep consuming throughout: only the partitions that move
//! pause.
//!
//! # What is not kept
//!
//! Like the classic groups ([`super`]), membership lives in the
//! coordinator's memory: when the coordinator moves, members get
//! NOT_COORDINATOR, find the new one and join again with epoch 0.
//! Committed offsets travel through the order log as before.

pub mod assignor;
pub mod classic;
mod coordinator;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::ResponseError;
use uuid::Uuid;

pub use assignor::Assignment;

/// Kafka's `group.consumer.heartbeat.interval.ms` default.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(5_000);
/// Kafka's `group.consumer.session.timeout.ms` default.
pub const SESSION_TIMEOUT: Duration = Duration::from_millis(45_000);
/// Member epoch of a leave request.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving for a while.
pub const STATIC_LEAVE_EPOCH: i32 = -2;
/// Longest regular expression a member may subscribe with.
pub const MAX_REGEX_BYTES: usize = 1_000;

/// Where a member is in reaching its target (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// At its target.
    Stable,
    /// Told to give partitions up; has not shown it did.
    UnrevokedPartitions,
    /// At the target epoch, waiting for partitions others still own.
    UnreleasedPartitions,
}

impl MemberState {
    /// The name ConsumerGroupDescribe and logs use.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

/// One member.
#[derive(Clone, Debug)]
pub struct ConsumerMember {
    /// Member id (made by the client since v1, else by the coordinator).
    pub id: String,
    /// Static membership: `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`, as the client sent it.
    pub rack_id: Option<String>,
    /// Client id of its last heartbeat.
    pub client_id: String,
    /// Address of its last heartbeat.
    pub client_host: String,
    /// How long it may keep partitions it was told to give up.
    pub rebalance_timeout: Duration,
    /// Topics it subscribes to by name, sorted.
    pub subscribed_topic_names: Vec<String>,
    /// The regular expression it subscribes with.
    pub subscribed_topic_regex: Option<String>,
    regex: Option<regex::Regex>,
    /// Whether `regex` has been resolved against the topics yet: as in
    /// Kafka, an expression starts matching on the coordinator's next tick,
    /// after the heartbeat that brought it (named topics are assigned at once).
    regex_resolved: bool,
    /// The assignor it asks for (`group.remote.assignor`).
    pub server_assignor: Option<String>,
    /// The assignment epoch it reconciled to.
    pub member_epoch: i32,
    /// Its epoch before the last move, accepted once more from a member whose answer was lost.
    pub previous_member_epoch: i32,
    /// Where it is in reaching its target.
    pub state: MemberState,
    /// What it is told to own now.
    pub assigned: Assignment,
    /// What it was told to give up and has not yet shown it released.
    pub revoking: Assignment,
    session_deadline: Instant,
    revocation_deadline: Option<Instant>,
    /// Set for a member that speaks the classic protocol (see [`classic`]).
    pub classic: Option<classic::ClassicMember>,
}

impl ConsumerMember {
    /// A member that just joined: nothing assigned, epoch 0, no
    /// subscription yet (the caller sets it).
    fn new(
        id: String,
        instance_id: Option<String>,
        rebalance_timeout: Duration,
        session_deadline: Instant,
    ) -> Self {
        Self {
            id,
            instance_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            regex: None,
            regex_resolved: false,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            session_deadline,
            revocation_deadline: None,
            classic: None,
        }
    }

    /// Whether it subscribes to `topic` (by name or by its expression).
    fn subscribes_to(&self, topic: &str) -> bool {
        self.subscribed_topic_names.iter().any(|name| name == topic)
            || (self.regex_resolved
                && self
                    .regex
                    .as_ref()
                    .is_some_and(|regex| regex.is_match(topic)))
    }
}

/// A ConsumerGroupHeartbeat, decoded.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    /// Member id; empty when a v0 client joins.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member leaving for a while, else its epoch.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// How long it may take to revoke (-1: unchanged).
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged since the last heartbeat.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `None`: unchanged; empty: none.
    pub subscribed_topic_regex: Option<String>,
    /// `None`: unchanged.
    pub server_assignor: Option<String>,
    /// What the member owns; `None`: unchanged.
    pub owned: Option<Assignment>,
    /// Client id of the request.
    pub client_id: String,
    /// Address the request came from.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The member id (the one made for it on a v0 join).
    pub member_id: String,
    /// Its epoch now.
    pub member_epoch: i32,
    /// How often it should heartbeat.
    pub heartbeat_interval: Duration,
    /// The member's assignment, when it must hear it.
    pub assignment: Option<Assignment>,
}

/// A heartbeat refused: the error and Kafka's message for it.
pub type Refusal = (ResponseError, String);

/// Group-level settings (Kafka's `group.consumer.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `group.consumer.max.size`.
    pub max_members: usize,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            session_timeout: SESSION_TIMEOUT,
            max_members: 1_000,
        }
    }
}

/// One consumer group.
#[derive(Clone, Debug)]
pub struct ConsumerGroup {
    /// Group id.
    pub id: String,
    /// Bumped on every change the assignment depends on.
    pub group_epoch: i32,
    /// The group epoch `targets` were computed at.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Each member's target at `assignment_epoch`.
    pub targets: BTreeMap<String, Assignment>,
    /// The assignor the last target came from.
    pub assignor: String,
    /// Subscribed topics as last seen: a change bumps the group epoch.
    subscribed: BTreeMap<String, (Uuid, u32)>,
    /// When the last member left (`None` while it has members).
    pub empty_since: Option<Instant>,
}

impl ConsumerGroup {
    /// A group with no members yet.
    pub fn new(id: String, now: Instant) -> Self {
        Self {
            id,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            targets: BTreeMap::new(),
            assignor: assignor::DEFAULT_ASSIGNOR.to_owned(),
            subscribed: BTreeMap::new(),
            empty_since: Some(now),
        }
    }

    /// The group's state as ConsumerGroupDescribe and ListGroups name it.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|member| {
            member.state != MemberState::Stable || member.member_epoch != self.assignment_epoch
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles one heartbeat (`new_member_id` makes an id for a joining
    /// member that brought none).
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        topics: &[Topic],
        now: Instant,
        config: &ConsumerGroupConfig,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<HeartbeatAnswer, Refusal> {
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&request, now);
        }
        let member_id = match request.member_epoch {
            0 => self.join(&request, now, config, new_member_id)?,
            epoch if epoch > 0 => {
                self.check_epoch(&request)?;
                request.member_id.clone()
            }
            epoch => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("member epoch {epoch} is not valid"),
                ))
            }
        };
        let rejoined = request.member_epoch == 0;
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or_else(|| unknown_member(&member_id))?;
        member.session_deadline = now + config.session_timeout;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        if request.rebalance_timeout_ms > 0 {
            member.rebalance_timeout = Duration::from_millis(request.rebalance_timeout_ms as u64);
        }
        let mut changed = false;
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort_unstable();
            names.dedup();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                changed = true;
            }
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            let regex = Some(regex.clone()).filter(|regex| !regex.is_empty());
            if regex != member.subscribed_topic_regex {
                member.regex = match &regex {
                    Some(text) => Some(compile(text)?),
                    None => None,
                };
                member.subscribed_topic_regex = regex;
                member.regex_resolved = false;
                changed = true;
            }
        }
        if let Some(assignor) = &request.server_assignor {
            let assignor = Some(assignor.clone()).filter(|name| !name.is_empty());
            if assignor != member.server_assignor {
                member.server_assignor = assignor;
                changed = true;
            }
        }
        if changed {
            self.group_epoch += 1;
        }
        self.refresh_subscribed(topics);
        if self.group_epoch > self.assignment_epoch {
            self.compute_targets();
        }
        let before = self
            .members
            .get(&member_id)
            .map(|member| (member.assigned.clone(), member.member_epoch));
        self.reconcile(&member_id, request.owned.as_ref(), now);
        let member = self
            .members
            .get(&member_id)
            .ok_or_else(|| unknown_member(&member_id))?;
        let moved = before.is_none_or(|(assigned, epoch)| {
            assigned != member.assigned || epoch != member.member_epoch
        });
        let owned_differs = request
            .owned
            .as_ref()
            .is_some_and(|owned| without_empty(owned) != without_empty(&member.assigned));
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: member.member_epoch,
            heartbeat_interval: config.heartbeat_interval,
            assignment: (rejoined || moved || owned_differs).then(|| member.assigned.clone()),
        })
    }

    /// Epoch 0: a new member, a member joining again, or a static member
    /// coming back under a new id. Returns the member's id.
    fn join(
        &mut self,
        request: &Heartbeat,
        now: Instant,
        config: &ConsumerGroupConfig,
        new_member_id: impl FnOnce() -> String,
    ) -> Result<String, Refusal> {
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err((
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request".into(),
            ));
        }
        if request.rebalance_timeout_ms < 0 {
            return Err((
                ResponseError::InvalidRequest,
                "RebalanceTimeoutMs must be provided in first request".into(),
            ));
        }
        let member_id = if request.member_id.is_empty() {
            new_member_id()
        } else {
            request.member_id.clone()
        };
        // A static member replaces the member that had its instance id,
        // keeping its assignment, once that one left (epoch -2).
        let previous = request.instance_id.as_ref().and_then(|instance| {
            self.members
                .values()
                .find(|member| member.instance_id.as_ref() == Some(instance))
                .map(|member| (member.id.clone(), member.member_epoch))
        });
        let inherited = match previous {
            Some((id, _)) if id == member_id => None,
            Some((id, STATIC_LEAVE_EPOCH)) => self.members.remove(&id).map(|mut old| {
                let target = self.targets.remove(&id);
                if let Some(target) = target {
                    self.targets.insert(member_id.clone(), target);
                }
                old.id = member_id.clone();
                old
            }),
            Some(_) => {
                return Err((
                    ResponseError::UnreleasedInstanceId,
                    format!(
                        "Static member with instance id {} is still in use by another member",
                        request.instance_id.as_deref().unwrap_or_default()
                    ),
                ))
            }
            None => None,
        };
        if let Some(member) = inherited {
            self.members.insert(member_id.clone(), member);
            return Ok(member_id);
        }
        match self.members.get_mut(&member_id) {
            // Epoch 0 from a known member: it lost its partitions (it was
            // fenced, or restarted with the same id) and starts over.
            Some(member) => {
                member.assigned.clear();
                member.revoking.clear();
                member.member_epoch = 0;
                member.previous_member_epoch = 0;
                member.state = MemberState::Stable;
                member.revocation_deadline = None;
            }
            None => {
                if self.members.len() >= config.max_members {
                    return Err((
                        ResponseError::GroupMaxSizeReached,
                        format!(
                            "The consumer group has reached its maximum capacity of {} members",
                            config.max_members
                        ),
                    ));
                }
                self.members.insert(
                    member_id.clone(),
                    ConsumerMember::new(
                        member_id.clone(),
                        request.instance_id.clone(),
                        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64),
                        now + config.session_timeout,
                    ),
                );
                self.empty_since = None;
                self.group_epoch += 1;
            }
        }
        Ok(member_id)
    }

    /// Kafka's check of a member's epoch: the current one, or the previous
    /// one from a member whose last answer was lost (it owns no more than
    /// it was given).
    fn check_epoch(&self, request: &Heartbeat) -> Result<(), Refusal> {
        let member = self
            .members
            .get(&request.member_id)
            .ok_or_else(|| unknown_member(&request.member_id))?;
        let received = request.member_epoch;
        let fenced = || {
            (
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a smaller or larger member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rebalance.",
                    member.member_epoch
                ),
            )
        };
        if received > member.member_epoch {
            return Err(fenced());
        }
        if received < member.member_epoch {
            let lost_answer = received == member.previous_member_epoch
                && request
                    .owned
                    .as_ref()
                    .is_some_and(|owned| is_subset(owned, &member.assigned));
            if !lost_answer {
                return Err(fenced());
            }
        }
        Ok(())
    }

    /// Epoch -1 (leaves; its partitions go to others) or -2 (a static
    /// member that will be back: it keeps them until its session ends).
    fn leave(&mut self, request: &Heartbeat, now: Instant) -> Result<HeartbeatAnswer, Refusal> {
        let member_id = match (&request.instance_id, request.member_epoch) {
            (Some(instance), STATIC_LEAVE_EPOCH) => self
                .members
                .values()
                .find(|member| member.instance_id.as_ref() == Some(instance))
                .map(|member| member.id.clone())
                .ok_or_else(|| unknown_member(&request.member_id))?,
            _ => request.member_id.clone(),
        };
        if !self.members.contains_key(&member_id) {
            return Err(unknown_member(&member_id));
        }
        if request.member_epoch == STATIC_LEAVE_EPOCH && request.instance_id.is_some() {
            if let Some(member) = self.members.get_mut(&member_id) {
                member.member_epoch = STATIC_LEAVE_EPOCH;
            }
        } else {
            self.remove_member(&member_id, now);
        }
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: request.member_epoch,
            heartbeat_interval: Duration::ZERO,
            assignment: None,
        })
    }

    /// Takes a member out; what it held becomes free.
    pub fn remove_member(&mut self, member_id: &str, now: Instant) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        self.targets.remove(member_id);
        self.group_epoch += 1;
        if self.members.is_empty() {
            self.empty_since = Some(now);
        }
    }

    /// Bumps the group epoch when a subscribed topic appeared, went away or
    /// grew (regular expressions are matched again here, so topics created
    /// or deleted since are seen).
    fn refresh_subscribed(&mut self, topics: &[Topic]) {
        let now: BTreeMap<String, (Uuid, u32)> = topics
            .iter()
            .filter(|topic| {
                self.members
                    .values()
                    .any(|member| member.subscribes_to(&topic.name))
            })
            .map(|topic| {
                (
                    topic.name.clone(),
                    (Uuid::from_bytes(topic.topic_id), topic.partitions),
                )
            })
            .collect();
        if now != self.subscribed {
            self.subscribed = now;
            self.group_epoch += 1;
        }
    }

    /// The target assignment at the current group epoch.
    fn compute_targets(&mut self) {
        self.assignor = self.chosen_assignor();
        let partitions: BTreeMap<Uuid, u32> = self.subscribed.values().copied().collect();
        let inputs: Vec<assignor::AssignorMember<'_>> = self
            .members
            .values()
            .map(|member| assignor::AssignorMember {
                id: &member.id,
                subscribed: self
                    .subscribed
                    .iter()
                    .filter(|(name, _)| member.subscribes_to(name))
                    .map(|(_, (id, _))| *id)
                    .collect(),
                previous: self.targets.get(&member.id),
            })
            .collect();
        let targets = assignor::assign(&self.assignor, &inputs, &partitions);
        self.targets = targets;
        self.assignment_epoch = self.group_epoch;
    }

    /// The assignor most members ask for (the default when none asks).
    fn chosen_assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = member.server_assignor.as_deref() {
                *votes.entry(name).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(name, count)| (*count, std::cmp::Reverse(*name)))
            .map_or_else(
                || assignor::DEFAULT_ASSIGNOR.to_owned(),
                |(name, _)| name.to_owned(),
            )
    }

    /// Moves one member towards its target (see the module notes).
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.targets.get(member_id).cloned().unwrap_or_default();
        let held_by_others = self.held_by_others(member_id);
        let target_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        if member.state == MemberState::UnrevokedPartitions {
            let released = owned.is_some_and(|owned| !intersects(owned, &member.revoking));
            if !released {
                return;
            }
            member.revoking.clear();
            member.revocation_deadline = None;
            member.state = MemberState::Stable;
        }
        if member.state == MemberState::Stable && member.member_epoch == target_epoch {
            return;
        }
        let kept = intersection(&member.assigned, &target);
        let revoking = difference(&member.assigned, &target);
        if !is_empty(&revoking) {
            member.assigned = kept;
            member.revoking = revoking;
            member.state = MemberState::UnrevokedPartitions;
            member.revocation_deadline = Some(now + member.rebalance_timeout);
            return;
        }
        let added = difference(&target, &member.assigned);
        let unreleased = intersection(&added, &held_by_others);
        let mut assigned = kept;
        merge(&mut assigned, &difference(&added, &unreleased));
        member.assigned = assigned;
        if member.member_epoch != target_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = target_epoch;
        }
        member.state = if is_empty(&unreleased) {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }

    /// Partitions other members own or have not yet shown they released.
    fn held_by_others(&self, member_id: &str) -> Assignment {
        let mut held = Assignment::new();
        for member in self
            .members
            .values()
            .filter(|member| member.id != member_id)
        {
            merge(&mut held, &member.assigned);
            merge(&mut held, &member.revoking);
        }
        held
    }

    /// Ends sessions that ran out and members that kept partitions past
    /// their rebalance timeout; returns their ids.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        for member in self.members.values_mut() {
            member.regex_resolved = true;
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| {
                member.session_deadline <= now
                    || member
                        .revocation_deadline
                        .is_some_and(|deadline| deadline <= now)
            })
            .map(|member| member.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, now);
        }
        expired
    }

    /// Kafka's check of an OffsetCommit (v9+) or OffsetFetch from a member
    /// of this group.
    pub fn check_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        let member = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch != member.member_epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Topic names its members subscribe to now.
    pub fn subscribed_topics(&self) -> impl Iterator<Item = &String> {
        self.subscribed.keys()
    }
}

fn unknown_member(member_id: &str) -> Refusal {
    (
        ResponseError::UnknownMemberId,
        format!("Member {member_id} is not a member of the group."),
    )
}

fn compile(text: &str) -> Result<regex::Regex, Refusal> {
    if text.len() > MAX_REGEX_BYTES {
        return Err((
            ResponseError::InvalidRegularExpression,
            format!("SubscribedTopicRegex is longer than {MAX_REGEX_BYTES} bytes"),
        ));
    }
    // Kafka matches the whole topic name (RE2/J's `matches`).
    regex::Regex::new(&format!("^(?:{text})$")).map_err(|error| {
        (
            ResponseError::InvalidRegularExpression,
            format!("SubscribedTopicRegex `{text}` is not a valid regular expression: {error}"),
        )
    })
}

fn without_empty(assignment: &Assignment) -> Assignment {
    assignment
        .iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .map(|(topic, partitions)| (*topic, partitions.clone()))
        .collect()
}

fn is_empty(assignment: &Assignment) -> bool {
    assignment.values().all(BTreeSet::is_empty)
}

fn intersection(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(topic, partitions)| {
            let common: BTreeSet<i32> = partitions.intersection(b.get(topic)?).copied().collect();
            (!common.is_empty()).then_some((*topic, common))
        })
        .collect()
}

fn difference(a: &Assignment, b: &Assignment) -> Assignment {
    a.iter()
        .filter_map(|(topic, partitions)| {
            let rest: BTreeSet<i32> = match b.get(topic) {
                Some(other) => partitions.difference(other).copied().collect(),
                None => partitions.clone(),
            };
            (!rest.is_empty()).then_some((*topic, rest))
        })
        .collect()
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    !is_empty(&intersection(a, b))
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    is_empty(&difference(a, b))
}

fn merge(into: &mut Assignment, from: &Assignment) {
    for (topic, partitions) in from {
        into.entry(*topic)
            .or_default()
            .extend(partitions.iter().copied());
    }
}

#[cfg(test)]
mod tests;
