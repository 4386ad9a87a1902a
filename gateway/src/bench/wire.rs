//! The bench tools' client side of the wire: one connection with framed,
//! pipelined requests, and the Metadata and ListOffsets calls the tools
//! make before loading the broker.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::connection::{FrameError, FrameReader};

const METADATA_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 2;
/// Largest response frame the tools accept (a fetch of many partitions).
const MAX_RESPONSE_BYTES: usize = 1 << 30;
/// How long [`ensure_topic`] waits for the topic to show up.
const TOPIC_WAIT: Duration = Duration::from_secs(10);

/// The client id the tools send.
pub const CLIENT_ID: &str = "cxlkafka-bench";

/// A request frame: size prefix, header, body.
pub fn frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Encodable,
) -> Result<BytesMut, String> {
    frame_as(CLIENT_ID, api, version, correlation_id, body)
}

/// A request frame naming `client_id` (brokers show it in DescribeGroups
/// and their request logs, so each tool names itself).
pub fn frame_as(
    client_id: &'static str,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Encodable,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let header_version = api.request_header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(version)?))
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(i32::try_from(size).map_err(|_| "request too large".to_string())?);
    header
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Where the correlation id sits in a request frame (after the size
/// prefix, the API key and the version), so a prebuilt frame can be sent
/// again with a new id.
pub const CORRELATION_ID_AT: usize = 8;

/// Decodes a response payload whose correlation id must be `expected`.
pub fn decode_response<T: Decodable>(
    mut payload: Bytes,
    api: ApiKey,
    version: i16,
    expected: i32,
) -> Result<T, String> {
    let header = ResponseHeader::decode(&mut payload, api.response_header_version(version))
        .map_err(|e| e.to_string())?;
    if header.correlation_id != expected {
        return Err(format!(
            "{api:?} response carries correlation id {}, expected {expected}",
            header.correlation_id
        ));
    }
    let body = T::decode(&mut payload, version).map_err(|e| e.to_string())?;
    if payload.has_remaining() {
        return Err(format!(
            "{api:?} response has {} bytes left over",
            payload.remaining()
        ));
    }
    Ok(body)
}

/// The read side of a connection that may be plain or TLS.
pub type AnyRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write side of a connection that may be plain or TLS.
pub type AnyWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// One connection to the broker: plain TCP halves by default (the load
/// generators' hot loops), or either kind behind [`AnyRead`] and
/// [`AnyWrite`] (the admin tools, [`Conn::connect_any`]).
pub struct Conn<R = OwnedReadHalf, W = OwnedWriteHalf> {
    reader: FrameReader<R>,
    writer: W,
    next_correlation_id: i32,
    client_id: &'static str,
}

/// Connects with TCP_NODELAY, as Kafka clients do.
async fn tcp(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

impl Conn {
    /// A plain connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, String> {
        let (read, writer) = tcp(addr).await?.into_split();
        Ok(Self::over(read, writer))
    }
}

impl Conn<AnyRead, AnyWrite> {
    /// A connection to `addr`, through TLS when `tls` gives a connector
    /// and the name the broker's certificate must carry.
    pub async fn connect_any(
        addr: SocketAddr,
        tls: Option<(&tokio_rustls::TlsConnector, ServerName<'static>)>,
    ) -> Result<Self, String> {
        let stream = tcp(addr).await?;
        let Some((connector, name)) = tls else {
            let (read, write) = stream.into_split();
            return Ok(Self::over(Box::new(read), Box::new(write)));
        };
        let shown = format!("{name:?}");
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS with {addr} ({shown}) failed: {e}"))?;
        let (read, write) = tokio::io::split(stream);
        Ok(Self::over(Box::new(read), Box::new(write)))
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Conn<R, W> {
    fn over(read: R, writer: W) -> Self {
        Self {
            reader: FrameReader::new(read, MAX_RESPONSE_BYTES),
            writer,
            next_correlation_id: 1,
            client_id: CLIENT_ID,
        }
    }

    /// Names the client in every request from now on.
    pub fn with_client_id(mut self, client_id: &'static str) -> Self {
        self.client_id = client_id;
        self
    }

    /// Splits into the read and write sides.
    pub fn into_split(self) -> (FrameReader<R>, W) {
        (self.reader, self.writer)
    }

    /// Sends one request and waits for its response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, String> {
        let correlation_id = self.send(api, version, body).await?;
        let payload = read_response(&mut self.reader).await?;
        decode_response(payload, api, version, correlation_id)
    }

    /// Sends one request without waiting for a response (a Produce with
    /// acks=0 gets none); returns its correlation id.
    pub async fn send<Req: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<i32, String> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let request = frame_as(self.client_id, api, version, correlation_id, body)?;
        self.writer
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(correlation_id)
    }
}

/// Reads one response frame's payload.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Bytes, String> {
    match reader.read_frame().await {
        Ok(Some(payload)) => Ok(payload),
        Ok(None) => Err("the broker closed the connection".into()),
        Err(FrameError::Io(error)) => Err(format!("connection failed: {error}")),
        Err(FrameError::Protocol(reason)) => Err(format!("bad response frame: {reason}")),
    }
}

/// Whether [`ensure_topic`] may have the broker create a missing topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTopic {
    /// Auto-create it where the broker allows (a producer's way).
    Create,
    /// Fail at once: reading a topic must not create it (a consumer's way).
    Refuse,
}

/// Asks Metadata for `topic` until it is there with at least `partitions`
/// partitions; a missing topic is auto-created or refused, as `missing`
/// says.
pub async fn ensure_topic(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
    missing: MissingTopic,
) -> Result<(), String> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_owned())),
        ))]))
        .with_allow_auto_topic_creation(missing == MissingTopic::Create);
    let deadline = Instant::now() + TOPIC_WAIT;
    loop {
        let response: MetadataResponse = conn
            .call(ApiKey::Metadata, METADATA_VERSION, &request)
            .await?;
        let found = response
            .topics
            .first()
            .map(|t| (t.error_code, t.partitions.len()));
        if let Some((0, count)) = found {
            if i32::try_from(count).unwrap_or(i32::MAX) >= partitions {
                return Ok(());
            }
        }
        if missing == MissingTopic::Refuse
            && found.is_some_and(|(code, _)| code == ResponseError::UnknownTopicOrPartition.code())
        {
            return Err(format!(
                "topic {topic} does not exist (UNKNOWN_TOPIC_OR_PARTITION): produce to it first, \
                 e.g. `cxlkafka bench produce --topic {topic}`"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "topic {topic} not available with {partitions} partitions (metadata: {found:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// ListOffsets' "earliest" timestamp.
pub const EARLIEST: i64 = -2;
/// ListOffsets' "latest" timestamp.
pub const LATEST: i64 = -1;

/// The offset for `timestamp` ([`EARLIEST`] or [`LATEST`]) of partitions
/// 0..`partitions` of `topic`.
pub async fn list_offsets(
    conn: &mut Conn,
    topic: &str,
    partitions: i32,
    timestamp: i64,
) -> Result<Vec<i64>, String> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(
                (0..partitions)
                    .map(|index| {
                        ListOffsetsPartition::default()
                            .with_partition_index(index)
                            .with_timestamp(timestamp)
                    })
                    .collect(),
            )]);
    let response: ListOffsetsResponse = conn
        .call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &request)
        .await?;
    let mut offsets = vec![None; usize::try_from(partitions).unwrap_or(0)];
    for answer in response.topics.iter().flat_map(|t| &t.partitions) {
        if answer.error_code != 0 {
            return Err(format!(
                "ListOffsets for {topic}/{} failed with error {}",
                answer.partition_index, answer.error_code
            ));
        }
        if let Some(slot) = usize::try_from(answer.partition_index)
            .ok()
            .and_then(|i| offsets.get_mut(i))
        {
            *slot = Some(answer.offset);
        }
    }
    offsets
        .into_iter()
        .enumerate()
        .map(|(index, offset)| {
            offset.ok_or_else(|| format!("ListOffsets did not answer for {topic}/{index}"))
        })
        .collect()
}

/// One v2 record batch of `(key, value)` records as a plain producer
/// sends it: offset deltas from 0, no producer id or sequence, every
/// record stamped with the creation time now. The tools' one encoder.
pub fn plain_batch(
    records: impl ExactSizeIterator<Item = (Option<Bytes>, Bytes)>,
    compression: Compression,
) -> Result<Bytes, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(0));
    let records: Vec<Record> = records
        .enumerate()
        .map(|(index, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: index as i64,
            // The encoder keeps records in one batch while offset -
            // sequence stays constant; the first record's -1 is the
            // batch's "no sequence".
            sequence: index as i32 - 1,
            timestamp: now,
            key,
            value: Some(value),
            headers: Default::default(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buffer, &records, &options)
        .map_err(|e| format!("cannot encode a record batch: {e}"))?;
    Ok(buffer.freeze())
}
