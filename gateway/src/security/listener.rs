//! What a listener asks of a new connection before serving requests: the
//! TLS handshake (TLS listeners) and the start of its [`Session`], with the
//! SASL mechanisms the listener enables ([`SaslMechanisms`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::sasl::Session;
use super::tls::SecureStream;
use super::{Identity, ListenerKind, ANONYMOUS, MECHANISMS};
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
    /// The mechanisms SaslHandshake may choose on this listener (when
    /// `sasl`): `--listen-sasl-mechanisms`, `--tls-listen-sasl-mechanisms`.
    pub sasl_mechanisms: SaslMechanisms,
}

/// The SASL mechanisms a listener enables, Kafka's
/// `listener.name.<listener>.sasl.enabled.mechanisms`: a subset of
/// [`MECHANISMS`], listed in that order. A SaslHandshake naming any other
/// mechanism is answered UNSUPPORTED_SASL_MECHANISM (33) with this list,
/// as Kafka answers it. PLAIN carries the password itself, so an operator
/// leaves it out of an unencrypted listener's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslMechanisms(u8);

impl SaslMechanisms {
    /// Every mechanism the gateway implements (the default).
    pub const ALL: Self = Self((1u8 << MECHANISMS.len()) - 1);

    /// Parses a list separated by ',' such as `SCRAM-SHA-256,SCRAM-SHA-512`
    /// (names as Kafka spells them, case aside); at least one, each known.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bits = 0u8;
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let Some(index) = MECHANISMS
                .iter()
                .position(|known| known.eq_ignore_ascii_case(name))
            else {
                return Err(format!(
                    "unknown SASL mechanism {name:?} (known: {})",
                    MECHANISMS.join(", ")
                ));
            };
            bits |= 1 << index;
        }
        if bits == 0 {
            return Err(format!(
                "name at least one SASL mechanism of {}",
                MECHANISMS.join(", ")
            ));
        }
        Ok(Self(bits))
    }

    /// Whether the mechanism a client named in SaslHandshake is enabled
    /// (compared exactly, as Kafka compares it).
    pub fn enables(self, name: &str) -> bool {
        MECHANISMS
            .iter()
            .position(|known| *known == name)
            .is_some_and(|index| self.0 & (1 << index) != 0)
    }

    /// The enabled mechanisms' names, in [`MECHANISMS`] order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        MECHANISMS
            .iter()
            .enumerate()
            .filter(move |(index, _)| self.0 & (1 << index) != 0)
            .map(|(_, name)| *name)
    }
}

impl Default for SaslMechanisms {
    fn default() -> Self {
        Self::ALL
    }
}

impl std::fmt::Display for SaslMechanisms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().collect::<Vec<_>>().join(","))
    }
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
            sasl_mechanisms: SaslMechanisms::ALL,
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
        let sasl = self.sasl.then_some(self.sasl_mechanisms);
        Some((stream, Session::new(identity, sasl)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_lists_parse_and_list_in_kafka_order() {
        let scram = SaslMechanisms::parse(" scram-sha-512 ,SCRAM-SHA-256,").expect("parses");
        assert_eq!(
            scram.names().collect::<Vec<_>>(),
            ["SCRAM-SHA-256", "SCRAM-SHA-512"]
        );
        assert_eq!(scram.to_string(), "SCRAM-SHA-256,SCRAM-SHA-512");
        assert!(scram.enables("SCRAM-SHA-256"));
        assert!(!scram.enables("PLAIN"));
        assert!(!scram.enables("scram-sha-256"), "a client's name is exact");
        assert!(!scram.enables("GSSAPI"));
        assert_eq!(
            SaslMechanisms::parse(&SaslMechanisms::ALL.to_string()),
            Ok(SaslMechanisms::ALL)
        );
        assert_eq!(SaslMechanisms::ALL.names().collect::<Vec<_>>(), MECHANISMS);
        for bad in ["", " , ", "GSSAPI", "PLAIN,OAUTHBEARER"] {
            assert!(SaslMechanisms::parse(bad).is_err(), "{bad:?}");
        }
    }
}
