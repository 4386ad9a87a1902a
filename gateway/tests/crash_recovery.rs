//! Crash trials with real processes: two `cxlkafka serve` gateways on one
//! region file, each with its own disk tier under one data directory. A
//! client produces with acks=all (replication factor 2: the region and one
//! disk) while gateways — the sequencer holder included — are killed with
//! SIGKILL at seeded random moments and restarted. Afterwards every
//! acknowledged record must be readable, at its acknowledged offset, with
//! its bytes, from every gateway; every fetched batch must pass its CRC (no
//! torn batch is ever served), and no record is stored twice: the producer
//! is idempotent, and retries a batch on the other gateway after a kill.
//!
//! Bounded for CI by default; `bench/soak` runs the long version through
//! the same binary with `CXK_CRASH_TRIALS`, `CXK_CRASH_BYTES` and
//! `CXK_CRASH_SEED`. The last line is "N trials, M acknowledged records
//! lost".

mod common;
mod data_path;

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, FetchResponse, InitProducerIdRequest, InitProducerIdResponse, MetadataResponse,
    ProduceResponse,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{decode_response, request_frame};
use data_path::{batch, fetch_request, metadata_request, produce_request, Idempotent};

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 2;
const RECORDS_PER_BATCH: usize = 16;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A gateway process and how to start it again.
struct Gateway {
    node_id: i32,
    addr: SocketAddr,
    region: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    fn new(node_id: i32, region: &Path, data_dir: &Path) -> Self {
        Self {
            node_id,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            region: region.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            child: None,
        }
    }

    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_cxlkafka"))
            .arg("serve")
            .args(["--listen", &self.addr.to_string()])
            .args(["--node-id", &self.node_id.to_string()])
            .args(["--region-path", &self.region.display().to_string()])
            .args(["--region-size", "64MiB"])
            .args(["--max-gateways", "4"])
            .args(["--data-dir", &self.data_dir.display().to_string()])
            .args(["--segment-bytes", "4MiB"])
            .args(["--lease-timeout-ms", "300"])
            .args(["--default-partitions", &PARTITIONS.to_string()])
            .args(["--log-level", "warn"])
            .arg("--no-metrics")
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cxlkafka serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "gateway {} never listened",
                self.node_id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: a clean stop.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request/response over a fresh or kept connection; any failure
/// (refused, reset, timeout) is an `Err` the caller retries elsewhere.
struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|error| error.to_string())?;
        Ok(Self { stream, next_id: 1 })
    }

    /// Writes a request without waiting for its response.
    async fn send_only<Req: kafka_protocol::protocol::Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> std::io::Result<()> {
        self.next_id += 1;
        let frame = request_frame(key, version, version, self.next_id, body);
        self.stream.write_all(&frame).await
    }

    async fn call<Req, Resp>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, String>
    where
        Req: kafka_protocol::protocol::Encodable,
        Resp: kafka_protocol::protocol::Decodable,
    {
        self.next_id += 1;
        let frame = request_frame(key, version, version, self.next_id, body);
        let exchange = async {
            self.stream.write_all(&frame).await?;
            let mut prefix = [0u8; 4];
            self.stream.read_exact(&mut prefix).await?;
            let mut payload = vec![0u8; i32::from_be_bytes(prefix).max(0) as usize];
            self.stream.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>(Bytes::from(payload))
        };
        let payload = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| "call timed out".to_string())?
            .map_err(|error| error.to_string())?;
        Ok(decode_response(payload, key, version, version).1)
    }
}

fn value(trial: u64, index: usize, record: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!("t{trial}-b{index}-r{record}-").into_bytes();
    bytes.resize(size.max(bytes.len()), b'a' + (index % 26) as u8);
    bytes
}

/// Kafka v2 batches: the CRC32C at bytes 17..21 covers everything from 21.
fn assert_crcs(mut bytes: &[u8]) {
    while bytes.len() >= 12 {
        let length = i32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize + 12;
        assert!(
            length <= bytes.len() || length > 61,
            "a whole batch or a cut-off tail"
        );
        if length > bytes.len() {
            return; // fetch responses may end in a partial batch
        }
        let stored = u32::from_be_bytes(bytes[17..21].try_into().unwrap());
        assert_eq!(
            crc32c::crc32c(&bytes[21..length]),
            stored,
            "a torn batch was served"
        );
        bytes = &bytes[length..];
    }
}

/// Everything readable from `addr` for one partition: offset → value.
async fn read_partition(addr: SocketAddr, partition: i32) -> BTreeMap<i64, Bytes> {
    let mut records = BTreeMap::new();
    let mut conn = Conn::open(addr).await.expect("connect for the check");
    let mut offset = 0i64;
    loop {
        let response: FetchResponse = conn
            .call(
                ApiKey::Fetch,
                11,
                &fetch_request(TOPIC, partition, offset, 0, 1),
            )
            .await
            .expect("fetch");
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch at {offset}");
        let bytes = data.records.clone().unwrap_or_default();
        assert_crcs(&bytes);
        let decoded = data_path::decode_records(&bytes);
        let Some(last) = decoded.last().map(|(offset, _, _)| *offset) else {
            assert_eq!(
                offset, data.high_watermark,
                "no gap before the high watermark"
            );
            return records;
        };
        for (record_offset, _, value) in decoded {
            records.insert(record_offset, value);
        }
        offset = last + 1;
    }
}

/// What one trial found.
struct TrialOutcome {
    acknowledged: usize,
    /// Acknowledged records missing or different on some gateway.
    lost: usize,
    /// Records stored at more than one offset on some gateway.
    duplicated: usize,
}

/// One trial.
async fn trial(seed: u64, trial: u64, target_bytes: u64) -> TrialOutcome {
    let mut rng = SmallRng::seed_from_u64(seed ^ (trial * 0x9E37_79B9));
    let dir = tempfile::Builder::new()
        .prefix("cxlkafka-crash-")
        .tempdir()
        .expect("temp dir");
    let region = dir.path().join("region");
    let data = dir.path().join("data");
    let mut gateways = [
        Gateway::new(0, &region, &data),
        Gateway::new(1, &region, &data),
    ];
    gateways[0].start();
    gateways[1].start();
    {
        let mut conn = Conn::open(gateways[0].addr).await.expect("connect");
        let created: MetadataResponse = conn
            .call(ApiKey::Metadata, 12, &metadata_request(&[TOPIC]))
            .await
            .expect("metadata");
        assert_eq!(created.topics[0].error_code, 0, "topic auto-created");
    }
    // An idempotent producer: a batch retried on the other gateway after a
    // kill carries the same sequence, so it is stored once.
    let (producer_id, epoch) = {
        let mut conn = Conn::open(gateways[0].addr).await.expect("connect");
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = None;
        let response: InitProducerIdResponse = conn
            .call(ApiKey::InitProducerId, 4, &request)
            .await
            .expect("init producer id");
        assert_eq!(response.error_code, 0, "InitProducerId");
        (response.producer_id.0, response.producer_epoch)
    };
    let mut next_sequence = [0i32; PARTITIONS as usize];
    let record_size = 1024;
    let batch_bytes = (RECORDS_PER_BATCH * record_size) as u64;
    let batches = (target_bytes / batch_bytes).max(20) as usize;
    let kills: Vec<usize> = {
        let mut at: Vec<usize> = (0..3).map(|_| rng.gen_range(1..batches)).collect();
        at.sort_unstable();
        at
    };
    // (partition, offset) → value of every acknowledged record.
    let mut acknowledged: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    let mut conns: [Option<Conn>; 2] = [None, None];
    let mut next_kill = kills.iter().peekable();
    for index in 0..batches {
        let kill_now = next_kill.peek().is_some_and(|&&at| at == index);
        if kill_now {
            next_kill.next();
        }
        let partition = (index % PARTITIONS as usize) as i32;
        let values: Vec<Vec<u8>> = (0..RECORDS_PER_BATCH)
            .map(|record| value(trial, index, record, record_size))
            .collect();
        let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        // Timestamps of now: the gateways' retention task (default
        // retention.ms, 7 days) would rightly delete older ones during a
        // trial longer than its 5-minute interval.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_millis() as i64;
        let records = batch(
            &refs,
            now_ms,
            Some(Idempotent {
                producer_id,
                epoch,
                base_sequence: next_sequence[partition as usize],
            }),
        );
        let mut target = index % 2;
        if kill_now {
            // The kill lands while this batch's request is in flight on the
            // victim: the batch may be ordered there or not, and the retry
            // below on the other gateway carries the same sequence.
            let victim = rng.gen_range(0..2);
            if conns[victim].is_none() {
                conns[victim] = Conn::open(gateways[victim].addr).await.ok();
            }
            if let Some(conn) = conns[victim].as_mut() {
                let request = produce_request(TOPIC, partition, records.clone(), -1);
                let _ = conn.send_only(ApiKey::Produce, 9, &request).await;
                tokio::time::sleep(Duration::from_micros(rng.gen_range(0..3_000))).await;
            }
            gateways[victim].kill();
            conns[victim] = None;
            if rng.gen_bool(0.5) {
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
            }
            gateways[victim].start();
            target = 1 - victim;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "batch {index} never acknowledged"
            );
            if conns[target].is_none() {
                conns[target] = Conn::open(gateways[target].addr).await.ok();
            }
            let answer = match conns[target].as_mut() {
                None => Err("no connection".to_string()),
                Some(conn) => conn
                    .call::<_, ProduceResponse>(
                        ApiKey::Produce,
                        9,
                        &produce_request(TOPIC, partition, records.clone(), -1),
                    )
                    .await
                    .map(|response| {
                        let answer = &response.responses[0].partition_responses[0];
                        (answer.error_code, answer.base_offset)
                    }),
            };
            match answer {
                Ok((0, base_offset)) => {
                    for (record, value) in values.into_iter().enumerate() {
                        acknowledged.insert((partition, base_offset + record as i64), value);
                    }
                    next_sequence[partition as usize] += RECORDS_PER_BATCH as i32;
                    break;
                }
                // A retriable error, or the gateway died: try the other one.
                Ok(_) | Err(_) => {
                    conns[target] = None;
                    target = 1 - target;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    drop(conns);
    // Restart one gateway cleanly, so both a recovered and a restarted
    // process are read from.
    gateways[1].stop();
    gateways[1].start();
    let mut lost = 0usize;
    let mut duplicated = 0usize;
    for gateway in &gateways {
        for partition in 0..PARTITIONS {
            let stored = read_partition(gateway.addr, partition).await;
            // Every value is unique to its (trial, batch, record).
            let mut seen = HashSet::new();
            for (offset, value) in &stored {
                if !seen.insert(value.clone()) {
                    duplicated += 1;
                    eprintln!(
                        "gateway {}: record at {partition}/{offset} stored twice",
                        gateway.node_id
                    );
                }
            }
            for ((p, offset), value) in acknowledged.range((partition, 0)..(partition + 1, 0)) {
                debug_assert_eq!(*p, partition);
                if stored.get(offset).map(|bytes| &bytes[..]) != Some(value.as_slice()) {
                    lost += 1;
                    eprintln!(
                        "gateway {}: record at {partition}/{offset} acknowledged but {}",
                        gateway.node_id,
                        if stored.contains_key(offset) {
                            "different"
                        } else {
                            "missing"
                        }
                    );
                }
            }
        }
    }
    for gateway in &mut gateways {
        gateway.stop();
    }
    TrialOutcome {
        acknowledged: acknowledged.len(),
        lost,
        duplicated,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_gateways_killed_during_acks_all_production() {
    let trials = env_u64("CXK_CRASH_TRIALS", 2);
    let target_bytes = env_u64("CXK_CRASH_BYTES", 32 << 20);
    let seed = env_u64("CXK_CRASH_SEED", 20_261_128);
    // To re-run one trial of a soak: CXK_CRASH_FIRST=18 CXK_CRASH_TRIALS=1.
    let first = env_u64("CXK_CRASH_FIRST", 0);
    let (mut total_lost, mut total_duplicated) = (0, 0);
    for number in first..first + trials {
        let outcome = trial(seed, number, target_bytes).await;
        eprintln!(
            "trial {number}: {} records acknowledged, {} lost, {} duplicated",
            outcome.acknowledged, outcome.lost, outcome.duplicated
        );
        total_lost += outcome.lost;
        total_duplicated += outcome.duplicated;
    }
    eprintln!("{trials} trials, {total_duplicated} records duplicated");
    eprintln!("{trials} trials, {total_lost} acknowledged records lost");
    assert_eq!(total_lost, 0);
    assert_eq!(total_duplicated, 0);
}
