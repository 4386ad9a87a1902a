//! SASL and ACLs over real sockets: what a SASL listener answers before,
//! during and after authentication (as Kafka's SaslServerAuthenticator
//! does), the mechanisms a listener enables, the delay before a failed
//! authentication is answered, SCRAM-SHA-256 and PLAIN against stored
//! credentials, the ACL authorizer on Produce, Fetch, Metadata,
//! DescribeAcls and `__cxlkafka_order`, and users surviving a gateway
//! restart.

mod common;
mod data_path;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use common::{api_versions_request, decode_response, request_frame, Client, PROMPTLY};
use cxlkafka_gateway::cluster::{open_cluster, ClusterOptions, RegionSettings};
use cxlkafka_gateway::context::AdvertisedListener;
use cxlkafka_gateway::security::scram::{ScramCredential, ScramMechanism};
use cxlkafka_gateway::security::{
    ListenerKind, ListenerSecurity, SaslMechanisms, SecurityConfig, WithoutAcls,
};
use cxlkafka_gateway::{telemetry, DispatchTable, GatewayContext, Server, ServerHandle};
use cxlkafka_sequencer::control::ControlRecord;
use data_path::{batch, call, decode_records, fetch, metadata_request, produce};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse, MetadataRequest, MetadataResponse, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use ring::{digest, hmac};
use tokio::sync::oneshot;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// A gateway whose plain listener is SASL_PLAINTEXT, with users `alice`
/// and `admin` (a super user), on a region of its own.
struct SaslGateway {
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<ServerHandle>,
}

fn settings(dir: &std::path::Path) -> (RegionSettings, PathBuf) {
    (
        RegionSettings {
            path: dir.join("region"),
            bytes: 64 << 20,
            max_gateways: 2,
            cluster: "security".into(),
            non_coherent: false,
        },
        dir.join("data"),
    )
}

fn options(data_dir: PathBuf, port: u16) -> ClusterOptions {
    ClusterOptions {
        node_id: Some(0),
        advertised_host: "127.0.0.1".into(),
        advertised_port: port,
        lease_timeout: Duration::from_secs(1),
        data_dir,
        segment_bytes: 1 << 20,
        region_path: None,
        adopt_data_dir: false,
        unclean_region_rebuild: false,
        peer_listen: None,
    }
}

fn user(name: &str, password: &str) -> ControlRecord {
    let credential = ScramCredential::from_password(
        ScramMechanism::Sha256,
        password.as_bytes(),
        vec![7; 16],
        4096,
    );
    ControlRecord::UpsertScramCredential {
        user: name.into(),
        mechanism: 1,
        iterations: credential.iterations,
        salt: credential.salt,
        stored_key: credential.stored_key,
        server_key: credential.server_key,
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cxlkafka-security-test")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}

/// How a test's SASL gateway is set up.
#[derive(Clone, Copy)]
struct Setup {
    /// `--authorizer`.
    authorizer: bool,
    /// `--listen-sasl-mechanisms`.
    mechanisms: SaslMechanisms,
    /// `--connection-failed-authentication-delay-ms`.
    failure_delay: Duration,
    /// `--allow-everyone-if-no-acl-found`.
    without_acls: WithoutAcls,
}

impl Default for Setup {
    /// Every mechanism, failures answered at once, no authorizer.
    fn default() -> Self {
        Self {
            authorizer: false,
            mechanisms: SaslMechanisms::ALL,
            failure_delay: Duration::ZERO,
            without_acls: WithoutAcls::Deny,
        }
    }
}

impl SaslGateway {
    async fn start(authorizer: bool) -> Self {
        Self::start_with(Setup {
            authorizer,
            ..Setup::default()
        })
        .await
    }

    async fn start_with(setup: Setup) -> Self {
        let server = Server::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .with_security(Arc::new(ListenerSecurity {
                kind: ListenerKind::Plain,
                tls: None,
                sasl: true,
                sasl_mechanisms: setup.mechanisms,
            }));
        let addr = server.local_addr();
        let dir = temp_dir();
        let (region, data) = settings(dir.path());
        let options = options(data, addr.port());
        let log = tokio::task::spawn_blocking(move || open_cluster(&region, options))
            .await
            .expect("join")
            .expect("open the region");
        for record in [user("alice", "alice-secret"), user("admin", "admin-secret")] {
            let completion = log.control(&record, PROMPTLY).await.expect("ordered");
            assert_eq!(completion.error, 0);
        }
        let ctx = GatewayContext::new(log, "security", AdvertisedListener::from_socket_addr(addr))
            .with_security(SecurityConfig {
                authorizer: setup.authorizer,
                super_users: vec!["User:admin".into()],
                without_acls: setup.without_acls,
                tls_advertised: None,
                failed_authentication_delay: setup.failure_delay,
            });
        let (tx, rx) = oneshot::channel::<()>();
        let handle = server.spawn(
            Arc::new(ctx),
            Arc::new(DispatchTable::standard()),
            async move {
                let _ = rx.await;
            },
        );
        Self {
            addr,
            _dir: dir,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(PROMPTLY * 3, handle.stopped())
                .await
                .expect("stops in time");
        }
    }
}

async fn handshake(client: &mut Client, mechanism: &str, version: i16) -> SaslHandshakeResponse {
    let mut request = SaslHandshakeRequest::default();
    request.mechanism = StrBytes::from_string(mechanism.to_owned());
    call(client, ApiKey::SaslHandshake, version, 1, &request).await
}

async fn authenticate(client: &mut Client, token: &[u8]) -> SaslAuthenticateResponse {
    let mut request = SaslAuthenticateRequest::default();
    request.auth_bytes = Bytes::copy_from_slice(token);
    call(client, ApiKey::SaslAuthenticate, 2, 1, &request).await
}

/// PLAIN login; the SaslAuthenticate error code.
async fn plain_login(client: &mut Client, user: &str, password: &str) -> i16 {
    assert_eq!(handshake(client, "PLAIN", 1).await.error_code, 0);
    let token = format!("\0{user}\0{password}");
    authenticate(client, token.as_bytes()).await.error_code
}

/// A connected client authenticated with PLAIN.
async fn logged_in(addr: std::net::SocketAddr, user: &str, password: &str) -> Client {
    let mut client = Client::connect(addr).await;
    assert_eq!(plain_login(&mut client, user, password).await, 0);
    client
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// The client side of SCRAM-SHA-256 (RFC 5802); the final error code.
async fn scram_login(client: &mut Client, user: &str, password: &str) -> i16 {
    let handshake = handshake(client, "SCRAM-SHA-256", 1).await;
    assert_eq!(handshake.error_code, 0);
    let client_nonce = "fyko+d2lbbFgONRv9qkxdawL";
    let first_bare = format!("n={user},r={client_nonce}");
    let first = authenticate(client, format!("n,,{first_bare}").as_bytes()).await;
    if first.error_code != 0 {
        return first.error_code;
    }
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).expect("UTF-8");
    let field = |prefix: &str| {
        server_first
            .split(',')
            .find_map(|part| part.strip_prefix(prefix))
            .expect("server-first field")
            .to_owned()
    };
    let nonce = field("r=");
    assert!(nonce.starts_with(client_nonce) && nonce.len() > client_nonce.len());
    let salt = BASE64.decode(field("s=")).expect("salt");
    let iterations: u32 = field("i=").parse().expect("iterations");
    let salted = ScramMechanism::Sha256.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = hmac256(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac256(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let last = format!("{without_proof},p={}", BASE64.encode(proof));
    let final_response = authenticate(client, last.as_bytes()).await;
    if final_response.error_code == 0 {
        let server_key = hmac256(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            BASE64.encode(hmac256(&server_key, auth_message.as_bytes()))
        );
        assert_eq!(final_response.auth_bytes.as_ref(), expected.as_bytes());
        assert_eq!(final_response.session_lifetime_ms, 0);
    }
    final_response.error_code
}

#[tokio::test]
async fn requests_before_authentication_close_the_connection() {
    let gateway = SaslGateway::start(false).await;
    let mut client = Client::connect(gateway.addr).await;
    client
        .send(&request_frame(
            ApiKey::Metadata,
            12,
            12,
            1,
            &MetadataRequest::default(),
        ))
        .await;
    client.expect_closed().await;
    gateway.stop().await;
}

/// Before authenticating, a frame above 512 KiB (Kafka's
/// `sasl.server.max.receive.size`) closes the connection on its size
/// prefix; once authenticated, `--max-frame-bytes` applies.
#[tokio::test]
async fn frames_before_authentication_are_bounded_to_512_kib() {
    let gateway = SaslGateway::start(false).await;
    let mut stranger = Client::connect(gateway.addr).await;
    stranger.send(&(600u32 << 10).to_be_bytes()).await;
    stranger.expect_closed().await;

    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    let created: MetadataResponse = call(
        &mut alice,
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&["large"]),
    )
    .await;
    assert_eq!(created.topics[0].error_code, 0);
    let value = vec![7u8; 600 << 10];
    let (error, offset) = produce(
        &mut alice,
        "large",
        0,
        batch(&[&value], 1_700_000_000_000, None),
    )
    .await;
    assert_eq!(
        (error, offset),
        (0, 0),
        "a 600 KiB batch once authenticated"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn api_versions_is_answered_before_authentication_and_unknown_mechanisms_are_refused() {
    let gateway = SaslGateway::start(false).await;
    let mut client = Client::connect(gateway.addr).await;
    client.send(&api_versions_request(3, 1)).await;
    let payload = client.read_frame().await.expect("ApiVersions is answered");
    let (_, versions): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 3);
    assert_eq!(versions.error_code, 0);
    for api in [
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
        ApiKey::CreateAcls,
    ] {
        assert!(versions.api_keys.iter().any(|v| v.api_key == api as i16));
    }
    let refused = handshake(&mut client, "GSSAPI", 1).await;
    assert_eq!(refused.error_code, UNSUPPORTED_SASL_MECHANISM);
    let offered: Vec<&str> = refused.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn other_requests_during_the_exchange_close_the_connection() {
    let gateway = SaslGateway::start(false).await;
    let mut client = Client::connect(gateway.addr).await;
    assert_eq!(handshake(&mut client, "PLAIN", 1).await.error_code, 0);
    client
        .send(&request_frame(
            ApiKey::Metadata,
            12,
            12,
            2,
            &metadata_request(&[]),
        ))
        .await;
    client.expect_closed().await;

    // ApiVersions in the middle of the exchange: ILLEGAL_SASL_STATE, then
    // the connection closes.
    let mut client = Client::connect(gateway.addr).await;
    assert_eq!(
        handshake(&mut client, "SCRAM-SHA-256", 1).await.error_code,
        0
    );
    client.send(&api_versions_request(3, 3)).await;
    let payload = client.read_frame().await.expect("an answer");
    let (_, versions): (_, ApiVersionsResponse) =
        decode_response(payload, ApiKey::ApiVersions, 3, 0);
    assert_eq!(versions.error_code, ILLEGAL_SASL_STATE);
    client.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn scram_sha_256_authenticates_only_with_the_right_password() {
    let gateway = SaslGateway::start(false).await;
    let mut client = Client::connect(gateway.addr).await;
    assert_eq!(scram_login(&mut client, "alice", "alice-secret").await, 0);
    let metadata: MetadataResponse =
        call(&mut client, ApiKey::Metadata, 12, 7, &metadata_request(&[])).await;
    assert_eq!(metadata.brokers.len(), 1);
    // Authenticated: another handshake is out of place.
    assert_eq!(
        handshake(&mut client, "PLAIN", 1).await.error_code,
        ILLEGAL_SASL_STATE
    );

    let mut wrong = Client::connect(gateway.addr).await;
    assert_eq!(
        scram_login(&mut wrong, "alice", "not-her-password").await,
        SASL_AUTHENTICATION_FAILED
    );
    wrong.expect_closed().await;

    let mut unknown = Client::connect(gateway.addr).await;
    assert_eq!(
        scram_login(&mut unknown, "mallory", "x").await,
        SASL_AUTHENTICATION_FAILED
    );
    unknown.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn plain_checks_the_password_against_the_stored_scram_credential() {
    let gateway = SaslGateway::start(false).await;
    let mut good = Client::connect(gateway.addr).await;
    assert_eq!(plain_login(&mut good, "alice", "alice-secret").await, 0);
    let mut bad = Client::connect(gateway.addr).await;
    assert_eq!(
        plain_login(&mut bad, "alice", "alice-secret!").await,
        SASL_AUTHENTICATION_FAILED
    );
    bad.expect_closed().await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_v0_handshake_exchanges_bare_tokens() {
    let gateway = SaslGateway::start(false).await;
    let mut client = Client::connect(gateway.addr).await;
    assert_eq!(handshake(&mut client, "PLAIN", 0).await.error_code, 0);
    let token = b"\0alice\0alice-secret";
    let mut frame = (token.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(token);
    client.send(&frame).await;
    let answer = client.read_frame().await.expect("a bare (empty) token");
    assert!(answer.is_empty());
    let metadata: MetadataResponse =
        call(&mut client, ApiKey::Metadata, 12, 2, &metadata_request(&[])).await;
    assert_eq!(metadata.brokers.len(), 1);
    gateway.stop().await;
}

fn acl(operation: i8) -> AclCreation {
    alice_may(TOPIC, "payments", operation)
}

const TOPIC: i8 = 2;
const CLUSTER: i8 = 4;
const READ: i8 = 3;
const DESCRIBE: i8 = 8;

/// ALLOW `User:alice` `operation` on the literal resource `(kind, name)`.
fn alice_may(kind: i8, name: &'static str, operation: i8) -> AclCreation {
    let mut creation = AclCreation::default();
    creation.resource_type = kind;
    creation.resource_name = StrBytes::from_static_str(name);
    creation.resource_pattern_type = 3; // LITERAL
    creation.principal = StrBytes::from_static_str("User:alice");
    creation.host = StrBytes::from_static_str("*");
    creation.operation = operation;
    creation.permission_type = 3; // ALLOW
    creation
}

/// Creates ACLs as `admin` (a super user); every one must be created.
async fn grant(admin: &mut Client, creations: Vec<AclCreation>) {
    let mut request = CreateAclsRequest::default();
    request.creations = creations;
    let created: CreateAclsResponse = call(admin, ApiKey::CreateAcls, 3, 40, &request).await;
    assert!(
        created.results.iter().all(|r| r.error_code == 0),
        "{created:?}"
    );
}

#[tokio::test]
async fn allow_everyone_if_no_acl_found_opens_only_resources_without_acls() {
    let gateway = SaslGateway::start_with(Setup {
        authorizer: true,
        without_acls: WithoutAcls::Allow,
        ..Setup::default()
    })
    .await;
    let mut admin = logged_in(gateway.addr, "admin", "admin-secret").await;
    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    let records = || batch(&[b"one"], 1_700_000_000_000, None);
    // No ACL anywhere: alice creates the topic (CREATE on the cluster),
    // writes and reads it.
    let created: MetadataResponse = call(
        &mut alice,
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&["open"]),
    )
    .await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    assert_eq!(produce(&mut alice, "open", 0, records()).await, (0, 0));
    assert_eq!(fetch(&mut alice, "open", 0, 0).await.high_watermark, 1);
    // An ACL on the topic for someone else: it is guarded now, and alice
    // has no ALLOW.
    let mut bob_reads = alice_may(TOPIC, "open", READ);
    bob_reads.principal = StrBytes::from_static_str("User:bob");
    grant(&mut admin, vec![bob_reads]).await;
    assert_eq!(
        produce(&mut alice, "open", 0, records()).await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        fetch(&mut alice, "open", 0, 0).await.error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    gateway.stop().await;
}

#[tokio::test]
async fn acls_decide_who_produces_and_fetches() {
    let gateway = SaslGateway::start(true).await;
    let mut admin = logged_in(gateway.addr, "admin", "admin-secret").await;
    let created: MetadataResponse = call(
        &mut admin,
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&["payments"]),
    )
    .await;
    assert_eq!(
        created.topics[0].error_code, 0,
        "a super user creates topics"
    );

    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    let records = || batch(&[b"one"], 1_700_000_000_000, None);
    assert_eq!(
        produce(&mut alice, "payments", 0, records()).await.0,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        fetch(&mut alice, "payments", 0, 0).await.error_code,
        TOPIC_AUTHORIZATION_FAILED
    );
    let mut all = MetadataRequest::default();
    all.topics = None;
    let listed: MetadataResponse = call(&mut alice, ApiKey::Metadata, 12, 3, &all).await;
    assert!(listed.topics.is_empty(), "unauthorized topics are hidden");
    let mut grant = CreateAclsRequest::default();
    grant.creations = vec![acl(4), acl(3)]; // WRITE, READ
    let refused: CreateAclsResponse = call(&mut alice, ApiKey::CreateAcls, 3, 4, &grant).await;
    assert!(refused
        .results
        .iter()
        .all(|r| r.error_code == CLUSTER_AUTHORIZATION_FAILED));

    let granted: CreateAclsResponse = call(&mut admin, ApiKey::CreateAcls, 3, 5, &grant).await;
    assert!(
        granted.results.iter().all(|r| r.error_code == 0),
        "{granted:?}"
    );
    let (error, offset) = produce(&mut alice, "payments", 0, records()).await;
    assert_eq!((error, offset), (0, 0));
    let fetched = fetch(&mut alice, "payments", 0, 0).await;
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.high_watermark, 1);
    let listed: MetadataResponse = call(&mut alice, ApiKey::Metadata, 12, 6, &all).await;
    assert_eq!(listed.topics.len(), 1, "READ implies DESCRIBE");
    gateway.stop().await;
}

#[tokio::test]
async fn users_survive_a_gateway_restart() {
    let dir = temp_dir();
    let (region, data) = settings(dir.path());
    let open = |region: RegionSettings, data: PathBuf| async move {
        tokio::task::spawn_blocking(move || open_cluster(&region, options(data, 1)))
            .await
            .expect("join")
            .expect("open the region")
    };
    let log = open(region.clone(), data.clone()).await;
    log.control(&user("carol", "carol-secret"), PROMPTLY)
        .await
        .expect("ordered");
    assert!(log
        .security()
        .credential("carol", ScramMechanism::Sha256)
        .is_some());
    tokio::task::spawn_blocking(move || log.shutdown())
        .await
        .expect("stops");
    let reopened = open(region, data).await;
    let credential = reopened
        .security()
        .credential("carol", ScramMechanism::Sha256)
        .expect("reloaded at restart");
    assert!(credential.verify_password(b"carol-secret"));
    tokio::task::spawn_blocking(move || reopened.shutdown())
        .await
        .expect("stops");
}

/// A DescribeAcls filter that matches every binding (ANY everywhere).
fn every_acl() -> DescribeAclsRequest {
    let mut filter = DescribeAclsRequest::default();
    filter.resource_type_filter = 1;
    filter.resource_name_filter = None;
    filter.pattern_type_filter = 1;
    filter.principal_filter = None;
    filter.host_filter = None;
    filter.operation = 1;
    filter.permission_type = 1;
    filter
}

/// DescribeAcls needs DESCRIBE on the cluster, as in Kafka: a principal
/// without it gets CLUSTER_AUTHORIZATION_FAILED (31), not an empty list,
/// even when it holds rights on a topic.
#[tokio::test]
async fn describe_acls_needs_describe_on_the_cluster() {
    let gateway = SaslGateway::start(true).await;
    let mut admin = logged_in(gateway.addr, "admin", "admin-secret").await;
    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    for version in [1, 3] {
        let refused: DescribeAclsResponse =
            call(&mut alice, ApiKey::DescribeAcls, version, 1, &every_acl()).await;
        assert_eq!(
            refused.error_code, CLUSTER_AUTHORIZATION_FAILED,
            "v{version}"
        );
        assert!(refused.resources.is_empty());
    }

    grant(&mut admin, vec![acl(READ)]).await;
    let refused: DescribeAclsResponse =
        call(&mut alice, ApiKey::DescribeAcls, 3, 2, &every_acl()).await;
    assert_eq!(
        refused.error_code, CLUSTER_AUTHORIZATION_FAILED,
        "READ on a topic does not let alice list ACLs"
    );
    assert!(refused.resources.is_empty());

    let listed: DescribeAclsResponse =
        call(&mut admin, ApiKey::DescribeAcls, 3, 3, &every_acl()).await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.resources.len(), 1, "{listed:?}");
    assert_eq!(listed.resources[0].resource_name.as_str(), "payments");

    grant(
        &mut admin,
        vec![alice_may(CLUSTER, "kafka-cluster", DESCRIBE)],
    )
    .await;
    let listed: DescribeAclsResponse =
        call(&mut alice, ApiKey::DescribeAcls, 3, 4, &every_acl()).await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.resources.len(), 2, "{listed:?}");
    gateway.stop().await;
}

/// Every record value fetched from `__cxlkafka_order` at offset 0, as text.
async fn read_order_topic(client: &mut Client) -> (i16, String) {
    let answer = fetch(client, "__cxlkafka_order", 0, 0).await;
    let text = answer
        .records
        .as_ref()
        .filter(|records| !records.is_empty())
        .map(|records| {
            decode_records(records)
                .into_iter()
                .map(|(_, _, value)| String::from_utf8_lossy(&value).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    (answer.error_code, text)
}

/// `__cxlkafka_order` names every topic: READ on it is not enough, the
/// reader also needs DESCRIBE on the cluster, so a principal does not learn
/// from it the names Metadata hides.
#[tokio::test]
async fn the_order_topic_does_not_name_hidden_topics() {
    let gateway = SaslGateway::start(true).await;
    let mut admin = logged_in(gateway.addr, "admin", "admin-secret").await;
    let hidden = "hidden-payroll";
    let created: MetadataResponse = call(
        &mut admin,
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&[hidden]),
    )
    .await;
    assert_eq!(created.topics[0].error_code, 0);
    let (error, _) = produce(
        &mut admin,
        hidden,
        0,
        batch(&[b"x"], 1_700_000_000_000, None),
    )
    .await;
    assert_eq!(error, 0);
    // The super user sees the batch in the order (once this gateway has
    // applied it).
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let (error, text) = read_order_topic(&mut admin).await;
        assert_eq!(error, 0);
        if text.contains(hidden) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the order never named {hidden}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    grant(&mut admin, vec![alice_may(TOPIC, "__cxlkafka_order", READ)]).await;
    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    let mut all = MetadataRequest::default();
    all.topics = None;
    let listed: MetadataResponse = call(&mut alice, ApiKey::Metadata, 12, 2, &all).await;
    assert!(
        listed
            .topics
            .iter()
            .all(|t| t.name.as_ref().is_none_or(|name| name.as_str() != hidden)),
        "Metadata hides the topic"
    );
    let (error, text) = read_order_topic(&mut alice).await;
    assert_eq!(error, TOPIC_AUTHORIZATION_FAILED);
    assert!(!text.contains(hidden), "{text}");

    // DESCRIBE on the cluster (and READ on the order topic) is the right
    // to see every topic's batches.
    grant(
        &mut admin,
        vec![alice_may(CLUSTER, "kafka-cluster", DESCRIBE)],
    )
    .await;
    let (error, text) = read_order_topic(&mut alice).await;
    assert_eq!(error, 0);
    assert!(text.contains(hidden), "{text}");
    gateway.stop().await;
}

/// `--listen-sasl-mechanisms`: a SaslHandshake naming a mechanism the
/// listener does not enable (here PLAIN on an unencrypted listener) gets
/// UNSUPPORTED_SASL_MECHANISM with the listener's list, at v0 and v1, and
/// the connection closes; the enabled ones still work.
#[tokio::test]
async fn a_listener_refuses_mechanisms_it_does_not_enable() {
    let scram_only = SaslMechanisms::parse("SCRAM-SHA-256,SCRAM-SHA-512").expect("a list");
    let gateway = SaslGateway::start_with(Setup {
        mechanisms: scram_only,
        ..Setup::default()
    })
    .await;
    for version in [0, 1] {
        let mut client = Client::connect(gateway.addr).await;
        let refused = handshake(&mut client, "PLAIN", version).await;
        assert_eq!(refused.error_code, UNSUPPORTED_SASL_MECHANISM, "v{version}");
        let offered: Vec<&str> = refused.mechanisms.iter().map(|m| m.as_str()).collect();
        assert_eq!(offered, ["SCRAM-SHA-256", "SCRAM-SHA-512"]);
        client.expect_closed().await;
    }
    let mut client = Client::connect(gateway.addr).await;
    let accepted = handshake(&mut client, "SCRAM-SHA-512", 1).await;
    assert_eq!(accepted.error_code, 0);
    let offered: Vec<&str> = accepted.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["SCRAM-SHA-256", "SCRAM-SHA-512"]);
    let mut client = Client::connect(gateway.addr).await;
    assert_eq!(scram_login(&mut client, "alice", "alice-secret").await, 0);
    gateway.stop().await;
}

/// This binary's Prometheus recorder, installed by the first caller. Only
/// the delay test sets a delay, so only it adds to the delayed-failure
/// counter, whatever the other tests do meanwhile.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .install_recorder()
            .expect("install a recorder")
    })
}

fn delayed_failures(mechanism: &str) -> f64 {
    let series = format!(
        "{}{{mechanism=\"{mechanism}\"}} ",
        telemetry::SASL_DELAYED_FAILURES_TOTAL
    );
    recorder()
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// Kafka's `connection.failed.authentication.delay.ms`: a wrong password
/// is answered (and the connection closed) no sooner than the delay, while
/// other connections are served; each delayed failure is counted. Only the
/// lower bound is asserted: the delay happened.
#[tokio::test]
async fn a_failed_authentication_is_answered_after_the_delay() {
    let before = delayed_failures("PLAIN");
    let delay = Duration::from_secs(2);
    let gateway = SaslGateway::start_with(Setup {
        failure_delay: delay,
        ..Setup::default()
    })
    .await;

    let mut guesser = Client::connect(gateway.addr).await;
    assert_eq!(handshake(&mut guesser, "PLAIN", 1).await.error_code, 0);
    let mut guess = SaslAuthenticateRequest::default();
    guess.auth_bytes = Bytes::from_static(b"\0alice\0not-her-password");
    let sent = Instant::now();
    guesser
        .send(&request_frame(ApiKey::SaslAuthenticate, 2, 2, 9, &guess))
        .await;
    // Another connection is served meanwhile, the guess still unanswered.
    let mut alice = logged_in(gateway.addr, "alice", "alice-secret").await;
    let metadata: MetadataResponse =
        call(&mut alice, ApiKey::Metadata, 12, 2, &metadata_request(&[])).await;
    assert_eq!(metadata.brokers.len(), 1);
    guesser.expect_silence(Duration::from_millis(1)).await;

    let payload = guesser
        .read_frame_within(delay + PROMPTLY)
        .await
        .expect("the guess is answered");
    let waited = sent.elapsed();
    assert!(
        waited >= delay,
        "answered after {waited:?}, within the {delay:?} delay"
    );
    let (_, answer): (_, SaslAuthenticateResponse) =
        decode_response(payload, ApiKey::SaslAuthenticate, 2, 2);
    assert_eq!(answer.error_code, SASL_AUTHENTICATION_FAILED);
    guesser.expect_closed().await;
    assert_eq!(delayed_failures("PLAIN"), before + 1.0);

    // A mechanism the listener does not offer waits as long.
    let unsupported = delayed_failures("unsupported");
    let mut prober = Client::connect(gateway.addr).await;
    let asked = Instant::now();
    let refused = handshake(&mut prober, "GSSAPI", 1).await;
    assert_eq!(refused.error_code, UNSUPPORTED_SASL_MECHANISM);
    assert!(
        asked.elapsed() >= delay,
        "refused after {:?}",
        asked.elapsed()
    );
    prober.expect_closed().await;
    assert_eq!(delayed_failures("unsupported"), unsupported + 1.0);
    gateway.stop().await;
}
