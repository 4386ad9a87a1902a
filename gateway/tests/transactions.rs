//! Transactions through the storage side of a real gateway, on the
//! simulated non-coherent backend (stale lines, torn records, delayed
//! flushes) and on a mapped file: the coordinator's steps, markers in the
//! partitions, the last stable offset held at a transaction's first offset
//! until it ends, aborted transactions listed, offsets committed only with
//! the transaction, a zombie fenced by the abort of its transaction, a
//! transaction past its timeout aborted by the coordinator's tick, and all
//! of it rebuilt the same from the segments after a restart and after the
//! region is lost.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cxlkafka_gateway::cluster::{start, AppendBatch, ClusterLog, ClusterOptions, FetchRead};
use cxlkafka_gateway::transactions::{AbortedTxn, TransactionCoordinator};
use cxlkafka_log::layout::{Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_log::memory::{Coherent, MemoryBackend, SimFaults, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format, open_or_create, RegionOptions};
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::stream_of;
use cxlkafka_sequencer::control::{txn_state, CommittedOffset, ControlRecord};
use cxlkafka_sequencer::status;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn geometry() -> Geometry {
    Geometry {
        max_gateways: 2,
        ring_slots: 32,
        arena_bytes: 256 << 10,
        order_log_entries: 256,
        sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
    }
}

fn options(data_dir: &Path) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(0),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 19_700,
        lease_timeout: Duration::from_millis(300),
        data_dir: data_dir.to_path_buf(),
        segment_bytes: 64 << 10,
        region_path: None,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: None,
    }
}

fn start_log<B: MemoryBackend>(region: Region<B>, data_dir: &Path) -> Arc<dyn ClusterLog> {
    start(region, options(data_dir)).expect("gateway starts")
}

/// A producer's batch of `count` records, transactional or not.
fn batch(producer: (i64, i16), base_sequence: i32, count: usize, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            sequence: if producer.0 >= 0 {
                base_sequence + index as i32
            } else {
                -1
            },
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("value-{base_sequence}-{index}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buffer = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options).expect("encodes");
    buffer.freeze()
}

/// Publishes a batch; returns (status, base offset, global sequence).
async fn append(
    log: &dyn ClusterLog,
    stream: u32,
    producer: (i64, i16),
    base_sequence: i32,
    count: usize,
    transactional: bool,
) -> (i32, i64, u64) {
    let payload = batch(producer, base_sequence, count, transactional);
    let completion = log
        .append(
            AppendBatch {
                stream,
                payload: &payload,
                record_count: count as u32,
                producer_id: producer.0,
                producer_epoch: producer.1,
                base_sequence: if producer.0 >= 0 { base_sequence } else { -1 },
                max_timestamp: 1_700_000_000_000,
            },
            TIMEOUT,
        )
        .await
        .expect("answered");
    (
        completion.error,
        completion.base_offset,
        completion.global_sequence,
    )
}

async fn create_topic(log: &dyn ClusterLog, name: &str, partitions: u32) -> Vec<u32> {
    let record = ControlRecord::CreateTopic {
        name: name.into(),
        partitions,
        topic_id: [3; 16],
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 1,
    };
    let completion = log.control(&record, TIMEOUT).await.expect("ordered");
    assert_eq!(completion.error, 0);
    (0..partitions)
        .map(|partition| stream_of(completion.base_offset as u32, partition))
        .collect()
}

/// Every batch of the stream as (base offset, is a control batch, marker
/// type for control batches).
fn batches_of(log: &dyn ClusterLog, stream: u32) -> Vec<(i64, bool, Option<i16>)> {
    let FetchRead::Batches { batches, .. } = log.read(stream, 0, 16 << 20) else {
        panic!("stream {stream} is readable");
    };
    batches
        .into_iter()
        .map(|mut bytes| {
            let base = i64::from_be_bytes(bytes[..8].try_into().unwrap());
            let set = RecordBatchDecoder::decode(&mut bytes).expect("a batch");
            let record = &set.records[0];
            let marker = record.control.then(|| {
                let key = record.key.as_ref().expect("a marker key");
                i16::from_be_bytes([key[2], key[3]])
            });
            (base, record.control, marker)
        })
        .collect()
}

/// TxnOffsetCommit of `offset` in `stream` for group "readers" within the
/// transaction of "payments".
async fn commit_in_transaction(
    log: &dyn ClusterLog,
    producer: (i64, i16),
    stream: u32,
    offset: i64,
) {
    let record = ControlRecord::TxnOffsetCommit {
        transactional_id: "payments".into(),
        producer_id: producer.0,
        producer_epoch: producer.1,
        group: "readers".into(),
        offsets: vec![CommittedOffset {
            stream,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
        }],
    };
    log.control(&record, TIMEOUT).await.expect("ordered");
}

/// What a restart must find again.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Per stream: (producer id, epoch, last sequence) as DescribeProducers
    /// shows them.
    producers: Vec<Vec<(i64, i16, i32)>>,
    last_stable: Vec<i64>,
    aborted: Vec<Vec<AbortedTxn>>,
    committed: Option<i64>,
    state: Option<(u8, i64, i16)>,
}

fn seen(log: &dyn ClusterLog, streams: &[u32]) -> Seen {
    let store = log.transactions();
    Seen {
        producers: streams
            .iter()
            .map(|&stream| {
                log.producers(stream)
                    .into_iter()
                    .map(|(id, state)| (id, state.epoch, state.last_sequence))
                    .collect()
            })
            .collect(),
        last_stable: streams
            .iter()
            .map(|&stream| store.last_stable_offset(stream, log.offsets(stream).1))
            .collect(),
        aborted: streams
            .iter()
            .map(|&stream| store.aborted_between(stream, 0, i64::MAX))
            .collect(),
        committed: log
            .committed_offsets("readers")
            .get(&streams[0])
            .map(|c| c.offset),
        state: store.get("payments").map(|txn| {
            (
                txn.record.state,
                txn.record.producer_id,
                txn.record.producer_epoch,
            )
        }),
    }
}

async fn transactions_end_and_survive_a_restart(
    open_first: impl Fn() -> Arc<dyn ClusterLog>,
    open_again: impl Fn() -> Arc<dyn ClusterLog>,
) {
    let log = open_first();
    let coordinator = Arc::new(TransactionCoordinator::default());
    let streams = create_topic(log.as_ref(), "ledger", 2).await;
    let (s0, s1) = (streams[0], streams[1]);

    let (pid, epoch) = coordinator
        .init_producer(&log, "payments", 60_000, None)
        .await
        .expect("initialised");
    assert_eq!(epoch, 0);

    // A committed transaction over both partitions, with a plain batch of
    // another producer in between.
    coordinator
        .add_partitions(&log, "payments", pid, epoch, &[s0, s1])
        .await
        .expect("added");
    assert_eq!(
        append(log.as_ref(), s0, (pid, epoch), 0, 3, true).await.1,
        0
    );
    assert_eq!(
        append(log.as_ref(), s1, (pid, epoch), 0, 2, true).await.1,
        0
    );
    assert_eq!(append(log.as_ref(), s0, (-1, -1), 0, 1, false).await.1, 3);
    let store = log.transactions();
    assert_eq!(
        store.last_stable_offset(s0, 4),
        0,
        "held at the first offset"
    );
    assert!(store.is_open_in(s1, pid));
    coordinator
        .add_offsets(&log, "payments", pid, epoch, "readers")
        .await
        .expect("offsets added");
    commit_in_transaction(log.as_ref(), (pid, epoch), s0, 17).await;
    assert!(
        log.committed_offsets("readers").is_empty(),
        "not before the commit"
    );
    coordinator
        .end(&log, "payments", pid, epoch, true)
        .await
        .expect("committed");
    assert_eq!(store.last_stable_offset(s0, log.offsets(s0).1), 5);
    assert_eq!(log.offsets(s0).1, 5, "3 records, 1 plain, 1 marker");
    assert_eq!(
        batches_of(log.as_ref(), s0),
        vec![(0, false, None), (3, false, None), (4, true, Some(1))]
    );
    assert_eq!(batches_of(log.as_ref(), s1)[1], (2, true, Some(1)));
    assert_eq!(
        log.committed_offsets("readers").get(&s0).map(|c| c.offset),
        Some(17)
    );
    // A retried EndTxn of the same outcome succeeds; the other one does not.
    coordinator
        .end(&log, "payments", pid, epoch, true)
        .await
        .expect("retried commit");
    assert!(coordinator
        .end(&log, "payments", pid, epoch, false)
        .await
        .is_err());

    // An aborted transaction: listed with its first offset and marker, its
    // offsets never reach the group.
    coordinator
        .add_partitions(&log, "payments", pid, epoch, &[s0])
        .await
        .expect("added");
    // Sequences go on after the commit marker.
    let (written, base, _) = append(log.as_ref(), s0, (pid, epoch), 3, 2, true).await;
    assert_eq!((written, base), (status::OK, 5));
    coordinator
        .add_offsets(&log, "payments", pid, epoch, "readers")
        .await
        .expect("offsets added");
    commit_in_transaction(log.as_ref(), (pid, epoch), s0, 99).await;
    coordinator
        .end(&log, "payments", pid, epoch, false)
        .await
        .expect("aborted");
    assert_eq!(
        store.aborted_between(s0, 0, i64::MAX),
        vec![AbortedTxn {
            producer_id: pid,
            first_offset: 5,
            last_offset: 7
        }]
    );
    assert_eq!(
        log.committed_offsets("readers").get(&s0).map(|c| c.offset),
        Some(17)
    );

    // A zombie: a new instance's InitProducerId aborts the open transaction
    // with a bumped epoch, and the old instance's next batch is fenced.
    coordinator
        .add_partitions(&log, "payments", pid, epoch, &[s1])
        .await
        .expect("added");
    assert_eq!(
        append(log.as_ref(), s1, (pid, epoch), 2, 1, true).await.0,
        status::OK
    );
    let (same_pid, new_epoch) = coordinator
        .init_producer(&log, "payments", 60_000, None)
        .await
        .expect("fenced the old instance");
    assert_eq!((same_pid, new_epoch), (pid, epoch + 2));
    assert_eq!(
        append(log.as_ref(), s1, (pid, epoch), 3, 1, true).await.0,
        status::PRODUCER_FENCED
    );
    assert!(coordinator
        .end(&log, "payments", pid, epoch, true)
        .await
        .is_err());
    assert_eq!(store.aborted_between(s1, 0, i64::MAX).len(), 1);
    assert_eq!(
        store.last_stable_offset(s1, log.offsets(s1).1),
        log.offsets(s1).1
    );

    // A transaction past its timeout is aborted by the coordinator's tick.
    let (pid, epoch) = coordinator
        .init_producer(&log, "payments", 200, None)
        .await
        .expect("initialised");
    coordinator
        .add_partitions(&log, "payments", pid, epoch, &[s0])
        .await
        .expect("added");
    let (_, left_open, _) = append(log.as_ref(), s0, (pid, epoch), 0, 1, true).await;
    assert_eq!(store.last_stable_offset(s0, log.offsets(s0).1), left_open);
    coordinator.ensure_ticker(&log);
    let deadline = Instant::now() + TIMEOUT;
    while store.get("payments").map(|txn| txn.record.state) != Some(txn_state::COMPLETE_ABORT) {
        assert!(
            Instant::now() < deadline,
            "the expired transaction was never aborted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.last_stable_offset(s0, log.offsets(s0).1),
        log.offsets(s0).1
    );
    assert_eq!(
        append(log.as_ref(), s0, (pid, epoch), 1, 1, true).await.0,
        status::PRODUCER_FENCED,
        "the abort bumped the epoch"
    );

    // Everything up to here on disk, then a restart from the segments.
    let (_, _, last) = append(log.as_ref(), s1, (-1, -1), 0, 1, false).await;
    log.wait_durable(last, 1, Instant::now() + TIMEOUT)
        .await
        .expect("on disk");
    let before = seen(log.as_ref(), &streams);
    log.shutdown();
    drop(log);
    let log = open_again();
    assert_eq!(seen(log.as_ref(), &streams), before);
    assert_eq!(before.aborted[0].len(), 2);
    // One producer id throughout: its last batch in s0 is the timed-out
    // transaction's abort marker (epoch bumped, the sequence of its one
    // record kept).
    assert_eq!(before.producers[0], vec![(pid, epoch + 1, 0)]);
    assert_eq!(before.committed, Some(17));
    log.shutdown();
}

fn data_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cxlkafka-transactions-{name}-"))
        .tempdir()
        .expect("a temporary directory")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_transactions_end_and_survive_a_restart() {
    let dir = data_dir("sim");
    let geometry = geometry();
    let bytes = geometry.layout().unwrap().total_bytes;
    let memory = SimulatedMemory::new(bytes as usize);
    drop(
        format(
            memory.participant(SimFaults::none(5)),
            geometry,
            bytes,
            cluster_id("txn").unwrap(),
        )
        .unwrap(),
    );
    let participant = |salt: u64| {
        let region = attach(
            memory.participant(SimFaults::hostile(500 + salt)),
            Path::new("sim"),
            Some(&geometry),
            None,
            Duration::ZERO,
        )
        .unwrap();
        start_log(region, dir.path())
    };
    transactions_end_and_survive_a_restart(|| participant(1), || participant(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_transactions_end_and_survive_a_restart() {
    let dir = data_dir("file");
    let region_path = dir.path().join("region");
    let geometry = geometry();
    let region_bytes = geometry.layout().unwrap().total_bytes;
    let open = || {
        let region_options = RegionOptions {
            path: region_path.clone(),
            region_bytes,
            geometry,
            cluster_id: cluster_id("txn").unwrap(),
            format_wait: Duration::from_secs(5),
        };
        let (region, _) = open_or_create::<Coherent>(&region_options).expect("region");
        start_log(region, &dir.path().join("data"))
    };
    transactions_end_and_survive_a_restart(open, open).await;
}

/// The region is lost after the transactions: a gateway on a blank region
/// rebuilds it from its segments with the same transaction table, aborted
/// lists, last stable offsets, committed offsets and producers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_transactions_survive_a_lost_region() {
    let dir = data_dir("sim-lost");
    let geometry = geometry();
    let bytes = geometry.layout().unwrap().total_bytes;
    let fresh_region = |seed: u64| {
        let memory = SimulatedMemory::new(bytes as usize);
        drop(
            format(
                memory.participant(SimFaults::none(seed)),
                geometry,
                bytes,
                cluster_id("txn").unwrap(),
            )
            .unwrap(),
        );
        let region = attach(
            memory.participant(SimFaults::hostile(seed)),
            Path::new("sim"),
            Some(&geometry),
            None,
            Duration::ZERO,
        )
        .unwrap();
        start_log(region, dir.path())
    };
    transactions_end_and_survive_a_restart(|| fresh_region(11), || fresh_region(12)).await;
}
