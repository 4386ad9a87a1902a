//! A raw Kafka client over TcpStream and an in-process gateway, shared by
//! the integration tests. Requests are encoded and responses decoded with
//! `kafka-protocol`'s client side, so the tests check the bytes a real
//! client would see.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cxlkafka_gateway::cluster::{open_cluster, ClusterLog, ClusterOptions, RegionSettings};
use cxlkafka_gateway::context::{AdvertisedListener, Limits, TopicDefaults};
use cxlkafka_gateway::groups::GroupConfig;
use cxlkafka_gateway::{DispatchTable, GatewayContext, Server, ServerHandle};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// How long a test waits for anything the gateway should do promptly.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// A gateway running in this process on 127.0.0.1 and a free port.
pub struct TestGateway {
    pub addr: SocketAddr,
    /// Holds the region file; removed when the gateway is dropped.
    pub region_dir: tempfile::TempDir,
    /// The region file (in another gateway's directory for a second one).
    pub region_path: PathBuf,
    /// The gateway's storage side (for the reporters tests run by hand).
    pub log: Arc<dyn ClusterLog>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<ServerHandle>,
}

impl TestGateway {
    /// The standard table with default limits.
    pub async fn start() -> Self {
        Self::start_with(Limits::default(), DispatchTable::standard()).await
    }

    /// A custom table and limits.
    pub async fn start_with(limits: Limits, table: DispatchTable) -> Self {
        Self::start_with_topics(limits, table, TopicDefaults::default()).await
    }

    /// A custom table, limits and topic defaults.
    pub async fn start_with_topics(
        limits: Limits,
        table: DispatchTable,
        topics: TopicDefaults,
    ) -> Self {
        Self::start_full(limits, table, topics, GroupConfig::default(), None).await
    }

    /// The standard table with these group settings; with `join`, a second
    /// gateway (node 1) on `join`'s region instead of a new region.
    pub async fn start_grouped(groups: GroupConfig, join: Option<&TestGateway>) -> Self {
        let region = join.map(|first| first.region_path.clone());
        Self::start_full(
            Limits::default(),
            DispatchTable::standard(),
            TopicDefaults::default(),
            groups,
            region,
        )
        .await
    }

    async fn start_full(
        limits: Limits,
        table: DispatchTable,
        topics: TopicDefaults,
        groups: GroupConfig,
        existing_region: Option<PathBuf>,
    ) -> Self {
        let server = Server::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr();
        let region_dir = tempfile::Builder::new()
            .prefix("cxlkafka-gateway-test")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a temporary directory");
        let node_id = if existing_region.is_some() { 1 } else { 0 };
        let region_path = existing_region.unwrap_or_else(|| region_dir.path().join("region"));
        let settings = RegionSettings {
            path: region_path.clone(),
            bytes: 64 << 20,
            max_gateways: 2,
            cluster: "test".into(),
            non_coherent: false,
        };
        let options = ClusterOptions {
            node_id: Some(node_id),
            advertised_host: addr.ip().to_string(),
            advertised_port: addr.port(),
            lease_timeout: Duration::from_secs(1),
            data_dir: region_dir.path().join(format!("data-{node_id}")),
            segment_bytes: 1 << 20,
            region_path: None,
            adopt_data_dir: false,
            unclean_region_rebuild: false,
            peer_listen: None,
        };
        let log = tokio::task::spawn_blocking(move || open_cluster(&settings, options))
            .await
            .expect("join")
            .expect("open the test region");
        let ctx = GatewayContext::new(
            Arc::clone(&log),
            "test",
            AdvertisedListener::from_socket_addr(addr),
        )
        .with_limits(limits)
        .with_topic_defaults(topics)
        .with_group_config(groups);
        let (tx, rx) = oneshot::channel::<()>();
        let handle = server.spawn(Arc::new(ctx), Arc::new(table), async move {
            let _ = rx.await;
        });
        Self {
            addr,
            region_dir,
            region_path,
            log,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Signals shutdown and waits until the server has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            timeout(PROMPTLY * 3, handle.stopped())
                .await
                .expect("server stops within its grace period");
        }
    }

    /// Signals shutdown without waiting.
    pub fn signal_stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for a stop signalled earlier.
    pub async fn stopped(&mut self) {
        if let Some(handle) = self.handle.take() {
            timeout(PROMPTLY * 3, handle.stopped())
                .await
                .expect("server stops within its grace period");
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// Encodes one request frame: size, header (at the version the API and
/// version call for), body at `body_version`.
pub fn request_frame<T: Encodable>(
    api_key: ApiKey,
    version: i16,
    body_version: i16,
    correlation_id: i32,
    body: &T,
) -> Vec<u8> {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("cxlkafka-test"));
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, api_key.request_header_version(version))
        .expect("header encodes");
    body.encode(&mut payload, body_version)
        .expect("body encodes");
    let mut frame = BytesMut::new();
    frame.put_i32(i32::try_from(payload.len()).expect("small request"));
    frame.put_slice(&payload);
    frame.to_vec()
}

/// An ApiVersions request as librdkafka or the Java client sends it.
pub fn api_versions_request(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = ApiVersionsRequest::default();
    body.client_software_name = StrBytes::from_static_str("cxlkafka-test");
    body.client_software_version = StrBytes::from_static_str("0.1.0");
    let body_version = version.clamp(0, 3);
    request_frame(
        ApiKey::ApiVersions,
        version,
        body_version,
        correlation_id,
        &body,
    )
}

/// Decodes a response frame's payload: the header at the version the API
/// and `version` call for, then the body at `body_version`. Panics unless
/// every byte is consumed.
pub fn decode_response<T: Decodable>(
    payload: Bytes,
    api_key: ApiKey,
    version: i16,
    body_version: i16,
) -> (ResponseHeader, T) {
    let mut bytes = payload;
    let header = ResponseHeader::decode(&mut bytes, api_key.response_header_version(version))
        .expect("response header decodes");
    let body = T::decode(&mut bytes, body_version).expect("response body decodes");
    assert_eq!(bytes.remaining(), 0, "response has trailing bytes");
    (header, body)
}

/// A client speaking raw Kafka framing.
pub struct Client {
    pub stream: TcpStream,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(PROMPTLY, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self { stream }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// The next response frame's payload (after the size prefix), or `None`
    /// if the server closed the connection.
    pub async fn read_frame_within(&mut self, limit: Duration) -> Option<Bytes> {
        timeout(limit, self.read_frame_inner())
            .await
            .expect("the gateway answers or closes in time")
    }

    pub async fn read_frame(&mut self) -> Option<Bytes> {
        self.read_frame_within(PROMPTLY).await
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let mut byte = [0_u8; 1];
        let read = timeout(quiet, self.stream.peek(&mut byte)).await;
        assert!(read.is_err(), "expected no data, got {read:?}");
    }

    async fn read_frame_inner(&mut self) -> Option<Bytes> {
        let mut prefix = [0_u8; 4];
        if self.stream.read_exact(&mut prefix).await.is_err() {
            return None;
        }
        let size = usize::try_from(i32::from_be_bytes(prefix)).expect("non-negative size");
        let mut payload = vec![0_u8; size];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some(Bytes::from(payload))
    }

    /// Asserts the server closes the connection (EOF or reset) promptly,
    /// sending nothing more.
    pub async fn expect_closed(&mut self) {
        let mut buf = [0_u8; 64];
        let read = timeout(PROMPTLY, self.stream.read(&mut buf))
            .await
            .expect("the gateway closes the connection in time");
        match read {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("expected a closed connection, got {n} bytes"),
        }
    }

    /// Correlation id of a response payload.
    pub fn correlation_id(payload: &Bytes) -> i32 {
        let mut head = payload.clone();
        head.get_i32()
    }
}
