//! Security: TLS listeners, SASL authentication (PLAIN, SCRAM-SHA-256/512)
//! and ACL authorization, as a Kafka broker offers them.
//!
//! - [`tls`]: the TLS listener's rustls configuration (certificate and key
//!   from PEM files, optional client certificates checked against a CA) and
//!   the stream type a connection reads and writes through.
//! - [`sasl`]: [`Session`], one connection's authentication state. Before a
//!   SASL listener's client has authenticated, it answers ApiVersions and
//!   runs the SaslHandshake/SaslAuthenticate exchange with the mechanisms
//!   the listener enables ([`SaslMechanisms`]); any other request closes
//!   the connection, as Kafka does. A failed authentication is answered
//!   after `--connection-failed-authentication-delay-ms`. Afterwards every
//!   request is dispatched on behalf of the authenticated principal.
//! - [`scram`]: SCRAM credentials and the server side of the exchange.
//! - [`acl`]: ACL bindings, filters and Kafka's authorizer decision.
//! - [`store`]: users and ACLs as applied from the order log.
//!
//! Users and ACLs are control records ordered through the shared log
//! (`ControlRecord::{UpsertScramCredential, DeleteScramCredential,
//! CreateAcls, DeleteAcls}`), so every gateway of a cluster applies the same
//! changes in the same order and a restarted gateway reloads them from its
//! segments. Handlers check permissions through one helper,
//! [`ApiRequest::authorized`], which decides with the flags
//! (`--authorizer`, `--super-users`) and the store; reading records goes
//! through [`ApiRequest::may_read_records`], which adds the cluster-wide
//! right `__cxlkafka_order` needs.

pub mod acl;
pub mod args;
pub mod cli;
pub mod listener;
pub mod sasl;
pub mod scram;
pub mod scram_client;
pub mod store;
pub mod tls;

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cxlkafka_sequencer::control::ControlRecord;
use kafka_protocol::ResponseError;

pub use acl::{AclOperation, Resource, ResourceType, WithoutAcls};
pub use listener::{ListenerSecurity, SaslMechanisms};
pub use sasl::Session;
pub use store::{is_security_tag, SecurityStore};

use crate::cluster::{Member, ORDER_TOPIC};
use crate::context::{AdvertisedListener, GatewayContext};
use crate::dispatch::ApiRequest;
use crate::telemetry;

/// Kafka's principal of connections that did not authenticate.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Which listener a connection came in through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenerKind {
    /// `--listen`: PLAINTEXT or SASL_PLAINTEXT.
    Plain,
    /// `--tls-listen`: SSL or SASL_SSL.
    Tls,
}

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Kafka principal, `User:<name>` (`User:ANONYMOUS` when none).
    pub principal: String,
    /// The client's IP address as text (ACL host matching).
    pub host: String,
    /// The listener the connection came in through.
    pub listener: ListenerKind,
}

static ANONYMOUS_IDENTITY: LazyLock<Arc<Identity>> = LazyLock::new(|| {
    Arc::new(Identity {
        principal: ANONYMOUS.to_owned(),
        host: String::new(),
        listener: ListenerKind::Plain,
    })
});

impl Identity {
    /// The anonymous principal on the plain listener, address unknown
    /// (requests dispatched without a connection, e.g. in tests).
    pub fn anonymous() -> Arc<Identity> {
        Arc::clone(&ANONYMOUS_IDENTITY)
    }

    /// A principal connected from `ip`.
    pub fn new(principal: String, ip: IpAddr, listener: ListenerKind) -> Self {
        Self {
            principal,
            host: ip.to_string(),
            listener,
        }
    }
}

/// The security settings handlers consult (from the `serve` flags); the
/// default has the authorizer off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Enforce ACLs (`--authorizer`); when off every principal is allowed.
    pub authorizer: bool,
    /// Principals allowed everything (`--super-users`).
    pub super_users: Vec<String>,
    /// What a resource no ACL covers allows
    /// (`--allow-everyone-if-no-acl-found`).
    pub without_acls: WithoutAcls,
    /// Where TLS clients are told to connect to this gateway (Metadata,
    /// FindCoordinator, DescribeCluster); `None` without a TLS listener.
    pub tls_advertised: Option<AdvertisedListener>,
    /// How long a failed SASL authentication waits before it is answered
    /// and its connection closed
    /// (`--connection-failed-authentication-delay-ms`); zero (the default
    /// here, 100 ms from the flag) answers at once.
    pub failed_authentication_delay: Duration,
}

/// Longest wait for a user or ACL change to be ordered and applied here.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Orders a user or ACL change through the log and waits until this
/// gateway applied it; the Kafka error when that failed.
pub async fn order_control(ctx: &GatewayContext, record: &ControlRecord) -> Option<ResponseError> {
    let result = ctx.log.control(record, CHANGE_TIMEOUT).await;
    crate::api_support::errors::completion_error(&result)
}

/// SASL mechanisms the gateway implements, in the order SaslHandshake lists
/// them; each listener enables some or all of them ([`SaslMechanisms`]).
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

impl ApiRequest {
    /// Whether this request's principal may do `operation` on `resource`:
    /// the one authorization check every handler makes. Always true with
    /// the authorizer off; super users are allowed everything; otherwise
    /// Kafka's ACL decision ([`acl`]). A denial is counted per API.
    pub fn authorized(
        &self,
        ctx: &GatewayContext,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> bool {
        self.check(ctx, |store, requester| {
            store.decide(requester, operation, resource, ctx.security.without_acls)
        })
    }

    /// Whether this request's principal may read the records of `topic`
    /// (Fetch): READ on the topic and, for `__cxlkafka_order`, DESCRIBE on
    /// the cluster as well.
    ///
    /// The order topic names every topic, partition, offset and record
    /// count of the cluster, so READ on it alone would show a principal the
    /// topics Metadata hides from it. Kafka gates its own cluster-wide
    /// listings of partitions (DescribeLogDirs) by DESCRIBE on the cluster;
    /// the order topic asks the same, on top of READ on itself, and is
    /// then read whole. Filtering its records by each topic's DESCRIBE
    /// instead would give principals different contents at the same
    /// offset, and the topic exists to show one total order to everyone
    /// who reads it.
    pub fn may_read_records(&self, ctx: &GatewayContext, topic: &str) -> bool {
        self.authorized(ctx, AclOperation::Read, Resource::Topic(topic))
            && (topic != ORDER_TOPIC
                || self.authorized(ctx, AclOperation::Describe, Resource::Cluster))
    }

    /// Whether this request's principal may do `operation` on some
    /// resource of `kind` (Kafka's `authorizeByResourceType`: an
    /// idempotent producer needs WRITE on some topic).
    pub fn authorized_on_some(
        &self,
        ctx: &GatewayContext,
        operation: AclOperation,
        kind: ResourceType,
    ) -> bool {
        self.check(ctx, |store, requester| {
            store.allowed_on_some(requester, operation, kind, ctx.security.without_acls)
        })
    }

    fn check(
        &self,
        ctx: &GatewayContext,
        decide: impl FnOnce(&SecurityStore, acl::Requester<'_>) -> bool,
    ) -> bool {
        if !ctx.security.authorizer {
            return true;
        }
        let identity = &self.identity;
        if ctx.security.super_users.contains(&identity.principal) {
            return true;
        }
        let requester = acl::Requester {
            principal: &identity.principal,
            host: &identity.host,
        };
        let allowed = decide(&ctx.log.security(), requester);
        if !allowed {
            metrics::counter!(telemetry::AUTHORIZATION_DENIED_TOTAL, "api" => self.api_name)
                .increment(1);
            tracing::debug!(
                principal = %identity.principal,
                host = %identity.host,
                api = self.api_name,
                "denied by ACLs"
            );
        }
        allowed
    }

    /// The gateways as clients of this request's listener must reach them.
    /// The region records each gateway's plain advertised address; a TLS
    /// client is given this gateway's `--tls-advertised-listener` and, for
    /// the others, their host with the same port offset (gateways of one
    /// cluster keep the same distance between their plain and TLS ports).
    pub fn advertise(&self, ctx: &GatewayContext, members: Vec<Member>) -> Vec<Member> {
        let Some(tls) = ctx.security.tls_advertised.as_ref() else {
            return members;
        };
        if self.identity.listener != ListenerKind::Tls {
            return members;
        }
        let offset = i32::from(tls.port) - i32::from(ctx.advertised.port);
        members
            .into_iter()
            .map(|member| {
                if i32::from(member.gateway) == ctx.node_id {
                    Member {
                        host: tls.host.clone(),
                        port: tls.port,
                        ..member
                    }
                } else {
                    let port = u16::try_from(i32::from(member.port) + offset).unwrap_or(tls.port);
                    Member { port, ..member }
                }
            })
            .collect()
    }
}
