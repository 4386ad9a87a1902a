//! Committed offsets over raw sockets: OffsetCommit and OffsetFetch through
//! the log, OffsetDelete, DeleteGroups, and two gateways on one region
//! (NOT_COORDINATOR, offsets seen from the other gateway, the coordinator
//! moving when its gateway stops).

mod common;
mod data_path;
mod groups;

use std::time::{Duration, Instant};

use common::TestGateway;
use data_path::{call, create_topic, topic_name};
use groups::*;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, FindCoordinatorResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse,
};

#[tokio::test]
async fn offsets_are_committed_fetched_and_deleted() {
    let mut gateway = TestGateway::start_grouped(fast_groups(), None).await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "events").await;
    // A simple commit (no group membership, generation -1).
    assert_eq!(
        commit(&mut client, "readers", "", -1, "events", 42).await,
        0
    );
    assert_eq!(
        fetch_offset(&mut client, "readers", "events").await,
        (0, 42, "meta".into())
    );
    assert_eq!(
        commit(&mut client, "readers", "", -1, "events", 43).await,
        0
    );
    assert_eq!(fetch_offset(&mut client, "readers", "events").await.1, 43);
    assert_eq!(
        commit(&mut client, "readers", "", -1, "no-such-topic", 1).await,
        3
    );
    assert_eq!(
        fetch_offset(&mut client, "nobody", "events").await,
        (0, -1, String::new())
    );

    // Batched OffsetFetch (v8): several groups, "all topics" for one.
    let mut all = OffsetFetchRequestGroup::default();
    all.group_id = group_id("readers");
    all.topics = None;
    let mut none = OffsetFetchRequestGroup::default();
    none.group_id = group_id("nobody");
    none.topics = Some(Vec::new());
    let mut request = OffsetFetchRequest::default();
    request.groups = vec![all, none];
    let response: OffsetFetchResponse =
        call(&mut client, ApiKey::OffsetFetch, 8, 3, &request).await;
    assert_eq!(response.groups.len(), 2);
    let readers = &response.groups[0];
    assert_eq!(readers.error_code, 0);
    assert_eq!(readers.topics.len(), 1);
    assert_eq!(readers.topics[0].name, topic_name("events"));
    assert_eq!(readers.topics[0].partitions[0].committed_offset, 43);
    assert!(response.groups[1].topics.is_empty());

    // A member's commit is checked against its group.
    let joined = join_new(&mut client, "members", 10_000).await;
    let me = joined.member_id.to_string();
    sync(&mut client, &sync_request("members", &me, 1, &[])).await;
    assert_eq!(
        commit(&mut client, "members", &me, 5, "events", 1).await,
        22
    );
    assert_eq!(
        commit(&mut client, "members", "intruder", 1, "events", 1).await,
        25
    );
    assert_eq!(
        commit(&mut client, "members", "", -1, "events", 1).await,
        25
    );
    assert_eq!(commit(&mut client, "members", &me, 1, "events", 7).await, 0);
    assert_eq!(fetch_offset(&mut client, "members", "events").await.1, 7);

    // OffsetDelete: refused while a member subscribes... (raw metadata here
    // is not a consumer subscription, so the topic is not subscribed).
    let mut partition = OffsetDeleteRequestPartition::default();
    partition.partition_index = 0;
    let mut topic = OffsetDeleteRequestTopic::default();
    topic.name = topic_name("events");
    topic.partitions = vec![partition];
    let mut delete = OffsetDeleteRequest::default();
    delete.group_id = group_id("readers");
    delete.topics = vec![topic];
    let deleted: OffsetDeleteResponse =
        call(&mut client, ApiKey::OffsetDelete, 0, 4, &delete).await;
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    assert_eq!(fetch_offset(&mut client, "readers", "events").await.1, -1);
    delete.group_id = group_id("nobody");
    let missing: OffsetDeleteResponse =
        call(&mut client, ApiKey::OffsetDelete, 0, 5, &delete).await;
    assert_eq!(missing.error_code, 69, "GROUP_ID_NOT_FOUND");

    // DeleteGroups: not while it has members.
    let mut request = DeleteGroupsRequest::default();
    request.groups_names = vec![group_id("members"), group_id("nobody")];
    let response: DeleteGroupsResponse =
        call(&mut client, ApiKey::DeleteGroups, 2, 6, &request).await;
    assert_eq!(response.results[0].error_code, 68, "NON_EMPTY_GROUP");
    assert_eq!(response.results[1].error_code, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(
        leave(&mut client, "members", &me).await.members[0].error_code,
        0
    );
    request.groups_names = vec![group_id("members")];
    let response: DeleteGroupsResponse =
        call(&mut client, ApiKey::DeleteGroups, 2, 7, &request).await;
    assert_eq!(response.results[0].error_code, 0);
    assert_eq!(fetch_offset(&mut client, "members", "events").await.1, -1);
    gateway.stop().await;
}

/// Waits until `client`'s gateway sees `count` live gateways: the
/// coordinators of 64 keys span that many nodes.
async fn wait_for_gateways(client: &mut common::Client, count: usize) {
    let started = Instant::now();
    loop {
        let mut nodes = std::collections::HashSet::new();
        for i in 0..64 {
            let response: FindCoordinatorResponse =
                find_coordinator(client, &format!("k{i}")).await;
            nodes.insert(response.node_id.0);
        }
        if nodes.len() == count {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "saw {nodes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A group name that `node` coordinates.
async fn group_on(client: &mut common::Client, node: i32) -> String {
    for i in 0..256 {
        let name = format!("group-{i}");
        if find_coordinator(client, &name).await.node_id.0 == node {
            return name;
        }
    }
    panic!("no group lands on node {node}");
}

#[tokio::test]
async fn two_gateways_agree_on_coordinators_and_offsets() {
    let mut first = TestGateway::start_grouped(fast_groups(), None).await;
    let mut second = TestGateway::start_grouped(fast_groups(), Some(&first)).await;
    let mut a = first.client().await;
    let mut b = second.client().await;
    create_topic(&mut a, "shared").await;
    wait_for_gateways(&mut a, 2).await;
    wait_for_gateways(&mut b, 2).await;
    let on_first = group_on(&mut a, 0).await;
    let on_second = group_on(&mut a, 1).await;
    assert_eq!(
        find_coordinator(&mut b, &on_first).await.node_id.0,
        0,
        "same answer"
    );
    assert_eq!(
        find_coordinator(&mut b, &on_second).await.port,
        i32::from(second.addr.port())
    );

    // The non-coordinator refuses group requests.
    let refused = join(&mut b, &join_request(&on_first, "", None, 10_000), 9).await;
    assert_eq!(refused.error_code, 16, "NOT_COORDINATOR");
    assert_eq!(heartbeat(&mut b, &on_first, "m", 1).await, 16);
    assert_eq!(commit(&mut b, &on_first, "", -1, "shared", 5).await, 16);
    assert_eq!(fetch_offset(&mut b, &on_first, "shared").await.0, 16);

    // Commits through each coordinator.
    assert_eq!(commit(&mut a, &on_first, "", -1, "shared", 11).await, 0);
    assert_eq!(commit(&mut b, &on_second, "", -1, "shared", 22).await, 0);
    assert_eq!(fetch_offset(&mut a, &on_first, "shared").await.1, 11);
    assert_eq!(fetch_offset(&mut b, &on_second, "shared").await.1, 22);

    // The first gateway stops: its groups move to the second, offsets too.
    drop(a);
    first.stop().await;
    let started = Instant::now();
    while find_coordinator(&mut b, &on_first).await.node_id.0 != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the coordinator moves"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        fetch_offset(&mut b, &on_first, "shared").await,
        (0, 11, "meta".into())
    );
    assert_eq!(fetch_offset(&mut b, &on_second, "shared").await.1, 22);
    let joined = join_new(&mut b, &on_first, 10_000).await;
    assert_eq!(
        joined.error_code, 0,
        "members rejoin at the new coordinator"
    );
    second.stop().await;
}
