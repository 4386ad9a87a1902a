//! Where a topic's partitions live (Metadata) and where their logs start
//! and end (ListOffsets, asked of each partition's leader, as Kafka
//! requires).

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{Admin, AdminError};

/// ListOffsets: v1 answers one offset per timestamp; v7 is what Kafka 3.x
/// clients send for earliest/latest/timestamp lookups.
const LIST_OFFSETS: (i16, i16) = (1, 7);

/// ListOffsets' "earliest" timestamp: the log start offset.
pub const EARLIEST: i64 = -2;
/// ListOffsets' "latest" timestamp: the high watermark.
pub const LATEST: i64 = -1;

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Partition index.
    pub index: i32,
    /// Leader's node id; -1 when it has none.
    pub leader: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// The partition's error code (LEADER_NOT_AVAILABLE when offline).
    pub error_code: i16,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Internal (`__consumer_offsets`, `__cxlkafka_order`).
    pub internal: bool,
    /// The topic's error code (UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub error_code: i16,
    /// Partitions by index.
    pub partitions: Vec<Partition>,
}

impl Topic {
    /// The replication factor, as `kafka-topics` reports it: the replica
    /// count of the first partition.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    /// The leader of partition `index`, if it has one.
    pub fn leader(&self, index: i32) -> Option<i32> {
        self.partitions
            .iter()
            .find(|p| p.index == index)
            .map(|p| p.leader)
            .filter(|&leader| leader >= 0)
    }
}

/// The topics of a Metadata answer, partitions sorted by index.
pub fn topics(response: &MetadataResponse) -> Vec<Topic> {
    response
        .topics
        .iter()
        .map(|topic| {
            let mut partitions: Vec<Partition> = topic
                .partitions
                .iter()
                .map(|p| Partition {
                    index: p.partition_index,
                    leader: p.leader_id.0,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.index);
            Topic {
                name: topic
                    .name
                    .as_ref()
                    .map(|n| n.0.to_string())
                    .unwrap_or_default(),
                internal: topic.is_internal,
                error_code: topic.error_code,
                partitions,
            }
        })
        .collect()
}

/// Metadata of one topic; an error naming it when the broker has none.
pub async fn topic(admin: &mut Admin, name: &str) -> Result<Topic, AdminError> {
    let response = admin.metadata(Some(&[name.to_owned()])).await?;
    let topic = topics(&response)
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AdminError::Other(format!("Metadata did not answer for topic {name:?}")))?;
    AdminError::check(topic.error_code, || format!("topic {name:?}"))?;
    Ok(topic)
}

/// The offset for `timestamp` ([`EARLIEST`], [`LATEST`] or milliseconds)
/// of each of `partitions` of `topic`, asked of each partition's leader.
/// A timestamp past the last record maps to -1, as Kafka answers.
pub async fn list_offsets(
    admin: &mut Admin,
    topic: &Topic,
    partitions: &[i32],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, AdminError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &index in partitions {
        let leader = topic.leader(index).ok_or_else(|| AdminError::Kafka {
            code: 5,
            what: format!("partition {}/{index}", topic.name),
            message: None,
        })?;
        by_leader.entry(leader).or_default().push(index);
    }
    let mut offsets = BTreeMap::new();
    for (leader, indexes) in by_leader {
        let broker = admin.broker(leader).await?;
        let version = broker.version(ApiKey::ListOffsets, LIST_OFFSETS)?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
                .with_partitions(
                    indexes
                        .iter()
                        .map(|&index| {
                            ListOffsetsPartition::default()
                                .with_partition_index(index)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let response: ListOffsetsResponse =
            broker.call(ApiKey::ListOffsets, version, &request).await?;
        for answer in response.topics.iter().flat_map(|t| &t.partitions) {
            AdminError::check(answer.error_code, || {
                format!("offsets of {}/{}", topic.name, answer.partition_index)
            })?;
            offsets.insert(answer.partition_index, answer.offset);
        }
    }
    if let Some(missing) = partitions.iter().find(|p| !offsets.contains_key(p)) {
        return Err(AdminError::Other(format!(
            "ListOffsets did not answer for {}/{missing}",
            topic.name
        )));
    }
    Ok(offsets)
}
