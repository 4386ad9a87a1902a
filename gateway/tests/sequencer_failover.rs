//! Real processes on one shared region file: a child gateway process holds
//! the sequencer lease, this process produces through its own gateway, and
//! the child is killed with SIGKILL mid-stream. This process takes the lease
//! over within the lease timeout and every acknowledged batch is in the
//! order exactly once, at contiguous offsets.
//!
//! A `harness = false` test: `main` is the parent unless called as the child.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{
    open_cluster, AppendBatch, ClusterLog, ClusterOptions, FetchRead, RegionSettings,
};
use cxlkafka_sequencer::control::ControlRecord;

const CHILD_FLAG: &str = "--sequencer-holder-child";
const LEASE_TIMEOUT: Duration = Duration::from_millis(300);
const BATCHES: u64 = 3_000;
const KILL_AT: u64 = 1_000;
const RECORDS_PER_BATCH: u32 = 3;

fn settings(path: &std::path::Path) -> RegionSettings {
    RegionSettings {
        path: path.to_path_buf(),
        bytes: 64 << 20,
        max_gateways: 4,
        cluster: "failover".into(),
        non_coherent: false,
    }
}

fn options(node_id: u16) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(node_id),
        advertised_host: "127.0.0.1".into(),
        advertised_port: 19_000 + node_id,
        lease_timeout: LEASE_TIMEOUT,
        data_dir: std::env::temp_dir().join(format!(
            "cxlkafka-failover-{}-{node_id}",
            std::process::id()
        )),
        segment_bytes: 64 << 20,
        region_path: None,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == CHILD_FLAG) {
        // The child joins as node 0 (and so takes the lease) and waits to die.
        let _log =
            open_cluster(&settings(args[position + 1].as_ref()), options(0)).expect("child joins");
        println!("joined");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        println!("sequencer_failover: test");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(parent());
    println!("test sequencer_failover ... ok");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn batch_bytes(number: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[8..16].copy_from_slice(&number.to_le_bytes());
    bytes
}

async fn parent() {
    let dir = tempfile::Builder::new()
        .prefix("cxlkafka-failover")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let path = dir.path().join("region");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .arg(CHILD_FLAG)
            .arg(&path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child gateway"),
    );
    // Wait (bounded) until the child has joined and holds the lease.
    let started = Instant::now();
    while !path.exists() || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "child never created the region"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(LEASE_TIMEOUT).await;
    let log: Arc<dyn ClusterLog> = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || open_cluster(&settings(&path), options(1)))
            .await
            .unwrap()
            .expect("parent joins")
    };
    assert_eq!(log.node_id(), 1);
    let members: Vec<u16> = log.members().iter().map(|m| m.gateway).collect();
    assert_eq!(members, vec![0, 1], "both gateways live");

    let created = log
        .control(
            &ControlRecord::CreateTopic {
                name: "failover".into(),
                partitions: 1,
                topic_id: [5; 16],
                retention_ms: -1,
                retention_bytes: -1,
                configs: String::new(),
                replication_factor: 2,
            },
            Duration::from_secs(10),
        )
        .await
        .expect("the child's sequencer creates the topic");
    assert_eq!(created.error, 0);
    let stream = log
        .topic("failover")
        .expect("topic applied")
        .stream(0)
        .unwrap();

    let mut takeover = None;
    let mut last_sequence = 0;
    for number in 0..BATCHES {
        if number == KILL_AT {
            child.0.kill().expect("SIGKILL the sequencer holder");
            child.0.wait().unwrap();
            takeover = Some(Instant::now());
        }
        let payload = batch_bytes(number);
        let completion = log
            .append(
                AppendBatch {
                    stream,
                    payload: &payload,
                    record_count: RECORDS_PER_BATCH,
                    producer_id: -1,
                    producer_epoch: -1,
                    base_sequence: -1,
                    max_timestamp: 0,
                },
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|error| panic!("batch {number} not acknowledged: {error}"));
        assert_eq!(completion.error, 0);
        assert!(
            completion.global_sequence > last_sequence,
            "one total order"
        );
        last_sequence = completion.global_sequence;
        assert_eq!(
            completion.base_offset,
            (number * u64::from(RECORDS_PER_BATCH)) as i64,
            "offsets neither reused nor skipped across the failover"
        );
        if number == KILL_AT {
            let waited = takeover.unwrap().elapsed();
            println!("sequencer_failover: first batch after SIGKILL acknowledged after {waited:?}");
            assert!(
                waited < Duration::from_secs(5),
                "takeover within a bounded time"
            );
        }
    }
    let members: Vec<u16> = log.members().iter().map(|m| m.gateway).collect();
    assert_eq!(members, vec![1], "the dead gateway left Metadata");

    // Read everything back (once this gateway's index has caught up with
    // the last acknowledgement): each batch once, in order, at its offset.
    assert!(
        log.wait_for_order(last_sequence, Duration::from_secs(5))
            .await
            > last_sequence
    );
    let high_watermark = (BATCHES * u64::from(RECORDS_PER_BATCH)) as i64;
    let mut offset = 0;
    let mut number = 0u64;
    while offset < high_watermark {
        let FetchRead::Batches {
            batches,
            high_watermark: hw,
            ..
        } = log.read(stream, offset, 1 << 20)
        else {
            panic!("offset {offset} out of range");
        };
        assert_eq!(hw, high_watermark);
        assert!(!batches.is_empty());
        for batch in batches {
            assert_eq!(
                i64::from_be_bytes(batch[..8].try_into().unwrap()),
                offset,
                "base offset rewritten"
            );
            assert_eq!(
                u64::from_le_bytes(batch[8..16].try_into().unwrap()),
                number,
                "batch order kept"
            );
            number += 1;
            offset += i64::from(RECORDS_PER_BATCH);
        }
    }
    assert_eq!(number, BATCHES);
    log.shutdown();
}
