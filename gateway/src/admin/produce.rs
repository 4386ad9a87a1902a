//! `cxlkafka topic produce`: each line of stdin becomes a record, sent in
//! v2 record batches (CRC32C) to each partition's leader.
//!
//! Partitioning follows the Java client's default partitioner so keyed
//! records land where every other Kafka client would put them:
//! `toPositive(murmur2(key)) % partitions` ([`murmur2`],
//! [`partition_for_key`]). Unkeyed records go in batches, each batch to
//! the next partition in turn (as the sticky partitioner spreads them),
//! starting from a partition picked by the clock so that many short runs
//! do not all land on partition 0.

use std::collections::BTreeMap;
use std::io::BufRead;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use super::client::AdminError;
use super::layout::{self, Topic};
use super::output::{obj, Json};
use super::{CommonArgs, Format, Status};

/// Produce: v3 is the first with v2 record batches (and the oldest Kafka
/// 4 accepts); v9 is the newest that names topics (v13 uses ids).
const PRODUCE: (i16, i16) = (3, 9);
/// A partition's records are sent once it holds this many...
const BATCH_RECORDS: usize = 1000;
/// ...or this many bytes of keys and values (well under Kafka's default
/// 1 MiB `message.max.bytes`).
const BATCH_BYTES: usize = 512 * 1024;

/// Sends of one batch while its partition's leader moves...
const LEADER_RETRIES: u32 = 5;
/// ...and the wait before asking Metadata where it went.
const LEADER_BACKOFF: std::time::Duration = std::time::Duration::from_millis(300);

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// Every in-sync replica has the records.
    All,
    /// The leader has them.
    #[value(name = "1")]
    Leader,
    /// No answer at all.
    #[value(name = "0")]
    None,
}

impl Acks {
    fn code(self) -> i16 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
            Acks::None => 0,
        }
    }
}

/// Flags of `topic produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// The topic to produce to.
    pub name: String,
    /// Split each line at the first SEP into key and value (a line without
    /// it is an unkeyed value).
    #[arg(
        short = 'K',
        long,
        env = "CXLKAFKA_TOPIC_KEY_SEPARATOR",
        value_name = "SEP",
        value_parser = non_empty
    )]
    pub key_separator: Option<String>,
    /// Send every record to this partition instead of partitioning.
    #[arg(long, env = "CXLKAFKA_TOPIC_PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Acknowledgement to wait for: all, 1 or 0.
    #[arg(long, env = "CXLKAFKA_TOPIC_ACKS", value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Bootstrap, timeout and output flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed 0x9747b28c, the
/// Java client's key hash (returned as Java's signed int).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    // Java hashes `int length`: keys past 2 GiB cannot occur on the wire.
    let mut h = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java's switch falls through from case 3 to case 1.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's partition for a keyed record:
/// `Utils.toPositive(murmur2(key)) % partitions`, where `toPositive`
/// clears the sign bit (it is not `abs`).
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Splits a line into key and value at the first `separator` (bytes: a
/// line need not be UTF-8).
pub fn split_line<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let at = separator.filter(|sep| !sep.is_empty()).and_then(|sep| {
        line.windows(sep.len())
            .position(|window| window == sep)
            .map(|at| (at, sep.len()))
    });
    match at {
        Some((at, length)) => (Some(&line[..at]), &line[at + length..]),
        None => (None, line),
    }
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("the separator must not be empty".into())
    } else {
        Ok(text.to_owned())
    }
}

/// Records waiting for one partition.
#[derive(Default)]
struct Pending {
    records: Vec<(Option<Bytes>, Bytes)>,
    bytes: usize,
}

/// Where records go and what was sent.
struct Producer {
    admin: super::client::Admin,
    topic: Topic,
    acks: Acks,
    timeout_ms: i32,
    pending: BTreeMap<i32, Pending>,
    /// Records acknowledged (or sent, for acks=0) per partition.
    sent: BTreeMap<i32, u64>,
}

impl Producer {
    /// Sends the pending records of `partitions`: one request per leader,
    /// one batch per partition. A partition whose leader moved (no leader,
    /// LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER: nothing was written)
    /// is sent again to its new leader after a Metadata refresh.
    async fn flush(&mut self, partitions: &[i32]) -> Result<(), AdminError> {
        let mut batches: BTreeMap<i32, (Bytes, u64)> = BTreeMap::new();
        for &index in partitions {
            let Some(pending) = self.pending.remove(&index) else {
                continue;
            };
            if !pending.records.is_empty() {
                let count = pending.records.len() as u64;
                batches.insert(index, (encode_batch(&pending.records)?, count));
            }
        }
        for attempt in 1..=LEADER_RETRIES {
            let last = attempt == LEADER_RETRIES;
            let mut retry = BTreeMap::new();
            let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            for &index in batches.keys() {
                match self.topic.leader(index) {
                    Some(leader) => by_leader.entry(leader).or_default().push(index),
                    None if !last => {
                        retry.insert(index, batches[&index].clone());
                    }
                    None => {
                        AdminError::check(5, || format!("partition {}/{index}", self.topic.name))?
                    }
                }
            }
            for (leader, indexes) in by_leader {
                let answers = self.send(leader, &indexes, &batches).await?;
                for (index, code, message) in answers {
                    if matches!(code, 5 | 6) && !last {
                        retry.insert(index, batches[&index].clone());
                        continue;
                    }
                    AdminError::check_with(
                        code,
                        || format!("producing to {}/{index}", self.topic.name),
                        message.as_ref(),
                    )?;
                    *self.sent.entry(index).or_default() += batches[&index].1;
                }
            }
            if retry.is_empty() {
                break;
            }
            tokio::time::sleep(LEADER_BACKOFF).await;
            self.topic = layout::topic(&mut self.admin, &self.topic.name.clone()).await?;
            batches = retry;
        }
        Ok(())
    }

    /// One Produce request to `leader` with the batches of `indexes`;
    /// returns each partition's (index, error code, message); with
    /// acks=0, success for every one (no answer comes).
    async fn send(
        &mut self,
        leader: i32,
        indexes: &[i32],
        batches: &BTreeMap<i32, (Bytes, u64)>,
    ) -> Result<Vec<(i32, i16, Option<StrBytes>)>, AdminError> {
        let request = ProduceRequest::default()
            .with_acks(self.acks.code())
            .with_timeout_ms(self.timeout_ms)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.topic.name.clone())))
                .with_partition_data(
                    indexes
                        .iter()
                        .map(|&index| {
                            PartitionProduceData::default()
                                .with_index(index)
                                .with_records(Some(batches[&index].0.clone()))
                        })
                        .collect(),
                )]);
        let broker = self.admin.broker(leader).await?;
        let version = broker.version(ApiKey::Produce, PRODUCE)?;
        if self.acks == Acks::None {
            broker.send(ApiKey::Produce, version, &request).await?;
            return Ok(indexes.iter().map(|&index| (index, 0, None)).collect());
        }
        let response: ProduceResponse = broker.call(ApiKey::Produce, version, &request).await?;
        let answers: Vec<(i32, i16, Option<StrBytes>)> = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .map(|a| (a.index, a.error_code, a.error_message.clone()))
            .collect();
        if let Some(missing) = indexes
            .iter()
            .find(|index| !answers.iter().any(|(answered, _, _)| answered == *index))
        {
            return Err(AdminError::Other(format!(
                "Produce did not answer for {}/{missing}",
                self.topic.name
            )));
        }
        Ok(answers)
    }
}

/// One v2 record batch of `records` (see [`crate::bench::wire::plain_batch`]).
fn encode_batch(records: &[(Option<Bytes>, Bytes)]) -> Result<Bytes, AdminError> {
    crate::bench::wire::plain_batch(records.iter().cloned(), Compression::None)
        .map_err(AdminError::Other)
}

/// `topic produce`.
pub async fn run(args: ProduceArgs) -> Result<Status, AdminError> {
    let mut admin = args.common.conn.connect().await?;
    let topic = layout::topic(&mut admin, &args.name).await?;
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if count == 0 {
        return Err(AdminError::Other(format!(
            "topic {:?} has no partitions",
            args.name
        )));
    }
    if let Some(partition) = args.partition {
        if partition >= count {
            return Err(AdminError::Kafka {
                code: 3,
                what: format!(
                    "partition {}/{partition} (the topic has {count})",
                    args.name
                ),
                message: None,
            });
        }
    }
    let mut producer = Producer {
        admin,
        topic,
        acks: args.acks,
        timeout_ms: args.common.conn.timeout_ms_i32(),
        pending: BTreeMap::new(),
        sent: BTreeMap::new(),
    };
    // The first partition unkeyed batches go to: from the clock, so that
    // short runs spread (no randomness source is a dependency here).
    let mut sticky = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos() as i32 & 0x7fff_ffff)
        % count;
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    // Lines are read blocking: this runtime runs nothing else meanwhile,
    // and a request in flight is always awaited before the next read.
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| AdminError::Other(format!("reading stdin: {e}")))?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let (key, value) = split_line(&line, separator);
        let partition = match (args.partition, key) {
            (Some(partition), _) => partition,
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => sticky,
        };
        let pending = producer.pending.entry(partition).or_default();
        pending.bytes += value.len() + key.map_or(0, <[u8]>::len);
        pending.records.push((
            key.map(Bytes::copy_from_slice),
            Bytes::copy_from_slice(value),
        ));
        if pending.records.len() >= BATCH_RECORDS || pending.bytes >= BATCH_BYTES {
            producer.flush(&[partition]).await?;
            if key.is_none() && args.partition.is_none() {
                sticky = (sticky + 1) % count;
            }
        }
    }
    let rest: Vec<i32> = producer.pending.keys().copied().collect();
    producer.flush(&rest).await?;

    let records: u64 = producer.sent.values().sum();
    let partitions = producer.sent.len();
    eprintln!(
        "produced {records} records to {partitions} partition(s) of {} (acks={})",
        args.name,
        match args.acks {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    );
    if args.common.format == Format::Json {
        let per_partition = producer
            .sent
            .iter()
            .map(|(&partition, &count)| {
                obj([
                    ("partition", Json::from(partition)),
                    (
                        "records",
                        Json::from(i64::try_from(count).unwrap_or(i64::MAX)),
                    ),
                ])
            })
            .collect();
        let doc = obj([
            ("topic", Json::from(args.name.as_str())),
            (
                "records",
                Json::from(i64::try_from(records).unwrap_or(i64::MAX)),
            ),
            ("partitions", Json::Arr(per_partition)),
        ]);
        println!("{doc}");
    }
    Ok(Status::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors (clients' UtilsTest.testMurmur2).
    #[test]
    fn murmur2_matches_the_java_client() {
        for (key, expected) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(key.as_bytes()), expected, "{key}");
        }
    }

    #[test]
    fn keyed_partitions_clear_the_sign_bit_rather_than_negate() {
        // murmur2("21") is negative: toPositive keeps the low 31 bits.
        let positive = -973_932_308_i32 & 0x7fff_ffff;
        assert_eq!(partition_for_key(b"21", 7), positive % 7);
        assert_ne!(positive, 973_932_308, "not abs()");
        for key in ["a", "bb", "ccc", "dddd", "eeeee"] {
            let p = partition_for_key(key.as_bytes(), 3);
            assert!((0..3).contains(&p), "{key} -> {p}");
        }
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        let split = |line: &'static str, sep: Option<&'static str>| {
            split_line(line.as_bytes(), sep.map(str::as_bytes))
        };
        assert_eq!(split("k:v:w", Some(":")), (Some(&b"k"[..]), &b"v:w"[..]));
        assert_eq!(split("no-sep", Some(":")), (None, &b"no-sep"[..]));
        assert_eq!(split("k:v", None), (None, &b"k:v"[..]));
        assert_eq!(split(":v", Some(":")), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split("k::v", Some("::")), (Some(&b"k"[..]), &b"v"[..]));
        let binary = split_line(b"k\xff\xfev", Some(b"\xff\xfe"));
        assert_eq!(
            binary,
            (Some(&b"k"[..]), &b"v"[..]),
            "lines need not be UTF-8"
        );
    }

    #[test]
    fn a_batch_holds_every_record_in_order() {
        let records = vec![
            (Some(Bytes::from_static(b"k1")), Bytes::from_static(b"v1")),
            (None, Bytes::from_static(b"v2")),
        ];
        let mut batch = encode_batch(&records).expect("encodes");
        let decoded =
            kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).expect("decodes");
        let got: Vec<_> = decoded
            .records
            .iter()
            .map(|r| (r.offset, r.key.clone(), r.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    0,
                    Some(Bytes::from_static(b"k1")),
                    Some(Bytes::from_static(b"v1"))
                ),
                (1, None, Some(Bytes::from_static(b"v2"))),
            ]
        );
    }
}
