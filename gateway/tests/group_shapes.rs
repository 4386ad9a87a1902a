//! The group APIs' request shapes mirror `kafka-protocol`'s encodings: for
//! every served version, a request with every field populated (unknown
//! tagged fields included) is walked to exactly its last byte.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use cxlkafka_gateway::api::find_coordinator;
use cxlkafka_gateway::api::groups::{
    delete_groups, describe_groups, heartbeat, join_group, leave_group, list_groups, offset_commit,
    offset_delete, offset_fetch, sync_group,
};
use cxlkafka_gateway::shape::{self, Field};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes, VersionRange};

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn g(text: &str) -> GroupId {
    GroupId(s(text))
}

fn t(text: &str) -> TopicName {
    TopicName(s(text))
}

fn tags(api: ApiKey, version: i16) -> BTreeMap<i32, Bytes> {
    let mut tags = BTreeMap::new();
    if api.request_header_version(version) >= 2 {
        tags.insert(77, Bytes::from_static(b"\x01\x02\x03"));
    }
    tags
}

fn assert_walked<T: Encodable>(api: ApiKey, fields: &[Field], request: &T, version: i16) {
    let mut body = BytesMut::new();
    request
        .encode(&mut body, version)
        .unwrap_or_else(|e| panic!("{api:?} v{version} encodes: {e}"));
    let flexible = api.request_header_version(version) >= 2;
    let walked = shape::check(fields, &body, version, flexible)
        .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
    assert_eq!(walked, body.len(), "{api:?} v{version} walked to its end");
}

fn versions(range: VersionRange) -> std::ops::RangeInclusive<i16> {
    range.min..=range.max
}

#[test]
fn find_coordinator_shapes_match_the_codec() {
    let api = ApiKey::FindCoordinator;
    for version in versions(find_coordinator::VERSIONS) {
        let mut request = FindCoordinatorRequest::default();
        if version <= 3 {
            request.key = s("group");
        } else {
            request.coordinator_keys = vec![s("a"), s("bb")];
        }
        request.key_type = if version >= 1 { 1 } else { 0 };
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, find_coordinator::REQUEST, &request, version);
    }
}

#[test]
fn membership_shapes_match_the_codec() {
    for version in versions(join_group::VERSIONS) {
        let api = ApiKey::JoinGroup;
        let protocol = |name: &str| {
            let mut protocol = JoinGroupRequestProtocol::default();
            protocol.name = s(name);
            protocol.metadata = Bytes::from_static(b"meta");
            protocol.unknown_tagged_fields = tags(api, version);
            protocol
        };
        let mut request = JoinGroupRequest::default();
        request.group_id = g("g");
        request.session_timeout_ms = 10_000;
        request.rebalance_timeout_ms = if version >= 1 { 30_000 } else { 0 };
        request.member_id = s("m-1");
        request.group_instance_id = (version >= 5).then(|| s("i-1"));
        request.protocol_type = s("consumer");
        request.protocols = vec![protocol("range"), protocol("cooperative-sticky")];
        request.reason = (version >= 8).then(|| s("because"));
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, join_group::REQUEST, &request, version);
    }
    for version in versions(sync_group::VERSIONS) {
        let api = ApiKey::SyncGroup;
        let mut assignment = SyncGroupRequestAssignment::default();
        assignment.member_id = s("m-1");
        assignment.assignment = Bytes::from_static(b"p0");
        assignment.unknown_tagged_fields = tags(api, version);
        let mut request = SyncGroupRequest::default();
        request.group_id = g("g");
        request.generation_id = 3;
        request.member_id = s("m-1");
        request.group_instance_id = (version >= 3).then(|| s("i-1"));
        request.protocol_type = (version >= 5).then(|| s("consumer"));
        request.protocol_name = (version >= 5).then(|| s("range"));
        request.assignments = vec![assignment.clone(), assignment];
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, sync_group::REQUEST, &request, version);
    }
    for version in versions(heartbeat::VERSIONS) {
        let api = ApiKey::Heartbeat;
        let mut request = HeartbeatRequest::default();
        request.group_id = g("g");
        request.generation_id = 3;
        request.member_id = s("m-1");
        request.group_instance_id = (version >= 3).then(|| s("i-1"));
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, heartbeat::REQUEST, &request, version);
    }
    for version in versions(leave_group::VERSIONS) {
        let api = ApiKey::LeaveGroup;
        let mut request = LeaveGroupRequest::default();
        request.group_id = g("g");
        if version <= 2 {
            request.member_id = s("m-1");
        } else {
            let mut member = MemberIdentity::default();
            member.member_id = s("m-1");
            member.group_instance_id = Some(s("i-1"));
            member.reason = (version >= 5).then(|| s("bye"));
            member.unknown_tagged_fields = tags(api, version);
            request.members = vec![member.clone(), member];
        }
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, leave_group::REQUEST, &request, version);
    }
}

#[test]
fn offset_shapes_match_the_codec() {
    for version in versions(offset_commit::VERSIONS) {
        let api = ApiKey::OffsetCommit;
        let mut partition = OffsetCommitRequestPartition::default();
        partition.partition_index = 1;
        partition.committed_offset = 42;
        partition.committed_leader_epoch = if version >= 6 { 2 } else { -1 };
        partition.committed_metadata = Some(s("meta"));
        partition.unknown_tagged_fields = tags(api, version);
        let mut topic = OffsetCommitRequestTopic::default();
        topic.name = t("events");
        topic.partitions = vec![partition.clone(), partition];
        topic.unknown_tagged_fields = tags(api, version);
        let mut request = OffsetCommitRequest::default();
        request.group_id = g("g");
        request.generation_id_or_member_epoch = 3;
        request.member_id = s("m-1");
        request.group_instance_id = (version >= 7).then(|| s("i-1"));
        request.retention_time_ms = if version <= 4 { 1_000 } else { -1 };
        request.topics = vec![topic.clone(), topic];
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, offset_commit::REQUEST, &request, version);
    }
    for version in versions(offset_fetch::VERSIONS) {
        let api = ApiKey::OffsetFetch;
        let mut request = OffsetFetchRequest::default();
        if version <= 7 {
            let mut topic = OffsetFetchRequestTopic::default();
            topic.name = t("events");
            topic.partition_indexes = vec![0, 1, 2];
            topic.unknown_tagged_fields = tags(api, version);
            request.group_id = g("g");
            request.topics = Some(vec![topic.clone(), topic]);
        } else {
            let mut topic = OffsetFetchRequestTopics::default();
            topic.name = t("events");
            topic.partition_indexes = vec![0, 1];
            topic.unknown_tagged_fields = tags(api, version);
            let mut group = OffsetFetchRequestGroup::default();
            group.group_id = g("g");
            if version >= 9 {
                group.member_id = Some(s("m-1"));
                group.member_epoch = 4;
            }
            group.topics = Some(vec![topic]);
            group.unknown_tagged_fields = tags(api, version);
            let mut all = group.clone();
            all.topics = None;
            request.groups = vec![group, all];
        }
        request.require_stable = version >= 7;
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, offset_fetch::REQUEST, &request, version);
        if (2..=7).contains(&version) {
            request.topics = None;
            assert_walked(api, offset_fetch::REQUEST, &request, version);
        }
    }
    let mut partition = OffsetDeleteRequestPartition::default();
    partition.partition_index = 3;
    let mut topic = OffsetDeleteRequestTopic::default();
    topic.name = t("events");
    topic.partitions = vec![partition.clone(), partition];
    let mut request = OffsetDeleteRequest::default();
    request.group_id = g("g");
    request.topics = vec![topic];
    assert_walked(ApiKey::OffsetDelete, offset_delete::REQUEST, &request, 0);
}

#[test]
fn group_admin_shapes_match_the_codec() {
    for version in versions(describe_groups::VERSIONS) {
        let api = ApiKey::DescribeGroups;
        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![g("a"), g("bb")];
        request.include_authorized_operations = version >= 3;
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, describe_groups::REQUEST, &request, version);
    }
    for version in versions(list_groups::VERSIONS) {
        let api = ApiKey::ListGroups;
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request.states_filter = vec![s("Stable"), s("Empty")];
        }
        if version >= 5 {
            request.types_filter = vec![s("classic")];
        }
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, list_groups::REQUEST, &request, version);
    }
    for version in versions(delete_groups::VERSIONS) {
        let api = ApiKey::DeleteGroups;
        let mut request = DeleteGroupsRequest::default();
        request.groups_names = vec![g("a"), g("bb")];
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, delete_groups::REQUEST, &request, version);
    }
}

#[test]
fn consumer_group_heartbeat_shapes_match_the_codec() {
    use cxlkafka_gateway::api::groups::consumer_group_heartbeat;
    use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
    use kafka_protocol::messages::ConsumerGroupHeartbeatRequest;
    let api = ApiKey::ConsumerGroupHeartbeat;
    for version in versions(consumer_group_heartbeat::VERSIONS) {
        let mut owned = TopicPartitions::default();
        owned.topic_id = uuid::Uuid::from_bytes([7; 16]);
        owned.partitions = vec![0, 3, 7];
        let mut request = ConsumerGroupHeartbeatRequest::default();
        request.group_id = g("group");
        request.member_id = s("member");
        request.member_epoch = 4;
        request.instance_id = Some(s("instance"));
        request.rack_id = Some(s("rack"));
        request.rebalance_timeout_ms = 300_000;
        request.subscribed_topic_names = Some(vec![t("a"), t("bb")]);
        if version >= 1 {
            request.subscribed_topic_regex = Some(s("orders-.*"));
        }
        request.server_assignor = Some(s("uniform"));
        request.topic_partitions = Some(vec![owned.clone(), owned]);
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, consumer_group_heartbeat::REQUEST, &request, version);
    }
}

#[test]
fn consumer_group_describe_shapes_match_the_codec() {
    use cxlkafka_gateway::api::groups::consumer_group_describe;
    use kafka_protocol::messages::ConsumerGroupDescribeRequest;
    let api = ApiKey::ConsumerGroupDescribe;
    for version in versions(consumer_group_describe::VERSIONS) {
        let mut request = ConsumerGroupDescribeRequest::default();
        request.group_ids = vec![g("a"), g("bb")];
        request.include_authorized_operations = true;
        request.unknown_tagged_fields = tags(api, version);
        assert_walked(api, consumer_group_describe::REQUEST, &request, version);
    }
}
