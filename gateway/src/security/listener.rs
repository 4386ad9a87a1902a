//! What a listener asks of a new connection before serving requests: the
//! TLS handshake (TLS listeners) and the start of its [`Session`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::sasl::Session;
use super::tls::SecureStream;
use super::{Identity, ListenerKind, ANONYMOUS};
use crate::telemetry;

/// Longest a TLS handshake may take (never longer than the idle timeout).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener's security protocol, in Kafka's terms: PLAINTEXT, SSL,
/// SASL_PLAINTEXT or SASL_SSL.
#[derive(Clone)]
pub struct ListenerSecurity {
    /// Which listener this is.
    pub kind: ListenerKind,
    /// The TLS acceptor of an SSL or SASL_SSL listener.
    pub tls: Option<TlsAcceptor>,
    /// Whether clients must authenticate with SASL first.
    pub sasl: bool,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.protocol())
    }
}

impl ListenerSecurity {
    /// PLAINTEXT: no TLS, no SASL.
    pub fn plaintext() -> Arc<Self> {
        Arc::new(Self {
            kind: ListenerKind::Plain,
            tls: None,
            sasl: false,
        })
    }

    /// Kafka's name of the listener's security protocol.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl) {
            (false, false) => "PLAINTEXT",
            (false, true) => "SASL_PLAINTEXT",
            (true, false) => "SSL",
            (true, true) => "SASL_SSL",
        }
    }

    /// Runs the TLS handshake (bounded by `idle_timeout` and
    /// [`TLS_HANDSHAKE_TIMEOUT`]) and starts the connection's session.
    /// `None` (logged and counted) when the handshake fails.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        idle_timeout: Duration,
    ) -> Option<(SecureStream, Session)> {
        let stream = match &self.tls {
            None => SecureStream::Plain(stream),
            Some(acceptor) => {
                let limit = idle_timeout.min(TLS_HANDSHAKE_TIMEOUT);
                match timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => SecureStream::Tls(Box::new(tls)),
                    Ok(Err(error)) => {
                        metrics::counter!(telemetry::TLS_HANDSHAKE_FAILURES_TOTAL).increment(1);
                        debug!(%peer, %error, "TLS handshake failed");
                        return None;
                    }
                    Err(_elapsed) => {
                        metrics::counter!(telemetry::TLS_HANDSHAKE_FAILURES_TOTAL).increment(1);
                        warn!(%peer, ?limit, "TLS handshake timed out");
                        return None;
                    }
                }
            }
        };
        // SASL decides the principal; without it, a verified client
        // certificate does (SSL listeners), else ANONYMOUS.
        let principal = if self.sasl {
            ANONYMOUS.to_owned()
        } else {
            stream
                .certificate_principal()
                .unwrap_or_else(|| ANONYMOUS.to_owned())
        };
        let identity = Identity::new(principal, peer.ip(), self.kind);
        Some((stream, Session::new(identity, self.sasl)))
    }
}
