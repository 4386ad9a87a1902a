//! `cxlkafka topic consume`: prints a topic's records with a kcat-like
//! format string, fetching from each partition's leader.
//!
//! Where it starts: `--offset N` on every partition read; otherwise, with
//! `--group`, the group's committed offset; otherwise (or for a partition
//! the group has none for) the log start with `--from-beginning`, else the
//! end, as `kafka-console-consumer` does.
//!
//! When it stops: after `--count` records; or, with `--exit-at-end` (kcat's
//! `-e`), once every partition read is at the high watermark its last
//! fetch reported; or on Ctrl-C. Without either it follows the log, as
//! kcat without `-e` does.
//!
//! With `--group` it commits the next offset of every partition it read,
//! after each fetch that returned records and when it stops, as a
//! member-less commit (generation -1, no member id): what
//! `kafka-console-consumer --group` with assigned partitions and kcat's
//! `-G`-less stored offsets amount to. It never joins the group, so a
//! group with live members refuses the commit (their generation owns it).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use clap::{ArgAction, Args};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::client::{Admin, AdminError};
use super::group;
use super::layout::{self, Topic, EARLIEST, LATEST};
use super::output::{obj, Json};
use super::{ConnArgs, Status};

/// Fetch: v4 is the oldest Kafka 4 serves; v12 the newest that names
/// topics (v13 uses ids).
const FETCH: (i16, i16) = (4, 12);
/// How long a fetch waits at the broker for records to arrive (at most
/// half of --timeout-ms, so the answer comes within the request bound).
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition per fetch (Kafka returns at least one whole batch
/// even when it is larger).
const PARTITION_MAX_BYTES: i32 = 1 << 20;
/// Metadata refreshes in a row while a partition's leader moves...
const LEADER_RETRIES: u32 = 10;
/// ...and the wait before each.
const LEADER_BACKOFF: Duration = Duration::from_millis(300);
/// The record format that means "the default" (`--format table`, from
/// `CXLKAFKA_FORMAT` set for the other commands).
const DEFAULT_FORMAT: &str = "%v\\n";

/// Flags of `topic consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub name: String,
    /// Commit the offsets read for this group (and start from its
    /// committed offsets).
    #[arg(short = 'g', long, env = "CXLKAFKA_TOPIC_GROUP")]
    pub group: Option<String>,
    /// Start at the log start (where the group has no committed offset).
    #[arg(long, env = "CXLKAFKA_TOPIC_FROM_BEGINNING", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true,
          conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset on every partition read.
    #[arg(short = 'o', long, env = "CXLKAFKA_TOPIC_OFFSET",
          value_parser = clap::value_parser!(i64).range(0..))]
    pub offset: Option<i64>,
    /// Read only this partition.
    #[arg(short = 'p', long, env = "CXLKAFKA_TOPIC_PARTITION",
          value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Stop after this many records.
    #[arg(short = 'c', long, env = "CXLKAFKA_TOPIC_COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop once every partition read is at its end (kcat -e).
    #[arg(short = 'e', long, env = "CXLKAFKA_TOPIC_EXIT_AT_END", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub exit_at_end: bool,
    /// How to print each record: a format string (%t topic, %p partition,
    /// %o offset, %T timestamp in ms, %k key, %v value, %% a percent
    /// sign; \n \t \r \\ escapes), `json` for one JSON object per line, or
    /// `table` for the default.
    #[arg(long, env = "CXLKAFKA_FORMAT", default_value = DEFAULT_FORMAT)]
    pub format: String,
    /// Bootstrap and timeout flags.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text printed as is.
    Text(String),
    /// `%t`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
    /// `%T`
    Timestamp,
    /// `%k` (nothing for a null key)
    Key,
    /// `%v` (nothing for a null value)
    Value,
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFormat {
    /// A format string.
    Pieces(Vec<Piece>),
    /// One JSON object per line.
    Json,
}

/// Parses `--format`.
pub fn parse_format(text: &str) -> Result<RecordFormat, String> {
    match text {
        "json" => return Ok(RecordFormat::Json),
        "table" => return parse_format(DEFAULT_FORMAT),
        _ => {}
    }
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some('t') => Piece::Topic,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('T') => Piece::Timestamp,
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('%') => {
                        literal.push('%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown format token %{other}")),
                    None => return Err("the format ends with a lone %".into()),
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(piece);
            }
            '\\' => match chars.next() {
                Some('n') => literal.push('\n'),
                Some('t') => literal.push('\t'),
                Some('r') => literal.push('\r'),
                Some('\\') => literal.push('\\'),
                Some(other) => {
                    literal.push('\\');
                    literal.push(other);
                }
                None => literal.push('\\'),
            },
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(RecordFormat::Pieces(pieces))
}

/// A record to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms.
    pub timestamp: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
}

/// Appends `record` as `format` prints it. Keys and values are written
/// byte for byte (they need not be UTF-8); in JSON, lossily as strings.
pub fn render(format: &RecordFormat, record: &Printed<'_>, out: &mut Vec<u8>) {
    match format {
        RecordFormat::Json => {
            let text = |bytes: Option<&[u8]>| {
                Json::from(bytes.map(|b| String::from_utf8_lossy(b).into_owned()))
            };
            let doc = obj([
                ("topic", Json::from(record.topic)),
                ("partition", Json::from(record.partition)),
                ("offset", Json::from(record.offset)),
                ("timestamp", Json::from(record.timestamp)),
                ("key", text(record.key)),
                ("value", text(record.value)),
            ]);
            out.extend_from_slice(doc.to_string().as_bytes());
            out.push(b'\n');
        }
        RecordFormat::Pieces(pieces) => {
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
                    Piece::Topic => out.extend_from_slice(record.topic.as_bytes()),
                    Piece::Partition => {
                        out.extend_from_slice(record.partition.to_string().as_bytes())
                    }
                    Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
                    Piece::Timestamp => {
                        out.extend_from_slice(record.timestamp.to_string().as_bytes());
                    }
                    Piece::Key => out.extend_from_slice(record.key.unwrap_or_default()),
                    Piece::Value => out.extend_from_slice(record.value.unwrap_or_default()),
                }
            }
        }
    }
}

/// Splits a fetched record set into whole batches: a fetch may end in a
/// partial batch, which the next fetch returns whole.
fn whole_batches(mut set: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    // Base offset (8) and batch length (4) precede every batch.
    while set.len() >= 12 {
        let length = i32::from_be_bytes([set[8], set[9], set[10], set[11]]);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        if set.len() < 12 + length {
            break;
        }
        batches.push(set.split_to(12 + length));
    }
    batches
}

/// Reading state per partition.
struct Reader {
    topic: Topic,
    /// Next offset to read, per partition.
    positions: BTreeMap<i32, i64>,
    /// High watermark per partition, from the last fetch (unknown before).
    ends: BTreeMap<i32, i64>,
    format: RecordFormat,
    printed: u64,
    /// Fetch's max_wait_ms.
    fetch_wait_ms: i32,
}

/// What one fetch round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Records were printed (`moved`: some position advanced); `stale`:
    /// some partition's leader moved, so Metadata must be asked again.
    Read { moved: bool, stale: bool },
    /// Stdout was closed (`| head`): stop without committing this round.
    ReaderGone,
}

impl Reader {
    /// One fetch from every leader; prints what it returns (up to `limit`
    /// records in all). Positions move only once the records are written,
    /// so a round cancelled by Ctrl-C or a closed stdout commits nothing
    /// it did not print.
    async fn fetch_round(
        &mut self,
        admin: &mut Admin,
        limit: Option<u64>,
    ) -> Result<Round, AdminError> {
        let mut stale = false;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &index in self.positions.keys() {
            match self.topic.leader(index) {
                Some(leader) => by_leader.entry(leader).or_default().push(index),
                None => stale = true,
            }
        }
        let mut positions = self.positions.clone();
        let mut ends = self.ends.clone();
        let mut printed = self.printed;
        let mut moved = false;
        let mut out = Vec::new();
        for (leader, indexes) in by_leader {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(self.fetch_wait_ms)
                .with_min_bytes(1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(self.topic.name.clone())))
                    .with_partitions(
                        indexes
                            .iter()
                            .map(|&index| {
                                FetchPartition::default()
                                    .with_partition(index)
                                    .with_fetch_offset(positions[&index])
                                    .with_partition_max_bytes(PARTITION_MAX_BYTES)
                            })
                            .collect(),
                    )]);
            let broker = admin.broker(leader).await?;
            let version = broker.version(ApiKey::Fetch, FETCH)?;
            let response: FetchResponse = broker.call(ApiKey::Fetch, version, &request).await?;
            AdminError::check(response.error_code, || {
                format!("fetch of {}", self.topic.name)
            })?;
            for answer in response.responses.iter().flat_map(|t| &t.partitions) {
                let index = answer.partition_index;
                // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER: ask again
                // where the partition lives.
                if matches!(answer.error_code, 5 | 6) {
                    stale = true;
                    continue;
                }
                let Some(position) = positions.get_mut(&index) else {
                    continue; // not asked for
                };
                AdminError::check(answer.error_code, || {
                    format!("fetch of {}/{index} at offset {position}", self.topic.name)
                })?;
                ends.insert(index, answer.high_watermark);
                let Some(set) = answer.records.clone() else {
                    continue;
                };
                for mut batch in whole_batches(set) {
                    let decoded = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                        AdminError::Other(format!(
                            "cannot decode a batch of {}/{index}: {e}",
                            self.topic.name
                        ))
                    })?;
                    for record in &decoded.records {
                        // A batch is returned whole: skip what was read.
                        if record.offset < *position {
                            continue;
                        }
                        if limit.is_some_and(|limit| printed >= limit) {
                            break;
                        }
                        *position = record.offset + 1;
                        moved = true;
                        if record.control {
                            continue; // transaction markers are not data
                        }
                        render(
                            &self.format,
                            &Printed {
                                topic: &self.topic.name,
                                partition: index,
                                offset: record.offset,
                                timestamp: record.timestamp,
                                key: record.key.as_deref(),
                                value: record.value.as_deref(),
                            },
                            &mut out,
                        );
                        printed += 1;
                    }
                }
            }
        }
        if !out.is_empty() && !super::write_stdout(&out)? {
            return Ok(Round::ReaderGone);
        }
        self.positions = positions;
        self.ends = ends;
        self.printed = printed;
        Ok(Round::Read { moved, stale })
    }

    /// Whether every partition read is at the end its last fetch reported.
    fn at_end(&self) -> bool {
        self.positions
            .iter()
            .all(|(index, position)| self.ends.get(index).is_some_and(|end| position >= end))
    }
}

/// `topic consume`.
pub async fn run(args: ConsumeArgs) -> Result<Status, AdminError> {
    let format =
        parse_format(&args.format).map_err(|e| AdminError::Other(format!("--format: {e}")))?;
    let mut admin = args.conn.connect().await?;
    let topic = layout::topic(&mut admin, &args.name).await?;
    let indexes: Vec<i32> = match args.partition {
        Some(partition) if topic.partitions.iter().any(|p| p.index == partition) => {
            vec![partition]
        }
        Some(partition) => {
            return Err(AdminError::Kafka {
                code: 3,
                what: format!("partition {}/{partition}", args.name),
                message: None,
            })
        }
        None => topic.partitions.iter().map(|p| p.index).collect(),
    };
    let positions = start_positions(&mut admin, &args, &topic, &indexes).await?;
    let mut reader = Reader {
        topic,
        positions,
        ends: BTreeMap::new(),
        format,
        printed: 0,
        fetch_wait_ms: FETCH_WAIT_MS.min(args.conn.timeout_ms_i32() / 2),
    };
    let mut committed = reader.positions.clone();
    let mut stale_rounds = 0;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if args.count.is_some_and(|count| reader.printed >= count)
            || (args.exit_at_end && reader.at_end())
        {
            break;
        }
        let round = tokio::select! {
            round = reader.fetch_round(&mut admin, args.count) => round?,
            _ = &mut ctrl_c => break,
        };
        let Round::Read { moved, stale } = round else {
            break; // stdout closed
        };
        if moved {
            if let Some(group_id) = &args.group {
                commit_moved(&mut admin, group_id, &reader, &mut committed).await?;
            }
        }
        if stale {
            stale_rounds += 1;
            if stale_rounds > LEADER_RETRIES {
                return Err(AdminError::Kafka {
                    code: 5,
                    what: format!("a partition of {} (its leader kept moving)", args.name),
                    message: None,
                });
            }
            tokio::time::sleep(LEADER_BACKOFF).await;
            reader.topic = layout::topic(&mut admin, &args.name).await?;
        } else {
            stale_rounds = 0;
            if !moved && !args.exit_at_end {
                // Nothing new: the broker already waited FETCH_WAIT_MS; a
                // broker that answers at once must not be spun on.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if let Some(group_id) = &args.group {
        commit_moved(&mut admin, group_id, &reader, &mut committed).await?;
    }
    Ok(Status::Done)
}

/// Commits the positions that moved since the last commit.
async fn commit_moved(
    admin: &mut Admin,
    group_id: &str,
    reader: &Reader,
    committed: &mut BTreeMap<i32, i64>,
) -> Result<(), AdminError> {
    let moved: BTreeMap<i32, i64> = reader
        .positions
        .iter()
        .filter(|(index, position)| committed.get(index) != Some(position))
        .map(|(&index, &position)| (index, position))
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    group::commit(admin, group_id, &reader.topic.name, &moved).await?;
    committed.extend(moved);
    Ok(())
}

/// Where each partition starts (see the module comment).
async fn start_positions(
    admin: &mut Admin,
    args: &ConsumeArgs,
    topic: &Topic,
    indexes: &[i32],
) -> Result<BTreeMap<i32, i64>, AdminError> {
    if let Some(offset) = args.offset {
        return Ok(indexes.iter().map(|&index| (index, offset)).collect());
    }
    let mut positions = BTreeMap::new();
    if let Some(group_id) = &args.group {
        let wanted = vec![(topic.name.clone(), indexes.to_vec())];
        let committed = group::fetch_committed(admin, group_id, Some(wanted)).await?;
        for ((name, index), offset) in committed {
            if name == topic.name && offset >= 0 && indexes.contains(&index) {
                positions.insert(index, offset);
            }
        }
    }
    let rest: Vec<i32> = indexes
        .iter()
        .copied()
        .filter(|index| !positions.contains_key(index))
        .collect();
    if !rest.is_empty() {
        let timestamp = if args.from_beginning {
            EARLIEST
        } else {
            LATEST
        };
        positions.extend(layout::list_offsets(admin, topic, &rest, timestamp).await?);
    }
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(format: &str, key: Option<&[u8]>) -> String {
        let format = parse_format(format).expect("parses");
        let mut out = Vec::new();
        render(
            &format,
            &Printed {
                topic: "t",
                partition: 2,
                offset: 41,
                timestamp: 1_700_000_000_000,
                key,
                value: Some(b"v\"1"),
            },
            &mut out,
        );
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn the_default_format_prints_the_value_and_a_newline() {
        assert_eq!(printed(DEFAULT_FORMAT, Some(b"k")), "v\"1\n");
        assert_eq!(printed("table", Some(b"k")), "v\"1\n");
    }

    #[test]
    fn format_tokens_and_escapes_expand() {
        assert_eq!(
            printed("%t/%p@%o %T\\t%k=%v 100%%\\n", Some(b"k")),
            "t/2@41 1700000000000\tk=v\"1 100%\n"
        );
        assert_eq!(printed("[%k]", None), "[]", "a null key prints nothing");
        assert_eq!(
            printed("a\\\\b\\q", None),
            "a\\b\\q",
            "unknown escapes stay"
        );
    }

    #[test]
    fn bad_format_tokens_are_refused() {
        assert!(parse_format("%x").is_err());
        assert!(parse_format("value %").is_err());
    }

    #[test]
    fn json_prints_one_object_per_record() {
        assert_eq!(
            printed("json", None),
            "{\"topic\":\"t\",\"partition\":2,\"offset\":41,\"timestamp\":1700000000000,\
             \"key\":null,\"value\":\"v\\\"1\"}\n"
        );
    }

    #[test]
    fn a_partial_last_batch_is_left_for_the_next_fetch() {
        let mut set = Vec::new();
        for body in [3usize, 5] {
            set.extend_from_slice(&0i64.to_be_bytes());
            set.extend_from_slice(&(body as i32).to_be_bytes());
            set.extend(std::iter::repeat_n(7u8, body));
        }
        set.extend_from_slice(&0i64.to_be_bytes());
        set.extend_from_slice(&100i32.to_be_bytes());
        set.extend_from_slice(&[1, 2, 3]);
        let batches = whole_batches(Bytes::from(set));
        assert_eq!(batches.iter().map(Bytes::len).collect::<Vec<_>>(), [15, 17]);
    }
}
