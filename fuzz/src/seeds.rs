//! Writes the seed corpora under `seeds/<target>/`: valid inputs the fuzzer
//! starts from, so it mutates real requests, batches and superblocks
//! instead of discovering their structure from nothing.
//!
//! `cargo run --example seeds` (from fuzz/); the files are kept in the tree.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cxlkafka_gateway::DispatchTable;
use cxlkafka_log::layout::{Geometry, SUPERBLOCK_BYTES};
use cxlkafka_log::memory::Coherent;
use cxlkafka_log::open::{cluster_id, open_or_create, RegionOptions};
use cxlkafka_log::segment::EntryHeader;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const SEPARATOR: &[u8] = &[0xC0, 0xFF, 0xEE, 0x00];

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    request_seeds(&root.join("request"));
    batch_seeds(&root.join("record_batch"));
    region_seeds(&root.join("region_attach"));
    peer_copy_seeds(&root.join("peer_copy"));
}

/// A peer-copy request (from sequence `from`) and a ready answer with an
/// entry per payload, at sequences `from`, `from + 1`, ...
fn peer_copy_exchange(from: u64, payloads: &[&[u8]], end: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"CXLKPEER");
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&[7; 16]);
    bytes.extend_from_slice(&from.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.push(0);
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&(from + payloads.len() as u64).to_le_bytes());
    for (at, payload) in payloads.iter().enumerate() {
        let header = EntryHeader {
            sequence: from + at as u64,
            base_offset: at as i64,
            stream: 256,
            record_count: 1,
            length: payload.len() as u32,
            ..EntryHeader::default()
        };
        bytes.push(1);
        bytes.extend_from_slice(&header.encode(payload));
        bytes.extend_from_slice(payload);
    }
    if end {
        bytes.push(0);
    }
    bytes
}

fn peer_copy_seeds(dir: &Path) {
    write(dir, "empty", &peer_copy_exchange(1, &[], true));
    write(dir, "three", &peer_copy_exchange(5, &[b"one", b"", b"three"], true));
    write(dir, "cut", &peer_copy_exchange(5, &[b"one", b"two"], false));
    let mut refused = peer_copy_exchange(1, &[], false);
    refused.truncate(38);
    refused.push(4);
    write(dir, "diverged", &refused);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("seed directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// A request frame's payload (no size prefix): header, then body.
fn payload(key: ApiKey, version: i16, body: &impl Encodable) -> Option<Vec<u8>> {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 1;
    header.client_id = Some(StrBytes::from_static_str("seed"));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

fn records(compression: Compression, keyed: bool, idempotent: bool) -> Bytes {
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: if idempotent { 1000 } else { -1 },
            producer_epoch: if idempotent { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: if idempotent { i as i32 } else { -1 + i as i32 },
            timestamp: 1_700_000_000_000 + i,
            key: keyed.then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("records encode");
    buf.freeze()
}

fn produce(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    let mut data = PartitionProduceData::default();
    data.index = 0;
    data.records = Some(records);
    let mut topic_data = TopicProduceData::default();
    topic_data.name = name(topic);
    topic_data.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 5_000;
    request.topic_data = vec![topic_data];
    request
}

/// Encodes `$body` at every version the table serves for `$key`.
macro_rules! every_version {
    ($dir:expr, $table:expr, $key:expr, $label:expr, $body:expr) => {{
        if let Some(entry) = $table.get($key as i16) {
            for version in entry.versions.min..=entry.versions.max {
                if let Some(bytes) = payload($key, version, &$body) {
                    write($dir, &format!("{}-v{version}", $label), &bytes);
                }
            }
        }
    }};
}

fn request_seeds(dir: &Path) {
    let table = DispatchTable::standard();
    every_version!(
        dir,
        table,
        ApiKey::ApiVersions,
        "api-versions",
        ApiVersionsRequest::default()
    );
    let mut metadata = MetadataRequest::default();
    let mut topic = MetadataRequestTopic::default();
    topic.name = Some(name("orders"));
    metadata.topics = Some(vec![topic]);
    metadata.allow_auto_topic_creation = true;
    every_version!(dir, table, ApiKey::Metadata, "metadata", metadata);
    every_version!(
        dir,
        table,
        ApiKey::Produce,
        "produce",
        produce("orders", records(Compression::None, true, false), 1)
    );
    every_version!(
        dir,
        table,
        ApiKey::Produce,
        "produce-zstd",
        produce("orders", records(Compression::Zstd, false, false), -1)
    );
    every_version!(
        dir,
        table,
        ApiKey::Produce,
        "produce-gzip",
        produce("orders", records(Compression::Gzip, true, true), 0)
    );
    let mut fetch = FetchRequest::default();
    let mut partition = FetchPartition::default();
    partition.fetch_offset = 0;
    partition.partition_max_bytes = 1 << 20;
    let mut fetch_topic = FetchTopic::default();
    fetch_topic.topic = name("orders");
    fetch_topic.partitions = vec![partition];
    fetch.topics = vec![fetch_topic];
    fetch.max_wait_ms = 100;
    fetch.max_bytes = 1 << 20;
    every_version!(dir, table, ApiKey::Fetch, "fetch", fetch);
    let mut create = CreateTopicsRequest::default();
    let mut creatable = CreatableTopic::default();
    creatable.name = name("orders");
    creatable.num_partitions = 3;
    creatable.replication_factor = 1;
    create.topics = vec![creatable];
    create.timeout_ms = 1000;
    every_version!(dir, table, ApiKey::CreateTopics, "create-topics", create);
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str("g"));
    join.session_timeout_ms = 10_000;
    join.rebalance_timeout_ms = 10_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = Bytes::from_static(b"\x00\x01");
    join.protocols = vec![protocol];
    every_version!(dir, table, ApiKey::JoinGroup, "join-group", join);
    every_version!(
        dir,
        table,
        ApiKey::ListOffsets,
        "list-offsets",
        ListOffsetsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::InitProducerId,
        "init-producer-id",
        InitProducerIdRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DeleteTopics,
        "delete-topics",
        DeleteTopicsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::CreatePartitions,
        "create-partitions",
        CreatePartitionsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DescribeConfigs,
        "describe-configs",
        DescribeConfigsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::AlterConfigs,
        "alter-configs",
        AlterConfigsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::IncrementalAlterConfigs,
        "incremental-alter-configs",
        IncrementalAlterConfigsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DescribeCluster,
        "describe-cluster",
        DescribeClusterRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DeleteRecords,
        "delete-records",
        DeleteRecordsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::FindCoordinator,
        "find-coordinator",
        FindCoordinatorRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::SyncGroup,
        "sync-group",
        SyncGroupRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::Heartbeat,
        "heartbeat",
        HeartbeatRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::LeaveGroup,
        "leave-group",
        LeaveGroupRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::OffsetCommit,
        "offset-commit",
        OffsetCommitRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::OffsetFetch,
        "offset-fetch",
        OffsetFetchRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DescribeGroups,
        "describe-groups",
        DescribeGroupsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::ListGroups,
        "list-groups",
        ListGroupsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DeleteGroups,
        "delete-groups",
        DeleteGroupsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::OffsetDelete,
        "offset-delete",
        OffsetDeleteRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::SaslHandshake,
        "sasl-handshake",
        SaslHandshakeRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::SaslAuthenticate,
        "sasl-authenticate",
        SaslAuthenticateRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DescribeAcls,
        "describe-acls",
        DescribeAclsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::CreateAcls,
        "create-acls",
        CreateAclsRequest::default()
    );
    every_version!(
        dir,
        table,
        ApiKey::DeleteAcls,
        "delete-acls",
        DeleteAclsRequest::default()
    );

    // Sequences: create, produce, fetch on one gateway; join then sync.
    let sequence = |parts: &[Vec<u8>]| parts.join(SEPARATOR);
    let create_topic = {
        let mut create = CreateTopicsRequest::default();
        let mut creatable = CreatableTopic::default();
        creatable.name = name("orders");
        creatable.num_partitions = 1;
        creatable.replication_factor = 1;
        create.topics = vec![creatable];
        payload(ApiKey::CreateTopics, 7, &create).expect("encodes")
    };
    let produced = payload(
        ApiKey::Produce,
        9,
        &produce("orders", records(Compression::Lz4, true, false), -1),
    )
    .expect("encodes");
    let fetched = payload(ApiKey::Fetch, 12, &{
        let mut fetch = FetchRequest::default();
        let mut partition = FetchPartition::default();
        partition.partition_max_bytes = 1 << 20;
        let mut topic = FetchTopic::default();
        topic.topic = name("orders");
        topic.partitions = vec![partition];
        fetch.topics = vec![topic];
        fetch.max_wait_ms = 500;
        fetch.max_bytes = 1 << 20;
        fetch
    })
    .expect("encodes");
    write(
        dir,
        "seq-create-produce-fetch",
        &sequence(&[create_topic, produced, fetched]),
    );
    let joined = {
        let mut join = JoinGroupRequest::default();
        join.group_id = GroupId(StrBytes::from_static_str("g"));
        join.member_id = StrBytes::from_static_str("");
        join.session_timeout_ms = 10_000;
        join.rebalance_timeout_ms = 10_000;
        join.protocol_type = StrBytes::from_static_str("consumer");
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str("range");
        join.protocols = vec![protocol];
        payload(ApiKey::JoinGroup, 5, &join).expect("encodes")
    };
    let synced = {
        let mut sync = SyncGroupRequest::default();
        sync.group_id = GroupId(StrBytes::from_static_str("g"));
        payload(ApiKey::SyncGroup, 3, &sync).expect("encodes")
    };
    write(
        dir,
        "seq-join-sync",
        &sequence(&[joined.clone(), joined, synced]),
    );
    transaction_seeds(dir, &table);
}

/// Every transaction API at every version, and one transaction from
/// InitProducerId to EndTxn with a transactional batch and offsets in it
/// (the sink hands out producer id 1000 first).
fn transaction_seeds(dir: &Path, table: &DispatchTable) {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let id = || TransactionalId(StrBytes::from_static_str("t"));
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(id());
    init.transaction_timeout_ms = 60_000;
    init.producer_id = ProducerId(-1);
    init.producer_epoch = -1;
    every_version!(dir, table, ApiKey::InitProducerId, "init-producer-id-txn", init);
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = name("orders");
    topic.partitions = vec![0];
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = id();
    add.v3_and_below_producer_id = ProducerId(1000);
    add.v3_and_below_topics = vec![topic];
    every_version!(dir, table, ApiKey::AddPartitionsToTxn, "add-partitions-to-txn", add);
    let mut offsets = AddOffsetsToTxnRequest::default();
    offsets.transactional_id = id();
    offsets.producer_id = ProducerId(1000);
    offsets.group_id = GroupId(StrBytes::from_static_str("g"));
    every_version!(dir, table, ApiKey::AddOffsetsToTxn, "add-offsets-to-txn", offsets);
    let mut partition = TxnOffsetCommitRequestPartition::default();
    partition.committed_offset = 3;
    let mut commit_topic = TxnOffsetCommitRequestTopic::default();
    commit_topic.name = name("orders");
    commit_topic.partitions = vec![partition];
    let mut commit = TxnOffsetCommitRequest::default();
    commit.transactional_id = id();
    commit.group_id = GroupId(StrBytes::from_static_str("g"));
    commit.producer_id = ProducerId(1000);
    commit.generation_id = -1;
    commit.topics = vec![commit_topic];
    every_version!(dir, table, ApiKey::TxnOffsetCommit, "txn-offset-commit", commit);
    let mut end = EndTxnRequest::default();
    end.transactional_id = id();
    end.producer_id = ProducerId(1000);
    end.committed = true;
    every_version!(dir, table, ApiKey::EndTxn, "end-txn", end);
    let mut describe = DescribeTransactionsRequest::default();
    describe.transactional_ids = vec![id()];
    every_version!(dir, table, ApiKey::DescribeTransactions, "describe-transactions", describe);
    let mut list = ListTransactionsRequest::default();
    list.state_filters = vec![StrBytes::from_static_str("Ongoing")];
    list.duration_filter = -1;
    every_version!(dir, table, ApiKey::ListTransactions, "list-transactions", list);
    let mut producers_topic = TopicRequest::default();
    producers_topic.name = name("orders");
    producers_topic.partition_indexes = vec![0];
    let mut producers = DescribeProducersRequest::default();
    producers.topics = vec![producers_topic];
    every_version!(dir, table, ApiKey::DescribeProducers, "describe-producers", producers);
    let mut txn_records = records(Compression::None, true, true);
    // Attributes (byte 21-22): the transactional bit; the CRC covers them.
    let mut bytes = txn_records.to_vec();
    bytes[22] |= 1 << 4;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    txn_records = Bytes::from(bytes);
    let mut produce_txn = produce("orders", txn_records, -1);
    produce_txn.transactional_id = Some(id());
    let mut create = CreateTopicsRequest::default();
    let mut creatable = CreatableTopic::default();
    creatable.name = name("orders");
    creatable.num_partitions = 1;
    creatable.replication_factor = 1;
    create.topics = vec![creatable];
    let frames = [
        payload(ApiKey::CreateTopics, 7, &create),
        payload(ApiKey::InitProducerId, 4, &init),
        payload(ApiKey::AddPartitionsToTxn, 3, &add),
        payload(ApiKey::Produce, 9, &produce_txn),
        payload(ApiKey::AddOffsetsToTxn, 3, &offsets),
        payload(ApiKey::TxnOffsetCommit, 3, &commit),
        payload(ApiKey::EndTxn, 3, &end),
        payload(ApiKey::DescribeTransactions, 0, &describe),
        payload(ApiKey::DescribeProducers, 0, &producers),
    ];
    let frames: Vec<Vec<u8>> = frames.into_iter().map(|f| f.expect("encodes")).collect();
    write(dir, "seq-transaction", &frames.join(SEPARATOR));
}

fn batch_seeds(dir: &Path) {
    for (label, compression) in [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        for (keyed, idempotent) in [(true, false), (false, true)] {
            let batch = records(compression, keyed, idempotent);
            for flags in [0_u8, 1] {
                let mut seed = vec![flags, 9];
                seed.extend_from_slice(&batch);
                write(
                    dir,
                    &format!("{label}-k{keyed}-i{idempotent}-f{flags}"),
                    &seed,
                );
            }
        }
    }
    // Two batches end to end (a stored set; Produce refuses it).
    let mut seed = vec![1, 9];
    seed.extend_from_slice(&records(Compression::None, true, false));
    seed.extend_from_slice(&records(Compression::Snappy, true, false));
    write(dir, "two-batches", &seed);
}

fn region_seeds(dir: &Path) {
    let scratch = std::env::temp_dir().join(format!("cxlkafka-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let path: PathBuf = scratch.join("region");
    let geometry = Geometry {
        max_gateways: 2,
        ring_slots: 4,
        arena_bytes: 4096,
        order_log_entries: 4,
        sequencer_state_bytes: 4096,
    };
    let total = geometry.layout().expect("a valid geometry").total_bytes;
    let options = RegionOptions {
        path: path.clone(),
        region_bytes: total,
        geometry,
        cluster_id: cluster_id("seed").expect("a short name"),
        format_wait: Duration::ZERO,
    };
    drop(open_or_create::<Coherent>(&options).expect("format a region"));
    let image = std::fs::read(&path).expect("read the region");
    let superblock = &image[..usize::try_from(SUPERBLOCK_BYTES).expect("small")];
    let extension = u32::try_from(total - SUPERBLOCK_BYTES).expect("small region");
    for flags in [0_u8, 1, 2, 3] {
        let mut seed = vec![flags];
        seed.extend_from_slice(&extension.to_le_bytes());
        seed.extend_from_slice(superblock);
        write(dir, &format!("formatted-f{flags}"), &seed);
    }
    let mut short = vec![1_u8, 0, 0, 0, 0];
    short.extend_from_slice(superblock);
    write(dir, "formatted-truncated", &short);
    std::fs::remove_dir_all(&scratch).expect("remove scratch");
}
