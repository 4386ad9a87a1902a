//! One connection's authentication state and the SASL exchange, as Kafka's
//! `SaslServerAuthenticator` runs it.
//!
//! On a SASL listener a connection starts unauthenticated:
//!
//! 1. ApiVersions is answered as usual (clients ask before the handshake);
//! 2. SaslHandshake names a mechanism: one the listener enables
//!    ([`SaslMechanisms`], `--listen-sasl-mechanisms`,
//!    `--tls-listen-sasl-mechanisms`) is accepted, any other gets
//!    UNSUPPORTED_SASL_MECHANISM (33) and the connection closes; either
//!    way the response lists the listener's enabled mechanisms;
//! 3. the exchange follows: after SaslHandshake v1 each token travels in a
//!    SaslAuthenticate request (v0-2); after v0, as a bare size-prefixed
//!    frame with a bare token in answer (Kafka 0.10 clients). A failed
//!    exchange gets SASL_AUTHENTICATION_FAILED (58) with Kafka's generic
//!    message (v1), or no answer (v0), and the connection closes;
//! 4. once authenticated, every request is dispatched as `User:<name>`.
//!
//! A failure (wrong credentials, or a mechanism the listener does not
//! enable) is answered, and the connection closed, only after
//! `--connection-failed-authentication-delay-ms` (Kafka's
//! `connection.failed.authentication.delay.ms`, 100 ms by default): the
//! connection's own task sleeps, so other connections are not held up,
//! and a client guessing passwords gets one try per delay per connection
//! instead of one per round trip. Each delayed failure is counted in
//! `cxlkafka_sasl_delayed_failures_total`.
//!
//! Any other request before that closes the connection: Kafka does so
//! without an answer during the handshake (InvalidRequestException) and
//! answers ApiVersions and SaslHandshake with ILLEGAL_SASL_STATE (34)
//! during the exchange before closing. Sessions do not expire
//! (`session_lifetime_ms` 0, so clients never re-authenticate).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::listener::SaslMechanisms;
use super::scram::{random_nonce, ScramMechanism, ScramServer, ScramStep};
use super::store::SecurityStore;
use super::Identity;
use crate::context::GatewayContext;
use crate::dispatch::{
    dispatch_as, route, ApiRequest, DispatchTable, Dispatched, Reply, ResponseFrame,
};
use crate::error::CloseReason;
use crate::telemetry;

/// The mechanism of an exchange under way.
enum Exchange {
    Plain,
    Scram(Box<ScramServer>),
}

impl Exchange {
    fn of(name: &str) -> Option<Self> {
        if name == "PLAIN" {
            return Some(Exchange::Plain);
        }
        ScramMechanism::from_name(name)
            .map(|mechanism| Exchange::Scram(Box::new(ScramServer::new(mechanism))))
    }

    fn name(&self) -> &'static str {
        match self {
            Exchange::Plain => "PLAIN",
            Exchange::Scram(server) => server.mechanism().name(),
        }
    }
}

enum State {
    /// Requests are dispatched as the session's identity.
    Open,
    /// A SASL listener's connection before SaslHandshake.
    Handshake,
    /// Between SaslHandshake and the end of the exchange; `raw_tokens`
    /// after a v0 handshake.
    Authenticate {
        exchange: Exchange,
        raw_tokens: bool,
    },
}

/// What one step of an exchange produced.
enum Step {
    Continue(Vec<u8>),
    Done { response: Vec<u8>, user: String },
    Failed(String),
}

/// Largest frame a connection may send before it authenticated: Kafka's
/// `sasl.server.max.receive.size` default. The exchange needs a few
/// hundred bytes; an unauthenticated peer must not make the gateway
/// buffer `--max-frame-bytes`.
pub const UNAUTHENTICATED_MAX_FRAME_BYTES: usize = 512 * 1024;

/// One connection's authentication state (see the module documentation).
pub struct Session {
    identity: Arc<Identity>,
    state: State,
    /// What SaslHandshake may choose: the listener's enabled mechanisms.
    mechanisms: SaslMechanisms,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("principal", &self.identity.principal)
            .field("authenticated", &matches!(self.state, State::Open))
            .finish()
    }
}

/// Kafka's message for every failed exchange: it says nothing about
/// whether the user exists.
fn failure_message(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {mechanism}"
    )
}

impl Session {
    /// A session for a connection as `identity`; with `sasl` (the
    /// listener's enabled mechanisms), it must authenticate first.
    pub fn new(identity: Identity, sasl: Option<SaslMechanisms>) -> Self {
        Self {
            identity: Arc::new(identity),
            state: if sasl.is_some() {
                State::Handshake
            } else {
                State::Open
            },
            mechanisms: sasl.unwrap_or_default(),
        }
    }

    /// The principal requests run as.
    pub fn principal(&self) -> &str {
        &self.identity.principal
    }

    /// Whether the connection has yet to authenticate: until then its
    /// frames are bounded by [`UNAUTHENTICATED_MAX_FRAME_BYTES`].
    pub fn authenticating(&self) -> bool {
        !matches!(self.state, State::Open)
    }

    /// Handles one request frame: the SASL exchange while unauthenticated,
    /// else [`dispatch_as`] on behalf of the session's principal.
    pub async fn dispatch(
        &mut self,
        ctx: &Arc<GatewayContext>,
        table: &Arc<DispatchTable>,
        frame: Bytes,
        received_at: Instant,
    ) -> Result<Dispatched, CloseReason> {
        match &self.state {
            State::Open => dispatch_as(ctx, table, &self.identity, frame, received_at).await,
            State::Handshake => match api_key_of(&frame) {
                Some(ApiKey::ApiVersions) | None => {
                    dispatch_as(ctx, table, &self.identity, frame, received_at).await
                }
                Some(ApiKey::SaslHandshake) => self.handshake(ctx, table, frame, received_at).await,
                Some(other) => Err(CloseReason::SaslRequired {
                    api: format!("{other:?}"),
                }),
            },
            State::Authenticate { raw_tokens, .. } => {
                if *raw_tokens {
                    self.raw_token(ctx, frame).await
                } else {
                    self.authenticate(ctx, table, frame, received_at).await
                }
            }
        }
    }

    async fn handshake(
        &mut self,
        ctx: &GatewayContext,
        table: &Arc<DispatchTable>,
        frame: Bytes,
        received_at: Instant,
    ) -> Result<Dispatched, CloseReason> {
        let (_, request) = route(table, frame, received_at)?;
        count_request(&request);
        let body: SaslHandshakeRequest = request.decode()?;
        let mut response = SaslHandshakeResponse::default();
        // Kafka lists the listener's enabled mechanisms whether or not the
        // client's is among them.
        response.mechanisms = self
            .mechanisms
            .names()
            .map(StrBytes::from_static_str)
            .collect();
        let exchange = if self.mechanisms.enables(&body.mechanism) {
            Exchange::of(&body.mechanism)
        } else {
            None
        };
        let Some(exchange) = exchange else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            delay_failure(ctx, "unsupported").await;
            return answer_and_close(
                &request,
                &response,
                format!("unsupported SASL mechanism {:?}", body.mechanism.as_str()),
            );
        };
        self.state = State::Authenticate {
            exchange,
            raw_tokens: request.version == 0,
        };
        answer(&request, &response)
    }

    async fn authenticate(
        &mut self,
        ctx: &Arc<GatewayContext>,
        table: &Arc<DispatchTable>,
        frame: Bytes,
        received_at: Instant,
    ) -> Result<Dispatched, CloseReason> {
        let key = api_key_of(&frame);
        if key != Some(ApiKey::SaslAuthenticate) {
            return illegal_state(table, frame, received_at, key);
        }
        let (_, request) = route(table, frame, received_at)?;
        count_request(&request);
        let body: SaslAuthenticateRequest = request.decode()?;
        let store = ctx.log.security();
        let mechanism = self.mechanism_name();
        let mut response = SaslAuthenticateResponse::default();
        match self.step(store, body.auth_bytes.to_vec()).await {
            Step::Continue(challenge) => {
                response.auth_bytes = Bytes::from(challenge);
                answer(&request, &response)
            }
            Step::Done {
                response: last,
                user,
            } => {
                self.authenticated(user, mechanism);
                response.auth_bytes = Bytes::from(last);
                answer(&request, &response)
            }
            Step::Failed(reason) => {
                record_outcome(mechanism, "failure");
                delay_failure(ctx, mechanism).await;
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                response.error_message = Some(StrBytes::from_string(failure_message(mechanism)));
                answer_and_close(&request, &response, reason)
            }
        }
    }

    /// A bare token after SaslHandshake v0.
    async fn raw_token(
        &mut self,
        ctx: &Arc<GatewayContext>,
        frame: Bytes,
    ) -> Result<Dispatched, CloseReason> {
        let mechanism = self.mechanism_name();
        let reply = match self.step(ctx.log.security(), frame.to_vec()).await {
            Step::Continue(challenge) => challenge,
            Step::Done {
                response: last,
                user,
            } => {
                self.authenticated(user, mechanism);
                last
            }
            Step::Failed(reason) => {
                record_outcome(mechanism, "failure");
                delay_failure(ctx, mechanism).await;
                return Err(CloseReason::AuthenticationFailed { reason });
            }
        };
        Ok(Dispatched {
            api: "SaslAuthenticate",
            reply: Reply::Ready(ResponseFrame::raw(&reply)),
            close_after: None,
        })
    }

    fn mechanism_name(&self) -> &'static str {
        match &self.state {
            State::Authenticate { exchange, .. } => exchange.name(),
            _ => "none",
        }
    }

    fn authenticated(&mut self, user: String, mechanism: &'static str) {
        record_outcome(mechanism, "success");
        tracing::debug!(user, mechanism, host = %self.identity.host, "authenticated");
        self.identity = Arc::new(Identity {
            principal: format!("User:{user}"),
            host: self.identity.host.clone(),
            listener: self.identity.listener,
        });
        self.state = State::Open;
    }

    async fn step(&mut self, store: Arc<SecurityStore>, token: Vec<u8>) -> Step {
        let State::Authenticate { exchange, .. } = &mut self.state else {
            return Step::Failed("no exchange under way".into());
        };
        match exchange {
            Exchange::Scram(server) => {
                let mechanism = server.mechanism();
                let credential_of = |user: &str| store.credential(user, mechanism);
                match server.step(&token, credential_of, random_nonce) {
                    ScramStep::Continue(challenge) => Step::Continue(challenge),
                    ScramStep::Done { response, user } => Step::Done { response, user },
                    ScramStep::Failed(reason) => Step::Failed(reason),
                }
            }
            Exchange::Plain => {
                // PBKDF2 of the password costs milliseconds: off the
                // async workers.
                tokio::task::spawn_blocking(move || plain(&store, &token))
                    .await
                    .unwrap_or_else(|error| Step::Failed(format!("PLAIN check failed: {error}")))
            }
        }
    }
}

/// SASL PLAIN (RFC 4616): `authzid NUL authcid NUL password`, checked
/// against the user's stored SCRAM credential.
fn plain(store: &SecurityStore, token: &[u8]) -> Step {
    let mut parts = token.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed("malformed PLAIN message".into());
    };
    let Ok(user) = std::str::from_utf8(user) else {
        return Step::Failed("PLAIN user name is not UTF-8".into());
    };
    if user.is_empty() || password.is_empty() {
        return Step::Failed("empty PLAIN user name or password".into());
    }
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Step::Failed("authorization id differs from the user name".into());
    }
    let verified = store
        .credentials(user)
        .first()
        .is_some_and(|credential| credential.verify_password(password));
    if verified {
        Step::Done {
            response: Vec::new(),
            user: user.to_owned(),
        }
    } else {
        Step::Failed(format!("wrong password or unknown user {user:?}"))
    }
}

fn record_outcome(mechanism: &'static str, outcome: &'static str) {
    metrics::counter!(
        telemetry::SASL_AUTHENTICATIONS_TOTAL,
        "mechanism" => mechanism,
        "outcome" => outcome
    )
    .increment(1);
}

/// Waits out `--connection-failed-authentication-delay-ms` before a failed
/// authentication is answered and its connection closed, in this
/// connection's task only, and counts the delayed failure (`mechanism` is
/// the exchange's, or `unsupported` for a refused SaslHandshake). Nothing
/// with the delay at 0.
async fn delay_failure(ctx: &GatewayContext, mechanism: &'static str) {
    let delay = ctx.security.failed_authentication_delay;
    if delay.is_zero() {
        return;
    }
    metrics::counter!(telemetry::SASL_DELAYED_FAILURES_TOTAL, "mechanism" => mechanism)
        .increment(1);
    tokio::time::sleep(delay).await;
}

fn count_request(request: &ApiRequest) {
    metrics::counter!(telemetry::REQUESTS_TOTAL, "api" => request.api_name).increment(1);
}

fn api_key_of(frame: &[u8]) -> Option<ApiKey> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    ApiKey::try_from(key).ok()
}

fn answer<T: kafka_protocol::protocol::Encodable>(
    request: &ApiRequest,
    body: &T,
) -> Result<Dispatched, CloseReason> {
    Ok(Dispatched {
        api: request.api_name,
        reply: request.respond(body)?,
        close_after: None,
    })
}

fn answer_and_close<T: kafka_protocol::protocol::Encodable>(
    request: &ApiRequest,
    body: &T,
    reason: String,
) -> Result<Dispatched, CloseReason> {
    Ok(Dispatched {
        api: request.api_name,
        reply: request.respond(body)?,
        close_after: Some(CloseReason::AuthenticationFailed { reason }),
    })
}

/// A request other than SaslAuthenticate during the exchange: Kafka answers
/// it with ILLEGAL_SASL_STATE where it can, and closes.
fn illegal_state(
    table: &Arc<DispatchTable>,
    frame: Bytes,
    received_at: Instant,
    key: Option<ApiKey>,
) -> Result<Dispatched, CloseReason> {
    let api = key.map_or_else(|| "unknown".to_owned(), |key| format!("{key:?}"));
    let reason = format!("{api} during the SASL exchange");
    let code = ResponseError::IllegalSaslState.code();
    match key {
        Some(ApiKey::ApiVersions) => {
            let (_, request) = route(table, frame, received_at)?;
            let mut response = ApiVersionsResponse::default();
            response.error_code = code;
            let frame = request.responder().frame_at(&response, 0)?;
            Ok(Dispatched {
                api: request.api_name,
                reply: Reply::Ready(frame),
                close_after: Some(CloseReason::AuthenticationFailed { reason }),
            })
        }
        Some(ApiKey::SaslHandshake) => {
            let (_, request) = route(table, frame, received_at)?;
            let mut response = SaslHandshakeResponse::default();
            response.error_code = code;
            answer_and_close(&request, &response, reason)
        }
        _ => Err(CloseReason::SaslRequired { api }),
    }
}
