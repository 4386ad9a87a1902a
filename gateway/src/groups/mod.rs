//! Consumer groups (Kafka's classic group protocol): which gateway
//! coordinates a group, the groups this gateway coordinates, and the
//! consumer lag metric.
//!
//! # Coordinator
//!
//! The coordinator of a group (or any FindCoordinator key) is
//! `live[fnv1a(key) % live.len()]`, `live` being the live gateways lowest
//! slot first ([`ClusterLog::members`]): every gateway computes the same
//! answer from the region. When a gateway dies its groups move to others;
//! their members get NOT_COORDINATOR, look the coordinator up again and
//! rejoin there. Group membership lives in the coordinator's memory only;
//! committed offsets travel through the order log
//! ([`ControlRecord::CommitOffsets`](cxlkafka_sequencer::control::ControlRecord))
//! so every gateway holds the same ones.
//!
//! # Timers
//!
//! Each group has one task that ticks every [`TICK`]: it expires sessions
//! and ids handed out with MEMBER_ID_REQUIRED, ends join phases whose time
//! is up, and forgets the group once it has been empty for
//! [`EMPTY_GROUP_GRACE`] (its offsets stay in the log). One task per
//! gateway refreshes the lag gauges every [`LAG_INTERVAL`].

pub mod consumer;
mod group;
mod outcome;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cxlkafka_sequencer::catalog::split_stream;
use kafka_protocol::ResponseError;

pub use group::{Group, JoinOutcome, JoinRequest, MigratedMember, Pending, State, SyncOutcome};

use crate::cluster::{ClusterLog, Member};
use crate::telemetry;

/// How often a group's timer runs.
pub const TICK: Duration = Duration::from_millis(50);
/// How long an empty group stays in memory.
pub const EMPTY_GROUP_GRACE: Duration = Duration::from_secs(30);
/// How often the lag gauges are refreshed.
pub const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// Groups one gateway coordinates at most.
pub const MAX_GROUPS: usize = 65_536;

/// Kafka's `group.initial.rebalance.delay.ms` default.
pub const DEFAULT_INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(3_000);

/// Group settings (Kafka's `group.*` broker configs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// How long a new group waits for more members before its first
    /// generation (`group.initial.rebalance.delay.ms`), counted from the
    /// last member to arrive, at most the rebalance timeout.
    pub initial_rebalance_delay: Duration,
    /// Smallest session timeout accepted (`group.min.session.timeout.ms`).
    pub min_session_timeout: Duration,
    /// Largest session timeout accepted (`group.max.session.timeout.ms`).
    pub max_session_timeout: Duration,
    /// Members per group (`group.max.size`).
    pub max_members: usize,
    /// How often consumer-protocol members heartbeat
    /// (`group.consumer.heartbeat.interval.ms`).
    pub consumer_heartbeat_interval: Duration,
    /// How long a consumer-protocol member may stay silent
    /// (`group.consumer.session.timeout.ms`).
    pub consumer_session_timeout: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay: DEFAULT_INITIAL_REBALANCE_DELAY,
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            max_members: 1_000,
            consumer_heartbeat_interval: consumer::HEARTBEAT_INTERVAL,
            consumer_session_timeout: consumer::SESSION_TIMEOUT,
        }
    }
}

/// 64-bit FNV-1a: stable across processes and versions (unlike std's
/// hasher), so every gateway picks the same coordinator.
pub fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The member's host as Kafka's DescribeGroups shows it: the connection's
/// IP after a slash (Java's `InetAddress.toString()`), `/127.0.0.1`.
pub fn client_host(ip: &str) -> String {
    if ip.is_empty() {
        String::new()
    } else {
        format!("/{ip}")
    }
}

/// The coordinator of `key` among `live` (lowest slot first).
pub fn coordinator_among<'a>(key: &str, live: &'a [Member]) -> Option<&'a Member> {
    let count = u64::try_from(live.len()).ok().filter(|&n| n > 0)?;
    let index = usize::try_from(fnv1a(key) % count).ok()?;
    live.get(index)
}

/// The coordinator of `key` now: among the gateways that hold every
/// entry, so its committed offsets are all there.
pub fn coordinator(log: &dyn ClusterLog, key: &str) -> Option<Member> {
    coordinator_among(key, &log.holders()).cloned()
}

/// Whether this gateway coordinates `key`.
pub fn is_coordinator(log: &dyn ClusterLog, key: &str) -> bool {
    coordinator(log, key).is_some_and(|member| i32::from(member.gateway) == log.node_id())
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct GroupSummary {
    /// State name.
    pub state: &'static str,
    /// Protocol type ("" when empty).
    pub protocol_type: String,
    /// Chosen protocol ("" unless stable or completing).
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment).
    pub members: Vec<MemberSummary>,
}

/// One member as DescribeGroups shows it.
#[derive(Clone, Debug)]
pub struct MemberSummary {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Current assignment.
    pub assignment: Bytes,
}

/// The groups this gateway coordinates.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
    /// Groups of the consumer protocol (KIP-848), see [`consumer`].
    consumer_groups: Mutex<HashMap<String, consumer::ConsumerGroup>>,
    consumer_config: consumer::ConsumerGroupConfig,
    ids: RandomState,
    next_id: AtomicU64,
    reporter_started: AtomicBool,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GroupCoordinator {
    /// A coordinator with no groups.
    pub fn new(config: GroupConfig) -> Self {
        let consumer_config = consumer::ConsumerGroupConfig {
            heartbeat_interval: config.consumer_heartbeat_interval,
            session_timeout: config.consumer_session_timeout,
            max_members: config.max_members,
        };
        Self {
            config,
            groups: Mutex::new(HashMap::new()),
            consumer_groups: Mutex::new(HashMap::new()),
            consumer_config,
            ids: RandomState::new(),
            next_id: AtomicU64::new(0),
            reporter_started: AtomicBool::new(false),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh member id: `<client id>-<random UUID>`, as Kafka makes them.
    fn member_id(&self, client_id: &str) -> String {
        let mut bytes = [0u8; 16];
        for (half, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = self.ids.build_hasher();
            hasher.write_u64(self.next_id.fetch_add(1, Ordering::Relaxed));
            hasher.write_usize(half);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        format!("{client_id}-{uuid}")
    }

    /// Handles a JoinGroup, creating the group (and its timer) if needed.
    pub fn join(
        self: &Arc<Self>,
        group_id: &str,
        request: JoinRequest,
        log: &Arc<dyn ClusterLog>,
    ) -> Pending<JoinOutcome> {
        let now = Instant::now();
        if let Some(outcome) = self.classic_join_consumer_group(group_id, &request, || log.topics())
        {
            return Pending::Now(outcome);
        }
        let mut groups = self.lock();
        if !groups.contains_key(group_id) {
            if groups.len() >= MAX_GROUPS {
                return Pending::Now(JoinOutcome {
                    error: Some(ResponseError::CoordinatorNotAvailable),
                    generation: -1,
                    member_id: request.member_id,
                    ..JoinOutcome::default()
                });
            }
            groups.insert(group_id.to_owned(), Group::new(group_id.to_owned(), now));
            self.spawn_timer(group_id.to_owned());
        }
        self.ensure_reporter(log);
        let Some(group) = groups.get_mut(group_id) else {
            return Pending::Now(JoinOutcome::default());
        };
        let pending = group.join(request, now, &self.config, |client| self.member_id(client));
        record_members(group);
        pending
    }

    /// Whether `group_id` is a classic group with members here; an empty
    /// one is forgotten, so the id can become a consumer group.
    pub fn is_classic_group(&self, group_id: &str) -> bool {
        let mut groups = self.lock();
        match groups.get(group_id) {
            Some(group) if !group.members.is_empty() => true,
            Some(_) => {
                groups.remove(group_id);
                false
            }
            None => false,
        }
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncOutcome> {
        if let Some(outcome) = self.classic_sync_consumer_group(group_id, member_id, generation) {
            return Pending::Now(outcome);
        }
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            Some(group) => group.sync(
                member_id,
                instance_id,
                generation,
                protocol_type,
                protocol,
                assignments,
                Instant::now(),
            ),
            None => Pending::Now(SyncOutcome {
                error: Some(ResponseError::UnknownMemberId),
                ..SyncOutcome::default()
            }),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        match self.lock().get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, instance_id, generation, Instant::now()),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Handles the members of a LeaveGroup: an error per member, or the
    /// group's error.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        if let Some(answers) = self.classic_leave_consumer_group(group_id, members) {
            return Ok(answers);
        }
        let mut groups = self.lock();
        let group = groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let now = Instant::now();
        let answers = members
            .iter()
            .map(|(member_id, instance_id)| {
                group.leave(member_id, instance_id.as_deref(), now, &self.config)
            })
            .collect();
        record_members(group);
        Ok(answers)
    }

    /// Whether an OffsetCommit from this member and generation is accepted,
    /// as Kafka decides it.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let groups = self.lock();
        let Some(group) = groups.get(group_id) else {
            // No live group: only a simple (generation -1) commit.
            return if generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        match group.state {
            State::Dead => Err(ResponseError::CoordinatorNotAvailable),
            State::Empty if generation < 0 => Ok(()),
            State::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
            _ if generation < 0 && member_id.is_empty() => Err(ResponseError::UnknownMemberId),
            _ => group.check_member(member_id, instance_id, generation),
        }
    }

    /// The group as DescribeGroups shows it, if it is live here.
    pub fn describe(&self, group_id: &str) -> Option<GroupSummary> {
        let groups = self.lock();
        let group = groups.get(group_id)?;
        let protocol = group.protocol.clone().unwrap_or_default();
        let shows_protocol = matches!(group.state, State::Stable | State::CompletingRebalance);
        Some(GroupSummary {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: if shows_protocol {
                protocol.clone()
            } else {
                String::new()
            },
            members: group
                .members
                .values()
                .map(|member| MemberSummary {
                    member_id: member.id.clone(),
                    instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    metadata: if shows_protocol {
                        member
                            .protocols
                            .iter()
                            .find(|(name, _)| *name == protocol)
                            .map(|(_, m)| m.clone())
                            .unwrap_or_default()
                    } else {
                        Bytes::new()
                    },
                    assignment: if group.state == State::Stable {
                        member.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// Live groups here: (id, protocol type, state name).
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        self.lock()
            .values()
            .map(|group| {
                (
                    group.id.clone(),
                    group.protocol_type.clone().unwrap_or_default(),
                    group.state.name(),
                )
            })
            .collect()
    }

    /// Forgets an empty group (DeleteGroups); NON_EMPTY_GROUP if it has
    /// members. Returns whether it was live here.
    pub fn remove_if_empty(&self, group_id: &str) -> Result<bool, ResponseError> {
        if let Some(removed) = self.remove_consumer_group_if_empty(group_id) {
            return removed.map(|()| true);
        }
        let mut groups = self.lock();
        match groups.get(group_id) {
            None => Ok(false),
            Some(group) if group.members.is_empty() => {
                groups.remove(group_id);
                Ok(true)
            }
            Some(_) => Err(ResponseError::NonEmptyGroup),
        }
    }

    /// Topics the members of a non-empty consumer group subscribe to
    /// (OffsetDelete); `None` for an empty or unknown group, `Err` with
    /// NON_EMPTY_GROUP for a non-empty group of another protocol type.
    pub fn subscribed_topics(
        &self,
        group_id: &str,
    ) -> Result<Option<HashSet<String>>, ResponseError> {
        if self.is_consumer_group(group_id) {
            return Ok(self.consumer_subscribed_topics(group_id));
        }
        let groups = self.lock();
        let Some(group) = groups.get(group_id).filter(|g| !g.members.is_empty()) else {
            return Ok(None);
        };
        if group.protocol_type.as_deref() != Some("consumer") {
            return Err(ResponseError::NonEmptyGroup);
        }
        let mut topics = HashSet::new();
        for member in group.members.values() {
            for (_, metadata) in &member.protocols {
                topics.extend(subscription_topics(metadata));
            }
        }
        Ok(Some(topics))
    }

    pub(crate) fn spawn_timer(self: &Arc<Self>, group_id: String) {
        self.spawn_ticker(move |coordinator, now| {
            let mut groups = coordinator.lock();
            let Some(group) = groups.get_mut(&group_id) else {
                return false;
            };
            let expired = group.tick(now, &coordinator.config);
            for member in &expired {
                tracing::info!(group = %group_id, member = %member, "session expired");
            }
            record_members(group);
            if idle_past_grace(group.members.is_empty(), group.empty_since, now) {
                groups.remove(&group_id);
                metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group_id.clone())
                    .set(0.0);
                return false;
            }
            true
        });
    }

    /// Runs `tick` every [`TICK`] until it returns false or the coordinator
    /// is gone: the timer of one group, classic or consumer.
    pub(crate) fn spawn_ticker(
        self: &Arc<Self>,
        tick: impl Fn(&Arc<Self>, Instant) -> bool + Send + 'static,
    ) {
        let coordinator = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(coordinator) = coordinator.upgrade() else {
                    return;
                };
                if !tick(&coordinator, Instant::now()) {
                    return;
                }
            }
        });
    }

    /// Starts the lag reporter once (it needs a Tokio runtime, which the
    /// handlers that call this run on).
    pub fn ensure_reporter(&self, log: &Arc<dyn ClusterLog>) {
        if self.reporter_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let log = Arc::downgrade(log);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(LAG_INTERVAL);
            let mut exported = HashSet::new();
            loop {
                interval.tick().await;
                let Some(log) = log.upgrade() else { return };
                record_lag(log.as_ref(), &mut exported);
            }
        });
    }
}

/// Whether an empty group has stayed empty past [`EMPTY_GROUP_GRACE`].
pub(crate) fn idle_past_grace(empty: bool, empty_since: Option<Instant>, now: Instant) -> bool {
    empty
        && empty_since.is_some_and(|since| now.saturating_duration_since(since) > EMPTY_GROUP_GRACE)
}

fn record_members(group: &Group) {
    metrics::gauge!(telemetry::CONSUMER_GROUP_MEMBERS, "group" => group.id.clone())
        .set(group.members.len() as f64);
}

/// One `cxlkafka_consumer_group_lag` series: (group, topic, partition).
pub type LagSeries = (String, String, u32);

/// High watermark minus committed offset (at least 0), per partition, for
/// every group this gateway coordinates.
pub fn lag_series(log: &dyn ClusterLog) -> HashMap<LagSeries, i64> {
    let live = log.holders();
    let me = log.node_id();
    let topics: HashMap<u32, String> = log
        .topics()
        .into_iter()
        .map(|topic| (topic.slot, topic.name))
        .collect();
    let mut series = HashMap::new();
    for group in log.offset_groups() {
        let mine = coordinator_among(&group, &live).is_some_and(|m| i32::from(m.gateway) == me);
        if !mine {
            continue;
        }
        for (stream, committed) in log.committed_offsets(&group) {
            let (slot, partition) = split_stream(stream);
            let Some(topic) = topics.get(&slot) else {
                continue;
            };
            let (_, high_watermark) = log.offsets(stream);
            let lag = high_watermark.saturating_sub(committed.offset).max(0);
            series.insert((group.clone(), topic.clone(), partition), lag);
        }
    }
    series
}

/// Sets the lag gauge of every series in `now`. A series set before
/// (`exported`) that is no longer in `now` (its group or offsets deleted,
/// its topic deleted, or the group now coordinated by another gateway) is
/// set to 0: the `metrics` facade cannot unregister it, and keeping its
/// last value would report lag that is gone, or count it twice in a sum
/// over the gateways of a cluster.
pub fn export_lag(now: &HashMap<LagSeries, i64>, exported: &mut HashSet<LagSeries>) {
    let gauge = |(group, topic, partition): &LagSeries| {
        metrics::gauge!(
            telemetry::CONSUMER_GROUP_LAG,
            "group" => group.clone(),
            "topic" => topic.clone(),
            "partition" => partition.to_string()
        )
    };
    for gone in exported.iter().filter(|series| !now.contains_key(*series)) {
        gauge(gone).set(0.0);
    }
    for (series, lag) in now {
        gauge(series).set(*lag as f64);
    }
    *exported = now.keys().cloned().collect();
}

/// Sets `cxlkafka_consumer_group_lag` for every group this gateway
/// coordinates ([`lag_series`], [`export_lag`]).
pub fn record_lag(log: &dyn ClusterLog, exported: &mut HashSet<LagSeries>) {
    export_lag(&lag_series(log), exported);
}

/// The topics of a ConsumerProtocolSubscription (version, then an array
/// of INT16-length strings), read without allocating for counts; an
/// unreadable one names none.
pub fn subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut topics = Vec::new();
    let Some(rest) = metadata.get(2..) else {
        return topics;
    };
    let Some((count, mut rest)) = rest.split_first_chunk::<4>() else {
        return topics;
    };
    let count = i32::from_be_bytes(*count);
    for _ in 0..count.max(0) {
        let Some((len, after)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let Ok(len) = usize::try_from(i16::from_be_bytes(*len)) else {
            break;
        };
        let Some(name) = after.get(..len) else { break };
        topics.push(String::from_utf8_lossy(name).into_owned());
        rest = &after[len..];
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(gateway: u16) -> Member {
        Member {
            gateway,
            host: "h".into(),
            port: 9092,
        }
    }

    #[test]
    fn the_coordinator_is_a_stable_hash_over_live_gateways() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        let live = [member(0), member(3), member(5)];
        let chosen = coordinator_among("billing", &live).map(|m| m.gateway);
        let expected = live[(fnv1a("billing") % 3) as usize].gateway;
        assert_eq!(chosen, Some(expected));
        assert!(coordinator_among("billing", &[]).is_none());
        // Spread: 300 groups over 3 gateways land on every one.
        let used: HashSet<u16> = (0..300)
            .filter_map(|i| coordinator_among(&format!("g{i}"), &live).map(|m| m.gateway))
            .collect();
        assert_eq!(used.len(), 3);
    }

    #[test]
    fn member_ids_are_client_id_and_a_uuid() {
        let coordinator = GroupCoordinator::new(GroupConfig::default());
        let a = coordinator.member_id("rdkafka");
        let b = coordinator.member_id("rdkafka");
        assert_ne!(a, b);
        let uuid = a.strip_prefix("rdkafka-").expect("client id prefix");
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{uuid}");
    }

    fn lag_samples(text: &str) -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| line.starts_with(telemetry::CONSUMER_GROUP_LAG))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn a_lag_series_that_is_gone_drops_to_zero_instead_of_keeping_its_value() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let series = |group: &str, partition: u32| (group.to_owned(), "t".to_owned(), partition);
        let mut exported = HashSet::new();
        metrics::with_local_recorder(&recorder, || {
            let now = HashMap::from([
                (series("a", 0), 20),
                (series("a", 1), 3),
                (series("b", 0), 52),
            ]);
            export_lag(&now, &mut exported);
        });
        assert_eq!(
            lag_samples(&handle.render()),
            [
                r#"cxlkafka_consumer_group_lag{group="a",topic="t",partition="0"} 20"#,
                r#"cxlkafka_consumer_group_lag{group="a",topic="t",partition="1"} 3"#,
                r#"cxlkafka_consumer_group_lag{group="b",topic="t",partition="0"} 52"#,
            ]
        );
        // Group b deleted (or coordinated elsewhere now), a's partition 1
        // offset deleted, a's partition 0 caught up to 7.
        metrics::with_local_recorder(&recorder, || {
            export_lag(&HashMap::from([(series("a", 0), 7)]), &mut exported);
        });
        assert_eq!(
            lag_samples(&handle.render()),
            [
                r#"cxlkafka_consumer_group_lag{group="a",topic="t",partition="0"} 7"#,
                r#"cxlkafka_consumer_group_lag{group="a",topic="t",partition="1"} 0"#,
                r#"cxlkafka_consumer_group_lag{group="b",topic="t",partition="0"} 0"#,
            ]
        );
        assert_eq!(exported, HashSet::from([series("a", 0)]));
        // A series that comes back is set again.
        metrics::with_local_recorder(&recorder, || {
            export_lag(&HashMap::from([(series("b", 0), 4)]), &mut exported);
        });
        assert!(lag_samples(&handle.render()).contains(
            &r#"cxlkafka_consumer_group_lag{group="b",topic="t",partition="0"} 4"#.to_owned()
        ));
    }

    #[test]
    fn subscription_topics_are_read_and_lies_are_harmless() {
        let mut metadata = vec![0, 1];
        metadata.extend(2_i32.to_be_bytes());
        for name in ["orders", "pay"] {
            metadata.extend(i16::try_from(name.len()).expect("short").to_be_bytes());
            metadata.extend(name.as_bytes());
        }
        metadata.extend([0, 0, 0, 0]);
        assert_eq!(subscription_topics(&metadata), vec!["orders", "pay"]);
        let mut lying = vec![0, 1];
        lying.extend(i32::MAX.to_be_bytes());
        assert!(subscription_topics(&lying).is_empty());
        assert!(subscription_topics(&[1]).is_empty());
    }
}
