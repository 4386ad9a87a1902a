//! The consumer groups a gateway coordinates, beside its classic groups in
//! [`GroupCoordinator`]: one group id is either kind, never both.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use cxlkafka_sequencer::catalog::Topic;
use kafka_protocol::ResponseError;

use super::{ConsumerGroup, Heartbeat, HeartbeatAnswer, Refusal};
use crate::groups::{GroupCoordinator, EMPTY_GROUP_GRACE, MAX_GROUPS, TICK};
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
        if self.is_classic_group(group_id) {
            return Err((
                ResponseError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ));
        }
        let now = Instant::now();
        let mut groups = self.consumer_groups();
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
        answer
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

    fn spawn_consumer_timer(self: &Arc<Self>, group_id: String) {
        let coordinator = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                let mut groups = coordinator.consumer_groups();
                let Some(group) = groups.get_mut(&group_id) else {
                    return;
                };
                let now = Instant::now();
                for member in group.tick(now) {
                    tracing::info!(group = %group_id, member = %member, "consumer group member removed: session or rebalance timeout");
                }
                record_consumer_group(group);
                let idle = group.members.is_empty()
                    && group.empty_since.is_some_and(|since| {
                        now.saturating_duration_since(since) > EMPTY_GROUP_GRACE
                    });
                if idle {
                    groups.remove(&group_id);
                    metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group_id.clone())
                        .set(0.0);
                    metrics::gauge!(telemetry::CONSUMER_GROUP_EPOCH, "group" => group_id.clone())
                        .set(0.0);
                    return;
                }
            }
        });
    }
}

fn record_consumer_group(group: &ConsumerGroup) {
    metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group.id.clone())
        .set(group.members.len() as f64);
    metrics::gauge!(telemetry::CONSUMER_GROUP_EPOCH, "group" => group.id.clone())
        .set(f64::from(group.group_epoch));
}
