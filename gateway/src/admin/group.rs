//! `cxlkafka group list|describe|seek|delete`, and the offset commits and
//! fetches `topic consume --group` shares. Every group request goes to the
//! group's coordinator (FindCoordinator), as Kafka requires.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use clap::Args;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::client::{error_name, Admin, AdminError};
use super::layout::{self, EARLIEST, LATEST};
use super::output::{obj, Json, Report, Table};
use super::{print, CommonArgs, Status};

/// ListGroups v4 reports each group's state.
const LIST_GROUPS: (i16, i16) = (0, 4);
/// DescribeGroups v5 is the newest before v6's per-group error messages.
const DESCRIBE_GROUPS: (i16, i16) = (0, 5);
/// OffsetFetch v2 may ask for every topic (null list); v8 batches groups.
const OFFSET_FETCH: (i16, i16) = (2, 7);
/// OffsetCommit v2..v8: the classic (generation-based) commit.
const OFFSET_COMMIT: (i16, i16) = (2, 8);
const DELETE_GROUPS: (i16, i16) = (0, 2);
/// Tries of a group request while its coordinator moves or loads...
const COORDINATOR_RETRIES: u32 = 5;
/// ...and the wait before asking FindCoordinator again.
const COORDINATOR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(300);

/// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR:
/// ask FindCoordinator again and retry.
fn coordinator_moved(code: i16) -> bool {
    matches!(code, 14..=16)
}

/// Flags of `group list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `group describe`.
#[derive(Debug, Clone, Args)]
pub struct DescribeArgs {
    /// The group.
    pub group: String,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Where `group seek` moves a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTarget {
    /// The log start.
    Earliest,
    /// The log end.
    Latest,
    /// This offset on every partition.
    Offset(i64),
    /// The first offset whose timestamp is at or after this (ms); the end
    /// where there is none.
    Timestamp(i64),
}

/// Parses `earliest|latest|offset:N|timestamp:MS`.
pub fn parse_seek_target(text: &str) -> Result<SeekTarget, String> {
    let number = |value: &str, what: &str| {
        value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} must be a non-negative integer, not {value:?}"))
    };
    match text.split_once(':') {
        None if text == "earliest" => Ok(SeekTarget::Earliest),
        None if text == "latest" => Ok(SeekTarget::Latest),
        Some(("offset", n)) => number(n, "offset").map(SeekTarget::Offset),
        Some(("timestamp", ms)) => number(ms, "timestamp").map(SeekTarget::Timestamp),
        _ => Err(format!(
            "{text:?}: expected earliest, latest, offset:N or timestamp:MS"
        )),
    }
}

/// Flags of `group seek`.
#[derive(Debug, Clone, Args)]
pub struct SeekArgs {
    /// The group (it must have no members).
    pub group: String,
    /// The topic whose committed offsets move.
    #[arg(long, env = "CXLKAFKA_GROUP_TOPIC")]
    pub topic: String,
    /// Only this partition (default: every partition of the topic).
    #[arg(long, env = "CXLKAFKA_GROUP_PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Where to: earliest, latest, offset:N or timestamp:MS.
    #[arg(long, env = "CXLKAFKA_GROUP_TO", value_parser = parse_seek_target)]
    pub to: SeekTarget,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Flags of `group delete`.
#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// The groups to delete.
    #[arg(required = true)]
    pub groups: Vec<String>,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

/// Commits `offsets` (partition -> next offset to read) of `topic` for
/// `group` without joining it: generation -1 and no member id, which a
/// coordinator accepts only while the group has no members.
pub async fn commit(
    admin: &mut Admin,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), AdminError> {
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(&index, &offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                    })
                    .collect(),
            )]);
    for attempt in 1..=COORDINATOR_RETRIES {
        let broker = admin.coordinator(group).await?;
        let version = broker.version(ApiKey::OffsetCommit, OFFSET_COMMIT)?;
        let response: OffsetCommitResponse =
            broker.call(ApiKey::OffsetCommit, version, &request).await?;
        let answers: Vec<_> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (&t.name.0, p)))
            .collect();
        if attempt < COORDINATOR_RETRIES
            && answers.iter().any(|(_, p)| coordinator_moved(p.error_code))
        {
            tokio::time::sleep(COORDINATOR_BACKOFF).await;
            continue;
        }
        for (name, answer) in answers {
            AdminError::check(answer.error_code, || {
                format!(
                    "committing {name}/{} for group {group:?}",
                    answer.partition_index
                )
            })?;
        }
        break;
    }
    Ok(())
}

/// The group's committed offsets, for `topics` (name, partitions) or for
/// every topic it has offsets of (`None`): (topic, partition) -> offset,
/// -1 where none is committed.
pub async fn fetch_committed(
    admin: &mut Admin,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partition_indexes(partitions)
                })
                .collect()
        }));
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let broker = admin.coordinator(group).await?;
        let version = broker.version(ApiKey::OffsetFetch, OFFSET_FETCH)?;
        let response: OffsetFetchResponse =
            broker.call(ApiKey::OffsetFetch, version, &request).await?;
        if attempt < COORDINATOR_RETRIES && coordinator_moved(response.error_code) {
            tokio::time::sleep(COORDINATOR_BACKOFF).await;
            continue;
        }
        break response;
    };
    AdminError::check(response.error_code, || {
        format!("committed offsets of group {group:?}")
    })?;
    let mut offsets = BTreeMap::new();
    for topic in &response.topics {
        for partition in &topic.partitions {
            AdminError::check(partition.error_code, || {
                format!(
                    "committed offset of {}/{} for group {group:?}",
                    topic.name.0, partition.partition_index
                )
            })?;
            offsets.insert(
                (topic.name.0.to_string(), partition.partition_index),
                partition.committed_offset,
            );
        }
    }
    Ok(offsets)
}

/// A group as DescribeGroups answers it.
struct Described {
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

/// A member of a group.
struct Member {
    id: String,
    client_id: String,
    host: String,
    /// Topic -> partitions (consumer groups only).
    assignment: BTreeMap<String, Vec<i32>>,
}

async fn describe_group(admin: &mut Admin, group: &str) -> Result<Described, AdminError> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let mut attempt = 0;
    let described = loop {
        attempt += 1;
        let broker = admin.coordinator(group).await?;
        let version = broker.version(ApiKey::DescribeGroups, DESCRIBE_GROUPS)?;
        let response: DescribeGroupsResponse = broker
            .call(ApiKey::DescribeGroups, version, &request)
            .await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| AdminError::Other("DescribeGroups answered no group".into()))?;
        if attempt < COORDINATOR_RETRIES && coordinator_moved(described.error_code) {
            tokio::time::sleep(COORDINATOR_BACKOFF).await;
            continue;
        }
        break described;
    };
    AdminError::check_with(
        described.error_code,
        || format!("group {group:?}"),
        described.error_message.as_ref(),
    )?;
    let consumer = described.protocol_type.as_str() == "consumer";
    Ok(Described {
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        members: described
            .members
            .iter()
            .map(|m| {
                let assignment = if consumer {
                    decode_assignment(m.member_assignment.clone())
                } else {
                    BTreeMap::new()
                };
                Member {
                    id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment,
                }
            })
            .collect(),
    })
}

/// A consumer member's assignment (version-prefixed
/// ConsumerProtocolAssignment); empty when it cannot be read.
fn decode_assignment(mut bytes: Bytes) -> BTreeMap<String, Vec<i32>> {
    if bytes.remaining() < 2 {
        return BTreeMap::new();
    }
    // Newer clients may send a newer version; its fields so far extend v3.
    let version = bytes.get_i16().clamp(0, 3);
    ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map(|assignment| {
            assignment
                .assigned_partitions
                .iter()
                .map(|tp| (tp.topic.0.to_string(), tp.partitions.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// `group list`: ListGroups on every broker (each lists the groups it
/// coordinates).
pub async fn list(args: ListArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    admin.metadata(Some(&[])).await?;
    let ids: Vec<i32> = admin.brokers().keys().copied().collect();
    let mut groups: BTreeMap<String, (String, String)> = BTreeMap::new();
    for id in ids {
        let broker = admin.broker(id).await?;
        let version = broker.version(ApiKey::ListGroups, LIST_GROUPS)?;
        let response: ListGroupsResponse = broker
            .call(ApiKey::ListGroups, version, &ListGroupsRequest::default())
            .await?;
        AdminError::check(response.error_code, || format!("groups of broker {id}"))?;
        for group in &response.groups {
            let state = if version >= 4 {
                group.group_state.to_string()
            } else {
                String::new()
            };
            groups.insert(
                group.group_id.0.to_string(),
                (group.protocol_type.to_string(), state),
            );
        }
    }
    let mut table = Table::new(&["GROUP", "PROTOCOL-TYPE", "STATE"]);
    let mut json = Vec::new();
    for (name, (protocol_type, state)) in &groups {
        table.row(vec![name.clone(), protocol_type.clone(), state.clone()]);
        json.push(obj([
            ("group", Json::from(name.as_str())),
            ("protocol_type", Json::from(protocol_type.as_str())),
            ("state", Json::from(state.as_str())),
        ]));
    }
    print(
        args.common.format,
        &Report {
            json: obj([("groups", Json::Arr(json))]),
            text: table.render(),
        },
    );
    Ok(Status::Done)
}

/// `group describe`.
pub async fn describe(args: DescribeArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let group = describe_group(&mut admin, &args.group).await?;
    let committed = fetch_committed(&mut admin, &args.group, None).await?;
    // Log ends, asked of each topic's partition leaders.
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in committed.keys() {
        by_topic.entry(topic.clone()).or_default().push(*partition);
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (name, partitions) in &by_topic {
        // A topic deleted since the commit has no end: shown as unknown.
        let Ok(topic) = layout::topic(&mut admin, name).await else {
            continue;
        };
        let known: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| topic.leader(*p).is_some())
            .collect();
        for (partition, end) in layout::list_offsets(&mut admin, &topic, &known, LATEST).await? {
            ends.insert((name.clone(), partition), end);
        }
    }
    let owner = |topic: &str, partition: i32| {
        group
            .members
            .iter()
            .find(|member| {
                member
                    .assignment
                    .get(topic)
                    .is_some_and(|partitions| partitions.contains(&partition))
            })
            .map(|member| member.id.clone())
    };

    let mut text = format!(
        "group {}  state {}  protocol type {}  protocol {}\n",
        args.group,
        group.state,
        or_dash(&group.protocol_type),
        or_dash(&group.protocol)
    );
    let mut members_table = Table::new(&["MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"]);
    let mut members_json = Vec::new();
    for member in &group.members {
        let cell = member
            .assignment
            .iter()
            .map(|(topic, partitions)| format!("{topic}:{}", super::output::ids(partitions)))
            .collect::<Vec<_>>()
            .join(" ");
        members_table.row(vec![
            member.id.clone(),
            member.client_id.clone(),
            member.host.clone(),
            cell,
        ]);
        members_json.push(obj([
            ("member_id", Json::from(member.id.as_str())),
            ("client_id", Json::from(member.client_id.as_str())),
            ("host", Json::from(member.host.as_str())),
            (
                "assignment",
                Json::Arr(
                    member
                        .assignment
                        .iter()
                        .map(|(topic, partitions)| {
                            obj([
                                ("topic", Json::from(topic.as_str())),
                                ("partitions", Json::from(partitions.clone())),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]));
    }
    if !group.members.is_empty() {
        text.push('\n');
        text.push_str(&members_table.render());
    }
    let mut offsets_table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG-END",
        "LAG",
        "MEMBER",
    ]);
    let mut offsets_json = Vec::new();
    for ((topic, partition), &offset) in &committed {
        let end = ends.get(&(topic.clone(), *partition)).copied();
        let committed = (offset >= 0).then_some(offset);
        // Lag counts from the log end; with nothing committed, all of it.
        let lag = end.map(|end| (end - committed.unwrap_or(0)).max(0));
        let member = owner(topic, *partition);
        let cell = |value: Option<i64>| value.map_or_else(|| "-".into(), |v| v.to_string());
        offsets_table.row(vec![
            topic.clone(),
            partition.to_string(),
            cell(committed),
            cell(end),
            cell(lag),
            member.clone().unwrap_or_else(|| "-".into()),
        ]);
        offsets_json.push(obj([
            ("topic", Json::from(topic.as_str())),
            ("partition", Json::from(*partition)),
            ("committed_offset", Json::from(committed)),
            ("log_end_offset", Json::from(end)),
            ("lag", Json::from(lag)),
            ("member_id", Json::from(member)),
        ]));
    }
    text.push('\n');
    text.push_str(&offsets_table.render());
    print(
        args.common.format,
        &Report {
            json: obj([
                ("group", Json::from(args.group.as_str())),
                ("state", Json::from(group.state.as_str())),
                ("protocol_type", Json::from(group.protocol_type.as_str())),
                ("protocol", Json::from(group.protocol.as_str())),
                ("members", Json::Arr(members_json)),
                ("offsets", Json::Arr(offsets_json)),
            ]),
            text,
        },
    );
    Ok(Status::Done)
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}

/// `group seek`.
pub async fn seek(args: SeekArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let group = describe_group(&mut admin, &args.group).await?;
    if !group.members.is_empty() {
        return Err(AdminError::Other(format!(
            "group {:?} has {} active member(s) (state {}): its consumers own its offsets; \
             stop them, then seek",
            args.group,
            group.members.len(),
            group.state
        )));
    }
    let topic = layout::topic(&mut admin, &args.topic).await?;
    let indexes: Vec<i32> = match args.partition {
        Some(p) if topic.partitions.iter().any(|q| q.index == p) => vec![p],
        Some(p) => {
            return Err(AdminError::Kafka {
                code: 3,
                what: format!("partition {}/{p}", args.topic),
                message: None,
            })
        }
        None => topic.partitions.iter().map(|p| p.index).collect(),
    };
    let offsets: BTreeMap<i32, i64> = match args.to {
        SeekTarget::Earliest => {
            layout::list_offsets(&mut admin, &topic, &indexes, EARLIEST).await?
        }
        SeekTarget::Latest => layout::list_offsets(&mut admin, &topic, &indexes, LATEST).await?,
        SeekTarget::Offset(offset) => indexes.iter().map(|&i| (i, offset)).collect(),
        SeekTarget::Timestamp(ms) => {
            let found = layout::list_offsets(&mut admin, &topic, &indexes, ms).await?;
            let latest = layout::list_offsets(&mut admin, &topic, &indexes, LATEST).await?;
            // No record at or after the time: the end, as Kafka's tools do.
            found
                .into_iter()
                .map(|(i, offset)| (i, if offset < 0 { latest[&i] } else { offset }))
                .collect()
        }
    };
    commit(&mut admin, &args.group, &args.topic, &offsets).await?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "OFFSET"]);
    let mut json = Vec::new();
    for (&partition, &offset) in &offsets {
        table.row(vec![
            args.topic.clone(),
            partition.to_string(),
            offset.to_string(),
        ]);
        json.push(obj([
            ("topic", Json::from(args.topic.as_str())),
            ("partition", Json::from(partition)),
            ("offset", Json::from(offset)),
        ]));
    }
    print(
        args.common.format,
        &Report {
            json: obj([
                ("group", Json::from(args.group.as_str())),
                ("offsets", Json::Arr(json)),
            ]),
            text: table.render(),
        },
    );
    Ok(Status::Done)
}

/// `group delete`: every group is tried; any failure makes the exit
/// status 1.
pub async fn delete(args: DeleteArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let mut failed = false;
    let mut text = String::new();
    let mut json = Vec::new();
    for name in &args.groups {
        let outcome = delete_one(&mut admin, name).await;
        match &outcome {
            Ok(()) => text.push_str(&format!("deleted group {name}\n")),
            Err(error) => {
                failed = true;
                eprintln!("cxlkafka: {error}");
            }
        }
        let error = match outcome {
            Ok(()) => Json::Null,
            Err(error) => Json::from(error.code().map_or_else(|| error.to_string(), error_name)),
        };
        json.push(obj([
            ("group", Json::from(name.as_str())),
            ("error", error),
        ]));
    }
    print(
        args.common.format,
        &Report {
            json: obj([("results", Json::Arr(json))]),
            text,
        },
    );
    Ok(if failed { Status::Failed } else { Status::Done })
}

async fn delete_one(admin: &mut Admin, name: &str) -> Result<(), AdminError> {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(name)]);
    for attempt in 1..=COORDINATOR_RETRIES {
        let broker = admin.coordinator(name).await?;
        let version = broker.version(ApiKey::DeleteGroups, DELETE_GROUPS)?;
        let response: DeleteGroupsResponse =
            broker.call(ApiKey::DeleteGroups, version, &request).await?;
        if attempt < COORDINATOR_RETRIES
            && response
                .results
                .iter()
                .any(|r| coordinator_moved(r.error_code))
        {
            tokio::time::sleep(COORDINATOR_BACKOFF).await;
            continue;
        }
        for result in &response.results {
            AdminError::check(result.error_code, || format!("group {name:?}"))?;
        }
        break;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn seek_targets_parse() {
        assert_eq!(parse_seek_target("earliest"), Ok(SeekTarget::Earliest));
        assert_eq!(parse_seek_target("latest"), Ok(SeekTarget::Latest));
        assert_eq!(parse_seek_target("offset:42"), Ok(SeekTarget::Offset(42)));
        assert_eq!(
            parse_seek_target("timestamp:1700000000000"),
            Ok(SeekTarget::Timestamp(1_700_000_000_000))
        );
        for bad in [
            "",
            "begin",
            "offset:",
            "offset:-1",
            "offset:x",
            "timestamp",
            "latest:1",
        ] {
            assert!(parse_seek_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_consumer_assignment_decodes_to_topic_partitions() {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![0, 2]),
        ]);
        let mut bytes = bytes::BytesMut::new();
        bytes.extend_from_slice(&1i16.to_be_bytes());
        assignment.encode(&mut bytes, 1).expect("encodes");
        let decoded = decode_assignment(bytes.freeze());
        assert_eq!(decoded.get("orders"), Some(&vec![0, 2]));
        assert!(decode_assignment(Bytes::from_static(&[0])).is_empty());
    }
}
