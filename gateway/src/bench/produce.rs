//! `cxlkafka bench produce`: a Kafka producer load generator.
//!
//! Several connections, pipelined requests (up to `--in-flight` per
//! connection, answered in order), and one record batch encoded before the
//! run and reused for every request (a second, shorter one ends the run on
//! the exact record count): the client spends its time on the network, not
//! on encoding. Each request frame is prebuilt per partition; only its
//! correlation id changes, sent as a separate 12-byte head with a vectored
//! write, so the batch bytes are never copied in the client.
//!
//! Latency is per record, from sending the request that carries it to its
//! acknowledgement, as kafka-producer-perf-test measures it. Record values
//! are random capital letters, as kafka-producer-perf-test makes them, so
//! `--compression` compresses something realistic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use clap::{Args, ValueEnum};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::report::{self, Counters, Sample, Summary};
use super::wire::{self, Conn, MissingTopic, CORRELATION_ID_AT};
use crate::config::ByteSize;

/// Produce v7: the newest before flexible versions, zstd allowed.
const PRODUCE_VERSION: i16 = 7;

/// Record batch compression, as Kafka's `compression.type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Uncompressed.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(arg: CompressionArg) -> Self {
        match arg {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// Flags of `cxlkafka bench produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceBenchArgs {
    /// Broker to produce to (host:port).
    #[arg(
        long,
        env = "CXLKAFKA_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_parser = crate::config::parse_socket_addr
    )]
    pub bootstrap: SocketAddr,
    /// Topic (auto-created through Metadata when the broker allows it).
    #[arg(long, env = "CXLKAFKA_BENCH_TOPIC", default_value = "bench")]
    pub topic: String,
    /// Bytes per record value.
    #[arg(long, env = "CXLKAFKA_BENCH_RECORD_SIZE", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub record_size: u32,
    /// Records to send in all (ignored when --bytes is given).
    #[arg(long, env = "CXLKAFKA_BENCH_RECORDS", default_value_t = 1_000_000)]
    pub records: u64,
    /// Record value bytes to send in all, e.g. 100MB or 10GB (rounded up to
    /// whole records); overrides --records.
    #[arg(long, env = "CXLKAFKA_BENCH_BYTES")]
    pub bytes: Option<ByteSize>,
    /// Bytes of record values per batch (one batch per request).
    #[arg(long, env = "CXLKAFKA_BENCH_BATCH_BYTES", default_value_t = ByteSize(256 * 1024))]
    pub batch_bytes: ByteSize,
    /// acks: 0, 1 or -1 (all).
    #[arg(long, env = "CXLKAFKA_BENCH_ACKS", default_value_t = -1, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i16).range(-1..=1))]
    pub acks: i16,
    /// Partitions to spread batches over (0..N of the topic).
    #[arg(long, env = "CXLKAFKA_BENCH_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// TCP connections.
    #[arg(long, env = "CXLKAFKA_BENCH_CONNECTIONS", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    /// Requests in flight per connection.
    #[arg(long, env = "CXLKAFKA_BENCH_IN_FLIGHT", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub in_flight: u32,
    /// Cap on records per second in all (0 = none).
    #[arg(long, env = "CXLKAFKA_BENCH_THROUGHPUT", default_value_t = 0)]
    pub throughput: u64,
    /// Compression of the record batches.
    #[arg(long, env = "CXLKAFKA_BENCH_COMPRESSION", value_enum,
          default_value_t = CompressionArg::None)]
    pub compression: CompressionArg,
}

impl ProduceBenchArgs {
    /// Flags with their defaults, sending to `bootstrap`.
    pub fn new(bootstrap: SocketAddr) -> Self {
        Self {
            bootstrap,
            topic: "bench".into(),
            record_size: 1024,
            records: 1_000_000,
            bytes: None,
            batch_bytes: ByteSize(256 * 1024),
            acks: -1,
            partitions: 1,
            connections: 1,
            in_flight: 5,
            throughput: 0,
            compression: CompressionArg::None,
        }
    }

    /// Records the run sends.
    pub fn total_records(&self) -> u64 {
        match self.bytes {
            Some(bytes) => bytes.0.div_ceil(u64::from(self.record_size)),
            None => self.records,
        }
    }

    /// Records per full batch.
    fn per_batch(&self) -> u32 {
        let per = self.batch_bytes.0 / u64::from(self.record_size);
        u32::try_from(per.max(1)).unwrap_or(u32::MAX)
    }
}

/// Random capital letters, as kafka-producer-perf-test fills its payloads
/// (xorshift; the same every run).
fn payload_pool(len: usize) -> Bytes {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// One record batch of `count` records, values drawn from `pool`.
fn encode_batch(
    count: u32,
    record_size: usize,
    pool: &Bytes,
    compression: Compression,
) -> Result<Bytes, String> {
    let values = (0..count as usize).map(|index| {
        let start = index % (pool.len() - record_size + 1);
        (None, pool.slice(start..start + record_size))
    });
    wire::plain_batch(values, compression)
}

/// Prebuilt request frames: one per partition, for a full batch and for
/// the shorter last one.
struct Frames {
    full: Vec<Bytes>,
    last: Vec<Bytes>,
}

fn request_frames(args: &ProduceBenchArgs, full: &Bytes, last: &Bytes) -> Result<Frames, String> {
    let build = |batch: &Bytes| -> Result<Vec<Bytes>, String> {
        (0..args.partitions)
            .map(|partition| {
                let request = ProduceRequest::default()
                    .with_acks(args.acks)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.clone()))])]);
                wire::frame(ApiKey::Produce, PRODUCE_VERSION, 0, &request).map(BytesMut::freeze)
            })
            .collect()
    };
    Ok(Frames {
        full: build(full)?,
        last: build(last)?,
    })
}

/// What every connection task shares.
struct Shared {
    args: ProduceBenchArgs,
    frames: Frames,
    per_batch: u32,
    last_batch: u32,
    requests: u64,
    next_request: AtomicU64,
    counters: Arc<Counters>,
    started: Instant,
}

/// Runs the benchmark, printing a progress line per second and
/// kafka-producer-perf-test's final line; returns the figures.
pub async fn produce(args: ProduceBenchArgs) -> Result<Summary, String> {
    let total = args.total_records();
    if total == 0 {
        return Err("nothing to send: --records or --bytes is 0".into());
    }
    let mut conn = Conn::connect(args.bootstrap).await?;
    wire::ensure_topic(
        &mut conn,
        &args.topic,
        args.partitions,
        MissingTopic::Create,
    )
    .await?;
    drop(conn);
    let record_size = args.record_size as usize;
    let per_batch = u32::try_from(u64::from(args.per_batch()).min(total)).unwrap_or(u32::MAX);
    let pool = payload_pool(record_size + per_batch as usize);
    let compression = Compression::from(args.compression);
    let requests = total.div_ceil(u64::from(per_batch));
    let last_batch = u32::try_from(total - (requests - 1) * u64::from(per_batch))
        .map_err(|_| "batch too large".to_string())?;
    let full = encode_batch(per_batch, record_size, &pool, compression)?;
    let last = if last_batch == per_batch {
        full.clone()
    } else {
        encode_batch(last_batch, record_size, &pool, compression)?
    };
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        frames: request_frames(&args, &full, &last)?,
        args: args.clone(),
        per_batch,
        last_batch,
        requests,
        next_request: AtomicU64::new(0),
        counters: Arc::clone(&counters),
        started: Instant::now(),
    });
    let (sample_tx, sample_rx) = mpsc::unbounded_channel::<Sample>();
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let shared = Arc::clone(&shared);
        let sample_tx = sample_tx.clone();
        tasks.push(tokio::spawn(async move {
            run_connection(connection as usize, shared, sample_tx).await
        }));
    }
    drop(sample_tx);
    let mut latencies = report::collect(sample_rx, Arc::clone(&counters), "sent").await;
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let summary = Summary {
        records: counters.records.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        seconds: shared.started.elapsed().as_secs_f64(),
        latency: latencies.summary(),
    };
    println!("{}", summary.final_line("sent"));
    Ok(summary)
}

async fn run_connection(
    connection: usize,
    shared: Arc<Shared>,
    samples: mpsc::UnboundedSender<Sample>,
) -> Result<(), String> {
    let args = &shared.args;
    let (mut reader, mut writer) = Conn::connect(args.bootstrap).await?.into_split();
    // The reader holds one sent request while it waits for its answer, so a
    // channel of in_flight - 1 keeps at most in_flight unanswered.
    let (sent_tx, mut sent_rx) =
        mpsc::channel::<(Instant, u32, i32)>((args.in_flight as usize).saturating_sub(1).max(1));
    let acks = args.acks;
    let record_size = u64::from(args.record_size);
    let counters = Arc::clone(&shared.counters);
    let reader_task = tokio::spawn(async move {
        while let Some((sent_at, records, correlation_id)) = sent_rx.recv().await {
            if acks != 0 {
                let payload = wire::read_response(&mut reader).await?;
                let response: ProduceResponse = wire::decode_response(
                    payload,
                    ApiKey::Produce,
                    PRODUCE_VERSION,
                    correlation_id,
                )?;
                let errors: Vec<i16> = response
                    .responses
                    .iter()
                    .flat_map(|topic| topic.partition_responses.iter().map(|p| p.error_code))
                    .filter(|&code| code != 0)
                    .collect();
                if !errors.is_empty() {
                    return Err(format!("produce failed with error codes {errors:?}"));
                }
            }
            let _ = samples.send((report::micros_since(sent_at), records));
            counters
                .records
                .fetch_add(u64::from(records), Ordering::Relaxed);
            counters
                .bytes
                .fetch_add(u64::from(records) * record_size, Ordering::Relaxed);
        }
        Ok::<(), String>(())
    });
    let mut correlation_id = 0i32;
    loop {
        let request = shared.next_request.fetch_add(1, Ordering::Relaxed);
        if request >= shared.requests {
            break;
        }
        if args.throughput > 0 {
            // Pace to the cap: request n leaves no earlier than n*batch/cap.
            let due = Duration::from_secs_f64(
                request as f64 * f64::from(shared.per_batch) / args.throughput as f64,
            );
            tokio::time::sleep_until((shared.started + due).into()).await;
        }
        let partition = (request as usize + connection) % args.partitions as usize;
        let (frames, records) = if request + 1 == shared.requests {
            (&shared.frames.last, shared.last_batch)
        } else {
            (&shared.frames.full, shared.per_batch)
        };
        let frame = &frames[partition];
        correlation_id = correlation_id.wrapping_add(1);
        let mut head = [0u8; CORRELATION_ID_AT + 4];
        head.copy_from_slice(&frame[..CORRELATION_ID_AT + 4]);
        head[CORRELATION_ID_AT..].copy_from_slice(&correlation_id.to_be_bytes());
        let mut out = (&head[..]).chain(frame.slice(CORRELATION_ID_AT + 4..));
        let sent_at = Instant::now();
        let sent = match writer.write_all_buf(&mut out).await {
            Ok(()) => sent_tx
                .send((sent_at, records, correlation_id))
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            // The reader stopped: its error says why.
            break;
        }
    }
    drop(sent_tx);
    reader_task.await.map_err(|e| e.to_string())?
}
