//! The admin tools' side of the wire: connections to brokers that know
//! which request versions the broker serves, the cluster's brokers from
//! Metadata, and errors that name the Kafka error and what to do about it.
//!
//! Framing, correlation ids and response decoding are
//! [`crate::bench::wire::Conn`]'s; this adds what talking to any Kafka
//! broker needs: ApiVersions (v0, which every broker since 0.10 answers)
//! on connect, and a version per API chosen from the range the tools
//! implement and the range the broker advertises.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use rustls_pki_types::ServerName;

use super::login::{authenticate, Login};
use crate::bench::wire::{AnyRead, AnyWrite, Conn};

/// How the tools reach a broker: each request's bound, and the SASL login
/// every new connection makes first, if any.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Bound on each connection attempt and each request.
    pub timeout: Duration,
    /// Who to log in as on a SASL listener.
    pub login: Option<Login>,
    /// TLS (an SSL or SASL_SSL listener), trusting the CA it was built
    /// with; plain TCP when `None`.
    pub tls: Option<tokio_rustls::TlsConnector>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("timeout", &self.timeout)
            .field("login", &self.login)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The name a broker at `addr` (host:port) must have in its certificate:
/// the host, a DNS name or an IP address.
fn server_name(addr: &str) -> Result<ServerName<'static>, AdminError> {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned())
        .map_err(|e| AdminError::Other(format!("{host:?} cannot name a TLS server: {e}")))
}

/// The client id the admin tools send.
pub const CLIENT_ID: &str = "cxlkafka-admin";

/// Metadata versions the tools speak: v1 has controller and internal flags,
/// v12 is the newest before topics may only be named by id.
pub const METADATA: (i16, i16) = (1, 12);
/// FindCoordinator: v4 batches keys; up to v3 one key per request.
const FIND_COORDINATOR: (i16, i16) = (0, 3);

/// An admin command's failure: what to print, and the exit status is 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// A Kafka error code the broker answered, about `what`.
    Kafka {
        /// The error code.
        code: i16,
        /// What it is about (`topic "x"`).
        what: String,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
    /// Anything else: a connection that failed, a bad flag value, an
    /// answer that makes no sense.
    Other(String),
}

impl AdminError {
    /// An error from a response's code, or `Ok` for 0.
    pub fn check(code: i16, what: impl FnOnce() -> String) -> Result<(), AdminError> {
        Self::check_with(code, what, None)
    }

    /// Like [`check`](Self::check), with the broker's error message.
    pub fn check_with(
        code: i16,
        what: impl FnOnce() -> String,
        message: Option<&StrBytes>,
    ) -> Result<(), AdminError> {
        if code == 0 {
            return Ok(());
        }
        Err(AdminError::Kafka {
            code,
            what: what(),
            message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
        })
    }

    /// The Kafka error code, if this is one.
    pub fn code(&self) -> Option<i16> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            AdminError::Other(_) => None,
        }
    }
}

impl From<String> for AdminError {
    fn from(message: String) -> Self {
        AdminError::Other(message)
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Kafka {
                code,
                what,
                message,
            } => {
                write!(f, "{}: {what}", error_name(*code))?;
                if let Some(message) = message {
                    write!(f, " ({message})")?;
                }
                if let Some(hint) = hint(*code) {
                    write!(f, "; {hint}")?;
                }
                Ok(())
            }
            AdminError::Other(message) => f.write_str(message),
        }
    }
}

/// Kafka's name of an error code, as its clients print it
/// (`TOPIC_ALREADY_EXISTS`): the crate's variant name in upper snake case.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(code)) => format!("UNKNOWN_ERROR_CODE_{code}"),
        Some(error) => {
            let camel = format!("{error:?}");
            let mut name = String::with_capacity(camel.len() + 8);
            for (index, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && index > 0 {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// What to do about an error, for the codes an operator meets.
fn hint(code: i16) -> Option<&'static str> {
    Some(match code {
        1 => "the offset is outside the partition's log; `topic describe` shows its start and end",
        3 => "check the name with `cxlkafka topic list`",
        5 | 6 | 14 | 15 | 16 => "the cluster is moving leadership; retry in a moment",
        7 => "the broker did not finish in time; raise --timeout-ms or check `cluster health`",
        19 | 20 => "too few brokers are up for the replication factor; see `cluster health`",
        29 | 30 | 31 | 53 => {
            "the principal lacks an ACL for this; ask an admin (`cxlkafka acl create`)"
        }
        35 => "the broker does not serve this request version",
        36 => "use `cxlkafka topic describe` to see it",
        37 => "a partition count must be positive, and add-partitions must raise it",
        38 => "the replication factor must be between 1 and the number of brokers",
        40 => "check the key and value; `topic describe` lists the current settings",
        42 => "the broker refused the request as malformed",
        44 => "a broker policy refused it",
        68 => "stop the group's consumers first",
        69 => "check the name with `cxlkafka group list`",
        33 => "pick a mechanism the listener offers with --sasl-mechanism",
        34 => "the listener expects a SASL login first: --sasl-mechanism",
        58 => "check --sasl-username and the password in --sasl-password-file",
        73 => "the broker runs without an authorizer (cxlkafka: `serve --authorizer`)",
        _ => return None,
    })
}

/// The newest version in both `ours` and `theirs` (the broker's advertised
/// range, `None` when it does not serve the API); why not, otherwise.
pub fn pick_version(
    api: ApiKey,
    ours: (i16, i16),
    theirs: Option<(i16, i16)>,
) -> Result<i16, String> {
    let Some((min, max)) = theirs else {
        return Err(format!("does not serve {api:?}"));
    };
    let version = ours.1.min(max);
    if version < ours.0.max(min) {
        return Err(format!(
            "serves {api:?} v{min}..v{max}; this tool speaks v{}..v{}",
            ours.0, ours.1
        ));
    }
    Ok(version)
}

/// One connection to a broker, with the versions it serves.
pub struct Broker {
    conn: Conn<AnyRead, AnyWrite>,
    /// API key -> (min, max) the broker advertised.
    versions: HashMap<i16, (i16, i16)>,
    /// host:port, for messages.
    pub addr: String,
    timeout: Duration,
}

impl Broker {
    /// Resolves `addr` (host:port), connects to the first address that
    /// answers, asks ApiVersions and logs in when `options` says so.
    pub async fn connect(addr: &str, options: &ConnectOptions) -> Result<Self, AdminError> {
        let timeout = options.timeout;
        let resolved: Vec<SocketAddr> =
            tokio::time::timeout(timeout, tokio::net::lookup_host(addr))
                .await
                .map_err(|_| format!("cannot resolve {addr}: timed out"))?
                .map_err(|e| format!("cannot resolve {addr}: {e}"))?
                .collect();
        let mut last = format!("{addr} resolves to no address");
        for socket in resolved {
            let tls = match &options.tls {
                Some(connector) => Some((connector, server_name(addr)?)),
                None => None,
            };
            match tokio::time::timeout(timeout, Conn::connect_any(socket, tls)).await {
                Ok(Ok(conn)) => {
                    let mut broker = Self {
                        conn: conn.with_client_id(CLIENT_ID),
                        versions: HashMap::new(),
                        addr: addr.to_owned(),
                        timeout,
                    };
                    let response: ApiVersionsResponse = broker
                        .call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
                        .await?;
                    AdminError::check(response.error_code, || format!("ApiVersions of {addr}"))?;
                    broker.versions = response
                        .api_keys
                        .iter()
                        .map(|api| (api.api_key, (api.min_version, api.max_version)))
                        .collect();
                    if let Some(login) = &options.login {
                        authenticate(&mut broker, login).await?;
                    }
                    return Ok(broker);
                }
                Ok(Err(error)) => last = error,
                Err(_) => last = format!("cannot connect to {socket}: timed out"),
            }
        }
        Err(AdminError::Other(last))
    }

    /// The newest version of `api` in both `ours` and the broker's range.
    pub fn version(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, AdminError> {
        pick_version(api, ours, self.versions.get(&(api as i16)).copied())
            .map_err(|reason| AdminError::Other(format!("the broker at {} {reason}", self.addr)))
    }

    /// Whether the broker serves `api` at all.
    pub fn serves(&self, api: ApiKey) -> bool {
        self.versions.contains_key(&(api as i16))
    }

    /// Sends one request at `version` and waits (at most the timeout) for
    /// its response.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, AdminError> {
        match tokio::time::timeout(self.timeout, self.conn.call(api, version, body)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(AdminError::Other(format!(
                "{api:?} to {}: {error}",
                self.addr
            ))),
            Err(_) => Err(AdminError::Other(format!(
                "{api:?} to {}: no answer within {} ms (--timeout-ms)",
                self.addr,
                self.timeout.as_millis()
            ))),
        }
    }

    /// Sends one request that gets no response (Produce with acks=0).
    pub async fn send<Req: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<(), AdminError> {
        self.conn
            .send(api, version, body)
            .await
            .map(drop)
            .map_err(|e| AdminError::Other(format!("{api:?} to {}: {e}", self.addr)))
    }
}

/// The cluster as the tools see it: a bootstrap connection, the brokers
/// Metadata lists, and connections to them opened when first needed.
pub struct Admin {
    bootstrap: Broker,
    /// Node id -> host:port, from the last Metadata.
    brokers: BTreeMap<i32, String>,
    conns: HashMap<i32, Broker>,
    /// How every new connection is made, and every request's bound.
    pub options: ConnectOptions,
}

impl Admin {
    /// Connects to the first of the comma-separated `bootstrap` addresses
    /// that answers.
    pub async fn connect(bootstrap: &str, options: ConnectOptions) -> Result<Self, AdminError> {
        let mut last = AdminError::Other("--bootstrap names no broker".into());
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Broker::connect(addr, &options).await {
                Ok(broker) => {
                    return Ok(Self {
                        bootstrap: broker,
                        brokers: BTreeMap::new(),
                        conns: HashMap::new(),
                        options,
                    })
                }
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// The bootstrap broker's connection.
    pub fn bootstrap(&mut self) -> &mut Broker {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (every topic for `None`), never creating one;
    /// remembers the brokers it lists.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<MetadataResponse, AdminError> {
        let version = self.bootstrap.version(ApiKey::Metadata, METADATA)?;
        let mut request = MetadataRequest::default().with_topics(topics.map(|names| {
            names
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                })
                .collect()
        }));
        if version >= 4 {
            request.allow_auto_topic_creation = false;
        }
        let response: MetadataResponse = self
            .bootstrap
            .call(ApiKey::Metadata, version, &request)
            .await?;
        self.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(response)
    }

    /// The brokers of the last Metadata: node id -> host:port.
    pub fn brokers(&self) -> &BTreeMap<i32, String> {
        &self.brokers
    }

    /// A connection to broker `node_id` (as the last Metadata names it).
    pub async fn broker(&mut self, node_id: i32) -> Result<&mut Broker, AdminError> {
        if !self.conns.contains_key(&node_id) {
            let addr = self.brokers.get(&node_id).cloned().ok_or_else(|| {
                AdminError::Other(format!("broker {node_id} is not in the cluster's metadata"))
            })?;
            let broker = Broker::connect(&addr, &self.options).await?;
            self.conns.insert(node_id, broker);
        }
        self.conns
            .get_mut(&node_id)
            .ok_or_else(|| AdminError::Other(format!("broker {node_id}: no connection")))
    }

    /// A connection to the coordinator of `group` (FindCoordinator, retried
    /// while the coordinator is being elected or loads).
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Broker, AdminError> {
        let version = self
            .bootstrap
            .version(ApiKey::FindCoordinator, FIND_COORDINATOR)?;
        let mut request =
            FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_owned()));
        if version >= 1 {
            request.key_type = 0; // a group
        }
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let response = loop {
            let response: FindCoordinatorResponse = self
                .bootstrap
                .call(ApiKey::FindCoordinator, version, &request)
                .await?;
            // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: a
            // new group's coordinator is chosen on first ask; ask again.
            if matches!(response.error_code, 14 | 15) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            break response;
        };
        AdminError::check_with(
            response.error_code,
            || format!("coordinator of group {group:?}"),
            response.error_message.as_ref(),
        )?;
        let node_id = response.node_id.0;
        self.brokers.insert(
            node_id,
            format!("{}:{}", response.host.as_str(), response.port),
        );
        self.broker(node_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(68), "NON_EMPTY_GROUP");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE_30000");
    }

    #[test]
    fn the_version_is_the_newest_both_sides_speak() {
        let fetch = ApiKey::Fetch;
        assert_eq!(pick_version(fetch, (4, 12), Some((0, 17))), Ok(12));
        assert_eq!(pick_version(fetch, (4, 12), Some((4, 8))), Ok(8));
        assert_eq!(pick_version(fetch, (4, 12), Some((4, 4))), Ok(4));
        assert!(pick_version(fetch, (4, 12), Some((0, 3)))
            .unwrap_err()
            .contains("v0..v3; this tool speaks v4..v12"));
        assert!(pick_version(fetch, (4, 12), Some((13, 17))).is_err());
        assert_eq!(
            pick_version(fetch, (4, 12), None),
            Err("does not serve Fetch".into())
        );
    }

    #[test]
    fn a_kafka_error_prints_its_name_subject_and_hint() {
        let error = AdminError::check(36, || "topic \"x\"".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "TOPIC_ALREADY_EXISTS: topic \"x\"; use `cxlkafka topic describe` to see it"
        );
        assert_eq!(error.code(), Some(36));
        assert!(AdminError::check(0, || unreachable!()).is_ok());
    }
}
