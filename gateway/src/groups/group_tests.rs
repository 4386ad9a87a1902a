//! The group state machine without sockets or timers: time is passed in.

use super::*;

fn config(delay_ms: u64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::from_millis(delay_ms),
        min_session_timeout: Duration::from_millis(10),
        ..GroupConfig::default()
    }
}

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: None,
        client_id: "c".to_owned(),
        client_host: String::new(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".to_owned(),
        protocols: protocols
            .iter()
            .map(|name| ((*name).to_owned(), Bytes::from(format!("meta-{member_id}"))))
            .collect(),
        require_known_member_id: false,
    }
}

fn ids() -> impl FnMut(&str) -> String {
    let mut next = 0;
    move |client: &str| {
        next += 1;
        format!("{client}-{next}")
    }
}

fn now_outcome<T: std::fmt::Debug>(pending: Pending<T>) -> T {
    match pending {
        Pending::Now(outcome) => outcome,
        Pending::Wait(_) => panic!("expected an answer now"),
    }
}

/// The answer, now or already sent on the channel.
fn answered<T: std::fmt::Debug>(pending: Pending<T>) -> T {
    match pending {
        Pending::Now(outcome) => outcome,
        Pending::Wait(mut receiver) => receiver.try_recv().expect("already answered"),
    }
}

fn waiting<T>(pending: Pending<T>) -> oneshot::Receiver<T> {
    match pending {
        Pending::Wait(receiver) => receiver,
        Pending::Now(_) => panic!("expected to wait"),
    }
}

#[test]
fn a_new_member_gets_its_id_first_then_leads_a_one_member_group() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut first = request("", &["range"]);
    first.require_known_member_id = true;
    let outcome = now_outcome(group.join(first.clone(), t0, &cfg, &mut ids));
    assert_eq!(outcome.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(outcome.member_id, "c-1");
    first.member_id = outcome.member_id;
    let mut joined = waiting(group.join(first, t0, &cfg, &mut ids));
    let outcome = joined.try_recv().expect("alone: completes at once");
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.generation, 1);
    assert_eq!(outcome.leader, "c-1");
    assert_eq!(outcome.protocol.as_deref(), Some("range"));
    assert_eq!(outcome.members.len(), 1, "the leader sees every member");
    assert_eq!(group.state, State::CompletingRebalance);
    let mut synced = waiting(group.sync(
        "c-1",
        None,
        1,
        None,
        None,
        vec![("c-1".into(), Bytes::from_static(b"all"))],
        t0,
    ));
    assert_eq!(group.state, State::Stable);
    let outcome = synced.try_recv().expect("the leader's sync completes");
    assert_eq!(outcome.assignment, Bytes::from_static(b"all"));
    assert_eq!(group.heartbeat("c-1", None, 1, t0), None);
    assert_eq!(
        group.heartbeat("c-1", None, 0, t0),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.heartbeat("nobody", None, 1, t0),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_second_member_triggers_a_rebalance_and_both_get_assignments() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut a = waiting(group.join(request("", &["range", "roundrobin"]), t0, &cfg, &mut ids));
    let a_id = a.try_recv().expect("joined").member_id;
    answered(group.sync(&a_id, None, 1, None, None, vec![], t0));
    // B joins: A must rejoin; its heartbeat says so.
    let mut b = waiting(group.join(request("", &["roundrobin"]), t0, &cfg, &mut ids));
    assert_eq!(group.state, State::PreparingRebalance);
    assert_eq!(
        group.heartbeat(&a_id, None, 1, t0),
        Some(ResponseError::RebalanceInProgress)
    );
    assert!(b.try_recv().is_err(), "waits for A");
    let mut a_again =
        waiting(group.join(request(&a_id, &["range", "roundrobin"]), t0, &cfg, &mut ids));
    let a_out = a_again.try_recv().expect("complete");
    let b_out = b.try_recv().expect("complete");
    assert_eq!(a_out.generation, 2);
    assert_eq!(
        a_out.protocol.as_deref(),
        Some("roundrobin"),
        "the only common one"
    );
    assert_eq!(a_out.leader, a_id, "the leader stays");
    assert_eq!(a_out.members.len(), 2);
    assert!(b_out.members.is_empty());
    let mut b_sync = waiting(group.sync(&b_out.member_id, None, 2, None, None, vec![], t0));
    assert!(
        b_sync.try_recv().is_err(),
        "the follower waits for the leader"
    );
    let assignments = vec![
        (a_id.clone(), Bytes::from_static(b"p0")),
        (b_out.member_id.clone(), Bytes::from_static(b"p1")),
    ];
    let leader_synced = answered(group.sync(
        &a_id,
        None,
        2,
        Some("consumer"),
        Some("roundrobin"),
        assignments,
        t0,
    ));
    assert_eq!(leader_synced.error, None);
    assert_eq!(leader_synced.assignment, Bytes::from_static(b"p0"));
    assert_eq!(
        b_sync.try_recv().expect("synced").assignment,
        Bytes::from_static(b"p1")
    );
}

#[test]
fn inconsistent_protocols_and_bad_session_timeouts_are_refused() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let _a = waiting(group.join(request("", &["range"]), t0, &cfg, &mut ids));
    let outcome = now_outcome(group.join(request("", &["sticky"]), t0, &cfg, &mut ids));
    assert_eq!(
        outcome.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut short = request("", &["range"]);
    short.session_timeout = Duration::from_millis(1);
    let outcome = now_outcome(group.join(short, t0, &cfg, &mut ids));
    assert_eq!(outcome.error, Some(ResponseError::InvalidSessionTimeout));
}

#[test]
fn sessions_expire_and_the_rest_rebalance() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut a = waiting(group.join(request("", &["range"]), t0, &cfg, &mut ids));
    let a_id = a.try_recv().expect("joined").member_id;
    answered(group.sync(&a_id, None, 1, None, None, vec![], t0));
    let expired = group.tick(t0 + Duration::from_secs(5), &cfg);
    assert!(expired.is_empty());
    let expired = group.tick(t0 + Duration::from_secs(11), &cfg);
    assert_eq!(expired, vec![a_id]);
    assert_eq!(group.state, State::Empty);
    assert!(group.members.is_empty());
}

#[test]
fn the_initial_delay_waits_for_more_members() {
    let cfg = config(100);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut a = waiting(group.join(request("", &["range"]), t0, &cfg, &mut ids));
    let t1 = t0 + Duration::from_millis(60);
    let mut b = waiting(group.join(request("", &["range"]), t1, &cfg, &mut ids));
    group.tick(t0 + Duration::from_millis(120), &cfg);
    assert!(
        a.try_recv().is_err(),
        "the delay runs from the last arrival"
    );
    group.tick(t1 + Duration::from_millis(101), &cfg);
    assert_eq!(a.try_recv().expect("done").generation, 1);
    assert_eq!(b.try_recv().expect("done").generation, 1);
}

#[test]
fn a_static_member_rejoins_under_a_new_id_without_a_rebalance() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut leader = waiting(group.join(request("", &["range"]), t0, &cfg, &mut ids));
    let leader_id = leader.try_recv().expect("joined").member_id;
    answered(group.sync(&leader_id, None, 1, None, None, vec![], t0));
    let mut static_join = request("", &["range"]);
    static_join.instance_id = Some("i-1".into());
    static_join.require_known_member_id = true;
    let mut s = waiting(group.join(static_join.clone(), t0, &cfg, &mut ids));
    let mut leader = waiting(group.join(request(&leader_id, &["range"]), t0, &cfg, &mut ids));
    let old_id = s.try_recv().expect("joined").member_id;
    let leader_out = leader.try_recv().expect("joined");
    let assignments = vec![(old_id.clone(), Bytes::from_static(b"mine"))];
    answered(group.sync(&leader_id, None, 2, None, None, assignments, t0));
    let _ = group.sync(&old_id, Some("i-1"), 2, None, None, vec![], t0);
    assert_eq!(leader_out.generation, 2);
    // Back under a new id: same generation, same assignment, old id fenced.
    let outcome = now_outcome(group.join(static_join, t0, &cfg, &mut ids));
    assert_eq!(outcome.generation, 2);
    assert_ne!(outcome.member_id, old_id);
    assert_eq!(group.state, State::Stable);
    let synced = answered(group.sync(&outcome.member_id, Some("i-1"), 2, None, None, vec![], t0));
    assert_eq!(synced.assignment, Bytes::from_static(b"mine"));
    assert_eq!(
        group.heartbeat(&old_id, Some("i-1"), 2, t0),
        Some(ResponseError::FencedInstanceId)
    );
}

#[test]
fn leaving_members_rebalance_the_group_or_empty_it() {
    let cfg = config(0);
    let t0 = Instant::now();
    let mut group = Group::new("g".into(), t0);
    let mut ids = ids();
    let mut a = waiting(group.join(request("", &["range"]), t0, &cfg, &mut ids));
    let a_id = a.try_recv().expect("joined").member_id;
    answered(group.sync(&a_id, None, 1, None, None, vec![], t0));
    assert_eq!(
        group.leave("nobody", None, t0, &cfg),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.leave(&a_id, None, t0, &cfg), None);
    assert_eq!(group.state, State::Empty);
    assert_eq!(group.generation, 2);
}
