//! One consumer group's state machine (Kafka's classic group protocol).
//!
//! ```text
//! Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//!   ^                 ^          |                                   |
//!   |                 |          +--no member left--> Empty          | leader's SyncGroup
//!   |                 +---- join, leave, expiry ----------------- Stable
//! ```
//!
//! The state is plain data behind the coordinator's lock; waiting JoinGroup
//! and SyncGroup requests hold the receiving half of a oneshot channel
//! whose sender sits in their member, so nothing here blocks or queues
//! without bound: one join and one sync waiter per member, and a bounded
//! number of members per group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::GroupConfig;

pub use super::outcome::{JoinOutcome, JoinRequest, Pending, State, SyncOutcome};

/// One member.
#[derive(Debug)]
pub struct Member {
    /// Its id.
    pub id: String,
    /// Static membership.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Its protocols, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Its current assignment.
    pub assignment: Bytes,
    /// Last sign of life.
    pub last_seen: Instant,
    /// Order of joining (the first joiner leads when the leader left).
    pub joined_seq: u64,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// One group.
#[derive(Debug)]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: State,
    /// Current generation.
    pub generation: i32,
    /// Protocol type of its members.
    pub protocol_type: Option<String>,
    /// Protocol chosen at the last completed join.
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// Static members: instance id -> member id.
    static_members: HashMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until their deadline.
    pending: HashMap<String, Instant>,
    /// When the join phase ends at the latest.
    join_deadline: Option<Instant>,
    /// Hard limit of the initial delay (the rebalance timeout).
    initial_limit: Option<Instant>,
    /// Since when the group has been empty.
    pub empty_since: Option<Instant>,
    next_seq: u64,
}

/// A member a consumer group hands back when it becomes a classic group
/// again (KIP-848's downgrade, see [`super::consumer::classic`]).
#[derive(Clone, Debug)]
pub struct MigratedMember {
    /// Its id.
    pub id: String,
    /// Static membership.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Its protocols, in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// What it owns now, as `ConsumerProtocol` assignment bytes.
    pub assignment: Bytes,
}

impl Group {
    /// The classic group a consumer group becomes when only classic members
    /// are left: they keep their ids, protocols and assignments at
    /// `generation`, and a rebalance starts at once, so each one joins again
    /// (its heartbeat answers REBALANCE_IN_PROGRESS) and the leader assigns.
    pub fn downgraded(
        id: String,
        generation: i32,
        protocol: String,
        members: Vec<MigratedMember>,
        now: Instant,
        config: &GroupConfig,
    ) -> Self {
        let mut group = Group::new(id, now);
        group.generation = generation;
        group.protocol_type = Some("consumer".to_owned());
        group.protocol = Some(protocol);
        group.leader = members.first().map(|member| member.id.clone());
        for member in members {
            if let Some(instance) = &member.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.id.clone());
            }
            group.next_seq += 1;
            group.members.insert(
                member.id.clone(),
                Member {
                    id: member.id,
                    instance_id: member.instance_id,
                    client_id: member.client_id,
                    client_host: member.client_host,
                    session_timeout: member.session_timeout,
                    rebalance_timeout: member.rebalance_timeout,
                    protocols: member.protocols,
                    assignment: member.assignment,
                    last_seen: now,
                    joined_seq: group.next_seq,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        group.state = State::Stable;
        group.prepare_rebalance(now, config);
        group
    }

    /// A new, empty group.
    pub fn new(id: String, now: Instant) -> Self {
        Self {
            id,
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            join_deadline: None,
            initial_limit: None,
            empty_since: Some(now),
            next_seq: 0,
        }
    }

    /// Members plus pending ids (the group's size for its limit).
    fn size(&self) -> usize {
        self.members.len() + self.pending.len()
    }

    /// Protocols every member supports.
    fn common_protocols(&self) -> Option<HashSet<&str>> {
        let mut members = self.members.values();
        let first = members.next()?;
        let mut common: HashSet<&str> = first.protocols.iter().map(|(n, _)| n.as_str()).collect();
        for member in members {
            let names: HashSet<&str> = member.protocols.iter().map(|(n, _)| n.as_str()).collect();
            common.retain(|name| names.contains(name));
        }
        Some(common)
    }

    fn accepts(&self, request: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        let common = self.common_protocols().unwrap_or_default();
        request
            .protocols
            .iter()
            .any(|(name, _)| common.contains(name.as_str()))
    }

    /// Handles a JoinGroup. `new_id` makes a fresh member id.
    pub fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
        config: &GroupConfig,
        new_id: impl FnOnce(&str) -> String,
    ) -> Pending<JoinOutcome> {
        let refuse = |error| Pending::Now(JoinOutcome::error(error, &request.member_id));
        if self.state == State::Dead {
            return refuse(ResponseError::CoordinatorNotAvailable);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if request.session_timeout < config.min_session_timeout
            || request.session_timeout > config.max_session_timeout
        {
            return refuse(ResponseError::InvalidSessionTimeout);
        }
        if !self.accepts(&request) {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        if request.member_id.is_empty() {
            return self.join_unknown(request, now, config, new_id);
        }
        if let Some(instance) = &request.instance_id {
            match self.static_members.get(instance) {
                Some(known) if *known == request.member_id => {}
                Some(_) => return refuse(ResponseError::FencedInstanceId),
                None => return refuse(ResponseError::UnknownMemberId),
            }
        }
        if self.pending.remove(&request.member_id).is_some() {
            let id = request.member_id.clone();
            return self.add_and_rebalance(id, request, now, config);
        }
        let Some(member) = self.members.get(&request.member_id) else {
            return refuse(ResponseError::UnknownMemberId);
        };
        let unchanged = member.protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
        match self.state {
            State::CompletingRebalance if unchanged => {
                Pending::Now(self.current_outcome(&request.member_id, is_leader))
            }
            State::Stable if unchanged && !is_leader => {
                Pending::Now(self.current_outcome(&request.member_id, false))
            }
            _ => {
                let id = request.member_id.clone();
                self.update_and_rebalance(id, request, now, config)
            }
        }
    }

    fn join_unknown(
        &mut self,
        request: JoinRequest,
        now: Instant,
        config: &GroupConfig,
        new_id: impl FnOnce(&str) -> String,
    ) -> Pending<JoinOutcome> {
        let id = new_id(&request.client_id);
        let old = request
            .instance_id
            .as_ref()
            .and_then(|instance| self.static_members.get(instance).cloned());
        if let Some(old_id) = old {
            // A static member back under a new id: it takes its old place
            // (and assignment); the old id is fenced.
            let Some(mut member) = self.members.remove(&old_id) else {
                return Pending::Now(JoinOutcome::error(ResponseError::UnknownMemberId, ""));
            };
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinOutcome::error(ResponseError::FencedInstanceId, &old_id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::error(ResponseError::FencedInstanceId));
            }
            let unchanged = member.protocols == request.protocols;
            member.id = id.clone();
            if let Some(instance) = &request.instance_id {
                self.static_members.insert(instance.clone(), id.clone());
            }
            let was_leader = self.leader.as_deref() == Some(old_id.as_str());
            if was_leader {
                self.leader = Some(id.clone());
            }
            self.members.insert(id.clone(), member);
            if self.state == State::Stable && unchanged {
                if let Some(member) = self.members.get_mut(&id) {
                    member.last_seen = now;
                    member.session_timeout = request.session_timeout;
                    member.rebalance_timeout = request.rebalance_timeout;
                }
                let mut outcome = self.current_outcome(&id, was_leader);
                outcome.skip_assignment = was_leader;
                return Pending::Now(outcome);
            }
            return self.update_and_rebalance(id, request, now, config);
        }
        if self.size() >= config.max_members {
            return Pending::Now(JoinOutcome::error(ResponseError::GroupMaxSizeReached, ""));
        }
        if request.require_known_member_id && request.instance_id.is_none() {
            self.pending
                .insert(id.clone(), now + request.session_timeout);
            let mut outcome = JoinOutcome::error(ResponseError::MemberIdRequired, &id);
            outcome.member_id = id;
            return Pending::Now(outcome);
        }
        self.add_and_rebalance(id, request, now, config)
    }

    fn add_and_rebalance(
        &mut self,
        id: String,
        request: JoinRequest,
        now: Instant,
        config: &GroupConfig,
    ) -> Pending<JoinOutcome> {
        if self.members.len() >= config.max_members {
            return Pending::Now(JoinOutcome::error(ResponseError::GroupMaxSizeReached, &id));
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        if let Some(instance) = &request.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.next_seq += 1;
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout: request.session_timeout,
                rebalance_timeout: request.rebalance_timeout,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_seen: now,
                joined_seq: self.next_seq,
                join_waiter: None,
                sync_waiter: None,
            },
        );
        if let (State::PreparingRebalance, Some(limit)) = (self.state, self.initial_limit) {
            // The initial delay runs from the last new member on.
            self.join_deadline = Some((now + config.initial_rebalance_delay).min(limit));
        }
        self.update_and_rebalance(id, request, now, config)
    }

    fn update_and_rebalance(
        &mut self,
        id: String,
        request: JoinRequest,
        now: Instant,
        config: &GroupConfig,
    ) -> Pending<JoinOutcome> {
        let (sender, receiver) = oneshot::channel();
        let Some(member) = self.members.get_mut(&id) else {
            return Pending::Now(JoinOutcome::error(ResponseError::UnknownMemberId, &id));
        };
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.last_seen = now;
        if let Some(old) = member.join_waiter.replace(sender) {
            let _ = old.send(JoinOutcome::error(ResponseError::RebalanceInProgress, &id));
        }
        if self.state != State::PreparingRebalance {
            self.prepare_rebalance(now, config);
        }
        self.try_complete_join(now);
        Pending::Wait(receiver)
    }

    /// The current generation as a JoinGroup answer.
    fn current_outcome(&self, member_id: &str, with_members: bool) -> JoinOutcome {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: if with_members {
                self.members
                    .values()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, config: &GroupConfig) {
        if self.state == State::CompletingRebalance {
            for member in self.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let rebalance_timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(config.initial_rebalance_delay);
        if self.state == State::Empty && !config.initial_rebalance_delay.is_zero() {
            let limit = now + rebalance_timeout;
            self.initial_limit = Some(limit);
            self.join_deadline = Some((now + config.initial_rebalance_delay).min(limit));
        } else {
            self.initial_limit = None;
            self.join_deadline = Some(now + rebalance_timeout);
        }
        self.state = State::PreparingRebalance;
        self.empty_since = None;
    }

    /// Completes the join phase once every member (and pending id) is back,
    /// outside the initial delay.
    fn try_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance || self.initial_limit.is_some() {
            return;
        }
        let all_joined = self.pending.is_empty()
            && self
                .members
                .values()
                .all(|member| member.join_waiter.is_some());
        if all_joined {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|member| member.join_waiter.is_none())
            .map(|member| member.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.join_deadline = None;
        self.initial_limit = None;
        self.generation = self.generation.saturating_add(1);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            self.empty_since = Some(now);
            return;
        }
        self.protocol = self.select_protocol();
        let leader_present = self
            .leader
            .as_ref()
            .is_some_and(|leader| self.members.contains_key(leader));
        if !leader_present {
            self.leader = self
                .members
                .values()
                .min_by_key(|member| member.joined_seq)
                .map(|member| member.id.clone());
        }
        self.state = State::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let outcome = self.current_outcome(&id, id == leader);
            if let Some(member) = self.members.get_mut(&id) {
                member.last_seen = now;
                member.assignment = Bytes::new();
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(outcome);
                }
            }
        }
    }

    /// The protocol most members prefer among those all support.
    fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols()?;
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| common.contains(name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        // Ties go to the first member's preference order.
        let first = self.members.values().min_by_key(|m| m.joined_seq)?;
        first
            .protocols
            .iter()
            .filter(|(name, _)| common.contains(name.as_str()))
            .max_by(|(a, _), (b, _)| {
                let va = votes.get(a.as_str()).copied().unwrap_or(0);
                let vb = votes.get(b.as_str()).copied().unwrap_or(0);
                // max_by keeps the last of equals: reverse the order of ties.
                va.cmp(&vb).then(std::cmp::Ordering::Greater)
            })
            .map(|(name, _)| name.clone())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut member) = self.members.remove(id) {
            if let Some(instance) = &member.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinOutcome::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::error(ResponseError::UnknownMemberId));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// After members left: rebalance the rest, or become empty.
    fn members_changed(&mut self, now: Instant, config: &GroupConfig) {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now, config);
                self.try_complete_join(now);
            }
            State::PreparingRebalance => self.try_complete_join(now),
            State::Empty | State::Dead => {}
        }
    }

    /// Checks a member and generation (SyncGroup, Heartbeat, OffsetCommit).
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(known) if known == member_id => {}
                Some(_) => return Err(ResponseError::FencedInstanceId),
                None => return Err(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Pending<SyncOutcome> {
        if matches!(self.state, State::Empty | State::Dead) {
            return Pending::Now(SyncOutcome::error(ResponseError::UnknownMemberId));
        }
        if let Err(error) = self.check_member(member_id, instance_id, generation) {
            return Pending::Now(SyncOutcome::error(error));
        }
        let mismatch = |asked: Option<&str>, ours: &Option<String>| {
            asked.is_some_and(|asked| ours.as_deref() != Some(asked))
        };
        if mismatch(protocol_type, &self.protocol_type) || mismatch(protocol, &self.protocol) {
            return Pending::Now(SyncOutcome::error(ResponseError::InconsistentGroupProtocol));
        }
        let ok = |assignment: Bytes, group: &Group| SyncOutcome {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol: group.protocol.clone(),
            assignment,
        };
        match self.state {
            State::PreparingRebalance => {
                Pending::Now(SyncOutcome::error(ResponseError::RebalanceInProgress))
            }
            State::Stable => {
                let assignment = self
                    .members
                    .get_mut(member_id)
                    .map(|member| {
                        member.last_seen = now;
                        member.assignment.clone()
                    })
                    .unwrap_or_default();
                Pending::Now(ok(assignment, self))
            }
            _ => {
                let (sender, receiver) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.last_seen = now;
                    if let Some(old) = member.sync_waiter.replace(sender) {
                        let _ = old.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                    }
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    self.state = State::Stable;
                    let protocol_type = self.protocol_type.clone();
                    let protocol = self.protocol.clone();
                    for member in self.members.values_mut() {
                        member.assignment = given.remove(&member.id).unwrap_or_default();
                        if let Some(waiter) = member.sync_waiter.take() {
                            let _ = waiter.send(SyncOutcome {
                                error: None,
                                protocol_type: protocol_type.clone(),
                                protocol: protocol.clone(),
                                assignment: member.assignment.clone(),
                            });
                        }
                    }
                }
                Pending::Wait(receiver)
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        match self.state {
            State::Dead => return Some(ResponseError::CoordinatorNotAvailable),
            State::Empty => return Some(ResponseError::UnknownMemberId),
            _ => {}
        }
        if let Err(error) = self.check_member(member_id, instance_id, generation) {
            return Some(error);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen = now;
        }
        (self.state == State::PreparingRebalance).then_some(ResponseError::RebalanceInProgress)
    }

    /// Handles one member of a LeaveGroup.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        config: &GroupConfig,
    ) -> Option<ResponseError> {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(ResponseError::UnknownMemberId),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return Some(ResponseError::FencedInstanceId)
                }
                Some(known) => known.clone(),
            },
            None => member_id.to_owned(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return None;
        }
        if !self.members.contains_key(&id) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id);
        self.members_changed(now, config);
        None
    }

    /// Expires sessions and pending ids, and ends a join phase whose time
    /// is up. Returns the ids of the members that expired.
    pub fn tick(&mut self, now: Instant, config: &GroupConfig) -> Vec<String> {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| {
                member.join_waiter.is_none()
                    && member.sync_waiter.is_none()
                    && now.saturating_duration_since(member.last_seen) > member.session_timeout
            })
            .map(|member| member.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.members_changed(now, config);
        }
        if self.state == State::PreparingRebalance {
            if self.join_deadline.is_some_and(|deadline| now >= deadline) {
                match self.initial_limit.take() {
                    Some(limit) => {
                        // The initial delay is over; ids handed out with
                        // MEMBER_ID_REQUIRED get until the rebalance timeout.
                        self.join_deadline = Some(limit);
                        self.try_complete_join(now);
                    }
                    None => self.complete_join(now),
                }
            } else {
                self.try_complete_join(now);
            }
        }
        expired
    }

    /// Static member ids: (member id, instance id).
    pub fn instance_of(&self, member_id: &str) -> Option<&str> {
        self.members
            .get(member_id)
            .and_then(|member| member.instance_id.as_deref())
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
