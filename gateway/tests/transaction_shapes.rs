//! The transaction APIs' request shapes (`cxlkafka_gateway::shape`) mirror
//! `kafka-protocol`'s encodings: for every served version, a request with
//! every field populated (nulls and unknown tags included) is walked to
//! exactly its last byte.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use cxlkafka_gateway::api::transactions::{
    add_offsets_to_txn, add_partitions_to_txn, describe_producers, describe_transactions, end_txn,
    list_transactions, txn_offset_commit,
};
use cxlkafka_gateway::shape::{self, Field};
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, DescribeTransactionsRequest,
    EndTxnRequest, GroupId, ListTransactionsRequest, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn unknown_tags(api: ApiKey, version: i16) -> BTreeMap<i32, Bytes> {
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

fn topic(version: i16, api: ApiKey) -> AddPartitionsToTxnTopic {
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = TopicName(text("ledger"));
    topic.partitions = vec![0, 1, 7];
    topic.unknown_tagged_fields = unknown_tags(api, version);
    topic
}

#[test]
fn add_partitions_to_txn_shapes_match_the_codec() {
    let api = ApiKey::AddPartitionsToTxn;
    let versions = add_partitions_to_txn::VERSIONS;
    for version in versions.min..=versions.max {
        let mut request = AddPartitionsToTxnRequest::default();
        if version >= 4 {
            let mut txn = AddPartitionsToTxnTransaction::default();
            txn.transactional_id = TransactionalId(text("payments"));
            txn.producer_id = ProducerId(1000);
            txn.producer_epoch = 3;
            txn.verify_only = true;
            txn.topics = vec![topic(version, api), topic(version, api)];
            txn.unknown_tagged_fields = unknown_tags(api, version);
            request.transactions = vec![txn.clone(), txn];
        } else {
            request.v3_and_below_transactional_id = TransactionalId(text("payments"));
            request.v3_and_below_producer_id = ProducerId(1000);
            request.v3_and_below_producer_epoch = 3;
            request.v3_and_below_topics = vec![topic(version, api), topic(version, api)];
        }
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, add_partitions_to_txn::REQUEST, &request, version);
    }
}

#[test]
fn add_offsets_and_end_txn_shapes_match_the_codec() {
    let api = ApiKey::AddOffsetsToTxn;
    let versions = add_offsets_to_txn::VERSIONS;
    for version in versions.min..=versions.max {
        let mut request = AddOffsetsToTxnRequest::default();
        request.transactional_id = TransactionalId(text("payments"));
        request.producer_id = ProducerId(1000);
        request.producer_epoch = 3;
        request.group_id = GroupId(text("readers"));
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, add_offsets_to_txn::REQUEST, &request, version);
    }
    let api = ApiKey::EndTxn;
    let versions = end_txn::VERSIONS;
    for version in versions.min..=versions.max {
        let mut request = EndTxnRequest::default();
        request.transactional_id = TransactionalId(text("payments"));
        request.producer_id = ProducerId(1000);
        request.producer_epoch = 3;
        request.committed = true;
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, end_txn::REQUEST, &request, version);
    }
}

#[test]
fn txn_offset_commit_shapes_match_the_codec() {
    let api = ApiKey::TxnOffsetCommit;
    let versions = txn_offset_commit::VERSIONS;
    for version in versions.min..=versions.max {
        let mut partition = TxnOffsetCommitRequestPartition::default();
        partition.partition_index = 2;
        partition.committed_offset = 99;
        partition.committed_leader_epoch = 4;
        partition.committed_metadata = Some(text("meta"));
        partition.unknown_tagged_fields = unknown_tags(api, version);
        let mut null_metadata = partition.clone();
        null_metadata.committed_metadata = None;
        let mut topic = TxnOffsetCommitRequestTopic::default();
        topic.name = TopicName(text("ledger"));
        topic.partitions = vec![partition, null_metadata];
        topic.unknown_tagged_fields = unknown_tags(api, version);
        let mut request = TxnOffsetCommitRequest::default();
        request.transactional_id = TransactionalId(text("payments"));
        request.group_id = GroupId(text("readers"));
        request.producer_id = ProducerId(1000);
        request.producer_epoch = 3;
        if version >= 3 {
            request.generation_id = 5;
            request.member_id = text("member-1");
            request.group_instance_id = Some(text("instance-1"));
        }
        request.topics = vec![topic.clone(), topic];
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, txn_offset_commit::REQUEST, &request, version);
    }
}

#[test]
fn write_txn_markers_shapes_match_the_codec() {
    use cxlkafka_gateway::api::transactions::write_txn_markers;
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::WriteTxnMarkersRequest;
    let api = ApiKey::WriteTxnMarkers;
    let versions = write_txn_markers::VERSIONS;
    for version in versions.min..=versions.max {
        let mut topic = WritableTxnMarkerTopic::default();
        topic.name = TopicName(text("ledger"));
        topic.partition_indexes = vec![0, 2];
        topic.unknown_tagged_fields = unknown_tags(api, version);
        let mut marker = WritableTxnMarker::default();
        marker.producer_id = ProducerId(1000);
        marker.producer_epoch = 3;
        marker.transaction_result = false;
        marker.topics = vec![topic.clone(), topic];
        marker.coordinator_epoch = 0;
        marker.unknown_tagged_fields = unknown_tags(api, version);
        let mut request = WriteTxnMarkersRequest::default();
        request.markers = vec![marker.clone(), marker];
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, write_txn_markers::REQUEST, &request, version);
    }
}

#[test]
fn describe_producers_shapes_match_the_codec() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::DescribeProducersRequest;
    let api = ApiKey::DescribeProducers;
    let versions = describe_producers::VERSIONS;
    for version in versions.min..=versions.max {
        let mut topic = TopicRequest::default();
        topic.name = TopicName(text("ledger"));
        topic.partition_indexes = vec![0, 2];
        topic.unknown_tagged_fields = unknown_tags(api, version);
        let mut request = DescribeProducersRequest::default();
        request.topics = vec![topic.clone(), topic];
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, describe_producers::REQUEST, &request, version);
    }
}

#[test]
fn describe_and_list_transactions_shapes_match_the_codec() {
    let api = ApiKey::DescribeTransactions;
    let versions = describe_transactions::VERSIONS;
    for version in versions.min..=versions.max {
        let mut request = DescribeTransactionsRequest::default();
        request.transactional_ids = vec![
            TransactionalId(text("payments")),
            TransactionalId(text("refunds")),
        ];
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, describe_transactions::REQUEST, &request, version);
    }
    let api = ApiKey::ListTransactions;
    let versions = list_transactions::VERSIONS;
    for version in versions.min..=versions.max {
        let mut request = ListTransactionsRequest::default();
        request.state_filters = vec![text("Ongoing"), text("PrepareCommit")];
        request.producer_id_filters = vec![ProducerId(1000), ProducerId(1001)];
        if version >= 1 {
            request.duration_filter = 60_000;
        }
        if version >= 2 {
            request.transactional_id_pattern = Some(text("pay.*"));
        }
        request.unknown_tagged_fields = unknown_tags(api, version);
        assert_walked(api, list_transactions::REQUEST, &request, version);
    }
}
