//! Client-side helpers for the consumer group tests: each group request
//! built as a client builds it, sent over a raw socket, decoded with the
//! crate's client side.

#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use bytes::Bytes;
use cxlkafka_gateway::groups::GroupConfig;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::common::{decode_response, request_frame, Client};
use crate::data_path::{call, topic_name};

/// Group settings for tests: no initial delay, short sessions allowed.
pub fn fast_groups() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        min_session_timeout: Duration::from_millis(100),
        ..GroupConfig::default()
    }
}

pub fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub fn group_id(value: &str) -> GroupId {
    GroupId(text(value))
}

/// A JoinGroup for a consumer with one "range" protocol.
pub fn join_request(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    session_ms: i32,
) -> JoinGroupRequest {
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = text("range");
    protocol.metadata = Bytes::from(format!("subscription-of-{member_id}"));
    let mut request = JoinGroupRequest::default();
    request.group_id = group_id(group);
    request.session_timeout_ms = session_ms;
    request.rebalance_timeout_ms = 10_000;
    request.member_id = text(member_id);
    request.group_instance_id = instance.map(text);
    request.protocol_type = text("consumer");
    request.protocols = vec![protocol];
    request
}

/// Sends a request without reading its answer.
pub async fn send<T: kafka_protocol::protocol::Encodable>(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &T,
) {
    client
        .send(&request_frame(
            api_key,
            version,
            version,
            correlation_id,
            request,
        ))
        .await;
}

/// Reads the answer to a request sent earlier.
pub async fn receive<T: kafka_protocol::protocol::Decodable>(
    client: &mut Client,
    api_key: ApiKey,
    version: i16,
) -> T {
    let payload = client
        .read_frame_within(Duration::from_secs(20))
        .await
        .expect("a response");
    decode_response(payload, api_key, version, version).1
}

pub async fn join(
    client: &mut Client,
    request: &JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    send(client, ApiKey::JoinGroup, version, 1, request).await;
    receive(client, ApiKey::JoinGroup, version).await
}

/// Joins as a new member at v9: MEMBER_ID_REQUIRED first, then with the id.
pub async fn join_new(client: &mut Client, group: &str, session_ms: i32) -> JoinGroupResponse {
    let first = join(client, &join_request(group, "", None, session_ms), 9).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    assert!(
        first.member_id.starts_with("cxlkafka-test-"),
        "{:?}",
        first.member_id
    );
    join(
        client,
        &join_request(group, &first.member_id, None, session_ms),
        9,
    )
    .await
}

pub fn sync_request(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    let mut request = SyncGroupRequest::default();
    request.group_id = group_id(group);
    request.generation_id = generation;
    request.member_id = text(member_id);
    request.protocol_type = Some(text("consumer"));
    request.protocol_name = Some(text("range"));
    request.assignments = assignments
        .iter()
        .map(|(member, bytes)| {
            let mut assignment = SyncGroupRequestAssignment::default();
            assignment.member_id = text(member);
            assignment.assignment = Bytes::copy_from_slice(bytes);
            assignment
        })
        .collect();
    request
}

pub async fn sync(client: &mut Client, request: &SyncGroupRequest) -> SyncGroupResponse {
    send(client, ApiKey::SyncGroup, 5, 2, request).await;
    receive(client, ApiKey::SyncGroup, 5).await
}

pub async fn heartbeat(client: &mut Client, group: &str, member_id: &str, generation: i32) -> i16 {
    let mut request = HeartbeatRequest::default();
    request.group_id = group_id(group);
    request.member_id = text(member_id);
    request.generation_id = generation;
    let response: HeartbeatResponse = call(client, ApiKey::Heartbeat, 4, 3, &request).await;
    response.error_code
}

pub async fn leave(client: &mut Client, group: &str, member_id: &str) -> LeaveGroupResponse {
    let mut member = MemberIdentity::default();
    member.member_id = text(member_id);
    let mut request = LeaveGroupRequest::default();
    request.group_id = group_id(group);
    request.members = vec![member];
    call(client, ApiKey::LeaveGroup, 5, 4, &request).await
}

pub async fn find_coordinator(client: &mut Client, key: &str) -> FindCoordinatorResponse {
    let mut request = FindCoordinatorRequest::default();
    request.key = text(key);
    call(client, ApiKey::FindCoordinator, 3, 5, &request).await
}

/// Commits `offset` for partition 0 of `topic` at OffsetCommit v8;
/// returns the partition's error.
pub async fn commit(
    client: &mut Client,
    group: &str,
    member_id: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> i16 {
    let mut partition = OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = offset;
    partition.committed_leader_epoch = -1;
    partition.committed_metadata = Some(text("meta"));
    let mut entry = OffsetCommitRequestTopic::default();
    entry.name = topic_name(topic);
    entry.partitions = vec![partition];
    let mut request = OffsetCommitRequest::default();
    request.group_id = group_id(group);
    request.generation_id_or_member_epoch = generation;
    request.member_id = text(member_id);
    request.topics = vec![entry];
    let response: OffsetCommitResponse = call(client, ApiKey::OffsetCommit, 8, 6, &request).await;
    response.topics[0].partitions[0].error_code
}

/// The committed offset of partition 0 of `topic` at OffsetFetch v5:
/// (group error, offset, metadata).
pub async fn fetch_offset(client: &mut Client, group: &str, topic: &str) -> (i16, i64, String) {
    let mut wanted = OffsetFetchRequestTopic::default();
    wanted.name = topic_name(topic);
    wanted.partition_indexes = vec![0];
    let mut request = OffsetFetchRequest::default();
    request.group_id = group_id(group);
    request.topics = Some(vec![wanted]);
    let response: OffsetFetchResponse = call(client, ApiKey::OffsetFetch, 5, 7, &request).await;
    let partition = &response.topics[0].partitions[0];
    (
        response.error_code,
        partition.committed_offset,
        partition.metadata.as_deref().unwrap_or("").to_owned(),
    )
}
