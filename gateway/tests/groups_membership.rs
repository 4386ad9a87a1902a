//! Consumer group membership over raw sockets: FindCoordinator, JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups, with
//! rebalances, session expiry and static members.

mod common;
mod data_path;
mod groups;

use std::time::Duration;

use common::TestGateway;
use data_path::call;
use groups::*;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    SyncGroupResponse,
};

#[tokio::test]
async fn find_coordinator_names_this_gateway_at_every_version() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut client = gateway.client().await;
    for version in 0..=5 {
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request.coordinator_keys = vec![text("g1"), text("g2")];
        } else {
            request.key = text("g1");
        }
        let response: FindCoordinatorResponse =
            call(&mut client, ApiKey::FindCoordinator, version, 1, &request).await;
        if version >= 4 {
            assert_eq!(response.coordinators.len(), 2);
            for answer in &response.coordinators {
                assert_eq!(answer.error_code, 0);
                assert_eq!(answer.node_id.0, 0);
                assert_eq!(i32::from(gateway.addr.port()), answer.port);
            }
            assert_eq!(response.coordinators[1].key.as_str(), "g2");
        } else {
            assert_eq!(response.error_code, 0, "v{version}");
            assert_eq!(response.node_id.0, 0);
            assert_eq!(response.host.as_str(), "127.0.0.1");
            assert_eq!(response.port, i32::from(gateway.addr.port()));
        }
    }
    let mut transaction = FindCoordinatorRequest::default();
    transaction.key = text("tx");
    transaction.key_type = 1;
    let response: FindCoordinatorResponse =
        call(&mut client, ApiKey::FindCoordinator, 3, 2, &transaction).await;
    assert_eq!(response.error_code, 0, "the transaction coordinator");
    assert_eq!(response.node_id.0, 0);
    transaction.key_type = 7;
    let response: FindCoordinatorResponse =
        call(&mut client, ApiKey::FindCoordinator, 3, 3, &transaction).await;
    assert_eq!(response.error_code, 42, "INVALID_REQUEST");
    gateway.stop().await;
}

#[tokio::test]
async fn one_member_joins_syncs_heartbeats_and_leaves() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut client = gateway.client().await;
    let joined = join_new(&mut client, "solo", 10_000).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.members.len(), 1);
    let me = joined.member_id.to_string();
    assert_eq!(
        joined.members[0].metadata.as_ref(),
        format!("subscription-of-{me}").as_bytes(),
        "the leader gets the members' metadata as sent"
    );
    let synced = sync(
        &mut client,
        &sync_request("solo", &me, 1, &[(&me, b"p0,p1")]),
    )
    .await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment.as_ref(), b"p0,p1");
    assert_eq!(heartbeat(&mut client, "solo", &me, 1).await, 0);
    assert_eq!(
        heartbeat(&mut client, "solo", &me, 7).await,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        heartbeat(&mut client, "solo", "stranger", 1).await,
        25,
        "UNKNOWN_MEMBER_ID"
    );

    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![group_id("solo"), group_id("never-seen")];
    let described: DescribeGroupsResponse =
        call(&mut client, ApiKey::DescribeGroups, 5, 9, &describe).await;
    let solo = &described.groups[0];
    assert_eq!(solo.error_code, 0);
    assert_eq!(solo.group_state.as_str(), "Stable");
    assert_eq!(solo.protocol_data.as_str(), "range");
    assert_eq!(solo.members.len(), 1);
    assert_eq!(solo.members[0].member_assignment.as_ref(), b"p0,p1");
    assert_eq!(solo.members[0].client_id.as_str(), "cxlkafka-test");
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");

    let mut list = ListGroupsRequest::default();
    list.states_filter = vec![text("stable")];
    let listed: ListGroupsResponse = call(&mut client, ApiKey::ListGroups, 5, 10, &list).await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_id.as_str(), "solo");
    assert_eq!(listed.groups[0].group_state.as_str(), "Stable");

    let left = leave(&mut client, "solo", &me).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(heartbeat(&mut client, "solo", &me, 1).await, 25, "gone");
    let left = leave(&mut client, "solo", &me).await;
    assert_eq!(left.members[0].error_code, 25);
    gateway.stop().await;
}

#[tokio::test]
async fn old_clients_join_without_member_id_round_trip() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut client = gateway.client().await;
    for version in [0, 1, 2, 3] {
        let group = format!("old-v{version}");
        let joined = join(
            &mut client,
            &join_request(&group, "", None, 10_000),
            version,
        )
        .await;
        assert_eq!(joined.error_code, 0, "v{version}");
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, joined.member_id);
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_second_member_rebalances_the_group() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut a = gateway.client().await;
    let mut b = gateway.client().await;
    let a_joined = join_new(&mut a, "pair", 10_000).await;
    let a_id = a_joined.member_id.to_string();
    sync(&mut a, &sync_request("pair", &a_id, 1, &[(&a_id, b"all")])).await;

    // B's join waits for A to rejoin; A learns of it from its heartbeat.
    let first = join(&mut b, &join_request("pair", "", None, 10_000), 9).await;
    let b_id = first.member_id.to_string();
    send(
        &mut b,
        ApiKey::JoinGroup,
        9,
        1,
        &join_request("pair", &b_id, None, 10_000),
    )
    .await;
    let mut rebalancing = 0;
    for _ in 0..50 {
        rebalancing = heartbeat(&mut a, "pair", &a_id, 1).await;
        if rebalancing != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rebalancing, 27, "REBALANCE_IN_PROGRESS");
    let a_rejoined = join(&mut a, &join_request("pair", &a_id, None, 10_000), 9).await;
    let b_joined: JoinGroupResponse = receive(&mut b, ApiKey::JoinGroup, 9).await;
    assert_eq!(a_rejoined.generation_id, 2);
    assert_eq!(b_joined.generation_id, 2);
    assert_eq!(
        a_rejoined.leader.as_str(),
        a_id,
        "the leader stays the leader"
    );
    assert_eq!(a_rejoined.members.len(), 2);
    assert!(b_joined.members.is_empty());

    // B's sync waits for the leader's.
    send(
        &mut b,
        ApiKey::SyncGroup,
        5,
        2,
        &sync_request("pair", &b_id, 2, &[]),
    )
    .await;
    let a_synced = sync(
        &mut a,
        &sync_request("pair", &a_id, 2, &[(&a_id, b"p0"), (&b_id, b"p1")]),
    )
    .await;
    let b_synced: SyncGroupResponse = receive(&mut b, ApiKey::SyncGroup, 5).await;
    assert_eq!(a_synced.assignment.as_ref(), b"p0");
    assert_eq!(b_synced.error_code, 0);
    assert_eq!(b_synced.assignment.as_ref(), b"p1");
    assert_eq!(heartbeat(&mut b, "pair", &b_id, 2).await, 0);
    assert_eq!(
        heartbeat(&mut a, "pair", &a_id, 1).await,
        22,
        "an old generation"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn an_expired_session_rebalances_the_survivor() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut a = gateway.client().await;
    let mut b = gateway.client().await;
    let a_id = join_new(&mut a, "expiry", 10_000)
        .await
        .member_id
        .to_string();
    sync(&mut a, &sync_request("expiry", &a_id, 1, &[])).await;
    let first = join(&mut b, &join_request("expiry", "", None, 400), 9).await;
    let b_id = first.member_id.to_string();
    send(
        &mut b,
        ApiKey::JoinGroup,
        9,
        1,
        &join_request("expiry", &b_id, None, 400),
    )
    .await;
    assert_eq!(heartbeat(&mut a, "expiry", &a_id, 1).await, 27);
    let a_joined = join(&mut a, &join_request("expiry", &a_id, None, 10_000), 9).await;
    let _: JoinGroupResponse = receive(&mut b, ApiKey::JoinGroup, 9).await;
    assert_eq!(a_joined.members.len(), 2);
    sync(&mut a, &sync_request("expiry", &a_id, 2, &[])).await;
    // B goes silent; A keeps heartbeating until the group rebalances.
    let started = std::time::Instant::now();
    let mut error = 0;
    while started.elapsed() < Duration::from_secs(5) {
        error = heartbeat(&mut a, "expiry", &a_id, 2).await;
        if error != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(error, 27, "B's session expired");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before B's timeout"
    );
    let alone = join(&mut a, &join_request("expiry", &a_id, None, 10_000), 9).await;
    assert_eq!(alone.generation_id, 3);
    assert_eq!(alone.members.len(), 1, "only A is left");
    assert_eq!(heartbeat(&mut b, "expiry", &b_id, 2).await, 25);
    gateway.stop().await;
}

#[tokio::test]
async fn a_static_member_rejoins_without_a_rebalance() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut client = gateway.client().await;
    let request = join_request("static", "", Some("instance-1"), 10_000);
    let joined = join(&mut client, &request, 9).await;
    assert_eq!(
        joined.error_code, 0,
        "static members need no MEMBER_ID_REQUIRED"
    );
    let first_id = joined.member_id.to_string();
    assert_eq!(
        joined.members[0].group_instance_id.as_deref(),
        Some("instance-1")
    );
    sync(
        &mut client,
        &sync_request("static", &first_id, 1, &[(&first_id, b"mine")]),
    )
    .await;

    // The process restarts: same instance id, no member id.
    drop(client);
    let mut client = gateway.client().await;
    let rejoined = join(&mut client, &request, 9).await;
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(rejoined.generation_id, 1, "no new generation");
    assert_ne!(rejoined.member_id.as_str(), first_id);
    assert!(
        rejoined.skip_assignment,
        "the static leader keeps the assignment"
    );
    let new_id = rejoined.member_id.to_string();
    let mut sync_req = sync_request("static", &new_id, 1, &[]);
    sync_req.group_instance_id = Some(text("instance-1"));
    let synced = sync(&mut client, &sync_req).await;
    assert_eq!(synced.assignment.as_ref(), b"mine");
    // The old id is fenced.
    let mut stale = join_request("static", &first_id, Some("instance-1"), 10_000);
    stale.rebalance_timeout_ms = 1_000;
    let fenced = join(&mut client, &stale, 9).await;
    assert_eq!(fenced.error_code, 82, "FENCED_INSTANCE_ID");
    gateway.stop().await;
}
