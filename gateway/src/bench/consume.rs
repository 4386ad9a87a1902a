//! `cxlkafka bench consume`: a Kafka fetch load generator.
//!
//! It reads what the topic holds when it starts (from each partition's log
//! start to its high watermark, as ListOffsets reports them), optionally
//! only the first `--records`, `--repeat` times over. Each partition's
//! range is split into **lanes**, contiguous offset ranges read one fetch
//! at a time, so that even one partition keeps `--connections` x
//! `--in-flight` fetches in flight: a load generator's pipelining, not a
//! consumer's. A lane owns the batches whose base offset falls in its
//! range, so every batch is counted exactly once however the lanes' reads
//! overlap at their edges (a fetch returns whole batches).
//!
//! Nothing in a batch is decoded past its 61-byte header (base offset,
//! length, record count); `--check-crcs` adds the CRC32C check that Kafka
//! consumers make with `check.crcs`. Latency is per fetch, from sending it
//! to its response, weighted by the records it brought.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use clap::Args;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::report::{self, Counters, Sample, Summary};
use super::wire::{self, Conn, MissingTopic};
use crate::config::ByteSize;
use crate::records::{self, BATCH_HEADER_LEN, LOG_OVERHEAD};

/// Fetch v11: topics by name, the newest before flexible versions.
const FETCH_VERSION: i16 = 11;
/// Where a v2 batch header keeps its last offset delta.
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Where a v2 batch header keeps its record count.
const RECORD_COUNT_AT: usize = 57;
/// Empty answers in a row after which a lane that should have data is
/// reported as stalled (each waits up to `--max-wait-ms`).
const MAX_EMPTY_FETCHES: u32 = 100;

/// Flags of `cxlkafka bench consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeBenchArgs {
    /// Broker to fetch from (host:port).
    #[arg(
        long,
        env = "CXLKAFKA_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_parser = crate::config::parse_socket_addr
    )]
    pub bootstrap: SocketAddr,
    /// Topic to read.
    #[arg(long, env = "CXLKAFKA_BENCH_TOPIC", default_value = "bench")]
    pub topic: String,
    /// Partitions to read (0..N of the topic).
    #[arg(long, env = "CXLKAFKA_BENCH_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// TCP connections.
    #[arg(long, env = "CXLKAFKA_BENCH_CONNECTIONS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// Fetches in flight per connection.
    #[arg(long, env = "CXLKAFKA_BENCH_IN_FLIGHT", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub in_flight: u32,
    /// Records to read in all, spread evenly over the partitions (0 = all
    /// that each partition holds at the start).
    #[arg(long, env = "CXLKAFKA_BENCH_RECORDS", default_value_t = 0)]
    pub records: u64,
    /// Times to read the whole range (a small retained log still makes a
    /// long run).
    #[arg(long, env = "CXLKAFKA_BENCH_REPEAT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Most bytes one fetch response may carry (Kafka's fetch.max.bytes).
    #[arg(long, env = "CXLKAFKA_BENCH_FETCH_MAX_BYTES", default_value_t = ByteSize(4 << 20))]
    pub fetch_max_bytes: ByteSize,
    /// Most bytes per partition in one response (Kafka's
    /// max.partition.fetch.bytes).
    #[arg(long, env = "CXLKAFKA_BENCH_PARTITION_MAX_BYTES", default_value_t = ByteSize(4 << 20))]
    pub partition_max_bytes: ByteSize,
    /// Longest a fetch waits for data on the broker (Kafka's
    /// fetch.max.wait.ms).
    #[arg(long, env = "CXLKAFKA_BENCH_MAX_WAIT_MS", default_value_t = 500,
          value_parser = clap::value_parser!(i32).range(0..=60_000))]
    pub max_wait_ms: i32,
    /// Check every batch's CRC32C (Kafka's check.crcs).
    #[arg(long, env = "CXLKAFKA_BENCH_CHECK_CRCS", default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub check_crcs: bool,
}

impl ConsumeBenchArgs {
    /// Flags with their defaults, reading from `bootstrap`.
    pub fn new(bootstrap: SocketAddr) -> Self {
        Self {
            bootstrap,
            topic: "bench".into(),
            partitions: 1,
            connections: 1,
            in_flight: 4,
            records: 0,
            repeat: 1,
            fetch_max_bytes: ByteSize(4 << 20),
            partition_max_bytes: ByteSize(4 << 20),
            max_wait_ms: 500,
            check_crcs: false,
        }
    }
}

/// A contiguous offset range of one partition, read one fetch at a time.
#[derive(Debug, Clone)]
struct Lane {
    partition: i32,
    /// First offset owned; the partition's first lane also owns a batch
    /// that starts before it (a log start inside a batch).
    start: i64,
    /// First offset not owned.
    end: i64,
    first: bool,
    /// Next offset to fetch.
    next: i64,
    empty_in_a_row: u32,
}

impl Lane {
    fn owns(&self, base_offset: i64) -> bool {
        base_offset < self.end && (self.first || base_offset >= self.start)
    }

    fn done(&self) -> bool {
        self.next >= self.end
    }
}

/// Splits each partition's `[start, end)` into `per_partition` lanes.
fn lanes(ranges: &[(i64, i64)], per_partition: u64) -> Vec<Lane> {
    let mut lanes = Vec::new();
    for (partition, &(start, end)) in ranges.iter().enumerate() {
        let len = u64::try_from(end - start).unwrap_or(0);
        let count = per_partition.clamp(1, len.max(1));
        for lane in 0..count {
            let from = start + i64::try_from(len * lane / count).unwrap_or(0);
            let to = start + i64::try_from(len * (lane + 1) / count).unwrap_or(0);
            if from < to {
                lanes.push(Lane {
                    partition: i32::try_from(partition).unwrap_or(i32::MAX),
                    start: from,
                    end: to,
                    first: lane == 0,
                    next: from,
                    empty_in_a_row: 0,
                });
            }
        }
    }
    lanes
}

/// What one response brought to its lane.
#[derive(Debug, Default, PartialEq, Eq)]
struct Taken {
    records: u64,
    bytes: u64,
}

/// Walks a fetched record set: counts the batches `lane` owns and moves
/// its next offset past every complete batch.
fn take_batches(lane: &mut Lane, mut set: Bytes, check_crcs: bool) -> Result<Taken, String> {
    let mut taken = Taken::default();
    let mut any = false;
    while set.len() >= BATCH_HEADER_LEN {
        let length = i32::from_be_bytes([set[8], set[9], set[10], set[11]]);
        let size = usize::try_from(length).unwrap_or(0) + LOG_OVERHEAD;
        if size < BATCH_HEADER_LEN || size > set.len() {
            // A partial batch at the end (a Kafka broker may send one).
            break;
        }
        let header = &set[..BATCH_HEADER_LEN];
        let base_offset = i64::from_be_bytes(header[..8].try_into().unwrap_or_default());
        let last_delta = i32::from_be_bytes(
            header[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                .try_into()
                .unwrap_or_default(),
        );
        let count = i32::from_be_bytes(
            header[RECORD_COUNT_AT..RECORD_COUNT_AT + 4]
                .try_into()
                .unwrap_or_default(),
        );
        if check_crcs {
            records::validate_batch(&set[..size])
                .map_err(|e| format!("partition {}: {e}", lane.partition))?;
        }
        if lane.owns(base_offset) {
            taken.records += u64::try_from(count).unwrap_or(0);
            taken.bytes += size as u64;
        }
        let after = base_offset + i64::from(last_delta) + 1;
        if after <= lane.next && !any && base_offset > lane.next {
            return Err(format!(
                "partition {}: batch at {base_offset} does not hold the offset fetched ({})",
                lane.partition, lane.next
            ));
        }
        lane.next = lane.next.max(after);
        any = true;
        set.advance(size);
    }
    if any {
        lane.empty_in_a_row = 0;
    } else {
        lane.empty_in_a_row += 1;
        if lane.empty_in_a_row > MAX_EMPTY_FETCHES {
            return Err(format!(
                "partition {}: no data at offset {} after {MAX_EMPTY_FETCHES} fetches",
                lane.partition, lane.next
            ));
        }
    }
    Ok(taken)
}

/// Runs the benchmark, printing a progress line per second and a final
/// line in kafka-producer-perf-test's words; returns the figures.
pub async fn consume(args: ConsumeBenchArgs) -> Result<Summary, String> {
    let mut conn = Conn::connect(args.bootstrap).await?;
    wire::ensure_topic(
        &mut conn,
        &args.topic,
        args.partitions,
        MissingTopic::Refuse,
    )
    .await?;
    let earliest =
        wire::list_offsets(&mut conn, &args.topic, args.partitions, wire::EARLIEST).await?;
    let latest = wire::list_offsets(&mut conn, &args.topic, args.partitions, wire::LATEST).await?;
    drop(conn);
    let share = args
        .records
        .div_ceil(u64::try_from(args.partitions).unwrap_or(1));
    let ranges: Vec<(i64, i64)> = earliest
        .iter()
        .zip(&latest)
        .map(|(&start, &end)| {
            let end = if args.records == 0 {
                end
            } else {
                end.min(start.saturating_add(i64::try_from(share).unwrap_or(i64::MAX)))
            };
            (start, end.max(start))
        })
        .collect();
    let available: i64 = ranges.iter().map(|(start, end)| end - start).sum();
    if available == 0 {
        return Err(format!("topic {} holds no records to read", args.topic));
    }
    let slots = u64::from(args.connections) * u64::from(args.in_flight);
    let per_partition = slots.div_ceil(u64::try_from(args.partitions).unwrap_or(1));
    let all_lanes = lanes(&ranges, per_partition);
    // Deal the lanes out to the connections, round robin.
    let mut per_connection: Vec<Vec<Lane>> = vec![Vec::new(); args.connections as usize];
    for (index, lane) in all_lanes.into_iter().enumerate() {
        per_connection[index % args.connections as usize].push(lane);
    }
    let counters = Arc::new(Counters::default());
    let (sample_tx, sample_rx) = mpsc::unbounded_channel::<Sample>();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lanes in per_connection.into_iter().filter(|lanes| !lanes.is_empty()) {
        let args = args.clone();
        let counters = Arc::clone(&counters);
        let sample_tx = sample_tx.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..args.repeat {
                run_connection(&args, lanes.clone(), &counters, &sample_tx).await?;
            }
            Ok::<(), String>(())
        }));
    }
    drop(sample_tx);
    let mut latencies = report::collect(sample_rx, Arc::clone(&counters), "received").await;
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let summary = Summary {
        records: counters.records.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        latency: latencies.summary(),
    };
    println!("{}", summary.final_line("received"));
    Ok(summary)
}

fn fetch_request(args: &ConsumeBenchArgs, lane: &Lane) -> FetchRequest {
    let to_i32 = |size: ByteSize| i32::try_from(size.0).unwrap_or(i32::MAX);
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(args.max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(to_i32(args.fetch_max_bytes))
        .with_isolation_level(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(args.topic.clone())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(lane.partition)
                .with_fetch_offset(lane.next)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(to_i32(args.partition_max_bytes))])])
}

/// Reads this connection's lanes to their ends, keeping up to
/// `--in-flight` fetches outstanding (one per lane at a time).
async fn run_connection(
    args: &ConsumeBenchArgs,
    mut lanes: Vec<Lane>,
    counters: &Counters,
    samples: &mpsc::UnboundedSender<Sample>,
) -> Result<(), String> {
    let (mut reader, mut writer) = Conn::connect(args.bootstrap).await?.into_split();
    let mut ready: VecDeque<usize> = (0..lanes.len()).collect();
    // (lane, correlation id, sent at), in the order sent = answered.
    let mut outstanding: VecDeque<(usize, i32, Instant)> = VecDeque::new();
    let mut correlation_id = 0i32;
    loop {
        while outstanding.len() < args.in_flight as usize {
            let Some(index) = ready.pop_front() else {
                break;
            };
            correlation_id = correlation_id.wrapping_add(1);
            let request = wire::frame(
                ApiKey::Fetch,
                FETCH_VERSION,
                correlation_id,
                &fetch_request(args, &lanes[index]),
            )?;
            writer
                .write_all(&request)
                .await
                .map_err(|e| format!("cannot send a fetch: {e}"))?;
            outstanding.push_back((index, correlation_id, Instant::now()));
        }
        let Some((index, expected, sent_at)) = outstanding.pop_front() else {
            return Ok(());
        };
        let payload = wire::read_response(&mut reader).await?;
        let response: FetchResponse =
            wire::decode_response(payload, ApiKey::Fetch, FETCH_VERSION, expected)?;
        if response.error_code != 0 {
            return Err(format!("fetch failed with error {}", response.error_code));
        }
        let lane = &mut lanes[index];
        let mut taken = Taken::default();
        for partition in response.responses.iter().flat_map(|t| &t.partitions) {
            if partition.error_code != 0 {
                return Err(format!(
                    "fetch of partition {} at offset {} failed with error {}",
                    partition.partition_index, lane.next, partition.error_code
                ));
            }
            let set = partition.records.clone().unwrap_or_default();
            let got = take_batches(lane, set, args.check_crcs)?;
            taken.records += got.records;
            taken.bytes += got.bytes;
        }
        counters.records.fetch_add(taken.records, Ordering::Relaxed);
        counters.bytes.fetch_add(taken.bytes, Ordering::Relaxed);
        let weight = u32::try_from(taken.records).unwrap_or(u32::MAX).max(1);
        let _ = samples.send((report::micros_since(sent_at), weight));
        if !lane.done() {
            ready.push_back(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// A batch header (no records) at `base` with `count` records and
    /// `body` more bytes.
    fn batch(base: i64, count: i32, body: usize) -> BytesMut {
        let mut out = BytesMut::zeroed(BATCH_HEADER_LEN + body);
        out[..8].copy_from_slice(&base.to_be_bytes());
        let length = i32::try_from(BATCH_HEADER_LEN + body - LOG_OVERHEAD).expect("small");
        out[8..12].copy_from_slice(&length.to_be_bytes());
        out[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&(count - 1).to_be_bytes());
        out[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        out
    }

    #[test]
    fn lanes_tile_each_partition_range() {
        let lanes = lanes(&[(0, 10), (5, 6), (3, 3)], 3);
        let spans: Vec<(i32, i64, i64, bool)> = lanes
            .iter()
            .map(|l| (l.partition, l.start, l.end, l.first))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 0, 3, true),
                (0, 3, 6, false),
                (0, 6, 10, false),
                (1, 5, 6, true)
            ]
        );
    }

    #[test]
    fn a_lane_counts_only_the_batches_it_owns_and_moves_past_all() {
        let mut lane = lanes(&[(0, 40)], 2).remove(1);
        assert_eq!((lane.start, lane.end), (20, 40));
        let mut set = batch(15, 10, 100);
        set.extend_from_slice(&batch(25, 10, 100));
        set.extend_from_slice(&batch(35, 10, 100));
        set.extend_from_slice(&batch(45, 10, 100));
        set.extend_from_slice(&batch(55, 10, 100)[..70]);
        let taken = take_batches(&mut lane, set.freeze(), false).expect("valid");
        assert_eq!(
            taken,
            Taken {
                records: 20,
                bytes: 2 * 161
            }
        );
        assert_eq!(lane.next, 55);
        assert!(lane.done());
    }
}
