//! Topic admin APIs: CreateTopics, DeleteTopics, CreatePartitions,
//! DeleteRecords. They publish control records through
//! [`crate::api_support::admin`] and answer once this gateway applied them.

pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
