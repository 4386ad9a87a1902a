//! Control records: metadata changes that travel through the same log as
//! data, so every gateway applies them in the same order.
//!
//! Encoding (little-endian): one tag byte, then the fields in declaration
//! order; strings are a u16 length and UTF-8 bytes. A record that does not
//! decode is answered with [`crate::status::INVALID_CONTROL`], never applied.

mod transaction;

pub use transaction::{txn_state, TransactionRecord, TxnPartition};

/// A change the sequencer applies when it orders the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlRecord {
    CreateTopic {
        name: String,
        partitions: u32,
        topic_id: [u8; 16],
        retention_ms: i64,
        retention_bytes: i64,
        /// Other topic configs as `key=value` lines.
        configs: String,
        /// Copies acks=all waits for, the region counted as one.
        replication_factor: u16,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: u32,
    },
    AlterTopicConfigs {
        name: String,
        retention_ms: i64,
        retention_bytes: i64,
        configs: String,
    },
    /// Asks for a fresh producer id; the completion carries it.
    AllocateProducerId,
    /// Moves a partition's log start offset forward (Kafka's DeleteRecords);
    /// `offset` -1 means the high watermark. The completion carries the new
    /// log start.
    DeleteRecords {
        stream: u32,
        offset: i64,
    },
    /// A consumer group's committed offsets. The sequencer only orders it;
    /// every gateway applies it when it reads it from the order log.
    CommitOffsets {
        group: String,
        offsets: Vec<CommittedOffset>,
    },
    /// Creates or replaces a user's SCRAM credential for one mechanism
    /// (KIP-554). Only the salted, hashed form travels: RFC 5802's salt,
    /// iteration count, StoredKey and ServerKey, never the password. Like
    /// offset commits, the sequencer only orders it; every gateway applies
    /// it when it reads it from the order log.
    UpsertScramCredential {
        user: String,
        /// Kafka's mechanism code: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512.
        mechanism: u8,
        iterations: u32,
        salt: Vec<u8>,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    },
    /// Removes a user's SCRAM credential for one mechanism.
    DeleteScramCredential {
        user: String,
        mechanism: u8,
    },
    /// Adds ACL bindings (Kafka's CreateAcls); ordered, applied by gateways.
    CreateAcls {
        acls: Vec<AclRecord>,
    },
    /// Removes exactly these ACL bindings (DeleteAcls, its filters resolved
    /// by the gateway that took the request).
    DeleteAcls {
        acls: Vec<AclRecord>,
    },
    /// Changes dynamic broker configs (Kafka's KIP-226) of one broker or of
    /// the cluster-wide default. Like offset commits, the sequencer only
    /// orders it; every gateway applies it when it reads it from the order
    /// log, and reloads it from its segments at start.
    AlterBrokerConfigs {
        /// The node id, or [`DEFAULT_BROKER`] for the cluster default.
        broker: i32,
        /// Whether the changes replace the whole set (AlterConfigs) rather
        /// than change only the configs they name
        /// (IncrementalAlterConfigs).
        replace: bool,
        changes: Vec<BrokerConfigChange>,
    },
    /// A transaction's state after a coordinator step (see
    /// [`TransactionRecord`]). The sequencer only orders it.
    Transaction(TransactionRecord),
    /// Offsets a transaction commits for `group` if it commits (Kafka's
    /// TxnOffsetCommit); gateways keep them with the transaction until its
    /// end. The sequencer only orders it.
    TxnOffsetCommit {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        group: String,
        offsets: Vec<CommittedOffset>,
    },
}

/// [`ControlRecord::AlterBrokerConfigs`]'s broker for the cluster-wide
/// default (the config resource named "").
pub const DEFAULT_BROKER: i32 = -1;

/// One config within [`ControlRecord::AlterBrokerConfigs`]: its new value,
/// or `None` to remove it (back to the next source in line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfigChange {
    pub name: String,
    pub value: Option<String>,
}

/// One ACL binding within [`ControlRecord::CreateAcls`] and
/// [`ControlRecord::DeleteAcls`], with Kafka's wire codes for the resource
/// type, pattern type, operation and permission.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclRecord {
    pub resource_type: u8,
    pub resource_name: String,
    pub pattern_type: u8,
    pub principal: String,
    pub host: String,
    pub operation: u8,
    pub permission: u8,
}

/// One partition's committed offset within [`ControlRecord::CommitOffsets`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub stream: u32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed control record: {0}")]
pub struct ControlDecodeError(pub &'static str);

/// The encoding tags, also carried in `OrderEntry::control_tag`.
pub mod tag {
    pub const CREATE_TOPIC: u8 = 1;
    pub const DELETE_TOPIC: u8 = 2;
    pub const CREATE_PARTITIONS: u8 = 3;
    pub const ALTER_TOPIC_CONFIGS: u8 = 4;
    pub const ALLOCATE_PRODUCER_ID: u8 = 5;
    pub const COMMIT_OFFSETS: u8 = 6;
    pub const DELETE_RECORDS: u8 = 7;
    pub const UPSERT_SCRAM_CREDENTIAL: u8 = 8;
    pub const DELETE_SCRAM_CREDENTIAL: u8 = 9;
    pub const CREATE_ACLS: u8 = 10;
    pub const DELETE_ACLS: u8 = 11;
    pub const ALTER_BROKER_CONFIGS: u8 = 12;
    pub const TRANSACTION: u8 = 13;
    pub const TXN_OFFSET_COMMIT: u8 = 14;
}

/// Partitions one offset commit may carry (bounds decoding).
const MAX_COMMITTED_OFFSETS: u32 = 65_536;
/// ACL bindings one record may carry (bounds decoding).
const MAX_ACLS: u32 = 65_536;
/// Configs one broker config change may carry (bounds decoding).
const MAX_BROKER_CONFIG_CHANGES: u32 = 1024;

impl ControlRecord {
    /// The encoding tag of this record.
    pub fn tag(&self) -> u8 {
        match self {
            ControlRecord::CreateTopic { .. } => tag::CREATE_TOPIC,
            ControlRecord::DeleteTopic { .. } => tag::DELETE_TOPIC,
            ControlRecord::CreatePartitions { .. } => tag::CREATE_PARTITIONS,
            ControlRecord::AlterTopicConfigs { .. } => tag::ALTER_TOPIC_CONFIGS,
            ControlRecord::AllocateProducerId => tag::ALLOCATE_PRODUCER_ID,
            ControlRecord::CommitOffsets { .. } => tag::COMMIT_OFFSETS,
            ControlRecord::DeleteRecords { .. } => tag::DELETE_RECORDS,
            ControlRecord::UpsertScramCredential { .. } => tag::UPSERT_SCRAM_CREDENTIAL,
            ControlRecord::DeleteScramCredential { .. } => tag::DELETE_SCRAM_CREDENTIAL,
            ControlRecord::CreateAcls { .. } => tag::CREATE_ACLS,
            ControlRecord::DeleteAcls { .. } => tag::DELETE_ACLS,
            ControlRecord::AlterBrokerConfigs { .. } => tag::ALTER_BROKER_CONFIGS,
            ControlRecord::Transaction(_) => tag::TRANSACTION,
            ControlRecord::TxnOffsetCommit { .. } => tag::TXN_OFFSET_COMMIT,
        }
    }

    /// Whether applying it changes the topic catalog.
    pub fn changes_catalog(control_tag: u16) -> bool {
        u8::try_from(control_tag).is_ok_and(|control_tag| {
            matches!(
                control_tag,
                tag::CREATE_TOPIC
                    | tag::DELETE_TOPIC
                    | tag::CREATE_PARTITIONS
                    | tag::ALTER_TOPIC_CONFIGS
            )
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            ControlRecord::CreateTopic {
                name,
                partitions,
                topic_id,
                retention_ms,
                retention_bytes,
                configs,
                replication_factor,
            } => {
                out.push(tag::CREATE_TOPIC);
                put_str(&mut out, name);
                out.extend_from_slice(&partitions.to_le_bytes());
                out.extend_from_slice(topic_id);
                out.extend_from_slice(&retention_ms.to_le_bytes());
                out.extend_from_slice(&retention_bytes.to_le_bytes());
                put_str(&mut out, configs);
                out.extend_from_slice(&replication_factor.to_le_bytes());
            }
            ControlRecord::DeleteTopic { name } => {
                out.push(tag::DELETE_TOPIC);
                put_str(&mut out, name);
            }
            ControlRecord::CreatePartitions { name, total } => {
                out.push(tag::CREATE_PARTITIONS);
                put_str(&mut out, name);
                out.extend_from_slice(&total.to_le_bytes());
            }
            ControlRecord::AlterTopicConfigs {
                name,
                retention_ms,
                retention_bytes,
                configs,
            } => {
                out.push(tag::ALTER_TOPIC_CONFIGS);
                put_str(&mut out, name);
                out.extend_from_slice(&retention_ms.to_le_bytes());
                out.extend_from_slice(&retention_bytes.to_le_bytes());
                put_str(&mut out, configs);
            }
            ControlRecord::AllocateProducerId => out.push(tag::ALLOCATE_PRODUCER_ID),
            ControlRecord::DeleteRecords { stream, offset } => {
                out.push(tag::DELETE_RECORDS);
                out.extend_from_slice(&stream.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
            }
            ControlRecord::CommitOffsets { group, offsets } => {
                out.push(tag::COMMIT_OFFSETS);
                put_str(&mut out, group);
                put_offsets(&mut out, offsets);
            }
            ControlRecord::Transaction(record) => record.encode_into(&mut out),
            ControlRecord::TxnOffsetCommit {
                transactional_id,
                producer_id,
                producer_epoch,
                group,
                offsets,
            } => {
                out.push(tag::TXN_OFFSET_COMMIT);
                put_str(&mut out, transactional_id);
                out.extend_from_slice(&producer_id.to_le_bytes());
                out.extend_from_slice(&producer_epoch.to_le_bytes());
                put_str(&mut out, group);
                put_offsets(&mut out, offsets);
            }
            ControlRecord::UpsertScramCredential {
                user,
                mechanism,
                iterations,
                salt,
                stored_key,
                server_key,
            } => {
                out.push(tag::UPSERT_SCRAM_CREDENTIAL);
                put_str(&mut out, user);
                out.push(*mechanism);
                out.extend_from_slice(&iterations.to_le_bytes());
                put_bytes(&mut out, salt);
                put_bytes(&mut out, stored_key);
                put_bytes(&mut out, server_key);
            }
            ControlRecord::DeleteScramCredential { user, mechanism } => {
                out.push(tag::DELETE_SCRAM_CREDENTIAL);
                put_str(&mut out, user);
                out.push(*mechanism);
            }
            ControlRecord::CreateAcls { acls } | ControlRecord::DeleteAcls { acls } => {
                out.push(self.tag());
                out.extend_from_slice(&(acls.len() as u32).to_le_bytes());
                for acl in acls {
                    out.push(acl.resource_type);
                    put_str(&mut out, &acl.resource_name);
                    out.push(acl.pattern_type);
                    put_str(&mut out, &acl.principal);
                    put_str(&mut out, &acl.host);
                    out.push(acl.operation);
                    out.push(acl.permission);
                }
            }
            ControlRecord::AlterBrokerConfigs {
                broker,
                replace,
                changes,
            } => {
                out.push(tag::ALTER_BROKER_CONFIGS);
                out.extend_from_slice(&broker.to_le_bytes());
                out.push(u8::from(*replace));
                out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
                for change in changes {
                    put_str(&mut out, &change.name);
                    match &change.value {
                        Some(value) => {
                            out.push(1);
                            put_str(&mut out, value);
                        }
                        None => out.push(0),
                    }
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ControlRecord, ControlDecodeError> {
        let mut reader = Reader { bytes };
        let record = match reader.u8()? {
            tag::CREATE_TOPIC => ControlRecord::CreateTopic {
                name: reader.string()?,
                partitions: reader.u32()?,
                topic_id: reader.array()?,
                retention_ms: reader.i64()?,
                retention_bytes: reader.i64()?,
                configs: reader.string()?,
                replication_factor: reader.u16()?,
            },
            tag::DELETE_TOPIC => ControlRecord::DeleteTopic {
                name: reader.string()?,
            },
            tag::CREATE_PARTITIONS => ControlRecord::CreatePartitions {
                name: reader.string()?,
                total: reader.u32()?,
            },
            tag::ALTER_TOPIC_CONFIGS => ControlRecord::AlterTopicConfigs {
                name: reader.string()?,
                retention_ms: reader.i64()?,
                retention_bytes: reader.i64()?,
                configs: reader.string()?,
            },
            tag::ALLOCATE_PRODUCER_ID => ControlRecord::AllocateProducerId,
            tag::DELETE_RECORDS => ControlRecord::DeleteRecords {
                stream: reader.u32()?,
                offset: reader.i64()?,
            },
            tag::COMMIT_OFFSETS => ControlRecord::CommitOffsets {
                group: reader.string()?,
                offsets: reader.offsets()?,
            },
            tag::TRANSACTION => {
                ControlRecord::Transaction(TransactionRecord::decode_from(&mut reader)?)
            }
            tag::TXN_OFFSET_COMMIT => ControlRecord::TxnOffsetCommit {
                transactional_id: reader.string()?,
                producer_id: reader.i64()?,
                producer_epoch: reader.i16()?,
                group: reader.string()?,
                offsets: reader.offsets()?,
            },
            tag::UPSERT_SCRAM_CREDENTIAL => ControlRecord::UpsertScramCredential {
                user: reader.string()?,
                mechanism: reader.u8()?,
                iterations: reader.u32()?,
                salt: reader.bytes()?,
                stored_key: reader.bytes()?,
                server_key: reader.bytes()?,
            },
            tag::DELETE_SCRAM_CREDENTIAL => ControlRecord::DeleteScramCredential {
                user: reader.string()?,
                mechanism: reader.u8()?,
            },
            record_tag @ (tag::CREATE_ACLS | tag::DELETE_ACLS) => {
                let count = reader.u32()?;
                if count > MAX_ACLS {
                    return Err(ControlDecodeError("too many ACL bindings"));
                }
                let mut acls = Vec::with_capacity(count.min(1024) as usize);
                for _ in 0..count {
                    acls.push(AclRecord {
                        resource_type: reader.u8()?,
                        resource_name: reader.string()?,
                        pattern_type: reader.u8()?,
                        principal: reader.string()?,
                        host: reader.string()?,
                        operation: reader.u8()?,
                        permission: reader.u8()?,
                    });
                }
                if record_tag == tag::CREATE_ACLS {
                    ControlRecord::CreateAcls { acls }
                } else {
                    ControlRecord::DeleteAcls { acls }
                }
            }
            tag::ALTER_BROKER_CONFIGS => {
                let broker = reader.i32()?;
                let replace = reader.flag()?;
                let count = reader.u32()?;
                if count > MAX_BROKER_CONFIG_CHANGES {
                    return Err(ControlDecodeError("too many broker configs"));
                }
                let mut changes = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    let name = reader.string()?;
                    let value = if reader.flag()? {
                        Some(reader.string()?)
                    } else {
                        None
                    };
                    changes.push(BrokerConfigChange { name, value });
                }
                ControlRecord::AlterBrokerConfigs {
                    broker,
                    replace,
                    changes,
                }
            }
            _ => return Err(ControlDecodeError("unknown tag")),
        };
        if !reader.bytes.is_empty() {
            return Err(ControlDecodeError("trailing bytes"));
        }
        Ok(record)
    }
}

/// Bytes as a u16 length and the bytes (salts and keys are far shorter).
fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    let bytes = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_offsets(out: &mut Vec<u8>, offsets: &[CommittedOffset]) {
    out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for committed in offsets {
        out.extend_from_slice(&committed.stream.to_le_bytes());
        out.extend_from_slice(&committed.offset.to_le_bytes());
        out.extend_from_slice(&committed.leader_epoch.to_le_bytes());
        put_str(out, &committed.metadata);
    }
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    let bytes = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], ControlDecodeError> {
        if self.bytes.len() < len {
            return Err(ControlDecodeError("truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ControlDecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ControlDecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// A byte that must be 0 (false) or 1 (true).
    fn flag(&mut self) -> Result<bool, ControlDecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ControlDecodeError("flag is neither 0 nor 1")),
        }
    }
    fn u16(&mut self) -> Result<u16, ControlDecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ControlDecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i16(&mut self) -> Result<i16, ControlDecodeError> {
        Ok(i16::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ControlDecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn offsets(&mut self) -> Result<Vec<CommittedOffset>, ControlDecodeError> {
        let count = self.u32()?;
        if count > MAX_COMMITTED_OFFSETS {
            return Err(ControlDecodeError("too many committed offsets"));
        }
        let mut offsets = Vec::with_capacity(count.min(1024) as usize);
        for _ in 0..count {
            offsets.push(CommittedOffset {
                stream: self.u32()?,
                offset: self.i64()?,
                leader_epoch: self.i32()?,
                metadata: self.string()?,
            });
        }
        Ok(offsets)
    }
    fn i32(&mut self) -> Result<i32, ControlDecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, ControlDecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, ControlDecodeError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        Ok(self.take(len)?.to_vec())
    }
    fn string(&mut self) -> Result<String, ControlDecodeError> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec())
            .map_err(|_| ControlDecodeError("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_round_trips() {
        let records = [
            ControlRecord::CreateTopic {
                name: "orders".into(),
                partitions: 4,
                topic_id: [7; 16],
                retention_ms: 604_800_000,
                retention_bytes: -1,
                configs: "cleanup.policy=delete".into(),
                replication_factor: 2,
            },
            ControlRecord::DeleteTopic {
                name: "orders".into(),
            },
            ControlRecord::CreatePartitions {
                name: "orders".into(),
                total: 8,
            },
            ControlRecord::AlterTopicConfigs {
                name: "orders".into(),
                retention_ms: 1000,
                retention_bytes: 1 << 30,
                configs: String::new(),
            },
            ControlRecord::AllocateProducerId,
            ControlRecord::DeleteRecords {
                stream: 257,
                offset: -1,
            },
            ControlRecord::CommitOffsets {
                group: "billing".into(),
                offsets: vec![
                    CommittedOffset {
                        stream: 3,
                        offset: 42,
                        leader_epoch: -1,
                        metadata: "m".into(),
                    },
                    CommittedOffset {
                        stream: 257,
                        offset: 0,
                        leader_epoch: 5,
                        metadata: String::new(),
                    },
                ],
            },
            ControlRecord::UpsertScramCredential {
                user: "alice".into(),
                mechanism: 1,
                iterations: 4096,
                salt: vec![1, 2, 3],
                stored_key: vec![4; 32],
                server_key: vec![5; 32],
            },
            ControlRecord::DeleteScramCredential {
                user: "alice".into(),
                mechanism: 2,
            },
            ControlRecord::CreateAcls {
                acls: vec![
                    AclRecord {
                        resource_type: 2,
                        resource_name: "orders".into(),
                        pattern_type: 4,
                        principal: "User:alice".into(),
                        host: "*".into(),
                        operation: 4,
                        permission: 3,
                    },
                    AclRecord {
                        resource_type: 4,
                        resource_name: "kafka-cluster".into(),
                        pattern_type: 3,
                        principal: "User:*".into(),
                        host: "10.0.0.1".into(),
                        operation: 2,
                        permission: 2,
                    },
                ],
            },
            ControlRecord::DeleteAcls { acls: Vec::new() },
            ControlRecord::AlterBrokerConfigs {
                broker: 3,
                replace: false,
                changes: vec![
                    BrokerConfigChange {
                        name: "log.retention.ms".into(),
                        value: Some("60000".into()),
                    },
                    BrokerConfigChange {
                        name: "message.max.bytes".into(),
                        value: None,
                    },
                ],
            },
            ControlRecord::AlterBrokerConfigs {
                broker: DEFAULT_BROKER,
                replace: true,
                changes: Vec::new(),
            },
        ];
        for record in records {
            assert_eq!(ControlRecord::decode(&record.encode()), Ok(record));
        }
    }

    #[test]
    fn truncated_or_unknown_records_are_errors_not_panics() {
        let encoded = ControlRecord::DeleteTopic {
            name: "orders".into(),
        }
        .encode();
        for len in 0..encoded.len() {
            assert!(ControlRecord::decode(&encoded[..len]).is_err());
        }
        assert!(ControlRecord::decode(&[99]).is_err());
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert!(ControlRecord::decode(&trailing).is_err());
    }

    #[test]
    fn security_records_keep_their_tags_and_refuse_truncation() {
        let credential = ControlRecord::UpsertScramCredential {
            user: "bob".into(),
            mechanism: 2,
            iterations: 8192,
            salt: vec![9; 16],
            stored_key: vec![1; 64],
            server_key: vec![2; 64],
        };
        let encoded = credential.encode();
        assert_eq!(encoded[0], tag::UPSERT_SCRAM_CREDENTIAL);
        for len in 0..encoded.len() {
            assert!(ControlRecord::decode(&encoded[..len]).is_err());
        }
        let mut huge = vec![tag::CREATE_ACLS];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            ControlRecord::decode(&huge),
            Err(ControlDecodeError("too many ACL bindings"))
        );
        assert!(!ControlRecord::changes_catalog(u16::from(tag::CREATE_ACLS)));
    }

    #[test]
    fn broker_config_records_refuse_truncation_bad_flags_and_huge_counts() {
        let record = ControlRecord::AlterBrokerConfigs {
            broker: DEFAULT_BROKER,
            replace: false,
            changes: vec![BrokerConfigChange {
                name: "auto.create.topics.enable".into(),
                value: Some("false".into()),
            }],
        };
        let encoded = record.encode();
        assert_eq!(encoded[0], tag::ALTER_BROKER_CONFIGS);
        for len in 0..encoded.len() {
            assert!(ControlRecord::decode(&encoded[..len]).is_err());
        }
        // The replace flag is byte 5 (after the tag and the i32 broker).
        let mut bad_flag = encoded.clone();
        bad_flag[5] = 2;
        assert_eq!(
            ControlRecord::decode(&bad_flag),
            Err(ControlDecodeError("flag is neither 0 nor 1"))
        );
        let mut huge = vec![tag::ALTER_BROKER_CONFIGS];
        huge.extend_from_slice(&0i32.to_le_bytes());
        huge.push(0);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            ControlRecord::decode(&huge),
            Err(ControlDecodeError("too many broker configs"))
        );
        assert!(!ControlRecord::changes_catalog(u16::from(
            tag::ALTER_BROKER_CONFIGS
        )));
    }
}
