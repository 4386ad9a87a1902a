use super::*;

fn topic(name: &str, id: u8, partitions: u32) -> Topic {
    Topic {
        slot: u32::from(id),
        name: name.to_owned(),
        topic_id: [id; 16],
        partitions,
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 1,
        changed_at: 0,
    }
}

fn uuid(id: u8) -> Uuid {
    Uuid::from_bytes([id; 16])
}

/// A client as the protocol expects one to behave: it adopts every
/// assignment it hears at once and reports what it owns.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn join(group: &mut ConsumerGroup, topics: &[Topic], id: &str, now: Instant) -> Client {
        let mut client = Client {
            id: id.to_owned(),
            epoch: 0,
            owned: Assignment::new(),
        };
        let request = Heartbeat {
            member_id: id.to_owned(),
            member_epoch: 0,
            rebalance_timeout_ms: 300_000,
            subscribed_topic_names: Some(vec!["orders".into()]),
            owned: Some(Assignment::new()),
            ..Heartbeat::default()
        };
        client.hear(group.heartbeat(request, topics, now, &config(), || unreachable!()));
        client
    }

    fn beat(&mut self, group: &mut ConsumerGroup, topics: &[Topic], now: Instant) {
        let request = Heartbeat {
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            owned: Some(self.owned.clone()),
            ..Heartbeat::default()
        };
        self.hear(group.heartbeat(request, topics, now, &config(), || unreachable!()));
    }

    fn hear(&mut self, answer: Result<HeartbeatAnswer, Refusal>) {
        let answer = answer.unwrap_or_else(|(error, message)| panic!("{error:?}: {message}"));
        self.epoch = answer.member_epoch;
        if let Some(assignment) = answer.assignment {
            self.owned = assignment;
        }
    }

    fn count(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }
}

fn config() -> ConsumerGroupConfig {
    ConsumerGroupConfig::default()
}

/// No partition is owned by two clients at any time.
fn assert_exclusive(clients: &[Client]) {
    let mut seen = BTreeSet::new();
    for client in clients {
        for (topic, partitions) in &client.owned {
            for &partition in partitions {
                assert!(
                    seen.insert((*topic, partition)),
                    "partition {partition} owned twice"
                );
            }
        }
    }
}

#[test]
fn members_joining_one_by_one_never_own_a_partition_twice_and_end_balanced() {
    let topics = [topic("orders", 1, 12)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let mut clients = vec![Client::join(&mut group, &topics, "a", now)];
    assert_eq!(clients[0].count(), 12);
    assert_eq!(clients[0].epoch, group.group_epoch);
    for id in ["b", "c"] {
        clients.push(Client::join(&mut group, &topics, id, now));
        assert_exclusive(&clients);
        for _ in 0..4 {
            for client in clients.iter_mut() {
                client.beat(&mut group, &topics, now);
            }
            assert_exclusive(&clients);
        }
    }
    let counts: Vec<usize> = clients.iter().map(Client::count).collect();
    assert_eq!(counts, vec![4, 4, 4]);
    assert_eq!(group.state_name(), "Stable");
    assert!(clients
        .iter()
        .all(|client| client.epoch == group.assignment_epoch));
}

#[test]
fn a_partition_moves_only_after_its_owner_showed_it_released() {
    let topics = [topic("orders", 1, 2)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let mut a = Client::join(&mut group, &topics, "a", now);
    let mut b = Client::join(&mut group, &topics, "b", now);
    // b's target holds a partition a still owns: b gets nothing yet.
    assert_eq!(b.count(), 0);
    assert_eq!(group.members["b"].state, MemberState::UnreleasedPartitions);
    // a hears it must give one up; it keeps its epoch until it did.
    let before = a.epoch;
    a.beat(&mut group, &topics, now);
    assert_eq!(a.count(), 1);
    assert_eq!(a.epoch, before);
    assert_eq!(group.members["a"].state, MemberState::UnrevokedPartitions);
    b.beat(&mut group, &topics, now);
    assert_eq!(b.count(), 0, "a has not reported the release yet");
    // a's next heartbeat reports what it owns now: the revocation is done.
    a.beat(&mut group, &topics, now);
    assert_eq!(a.epoch, group.assignment_epoch);
    b.beat(&mut group, &topics, now);
    assert_eq!(b.count(), 1);
    assert_exclusive(&[a, b]);
}

#[test]
fn a_member_that_leaves_frees_its_partitions_for_the_others() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let mut a = Client::join(&mut group, &topics, "a", now);
    let mut b = Client::join(&mut group, &topics, "b", now);
    for _ in 0..3 {
        a.beat(&mut group, &topics, now);
        b.beat(&mut group, &topics, now);
    }
    assert_eq!((a.count(), b.count()), (2, 2));
    let leave = Heartbeat {
        member_id: "b".into(),
        member_epoch: LEAVE_EPOCH,
        ..Heartbeat::default()
    };
    let answer = group
        .heartbeat(leave, &topics, now, &config(), || unreachable!())
        .expect("leave");
    assert_eq!(answer.member_epoch, LEAVE_EPOCH);
    a.beat(&mut group, &topics, now);
    assert_eq!(a.count(), 4);
}

#[test]
fn a_wrong_epoch_is_fenced_and_an_unknown_member_refused() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let a = Client::join(&mut group, &topics, "a", now);
    let ahead = Heartbeat {
        member_id: "a".into(),
        member_epoch: a.epoch + 5,
        ..Heartbeat::default()
    };
    let refused = group.heartbeat(ahead, &topics, now, &config(), || unreachable!());
    assert_eq!(refused.unwrap_err().0, ResponseError::FencedMemberEpoch);
    let stranger = Heartbeat {
        member_id: "nobody".into(),
        member_epoch: 3,
        ..Heartbeat::default()
    };
    let refused = group.heartbeat(stranger, &topics, now, &config(), || unreachable!());
    assert_eq!(refused.unwrap_err().0, ResponseError::UnknownMemberId);
}

#[test]
fn the_previous_epoch_is_accepted_when_the_answer_was_lost() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let mut a = Client::join(&mut group, &topics, "a", now);
    Client::join(&mut group, &topics, "b", now);
    // a is told to give two partitions up, and does.
    a.beat(&mut group, &topics, now);
    assert_eq!(a.count(), 2);
    let stale = a.epoch;
    // The heartbeat that shows it moves a to the new epoch; a never hears
    // the answer and sends its old epoch again.
    let report = Heartbeat {
        member_id: "a".into(),
        member_epoch: stale,
        owned: Some(a.owned.clone()),
        ..Heartbeat::default()
    };
    let moved = group
        .heartbeat(report.clone(), &topics, now, &config(), || unreachable!())
        .expect("revocation reported");
    assert!(moved.member_epoch > stale);
    let retried = group
        .heartbeat(report, &topics, now, &config(), || unreachable!())
        .expect("the previous epoch with a subset of the assignment");
    assert_eq!(retried.member_epoch, moved.member_epoch);
    // Owning more than it was given, the same epoch is fenced.
    let mut greedy = a.owned.clone();
    greedy.entry(uuid(1)).or_default().extend(0..4);
    let refused = group.heartbeat(
        Heartbeat {
            member_id: "a".into(),
            member_epoch: stale,
            owned: Some(greedy),
            ..Heartbeat::default()
        },
        &topics,
        now,
        &config(),
        || unreachable!(),
    );
    assert_eq!(refused.unwrap_err().0, ResponseError::FencedMemberEpoch);
}

#[test]
fn a_static_member_that_comes_back_keeps_its_partitions() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let join = |id: &str| Heartbeat {
        member_id: id.into(),
        member_epoch: 0,
        instance_id: Some("instance-1".into()),
        rebalance_timeout_ms: 1_000,
        subscribed_topic_names: Some(vec!["orders".into()]),
        ..Heartbeat::default()
    };
    let first = group
        .heartbeat(join("old"), &topics, now, &config(), || unreachable!())
        .expect("join");
    let epoch = group.group_epoch;
    // While it is live, its instance id cannot be taken.
    let taken = group.heartbeat(join("new"), &topics, now, &config(), || unreachable!());
    assert_eq!(taken.unwrap_err().0, ResponseError::UnreleasedInstanceId);
    let leave = Heartbeat {
        member_id: "old".into(),
        member_epoch: STATIC_LEAVE_EPOCH,
        instance_id: Some("instance-1".into()),
        ..Heartbeat::default()
    };
    group
        .heartbeat(leave, &topics, now, &config(), || unreachable!())
        .expect("static leave");
    let back = group
        .heartbeat(join("new"), &topics, now, &config(), || unreachable!())
        .expect("rejoin");
    assert_eq!(back.assignment, first.assignment);
    assert_eq!(group.group_epoch, epoch, "no rebalance");
    assert!(!group.members.contains_key("old"));
}

#[test]
fn a_regex_subscription_follows_topics_as_they_come_and_go() {
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let join = Heartbeat {
        member_id: "a".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 1_000,
        subscribed_topic_regex: Some("orders-.*".into()),
        ..Heartbeat::default()
    };
    let one = [topic("orders-eu", 1, 2), topic("other", 2, 3)];
    let answer = group
        .heartbeat(join, &one, now, &config(), || unreachable!())
        .expect("join");
    // As in Kafka, the expression is resolved after the heartbeat that
    // brought it: the coordinator's next tick.
    assert!(answer.assignment.expect("assignment").is_empty());
    let mut client = Client {
        id: "a".into(),
        epoch: answer.member_epoch,
        owned: Assignment::new(),
    };
    assert!(group.tick(now).is_empty());
    client.beat(&mut group, &one, now);
    assert_eq!(client.owned.len(), 1);
    let two = [
        topic("orders-eu", 1, 2),
        topic("other", 2, 3),
        topic("orders-us", 3, 1),
    ];
    client.beat(&mut group, &two, now);
    assert_eq!(client.count(), 3);
    assert!(client.owned.contains_key(&uuid(3)));
    let bad = Heartbeat {
        member_id: "a".into(),
        member_epoch: client.epoch,
        subscribed_topic_regex: Some("(".into()),
        ..Heartbeat::default()
    };
    let refused = group.heartbeat(bad, &two, now, &config(), || unreachable!());
    assert_eq!(
        refused.unwrap_err().0,
        ResponseError::InvalidRegularExpression
    );
}

#[test]
fn a_silent_member_is_removed_when_its_session_ends() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    Client::join(&mut group, &topics, "a", now);
    assert!(group.tick(now + Duration::from_secs(1)).is_empty());
    let expired = group.tick(now + SESSION_TIMEOUT + Duration::from_secs(1));
    assert_eq!(expired, vec!["a".to_owned()]);
    assert_eq!(group.state_name(), "Empty");
}

#[test]
fn commits_check_the_member_epoch() {
    let topics = [topic("orders", 1, 4)];
    let now = Instant::now();
    let mut group = ConsumerGroup::new("g".into(), now);
    let a = Client::join(&mut group, &topics, "a", now);
    assert_eq!(group.check_member_epoch("a", a.epoch), Ok(()));
    assert_eq!(
        group.check_member_epoch("a", a.epoch - 1),
        Err(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        group.check_member_epoch("b", 1),
        Err(ResponseError::UnknownMemberId)
    );
}
