//! Consumer group APIs: the classic protocol's membership (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), the consumer protocol's (KIP-848:
//! ConsumerGroupHeartbeat, ConsumerGroupDescribe), inspection (DescribeGroups,
//! ListGroups), DeleteGroups, and committed offsets (OffsetCommit,
//! OffsetFetch, OffsetDelete). The coordination itself is
//! [`crate::groups`]; these files decode, check and answer.

pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod delete_groups;
pub mod describe_groups;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync_group;
