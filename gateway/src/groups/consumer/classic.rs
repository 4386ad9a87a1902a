//! Classic members of a consumer group: KIP-848's online migration, as
//! Kafka's default `group.consumer.migration.policy=bidirectional` does it.
//!
//! - **Upgrade.** A consumer-protocol member joining a stable classic group
//!   of protocol type `consumer` turns it into a consumer group
//!   ([`ConsumerGroup::from_classic`]): each classic member keeps its
//!   subscription, its assignment (read from the `ConsumerProtocol` bytes it
//!   was given) and its generation as member epoch.
//! - **Classic members in a consumer group** keep speaking JoinGroup,
//!   SyncGroup, Heartbeat and LeaveGroup. A JoinGroup is answered at once:
//!   the member is reconciled like any other (what it still owns, read from
//!   its subscription, counts as owned) and its generation is its member
//!   epoch; nobody leads, and SyncGroup hands it its assignment, computed by
//!   the coordinator. A Heartbeat answers REBALANCE_IN_PROGRESS while its
//!   assignment has to change, so it joins again.
//! - **Downgrade.** When the last consumer-protocol member leaves and
//!   classic members remain, the consumer group is dropped: their next
//!   Heartbeat gets UNKNOWN_MEMBER_ID and they form a classic group again
//!   (committed offsets stay in the log).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{Assignment, ConsumerGroup, ConsumerGroupConfig, ConsumerMember, MemberState};
use crate::groups::{Group, JoinOutcome, JoinRequest, MigratedMember, State, SyncOutcome};

/// What the coordinator keeps of a member that speaks the classic protocol.
#[derive(Clone, Debug)]
pub struct ClassicMember {
    /// Its session timeout (from JoinGroup): heartbeats renew it.
    pub session_timeout: Duration,
    /// The protocol (assignor) name it is answered with.
    pub protocol: String,
    /// Every protocol it offered, with its metadata, for a downgrade.
    pub protocols: Vec<(String, Bytes)>,
}

/// The protocol type whose members can be migrated.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

impl ConsumerGroup {
    /// Upgrade: the consumer group a stable classic group becomes when a
    /// consumer-protocol member joins it.
    pub fn from_classic(
        classic: &Group,
        topics: &[Topic],
        config: &ConsumerGroupConfig,
        now: Instant,
    ) -> Result<ConsumerGroup, (ResponseError, String)> {
        let refuse = |why: &str| {
            Err((
                ResponseError::GroupIdNotFound,
                format!(
                    "Cannot upgrade classic group {} to consumer group because {why}.",
                    classic.id
                ),
            ))
        };
        if classic.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return refuse("its members do not use the consumer embedded protocol");
        }
        if classic.state != State::Stable {
            return refuse("a rebalance is in progress");
        }
        let ids = topic_ids(topics);
        let mut group = ConsumerGroup::new(classic.id.clone(), now);
        group.group_epoch = classic.generation;
        group.assignment_epoch = classic.generation;
        let protocol = classic.protocol.clone().unwrap_or_default();
        for member in classic.members.values() {
            let metadata = member
                .protocols
                .iter()
                .find(|(name, _)| *name == protocol)
                .map(|(_, metadata)| metadata.clone())
                .unwrap_or_default();
            let mut names = crate::groups::subscription_topics(&metadata);
            names.sort_unstable();
            names.dedup();
            let assigned = decode_assignment(&member.assignment, &ids);
            group.targets.insert(member.id.clone(), assigned.clone());
            group.members.insert(
                member.id.clone(),
                ConsumerMember {
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    subscribed_topic_names: names,
                    member_epoch: classic.generation,
                    previous_member_epoch: classic.generation,
                    assigned,
                    classic: Some(ClassicMember {
                        session_timeout: member.session_timeout,
                        protocol: protocol.clone(),
                        protocols: member.protocols.clone(),
                    }),
                    ..ConsumerMember::new(
                        member.id.clone(),
                        member.instance_id.clone(),
                        member.rebalance_timeout,
                        now + member.session_timeout,
                    )
                },
            );
        }
        if group.members.len() > config.max_members {
            return refuse("it has more members than a consumer group may");
        }
        group.empty_since = None;
        Ok(group)
    }

    /// A classic member's JoinGroup (see the module notes).
    pub fn classic_join(
        &mut self,
        request: &JoinRequest,
        topics: &[Topic],
        now: Instant,
        config: &ConsumerGroupConfig,
        new_member_id: impl FnOnce() -> String,
    ) -> JoinOutcome {
        let refused = |error| JoinOutcome {
            error: Some(error),
            generation: -1,
            member_id: request.member_id.clone(),
            ..JoinOutcome::default()
        };
        if request.protocol_type != CONSUMER_PROTOCOL_TYPE {
            return refused(ResponseError::InconsistentGroupProtocol);
        }
        let Some((protocol, metadata)) = request.protocols.first().cloned() else {
            return refused(ResponseError::InconsistentGroupProtocol);
        };
        if request.member_id.is_empty() && request.require_known_member_id {
            return JoinOutcome {
                error: Some(ResponseError::MemberIdRequired),
                generation: -1,
                member_id: new_member_id(),
                ..JoinOutcome::default()
            };
        }
        let member_id = if request.member_id.is_empty() {
            new_member_id()
        } else {
            request.member_id.clone()
        };
        let ids = topic_ids(topics);
        let mut names = crate::groups::subscription_topics(&metadata);
        names.sort_unstable();
        names.dedup();
        let owned = decode_owned_partitions(&metadata, &ids);
        match self.members.get_mut(&member_id) {
            Some(member) if member.classic.is_none() => {
                return refused(ResponseError::InconsistentGroupProtocol)
            }
            Some(member) => {
                if member.subscribed_topic_names != names {
                    member.subscribed_topic_names = names;
                    self.group_epoch += 1;
                }
            }
            None => {
                if !request.member_id.is_empty() {
                    return refused(ResponseError::UnknownMemberId);
                }
                if self.members.len() >= config.max_members {
                    return refused(ResponseError::GroupMaxSizeReached);
                }
                self.members.insert(
                    member_id.clone(),
                    ConsumerMember {
                        client_id: request.client_id.clone(),
                        client_host: request.client_host.clone(),
                        subscribed_topic_names: names,
                        ..ConsumerMember::new(
                            member_id.clone(),
                            request.instance_id.clone(),
                            request.rebalance_timeout,
                            now + request.session_timeout,
                        )
                    },
                );
                self.empty_since = None;
                self.group_epoch += 1;
            }
        }
        if let Some(member) = self.members.get_mut(&member_id) {
            // A classic member joins again only after it gave up what its
            // subscription no longer lists as owned (an eager one gives up
            // everything): that is released now, not on a later join.
            member.assigned = super::intersection(&member.assigned, &owned);
            member.revoking = super::intersection(&member.revoking, &owned);
            member.classic = Some(ClassicMember {
                session_timeout: request.session_timeout,
                protocol: protocol.clone(),
                protocols: request.protocols.clone(),
            });
            member.session_deadline = now + request.session_timeout;
            member.rebalance_timeout = request.rebalance_timeout;
        }
        self.refresh_subscribed(topics);
        if self.group_epoch > self.assignment_epoch {
            self.compute_targets();
        }
        self.reconcile(&member_id, Some(&owned), now);
        let generation = self
            .members
            .get(&member_id)
            .map_or(-1, |member| member.member_epoch);
        JoinOutcome {
            error: None,
            generation,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol: Some(protocol),
            // Nobody leads: the coordinator assigns.
            leader: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        }
    }

    /// A classic member's SyncGroup: its assignment as the coordinator
    /// computed it.
    pub fn classic_sync(&self, member_id: &str, generation: i32) -> SyncOutcome {
        let Some((member, classic)) = self.classic_member(member_id) else {
            return SyncOutcome::error(ResponseError::UnknownMemberId);
        };
        if generation != member.member_epoch {
            return SyncOutcome::error(ResponseError::IllegalGeneration);
        }
        SyncOutcome {
            error: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol: Some(classic.protocol.clone()),
            assignment: encode_assignment(&member.assigned, &self.topic_names()),
        }
    }

    /// A classic member's Heartbeat: REBALANCE_IN_PROGRESS while its
    /// assignment has to change.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        topics: &[Topic],
        now: Instant,
    ) -> Option<ResponseError> {
        let Some((member, classic)) = self.classic_member(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if generation != member.member_epoch {
            return Some(ResponseError::IllegalGeneration);
        }
        let deadline = now + classic.session_timeout;
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline = deadline;
        }
        self.refresh_subscribed(topics);
        if self.group_epoch > self.assignment_epoch {
            self.compute_targets();
        }
        let member = self.members.get(member_id)?;
        let target = self.targets.get(member_id).cloned().unwrap_or_default();
        let settled = member.state == MemberState::Stable
            && member.member_epoch == self.assignment_epoch
            && super::without_empty(&member.assigned) == super::without_empty(&target);
        (!settled).then_some(ResponseError::RebalanceInProgress)
    }

    /// A classic member's LeaveGroup.
    pub fn classic_leave(&mut self, member_id: &str, now: Instant) -> Option<ResponseError> {
        if self.classic_member(member_id).is_none() {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member(member_id, now);
        None
    }

    /// Whether members are left and every one speaks the classic protocol:
    /// the group goes back to being a classic group.
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|member| member.classic.is_some())
    }

    /// Downgrade: the classic group this one becomes, when only classic
    /// members are left (see [`Group::downgraded`]).
    pub fn to_classic(&self, now: Instant, config: &crate::groups::GroupConfig) -> Option<Group> {
        if !self.only_classic_members() {
            return None;
        }
        let names = self.topic_names();
        let members: Vec<MigratedMember> = self
            .members
            .values()
            .filter_map(|member| {
                let classic = member.classic.as_ref()?;
                Some(MigratedMember {
                    id: member.id.clone(),
                    instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    session_timeout: classic.session_timeout,
                    rebalance_timeout: member.rebalance_timeout,
                    protocols: classic.protocols.clone(),
                    assignment: encode_assignment(&member.assigned, &names),
                })
            })
            .collect();
        let protocol = self
            .members
            .values()
            .find_map(|member| Some(member.classic.as_ref()?.protocol.clone()))
            .unwrap_or_default();
        // Members heartbeat with the epoch they last joined at; the group
        // takes the one most of them have.
        let mut epochs: BTreeMap<i32, usize> = BTreeMap::new();
        for member in self.members.values() {
            *epochs.entry(member.member_epoch).or_default() += 1;
        }
        let generation = epochs
            .into_iter()
            .max_by_key(|(epoch, count)| (*count, *epoch))
            .map_or(0, |(epoch, _)| epoch);
        Some(Group::downgraded(
            self.id.clone(),
            generation,
            protocol,
            members,
            now,
            config,
        ))
    }

    /// Whether `member_id` is a classic member of this group.
    pub fn is_classic_member(&self, member_id: &str) -> bool {
        self.classic_member(member_id).is_some()
    }

    fn classic_member(&self, member_id: &str) -> Option<(&ConsumerMember, &ClassicMember)> {
        let member = self.members.get(member_id)?;
        Some((member, member.classic.as_ref()?))
    }

    fn topic_names(&self) -> BTreeMap<Uuid, String> {
        self.subscribed
            .iter()
            .map(|(name, (id, _))| (*id, name.clone()))
            .collect()
    }
}

fn topic_ids(topics: &[Topic]) -> BTreeMap<String, Uuid> {
    topics
        .iter()
        .map(|topic| (topic.name.clone(), Uuid::from_bytes(topic.topic_id)))
        .collect()
}

/// Bounds-checked reads of the `ConsumerProtocol` encodings (the crate's
/// decoders trust array counts).
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    fn skip_bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len > 0 {
            let len = usize::try_from(len).ok()?;
            self.0 = self.0.get(len..)?;
        }
        Some(())
    }

    /// `[topic string, [partition i32]]`, topics by id (unknown ones left out).
    fn topic_partitions(&mut self, ids: &BTreeMap<String, Uuid>) -> Option<Assignment> {
        let mut assignment = Assignment::new();
        for _ in 0..self.i32()?.max(0) {
            let topic = self.string()?;
            let mut partitions = BTreeSet::new();
            for _ in 0..self.i32()?.max(0) {
                partitions.insert(self.i32()?);
            }
            if let Some(id) = ids.get(&topic) {
                assignment.entry(*id).or_default().extend(partitions);
            }
        }
        Some(assignment)
    }
}

/// The partitions a `ConsumerProtocolAssignment` (any version) gives.
fn decode_assignment(bytes: &[u8], ids: &BTreeMap<String, Uuid>) -> Assignment {
    let mut cursor = Cursor(bytes);
    cursor
        .i16()
        .and_then(|_| cursor.topic_partitions(ids))
        .unwrap_or_default()
}

/// The partitions a `ConsumerProtocolSubscription` (v1+) says its member
/// still owns; none for v0 or what does not parse.
fn decode_owned_partitions(bytes: &[u8], ids: &BTreeMap<String, Uuid>) -> Assignment {
    let mut cursor = Cursor(bytes);
    let owned = (|| {
        let version = cursor.i16()?;
        if version < 1 {
            return None;
        }
        for _ in 0..cursor.i32()?.max(0) {
            cursor.string()?;
        }
        cursor.skip_bytes()?;
        cursor.topic_partitions(ids)
    })();
    owned.unwrap_or_default()
}

/// A `ConsumerProtocolAssignment` v0 of `assigned` (topics by name).
fn encode_assignment(assigned: &Assignment, names: &BTreeMap<Uuid, String>) -> Bytes {
    let topics: Vec<(&String, &BTreeSet<i32>)> = assigned
        .iter()
        .filter_map(|(id, partitions)| Some((names.get(id)?, partitions)))
        .filter(|(_, partitions)| !partitions.is_empty())
        .collect();
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        out.put_i16(name.len() as i16);
        out.put_slice(name.as_bytes());
        out.put_i32(partitions.len() as i32);
        for partition in partitions {
            out.put_i32(*partition);
        }
    }
    // No user data.
    out.put_i32(-1);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assignment_survives_its_encoding() {
        let id = Uuid::from_bytes([3; 16]);
        let assigned = Assignment::from([(id, BTreeSet::from([0, 2, 5]))]);
        let names = BTreeMap::from([(id, "orders".to_owned())]);
        let ids = BTreeMap::from([("orders".to_owned(), id)]);
        let bytes = encode_assignment(&assigned, &names);
        assert_eq!(decode_assignment(&bytes, &ids), assigned);
    }

    #[test]
    fn truncated_or_lying_encodings_decode_to_nothing() {
        let ids = BTreeMap::from([("orders".to_owned(), Uuid::from_bytes([3; 16]))]);
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff], &ids).is_empty());
        assert!(decode_owned_partitions(&[0, 1, 0, 0, 0, 1, 0, 9], &ids).is_empty());
        assert!(decode_owned_partitions(&[], &ids).is_empty());
    }

    fn orders() -> Topic {
        Topic {
            slot: 1,
            name: "orders".into(),
            topic_id: [3; 16],
            partitions: 4,
            retention_ms: -1,
            retention_bytes: -1,
            configs: String::new(),
            replication_factor: 1,
            changed_at: 0,
        }
    }

    /// A v0 `ConsumerProtocolSubscription` to `orders`.
    fn subscription() -> Bytes {
        let mut bytes = BytesMut::new();
        bytes.put_i16(0);
        bytes.put_i32(1);
        bytes.put_i16(6);
        bytes.put_slice(b"orders");
        bytes.put_i32(-1);
        bytes.freeze()
    }

    fn partitions(assignment: &Bytes) -> usize {
        let ids = BTreeMap::from([("orders".to_owned(), Uuid::from_bytes([3; 16]))]);
        decode_assignment(assignment, &ids)
            .values()
            .map(BTreeSet::len)
            .sum()
    }

    #[test]
    fn a_classic_group_upgrades_shares_with_a_consumer_member_and_downgrades() {
        let now = Instant::now();
        let topics = [orders()];
        let id = Uuid::from_bytes([3; 16]);
        let everything = Assignment::from([(id, BTreeSet::from([0, 1, 2, 3]))]);
        let names = BTreeMap::from([(id, "orders".to_owned())]);
        let config = crate::groups::GroupConfig::default();
        let mut classic = Group::downgraded(
            "g".into(),
            7,
            "range".into(),
            vec![MigratedMember {
                id: "old".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: String::new(),
                session_timeout: Duration::from_secs(10),
                rebalance_timeout: Duration::from_secs(10),
                protocols: vec![("range".into(), subscription())],
                assignment: encode_assignment(&everything, &names),
            }],
            now,
            &config,
        );
        classic.state = State::Stable;
        let consumer_config = ConsumerGroupConfig::default();
        let mut group =
            ConsumerGroup::from_classic(&classic, &topics, &consumer_config, now).expect("upgrade");
        assert_eq!(group.members["old"].member_epoch, 7);
        assert_eq!(group.members["old"].assigned, everything);

        let join = super::super::Heartbeat {
            member_id: "new".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["orders".into()]),
            owned: Some(Assignment::new()),
            ..super::super::Heartbeat::default()
        };
        let joined = group
            .heartbeat(join, &topics, now, &consumer_config, || unreachable!())
            .expect("the consumer member joins");
        assert!(
            joined.assignment.unwrap_or_default().is_empty(),
            "old still owns them"
        );
        // The classic member is told to join again, and gets its half.
        assert_eq!(
            group.classic_heartbeat("old", 7, &topics, now),
            Some(ResponseError::RebalanceInProgress)
        );
        let rejoin = JoinRequest {
            member_id: "old".into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription())],
            require_known_member_id: true,
        };
        let outcome =
            group.classic_join(&rejoin, &topics, now, &consumer_config, || unreachable!());
        assert_eq!(outcome.error, None);
        assert!(outcome.leader.is_empty() && outcome.members.is_empty());
        let synced = group.classic_sync("old", outcome.generation);
        assert_eq!(synced.error, None);
        assert_eq!(partitions(&synced.assignment), 2);
        assert_eq!(
            group.classic_heartbeat("old", outcome.generation, &topics, now),
            None
        );
        assert_eq!(
            group.classic_sync("old", outcome.generation - 1).error,
            Some(ResponseError::IllegalGeneration)
        );
        assert!(
            group.to_classic(now, &config).is_none(),
            "a consumer member is left"
        );

        // The consumer member leaves: only the classic member is left.
        let leave = super::super::Heartbeat {
            member_id: "new".into(),
            member_epoch: super::super::LEAVE_EPOCH,
            ..super::super::Heartbeat::default()
        };
        group
            .heartbeat(leave, &topics, now, &consumer_config, || unreachable!())
            .expect("leave");
        let downgraded = group.to_classic(now, &config).expect("downgrade");
        assert_eq!(downgraded.state, State::PreparingRebalance);
        assert_eq!(downgraded.generation, outcome.generation);
        assert!(downgraded.members.contains_key("old"));
    }

    #[test]
    fn owned_partitions_are_read_from_a_v1_subscription() {
        let id = Uuid::from_bytes([3; 16]);
        let ids = BTreeMap::from([("orders".to_owned(), id)]);
        let mut bytes = BytesMut::new();
        bytes.put_i16(1);
        bytes.put_i32(1);
        bytes.put_i16(6);
        bytes.put_slice(b"orders");
        bytes.put_i32(-1); // no user data
        bytes.put_i32(1);
        bytes.put_i16(6);
        bytes.put_slice(b"orders");
        bytes.put_i32(2);
        bytes.put_i32(1);
        bytes.put_i32(4);
        assert_eq!(
            decode_owned_partitions(&bytes, &ids),
            Assignment::from([(id, BTreeSet::from([1, 4]))])
        );
    }
}
