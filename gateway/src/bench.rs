//! `cxlkafka bench produce`: a Kafka producer load generator that prints
//! what kafka-producer-perf-test prints, so figures compare with the Kafka
//! world's. Several connections, pipelined requests (up to `--in-flight`
//! per connection, answered in order), one prebuilt record batch reused for
//! every request: the client spends its time on the network, not on
//! encoding.
//!
//! Latency is per record, from sending the request that carries it to its
//! acknowledgement, as kafka-producer-perf-test measures it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::Args;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const PRODUCE_VERSION: i16 = 7;
const METADATA_VERSION: i16 = 4;

/// Flags of `cxlkafka bench produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceBenchArgs {
    /// Broker to produce to (host:port).
    #[arg(
        long,
        env = "CXLKAFKA_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: SocketAddr,
    /// Topic (auto-created through Metadata when the broker allows it).
    #[arg(long, env = "CXLKAFKA_BENCH_TOPIC", default_value = "bench")]
    pub topic: String,
    /// Bytes per record value.
    #[arg(long, env = "CXLKAFKA_BENCH_RECORD_SIZE", default_value_t = 1024)]
    pub record_size: usize,
    /// Records to send in all.
    #[arg(long, env = "CXLKAFKA_BENCH_RECORDS", default_value_t = 1_000_000)]
    pub records: u64,
    /// Bytes of records per batch (one batch per request).
    #[arg(long, env = "CXLKAFKA_BENCH_BATCH_BYTES", default_value_t = 256 * 1024)]
    pub batch_bytes: usize,
    /// acks: 0, 1 or -1 (all).
    #[arg(long, env = "CXLKAFKA_BENCH_ACKS", default_value_t = -1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Partitions to spread batches over (0..N of the topic).
    #[arg(long, env = "CXLKAFKA_BENCH_PARTITIONS", default_value_t = 1)]
    pub partitions: i32,
    /// TCP connections.
    #[arg(long, env = "CXLKAFKA_BENCH_CONNECTIONS", default_value_t = 1)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, env = "CXLKAFKA_BENCH_IN_FLIGHT", default_value_t = 5)]
    pub in_flight: usize,
    /// Cap on records per second in all (0 = none).
    #[arg(long, env = "CXLKAFKA_BENCH_THROUGHPUT", default_value_t = 0)]
    pub throughput: u64,
}

/// Per-request latencies, weighted by the records each carried.
#[derive(Default)]
struct Latencies {
    samples: Vec<(u32, u32)>,
}

impl Latencies {
    fn record(&mut self, micros: u32, records: u32) {
        self.samples.push((micros, records));
    }

    /// (avg ms, max ms, [p50, p95, p99, p99.9] ms)
    fn summary(&mut self) -> (f64, f64, [f64; 4]) {
        self.samples.sort_unstable();
        let total: u64 = self.samples.iter().map(|&(_, n)| u64::from(n)).sum();
        if total == 0 {
            return (0.0, 0.0, [0.0; 4]);
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|&(us, n)| f64::from(us) * f64::from(n))
            .sum();
        let max = self.samples.last().map_or(0, |&(us, _)| us);
        let quantile = |q: f64| {
            let target = (q * total as f64).ceil() as u64;
            let mut seen = 0u64;
            for &(us, n) in &self.samples {
                seen += u64::from(n);
                if seen >= target {
                    return f64::from(us) / 1000.0;
                }
            }
            f64::from(max) / 1000.0
        };
        (
            sum / total as f64 / 1000.0,
            f64::from(max) / 1000.0,
            [
                quantile(0.5),
                quantile(0.95),
                quantile(0.99),
                quantile(0.999),
            ],
        )
    }
}

fn frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Encodable,
) -> Result<Bytes, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("cxlkafka-bench")));
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, api.request_header_version(version))
        .map_err(|e| e.to_string())?;
    body.encode(&mut payload, version)
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(payload.len() + 4);
    out.put_i32(payload.len() as i32);
    out.put_slice(&payload);
    Ok(out.freeze())
}

async fn read_frame(stream: &mut tokio::net::tcp::OwnedReadHalf) -> Result<Bytes, String> {
    let size = stream
        .read_i32()
        .await
        .map_err(|e| format!("connection closed: {e}"))?;
    let size = usize::try_from(size).map_err(|_| "negative frame size".to_string())?;
    let mut payload = vec![0u8; size];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Bytes::from(payload))
}

fn prebuilt_batch(args: &ProduceBenchArgs) -> Result<(Bytes, u32), String> {
    let count = (args.batch_bytes / args.record_size.max(1)).max(1);
    let value = Bytes::from(vec![b'x'; args.record_size]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let records: Vec<Record> = (0..count)
        .map(|index| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // The encoder keeps records in one batch while offset - sequence
            // stays constant; the first record's -1 is the batch's "no
            // sequence".
            sequence: index as i32 - 1,
            timestamp: now,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options).map_err(|e| e.to_string())?;
    Ok((buffer.freeze(), count as u32))
}

async fn ensure_topic(args: &ProduceBenchArgs) -> Result<(), String> {
    let mut stream = TcpStream::connect(args.bootstrap)
        .await
        .map_err(|e| e.to_string())?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(args.topic.clone())),
        ))]))
        .with_allow_auto_topic_creation(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        stream
            .write_all(&frame(ApiKey::Metadata, METADATA_VERSION, 0, &request)?)
            .await
            .map_err(|e| e.to_string())?;
        let size = stream.read_i32().await.map_err(|e| e.to_string())? as usize;
        let mut payload = vec![0u8; size];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|e| e.to_string())?;
        let mut bytes = Bytes::from(payload);
        ResponseHeader::decode(
            &mut bytes,
            ApiKey::Metadata.response_header_version(METADATA_VERSION),
        )
        .map_err(|e| e.to_string())?;
        let response =
            MetadataResponse::decode(&mut bytes, METADATA_VERSION).map_err(|e| e.to_string())?;
        let ready = response.topics.first().is_some_and(|topic| {
            topic.error_code == 0 && topic.partitions.len() as i32 >= args.partitions
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "topic {} not available with {} partitions",
                args.topic, args.partitions
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the benchmark and prints its progress and final line.
pub async fn produce(args: ProduceBenchArgs) -> Result<(), String> {
    if args.record_size == 0 || args.connections == 0 || args.in_flight == 0 || args.partitions <= 0
    {
        return Err("record size, connections, in-flight and partitions must be positive".into());
    }
    ensure_topic(&args).await?;
    let (batch, per_batch) = prebuilt_batch(&args)?;
    let requests_total = args.records.div_ceil(u64::from(per_batch));
    let next_request = Arc::new(AtomicU64::new(0));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let (latency_tx, mut latency_rx) = mpsc::unbounded_channel::<(u32, u32)>();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let args = args.clone();
        let batch = batch.clone();
        let next_request = Arc::clone(&next_request);
        let acknowledged = Arc::clone(&acknowledged);
        let latency_tx = latency_tx.clone();
        tasks.push(tokio::spawn(async move {
            run_connection(
                connection,
                args,
                batch,
                per_batch,
                requests_total,
                next_request,
                acknowledged,
                latency_tx,
                started,
            )
            .await
        }));
    }
    drop(latency_tx);
    let mut latencies = Latencies::default();
    let mut window = Latencies::default();
    let mut last_report = Instant::now();
    let mut last_acked = 0u64;
    loop {
        tokio::select! {
            sample = latency_rx.recv() => match sample {
                Some((micros, records)) => {
                    latencies.record(micros, records);
                    window.record(micros, records);
                }
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            let acked = acknowledged.load(Ordering::Relaxed);
            let seconds = last_report.elapsed().as_secs_f64();
            let (avg, max, _) = window.summary();
            let rate = (acked - last_acked) as f64 / seconds;
            println!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                acked - last_acked,
                rate,
                rate * args.record_size as f64 / (1024.0 * 1024.0),
                avg,
                max
            );
            window = Latencies::default();
            last_acked = acked;
            last_report = Instant::now();
        }
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let acked = acknowledged.load(Ordering::Relaxed);
    let (avg, max, [p50, p95, p99, p999]) = latencies.summary();
    let rate = acked as f64 / elapsed;
    println!(
        "{acked} records sent, {rate:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, {max:.2} ms max latency, {p50:.0} ms 50th, {p95:.0} ms 95th, {p99:.0} ms 99th, {p999:.0} ms 99.9th.",
        rate * args.record_size as f64 / (1024.0 * 1024.0),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_connection(
    connection: usize,
    args: ProduceBenchArgs,
    batch: Bytes,
    per_batch: u32,
    requests_total: u64,
    next_request: Arc<AtomicU64>,
    acknowledged: Arc<AtomicU64>,
    latency_tx: mpsc::UnboundedSender<(u32, u32)>,
    started: Instant,
) -> Result<(), String> {
    let stream = TcpStream::connect(args.bootstrap)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    // The reader holds one sent request while it waits for its answer, so a
    // channel of in_flight - 1 keeps at most in_flight unanswered.
    let (sent_tx, mut sent_rx) =
        mpsc::channel::<(Instant, u32)>(args.in_flight.saturating_sub(1).max(1));
    let acks = args.acks;
    let reader_task = tokio::spawn(async move {
        while let Some((sent_at, records)) = sent_rx.recv().await {
            if acks != 0 {
                let mut payload = read_frame(&mut reader).await?;
                ResponseHeader::decode(
                    &mut payload,
                    ApiKey::Produce.response_header_version(PRODUCE_VERSION),
                )
                .map_err(|e| e.to_string())?;
                let response = ProduceResponse::decode(&mut payload, PRODUCE_VERSION)
                    .map_err(|e| e.to_string())?;
                let errors: Vec<i16> = response
                    .responses
                    .iter()
                    .flat_map(|topic| topic.partition_responses.iter().map(|p| p.error_code))
                    .filter(|&code| code != 0)
                    .collect();
                if !errors.is_empty() || payload.has_remaining() {
                    return Err(format!("produce failed with error codes {errors:?}"));
                }
            }
            let micros = u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
            let _ = latency_tx.send((micros, records));
            acknowledged.fetch_add(u64::from(records), Ordering::Relaxed);
        }
        Ok::<(), String>(())
    });
    let mut correlation_id = 0i32;
    loop {
        let request_number = next_request.fetch_add(1, Ordering::Relaxed);
        if request_number >= requests_total {
            break;
        }
        if args.throughput > 0 {
            // Pace to the cap: request n leaves no earlier than n*batch/cap.
            let due = Duration::from_secs_f64(
                request_number as f64 * f64::from(per_batch) / args.throughput as f64,
            );
            tokio::time::sleep_until((started + due).into()).await;
        }
        let partition = ((request_number as usize + connection) % args.partitions as usize) as i32;
        let request = ProduceRequest::default()
            .with_acks(args.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.clone()))])]);
        correlation_id = correlation_id.wrapping_add(1);
        let bytes = frame(ApiKey::Produce, PRODUCE_VERSION, correlation_id, &request)?;
        let sent_at = Instant::now();
        let sent = match writer.write_all(&bytes).await {
            Ok(()) => sent_tx.send((sent_at, per_batch)).await.is_ok(),
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
