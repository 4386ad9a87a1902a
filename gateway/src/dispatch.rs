//! From a request frame to a handler: header decoding, one dispatch table,
//! version checks, response encoding.
//!
//! Each Kafka API the gateway serves is one file under `api/` exporting an
//! [`ApiEntry`]; [`DispatchTable::standard`], in `api/mod.rs`, lists them
//! (this module names no handler). The same table answers ApiVersions, so
//! an API is advertised exactly when it is routed.
//!
//! # Handlers run in request order; responses may complete later
//!
//! Kafka processes the requests of one connection one at a time, and clients
//! rely on it: an idempotent producer pipelines Produce requests for one
//! partition and expects them appended in the order sent. So the connection
//! awaits each handler before starting the next, and a handler does its
//! ordered work (validating, appending to the region) before returning. What
//! may take long after that (waiting for the sequencer's acknowledgement, a
//! long-poll Fetch) goes into [`Reply::Deferred`]: the connection moves on
//! to the next request while the deferred part runs, and still writes the
//! responses in request order.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};
use tracing::trace;

use crate::context::GatewayContext;
use crate::error::CloseReason;
use crate::security::Identity;
use crate::shape::{self, Field};
use crate::telemetry;

/// A future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, CloseReason>> + Send + 'static>>;

/// The deferred part of a response (see the module documentation).
pub type DeferredResponse =
    Pin<Box<dyn Future<Output = Result<Option<ResponseFrame>, CloseReason>> + Send + 'static>>;

/// A handler: takes the shared context and one decoded-header request,
/// returns what to send back. Plain `fn` pointers keep the table `const`
/// friendly; an `async fn` handler is wrapped as
/// `|ctx, req| Box::pin(handle(ctx, req))`.
pub type Handler = fn(Arc<GatewayContext>, ApiRequest) -> HandlerFuture;

/// A complete response frame: size prefix, response header, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame(Bytes);

impl ResponseFrame {
    /// The bytes to write to the socket.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// A frame of `payload` with its size prefix and no Kafka header: a
    /// raw SASL token after a SaslHandshake v0.
    pub fn raw(payload: &[u8]) -> Self {
        let mut buf = BytesMut::with_capacity(4 + payload.len());
        buf.put_i32(i32::try_from(payload.len()).unwrap_or(i32::MAX));
        buf.put_slice(payload);
        ResponseFrame(buf.freeze())
    }
}

/// What a handler answers.
pub enum Reply {
    /// Nothing goes back: Produce with `acks=0`.
    NoResponse,
    /// The response is ready now.
    Ready(ResponseFrame),
    /// The response completes later; the connection keeps serving the
    /// requests that follow meanwhile. The future is spawned as a task, so
    /// it must not borrow the connection. It may still resolve to `None`.
    /// It must finish within a bound of its own (the request's timeout or
    /// `max_wait_ms`): every later response on the connection waits for it.
    Deferred(DeferredResponse),
}

impl Reply {
    /// Wraps a future as a deferred reply.
    pub fn deferred<F>(future: F) -> Self
    where
        F: Future<Output = Result<Option<ResponseFrame>, CloseReason>> + Send + 'static,
    {
        Reply::Deferred(Box::pin(future))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::NoResponse => f.write_str("NoResponse"),
            Reply::Ready(frame) => write!(f, "Ready({} bytes)", frame.0.len()),
            Reply::Deferred(_) => f.write_str("Deferred"),
        }
    }
}

/// How an API treats versions outside its served range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPolicy {
    /// Close the connection, as Kafka does for every API but ApiVersions.
    Strict,
    /// Hand every version to the handler (KIP-511: ApiVersions answers an
    /// unknown version with a v0 response listing what is supported).
    AnyVersion,
}

/// One row of the dispatch table: a Kafka API the gateway serves.
#[derive(Clone, Copy)]
pub struct ApiEntry {
    /// The API.
    pub key: ApiKey,
    /// Kafka's name for it, the `api` metric label.
    pub name: &'static str,
    /// Versions the handler decodes and answers.
    pub versions: VersionRange,
    /// Lowest version advertised in ApiVersions; at most `versions.min`.
    /// Only Produce differs: it is advertised from 0 because librdkafka
    /// disables compression against brokers that don't (KAFKA-18659), while
    /// v0-2 themselves are refused like any other unsupported version.
    pub advertised_min: i16,
    /// Treatment of versions outside `versions`.
    pub version_policy: VersionPolicy,
    /// The handler.
    pub handler: Handler,
}

impl fmt::Debug for ApiEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiEntry")
            .field("key", &self.key)
            .field("versions", &self.versions)
            .field("advertised_min", &self.advertised_min)
            .field("version_policy", &self.version_policy)
            .finish_non_exhaustive()
    }
}

/// Number of slots in the table: one per possible non-negative API key
/// below this bound (Kafka's keys are dense and well below it).
const TABLE_SLOTS: usize = 128;

/// The APIs a gateway serves, indexed by API key.
#[derive(Clone)]
pub struct DispatchTable {
    entries: Vec<Option<ApiEntry>>,
}

impl DispatchTable {
    /// A table serving nothing (tests build custom tables from it).
    pub fn empty() -> Self {
        Self {
            entries: vec![None; TABLE_SLOTS],
        }
    }

    /// Adds an API.
    ///
    /// # Panics
    ///
    /// On a programming error in the table itself, at startup: a key
    /// registered twice, an empty version range, a range the
    /// `kafka-protocol` crate cannot decode, an advertised minimum above
    /// the served one, or Produce not advertised from version 0.
    #[must_use]
    pub fn with(mut self, entry: ApiEntry) -> Self {
        let crate_range = entry.key.valid_versions();
        assert!(
            !entry.versions.is_empty()
                && entry.versions.min >= crate_range.min
                && entry.versions.max <= crate_range.max,
            "{}: served versions {} are not within the codec's {}",
            entry.name,
            entry.versions,
            crate_range
        );
        assert!(
            (0..=entry.versions.min).contains(&entry.advertised_min),
            "{}: advertised minimum {} must be in 0..={}",
            entry.name,
            entry.advertised_min,
            entry.versions.min
        );
        assert!(
            entry.key != ApiKey::Produce || entry.advertised_min == 0,
            "Produce must be advertised from version 0 (KAFKA-18659)"
        );
        let slot = usize::try_from(entry.key as i16)
            .ok()
            .and_then(|index| self.entries.get_mut(index))
            .unwrap_or_else(|| panic!("{}: API key outside the table", entry.name));
        assert!(slot.is_none(), "{}: registered twice", entry.name);
        *slot = Some(entry);
        self
    }

    /// The entry for an API key, if served.
    pub fn get(&self, api_key: i16) -> Option<&ApiEntry> {
        usize::try_from(api_key)
            .ok()
            .and_then(|index| self.entries.get(index))
            .and_then(Option::as_ref)
    }

    /// Served APIs in key order.
    pub fn entries(&self) -> impl Iterator<Item = &ApiEntry> {
        self.entries.iter().flatten()
    }

    /// The ApiVersions list: every served API, in key order, with its
    /// advertised range.
    pub fn advertised(&self) -> Vec<ApiVersion> {
        self.entries()
            .map(|entry| {
                let mut version = ApiVersion::default();
                version.api_key = entry.key as i16;
                version.min_version = entry.advertised_min;
                version.max_version = entry.versions.max;
                version
            })
            .collect()
    }
}

impl fmt::Debug for DispatchTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

/// Enough of a request to encode its response, cheap to copy into a
/// deferred future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Responder {
    /// The API answered.
    pub api_key: ApiKey,
    /// Its metric label.
    pub api_name: &'static str,
    /// The version to encode the response at.
    pub version: i16,
    /// Echoed in the response header.
    pub correlation_id: i32,
}

impl Responder {
    /// Encodes `body` at the request's version into a complete frame.
    pub fn frame<T: Encodable>(&self, body: &T) -> Result<ResponseFrame, CloseReason> {
        self.frame_at(body, self.version)
    }

    /// Encodes `body` at `version`, with the response header version that
    /// `(api, version)` calls for (always v0 for ApiVersions).
    pub fn frame_at<T: Encodable>(
        &self,
        body: &T,
        version: i16,
    ) -> Result<ResponseFrame, CloseReason> {
        let encode_failed = |source| CloseReason::EncodeFailed {
            api: self.api_name,
            version,
            source,
        };
        let header_version = self.api_key.response_header_version(version);
        let mut header = ResponseHeader::default();
        header.correlation_id = self.correlation_id;
        let size = header
            .compute_size(header_version)
            .and_then(|h| Ok(h + body.compute_size(version)?))
            .map_err(|e| encode_failed(e.into()))?;
        let size_prefix = i32::try_from(size).map_err(|_| {
            encode_failed(format!("response of {size} bytes exceeds a frame").into())
        })?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size_prefix);
        header
            .encode(&mut buf, header_version)
            .and_then(|()| body.encode(&mut buf, version))
            .map_err(|e| encode_failed(e.into()))?;
        debug_assert_eq!(buf.len(), 4 + size, "compute_size agrees with encode");
        Ok(ResponseFrame(buf.freeze()))
    }
}

/// A request whose header is decoded and whose API and version are served.
#[derive(Debug)]
pub struct ApiRequest {
    /// The decoded request header.
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// Its metric label.
    pub api_name: &'static str,
    /// The request version (outside the served range only for
    /// [`VersionPolicy::AnyVersion`] APIs).
    pub version: i16,
    /// The request body, after the header.
    pub body: Bytes,
    /// The table that routed the request (ApiVersions lists it).
    pub table: Arc<DispatchTable>,
    /// When the frame was read, for latency metrics and deadlines.
    pub received_at: Instant,
    /// Who sent it: the connection's principal and address, for the
    /// authorizer ([`ApiRequest::authorized`]).
    pub identity: Arc<Identity>,
}

impl ApiRequest {
    /// Decodes the body at the request's version.
    ///
    /// Caution for requests with arrays: `kafka-protocol` 0.18 calls
    /// `Vec::with_capacity` with each array's count as read from the wire,
    /// before decoding any element. A few bytes declaring two billion
    /// elements ask for an allocation that fails and aborts the process.
    /// ApiVersions has no arrays; handlers of APIs that do use
    /// [`ApiRequest::decode_bounded`] instead, until the crate bounds the
    /// counts itself.
    pub fn decode<T: Decodable>(&self) -> Result<T, CloseReason> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version).map_err(|e| CloseReason::MalformedRequest {
            api: self.api_name,
            version: self.version,
            source: e.into(),
        })
    }

    /// Decodes the body after checking it against `shape`, the request's
    /// layout: every array count must fit in the bytes that follow it (see
    /// [`crate::shape`]). A body that does not fit is malformed.
    pub fn decode_bounded<T: Decodable>(&self, shape: &[Field]) -> Result<T, CloseReason> {
        let flexible = self.api_key.request_header_version(self.version) >= 2;
        shape::check(shape, &self.body, self.version, flexible).map_err(|e| {
            CloseReason::MalformedRequest {
                api: self.api_name,
                version: self.version,
                source: e.into(),
            }
        })?;
        self.decode()
    }

    /// What a deferred future needs to encode the response.
    pub fn responder(&self) -> Responder {
        Responder {
            api_key: self.api_key,
            api_name: self.api_name,
            version: self.version,
            correlation_id: self.header.correlation_id,
        }
    }

    /// A ready reply with `body` encoded at the request's version.
    pub fn respond<T: Encodable>(&self, body: &T) -> Result<Reply, CloseReason> {
        self.responder().frame(body).map(Reply::Ready)
    }
}

/// Reads the API key and version at the start of a frame.
fn peek_key_and_version(frame: &[u8]) -> Result<(i16, i16), CloseReason> {
    match frame {
        [k0, k1, v0, v1, ..] => Ok((
            i16::from_be_bytes([*k0, *k1]),
            i16::from_be_bytes([*v0, *v1]),
        )),
        _ => Err(CloseReason::MalformedHeader {
            reason: format!("{} bytes cannot hold an API key and version", frame.len()),
        }),
    }
}

/// Decodes the header of `frame` and checks that the table serves its API at
/// its version.
pub fn route(
    table: &Arc<DispatchTable>,
    frame: Bytes,
    received_at: Instant,
) -> Result<(ApiEntry, ApiRequest), CloseReason> {
    let (raw_key, version) = peek_key_and_version(&frame)?;
    let api_key =
        ApiKey::try_from(raw_key).map_err(|()| CloseReason::UnknownApiKey { api_key: raw_key })?;
    let entry = *table
        .get(raw_key)
        .ok_or_else(|| CloseReason::UnsupportedApi {
            api_key: raw_key,
            name: format!("{api_key:?}"),
        })?;
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api_key.request_header_version(version))
        .map_err(|e| CloseReason::MalformedHeader {
            reason: e.to_string(),
        })?;
    let served = entry.versions.min..=entry.versions.max;
    if entry.version_policy == VersionPolicy::Strict && !served.contains(&version) {
        return Err(CloseReason::UnsupportedVersion {
            api: entry.name,
            version,
            min: entry.versions.min,
            max: entry.versions.max,
        });
    }
    trace!(
        api = entry.name,
        version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
        "request"
    );
    let request = ApiRequest {
        header,
        api_key,
        api_name: entry.name,
        version,
        body,
        table: Arc::clone(table),
        received_at,
        identity: Identity::anonymous(),
    };
    Ok((entry, request))
}

/// A request handed to its handler: what to send back, and for which API.
#[derive(Debug)]
pub struct Dispatched {
    /// The API's metric label.
    pub api: &'static str,
    /// The handler's reply.
    pub reply: Reply,
    /// Close the connection once the reply is written (a failed SASL
    /// authentication: Kafka answers, then closes).
    pub close_after: Option<CloseReason>,
}

/// Routes one request frame to its handler and runs the handler's ordered
/// part, recording request metrics. An `Err` closes the connection.
pub async fn dispatch(
    ctx: &Arc<GatewayContext>,
    table: &Arc<DispatchTable>,
    frame: Bytes,
    received_at: Instant,
) -> Result<Dispatched, CloseReason> {
    dispatch_as(ctx, table, &Identity::anonymous(), frame, received_at).await
}

/// [`dispatch`] on behalf of `identity` (the connection's authenticated
/// principal; see [`crate::security`]).
pub async fn dispatch_as(
    ctx: &Arc<GatewayContext>,
    table: &Arc<DispatchTable>,
    identity: &Arc<Identity>,
    frame: Bytes,
    received_at: Instant,
) -> Result<Dispatched, CloseReason> {
    let (entry, mut request) = route(table, frame, received_at)?;
    request.identity = Arc::clone(identity);
    let api = entry.name;
    metrics::counter!(telemetry::REQUESTS_TOTAL, "api" => api).increment(1);
    let observe = move || {
        metrics::histogram!(telemetry::REQUEST_DURATION_SECONDS, "api" => api)
            .record(received_at.elapsed().as_secs_f64());
    };
    let reply = match (entry.handler)(Arc::clone(ctx), request).await? {
        Reply::Deferred(pending) => Reply::deferred(async move {
            let response = pending.await;
            observe();
            response
        }),
        ready => {
            observe();
            ready
        }
    };
    Ok(Dispatched {
        api,
        reply,
        close_after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, HeartbeatResponse};
    use kafka_protocol::protocol::StrBytes;

    fn frame_of(api_key: i16, version: i16, header_version: i16) -> Bytes {
        let mut header = RequestHeader::default();
        header.request_api_key = api_key;
        header.request_api_version = version;
        header.correlation_id = 7;
        header.client_id = Some(StrBytes::from_static_str("unit"));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, header_version)
            .expect("header encodes");
        ApiVersionsRequest::default()
            .encode(&mut buf, version.clamp(0, 2))
            .expect("body encodes");
        buf.freeze()
    }

    fn never_called(_: Arc<GatewayContext>, _: ApiRequest) -> HandlerFuture {
        Box::pin(async { Ok(Reply::NoResponse) })
    }

    /// A row shaped like ApiVersions' (versions 0 to 4, every version handed
    /// to the handler) whose handler never runs: this module names no
    /// handler (the real table's tests are in `api/mod.rs`).
    fn api_versions_row() -> ApiEntry {
        ApiEntry {
            key: ApiKey::ApiVersions,
            name: "ApiVersions",
            versions: VersionRange { min: 0, max: 4 },
            advertised_min: 0,
            version_policy: VersionPolicy::AnyVersion,
            handler: never_called,
        }
    }

    fn table() -> Arc<DispatchTable> {
        Arc::new(DispatchTable::empty().with(api_versions_row()))
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn registering_an_api_twice_is_a_bug() {
        let _ = DispatchTable::empty()
            .with(api_versions_row())
            .with(api_versions_row());
    }

    #[test]
    #[should_panic(expected = "not within the codec")]
    fn serving_versions_the_codec_cannot_decode_is_a_bug() {
        let mut entry = api_versions_row();
        entry.versions = VersionRange { min: 0, max: 99 };
        let _ = DispatchTable::empty().with(entry);
    }

    #[test]
    #[should_panic(expected = "KAFKA-18659")]
    fn produce_advertised_from_its_served_minimum_is_a_bug() {
        let mut entry = api_versions_row();
        entry.key = ApiKey::Produce;
        entry.name = "Produce";
        entry.versions = VersionRange { min: 3, max: 13 };
        entry.advertised_min = 3;
        let _ = DispatchTable::empty().with(entry);
    }

    #[test]
    fn a_frame_too_short_for_key_and_version_is_a_malformed_header() {
        for len in 0..4 {
            let frame = Bytes::from(vec![0; len]);
            let error = route(&table(), frame, Instant::now()).expect_err("too short");
            assert_eq!(error.label(), "malformed_header");
        }
    }

    #[test]
    fn unknown_and_unserved_keys_are_told_apart() {
        let unknown =
            route(&table(), frame_of(999, 0, 1), Instant::now()).expect_err("unknown key");
        assert!(matches!(
            unknown,
            CloseReason::UnknownApiKey { api_key: 999 }
        ));
        let negative =
            route(&table(), frame_of(-1, 0, 1), Instant::now()).expect_err("negative key");
        assert!(matches!(
            negative,
            CloseReason::UnknownApiKey { api_key: -1 }
        ));
        let unserved = route(
            &table(),
            frame_of(ApiKey::BrokerHeartbeat as i16, 0, 1),
            Instant::now(),
        )
        .expect_err("not served");
        assert_eq!(unserved.label(), "unsupported_api");
    }

    #[test]
    fn a_header_cut_short_is_malformed() {
        let frame = frame_of(ApiKey::ApiVersions as i16, 2, 1);
        let error = route(&table(), frame.slice(..7), Instant::now()).expect_err("cut header");
        assert_eq!(error.label(), "malformed_header");
    }

    #[test]
    fn strict_apis_refuse_versions_outside_their_range() {
        let mut entry = api_versions_row();
        entry.version_policy = VersionPolicy::Strict;
        let table = Arc::new(DispatchTable::empty().with(entry));
        let error = route(
            &table,
            frame_of(ApiKey::ApiVersions as i16, 9, 2),
            Instant::now(),
        )
        .expect_err("v9 is beyond the range");
        assert!(matches!(
            error,
            CloseReason::UnsupportedVersion {
                version: 9,
                min: 0,
                max: 4,
                ..
            }
        ));
        let (_, request) = route(
            &table,
            frame_of(ApiKey::ApiVersions as i16, 1, 1),
            Instant::now(),
        )
        .expect("v1 is served");
        assert_eq!(request.header.correlation_id, 7);
        assert_eq!(request.header.client_id.as_deref(), Some("unit"));
    }

    #[test]
    fn responses_carry_the_correlation_id_and_an_exact_size_prefix() {
        let responder = Responder {
            api_key: ApiKey::Heartbeat,
            api_name: "Heartbeat",
            version: 4,
            correlation_id: 0x0102_0304,
        };
        let frame = responder
            .frame(&HeartbeatResponse::default())
            .expect("encodes");
        let bytes = frame.as_bytes();
        let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        assert_eq!(usize::try_from(size).ok(), Some(bytes.len() - 4));
        assert_eq!(&bytes[4..8], &[1, 2, 3, 4]);
        // Heartbeat v4 is flexible: header v1 adds an empty tagged-field section.
        assert_eq!(bytes[8], 0);
    }
}
