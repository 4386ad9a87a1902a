//! The consumer groups a gateway coordinates, beside its classic groups in
//! [`GroupCoordinator`]: one group id is either kind, never both.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::ResponseError;

use super::{ConsumerGroup, Heartbeat, HeartbeatAnswer, Refusal};
use crate::groups::{idle_past_grace, GroupCoordinator, MAX_GROUPS};
use crate::telemetry;

impl GroupCoordinator {
    fn consumer_groups(&self) -> MutexGuard<'_, HashMap<String, ConsumerGroup>> {
        self.consumer_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Handles a ConsumerGroupHeartbeat, creating the group on a join.
    pub fn consumer_heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        request: Heartbeat,
        topics: &[Topic],
    ) -> Result<HeartbeatAnswer, Refusal> {
        let now = Instant::now();
        let mut classic = self.lock();
        let mut groups = self.consumer_groups();
        if let Some(old) = classic
            .get(group_id)
            .filter(|group| !group.members.is_empty())
        {
            if request.member_epoch != 0 {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                ));
            }
            let upgraded = ConsumerGroup::from_classic(old, topics, &self.consumer_config, now)?;
            tracing::info!(group = %group_id, members = upgraded.members.len(), "classic group upgraded to a consumer group: a consumer-protocol member joined");
            classic.remove(group_id);
            groups.insert(group_id.to_owned(), upgraded);
            self.spawn_consumer_timer(group_id.to_owned());
        } else {
            // An empty classic group just gives its id up.
            classic.remove(group_id);
        }
        drop(classic);
        if !groups.contains_key(group_id) {
            if request.member_epoch != 0 {
                // Not known here (this gateway took the group over, or it
                // expired): the member joins again.
                return Err((
                    ResponseError::UnknownMemberId,
                    format!(
                        "Member {} is not a member of group {group_id}.",
                        request.member_id
                    ),
                ));
            }
            if groups.len() >= MAX_GROUPS {
                return Err((
                    ResponseError::CoordinatorNotAvailable,
                    "This coordinator holds too many groups".into(),
                ));
            }
            groups.insert(
                group_id.to_owned(),
                ConsumerGroup::new(group_id.to_owned(), now),
            );
            self.spawn_consumer_timer(group_id.to_owned());
        }
        let group = groups
            .get_mut(group_id)
            .ok_or_else(|| (ResponseError::CoordinatorNotAvailable, String::new()))?;
        let client_id = request.client_id.clone();
        let answer = group.heartbeat(request, topics, now, &self.consumer_config, || {
            self.member_id(&client_id)
        });
        record_consumer_group(group);
        let downgraded = self.take_downgraded(&mut groups, group_id, now);
        drop(groups);
        self.install_downgraded(downgraded);
        answer
    }

    /// A JoinGroup to a consumer group from a classic member, `None` when
    /// `group_id` is no consumer group here.
    pub fn classic_join_consumer_group(
        &self,
        group_id: &str,
        request: &crate::groups::JoinRequest,
        topics: impl FnOnce() -> Vec<Topic>,
    ) -> Option<crate::groups::JoinOutcome> {
        let mut groups = self.consumer_groups();
        let group = groups.get_mut(group_id)?;
        let topics = topics();
        let outcome = group.classic_join(
            request,
            &topics,
            Instant::now(),
            &self.consumer_config,
            || self.member_id(&request.client_id),
        );
        record_consumer_group(group);
        Some(outcome)
    }

    /// A SyncGroup to a consumer group from a classic member, `None` when
    /// `group_id` is no consumer group here.
    pub fn classic_sync_consumer_group(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
    ) -> Option<crate::groups::SyncOutcome> {
        let groups = self.consumer_groups();
        Some(groups.get(group_id)?.classic_sync(member_id, generation))
    }

    /// A Heartbeat to a consumer group from a classic member: `Some(error)`
    /// (or `Some(None)`), `None` when `group_id` is no consumer group here.
    pub fn classic_heartbeat_consumer_group(
        &self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        topics: impl FnOnce() -> Vec<Topic>,
    ) -> Option<Option<ResponseError>> {
        let mut groups = self.consumer_groups();
        let group = groups.get_mut(group_id)?;
        let answer = group.classic_heartbeat(member_id, generation, &topics(), Instant::now());
        record_consumer_group(group);
        Some(answer)
    }

    /// LeaveGroup members of a consumer group (classic members): an error
    /// per member, `None` when `group_id` is no consumer group here.
    pub fn classic_leave_consumer_group(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Option<Vec<Option<ResponseError>>> {
        let mut groups = self.consumer_groups();
        let group = groups.get_mut(group_id)?;
        let now = Instant::now();
        let answers = members
            .iter()
            .map(|(member_id, instance_id)| {
                let member_id = match instance_id {
                    Some(instance) if member_id.is_empty() => group
                        .members
                        .values()
                        .find(|member| member.instance_id.as_ref() == Some(instance))
                        .map(|member| member.id.clone())
                        .unwrap_or_default(),
                    _ => member_id.clone(),
                };
                group.classic_leave(&member_id, now)
            })
            .collect();
        record_consumer_group(group);
        Some(answers)
    }

    /// A copy of a consumer group live here (ConsumerGroupDescribe).
    pub fn consumer_group(&self, group_id: &str) -> Option<ConsumerGroup> {
        self.consumer_groups().get(group_id).cloned()
    }

    /// Whether `group_id` is a consumer group live here.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups().contains_key(group_id)
    }

    /// Consumer groups live here: (id, state name).
    pub fn consumer_group_list(&self) -> Vec<(String, &'static str)> {
        self.consumer_groups()
            .values()
            .map(|group| (group.id.clone(), group.state_name()))
            .collect()
    }

    /// Kafka's check of an OffsetCommit to a consumer group: from a member
    /// at its current epoch (OffsetCommit v9+ only), or, with no member id
    /// and epoch -1, from outside the group while it is empty. `None` when
    /// `group_id` is not a consumer group here.
    pub fn check_consumer_commit(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
        version: i16,
    ) -> Option<Result<(), ResponseError>> {
        let groups = self.consumer_groups();
        let group = groups.get(group_id)?;
        if epoch < 0 && member_id.is_empty() {
            return Some(if group.members.is_empty() {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            });
        }
        if group.is_classic_member(member_id) {
            let current = group
                .members
                .get(member_id)
                .map(|member| member.member_epoch);
            return Some(if current == Some(epoch) {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            });
        }
        if version < 9 {
            return Some(Err(ResponseError::UnsupportedVersion));
        }
        Some(group.check_member_epoch(member_id, epoch))
    }

    /// Kafka's check of an OffsetFetch (v9+) that names a member.
    pub fn check_consumer_fetch(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ResponseError> {
        let groups = self.consumer_groups();
        match groups.get(group_id) {
            Some(group) if epoch >= 0 => group.check_member_epoch(member_id, epoch),
            _ => Ok(()),
        }
    }

    /// Forgets an empty consumer group (DeleteGroups): `Some(Ok)` when it
    /// was one, NON_EMPTY_GROUP while it has members.
    pub fn remove_consumer_group_if_empty(
        &self,
        group_id: &str,
    ) -> Option<Result<(), ResponseError>> {
        let mut groups = self.consumer_groups();
        let group = groups.get(group_id)?;
        if !group.members.is_empty() {
            return Some(Err(ResponseError::NonEmptyGroup));
        }
        groups.remove(group_id);
        Some(Ok(()))
    }

    /// Topics a non-empty consumer group subscribes to (OffsetDelete).
    pub fn consumer_subscribed_topics(
        &self,
        group_id: &str,
    ) -> Option<std::collections::HashSet<String>> {
        let groups = self.consumer_groups();
        let group = groups
            .get(group_id)
            .filter(|group| !group.members.is_empty())?;
        Some(group.subscribed_topics().cloned().collect())
    }

    /// Downgrade: takes a consumer group whose members all speak the
    /// classic protocol out of `groups`, as the classic group it becomes
    /// (see [`super::classic`]); installed by [`Self::install_downgraded`]
    /// once the consumer groups' lock is released (the classic groups' lock
    /// is always taken first).
    fn take_downgraded(
        &self,
        groups: &mut HashMap<String, ConsumerGroup>,
        group_id: &str,
        now: Instant,
    ) -> Option<crate::groups::Group> {
        let classic = groups.get(group_id)?.to_classic(now, &self.config)?;
        groups.remove(group_id);
        tracing::info!(group = %group_id, members = classic.members.len(), "consumer group downgraded to a classic group: only classic members are left");
        metrics::gauge!(telemetry::CONSUMER_GROUP_EPOCH, "group" => group_id.to_owned()).set(0.0);
        Some(classic)
    }

    fn install_downgraded(self: &Arc<Self>, group: Option<crate::groups::Group>) {
        let Some(group) = group else {
            return;
        };
        let id = group.id.clone();
        self.lock().insert(id.clone(), group);
        self.spawn_timer(id);
    }

    fn spawn_consumer_timer(self: &Arc<Self>, group_id: String) {
        self.spawn_ticker(move |coordinator, now| {
            let mut groups = coordinator.consumer_groups();
            let Some(group) = groups.get_mut(&group_id) else {
                return false;
            };
            for member in group.tick(now) {
                tracing::info!(group = %group_id, member = %member, "consumer group member removed: session or rebalance timeout");
            }
            record_consumer_group(group);
            if idle_past_grace(group.members.is_empty(), group.empty_since, now) {
                groups.remove(&group_id);
                metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group_id.clone())
                    .set(0.0);
                metrics::gauge!(telemetry::CONSUMER_GROUP_EPOCH, "group" => group_id.clone())
                    .set(0.0);
                return false;
            }
            let downgraded = coordinator.take_downgraded(&mut groups, &group_id, now);
            drop(groups);
            if downgraded.is_some() {
                coordinator.install_downgraded(downgraded);
                return false;
            }
            true
        });
    }
}

fn record_consumer_group(group: &ConsumerGroup) {
    metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group.id.clone())
        .set(group.members.len() as f64);
    metrics::gauge!(telemetry::CONSUMER_GROUP_EPOCH, "group" => group.id.clone())
        .set(f64::from(group.group_epoch));
}
