//! The `serve` flags of TLS, SASL and authorization (flattened into
//! [`crate::config::ServeArgs`]), and what they build.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use super::listener::{ListenerSecurity, SaslMechanisms};
use super::tls::{self, TlsFiles};
use super::{ListenerKind, SecurityConfig, WithoutAcls};
use crate::context::AdvertisedListener;

/// Security protocol of the `--listen` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlainProtocol {
    /// No authentication: every client is `User:ANONYMOUS`.
    #[value(name = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    /// Clients authenticate with SASL (PLAIN, SCRAM-SHA-256/512) first.
    #[value(name = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
}

/// Security protocol of the `--tls-listen` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsProtocol {
    /// TLS; the principal is the client certificate's subject, if any.
    #[value(name = "SSL", alias = "ssl")]
    Ssl,
    /// TLS, then SASL authentication.
    #[value(name = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

/// TLS listener, SASL and authorizer flags of `cxlkafka serve`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecurityArgs {
    /// Security protocol of the --listen listener: PLAINTEXT, or
    /// SASL_PLAINTEXT (clients authenticate with SASL PLAIN or
    /// SCRAM-SHA-256/512 before anything else).
    #[arg(long, env = "CXLKAFKA_LISTEN_PROTOCOL", value_enum,
          default_value_t = PlainProtocol::Plaintext)]
    pub listen_protocol: PlainProtocol,

    /// SASL mechanisms the --listen listener enables when it is
    /// SASL_PLAINTEXT, separated by ',' (Kafka's
    /// listener.name.<listener>.sasl.enabled.mechanisms): PLAIN,
    /// SCRAM-SHA-256, SCRAM-SHA-512. A SaslHandshake for another is refused
    /// with UNSUPPORTED_SASL_MECHANISM and this list. PLAIN sends the
    /// password itself, readable on an unencrypted listener: use
    /// "SCRAM-SHA-256,SCRAM-SHA-512" there unless the network is trusted.
    #[arg(long, env = "CXLKAFKA_LISTEN_SASL_MECHANISMS", value_parser = SaslMechanisms::parse,
          default_value_t = SaslMechanisms::ALL)]
    pub listen_sasl_mechanisms: SaslMechanisms,

    /// Address of a TLS listener (host:port), served beside --listen.
    /// Needs --tls-cert and --tls-key.
    #[arg(long, env = "CXLKAFKA_TLS_LISTEN")]
    pub tls_listen: Option<String>,

    /// Security protocol of the TLS listener: SSL, or SASL_SSL (TLS, then
    /// SASL authentication).
    #[arg(long, env = "CXLKAFKA_TLS_LISTEN_PROTOCOL", value_enum,
          default_value_t = TlsProtocol::Ssl)]
    pub tls_listen_protocol: TlsProtocol,

    /// SASL mechanisms the TLS listener enables when it is SASL_SSL,
    /// separated by ',' (as --listen-sasl-mechanisms).
    #[arg(long, env = "CXLKAFKA_TLS_LISTEN_SASL_MECHANISMS", value_parser = SaslMechanisms::parse,
          default_value_t = SaslMechanisms::ALL)]
    pub tls_listen_sasl_mechanisms: SaslMechanisms,

    /// Address TLS clients are told to connect to (host:port). Defaults to
    /// the TLS listener's bound address. Other gateways are advertised to
    /// TLS clients with the same offset between their plain and TLS ports.
    #[arg(long, env = "CXLKAFKA_TLS_ADVERTISED_LISTENER", value_parser = parse_host_port)]
    pub tls_advertised_listener: Option<AdvertisedListener>,

    /// PEM file with the TLS listener's certificate chain (its own
    /// certificate first).
    #[arg(long, env = "CXLKAFKA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the TLS listener's private key (PKCS#8, PKCS#1 or
    /// SEC1).
    #[arg(long, env = "CXLKAFKA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM file of CA certificates: TLS clients must then present a
    /// certificate signed by one of them (Kafka's ssl.client.auth=required).
    /// On an SSL listener its subject becomes the principal
    /// (`User:CN=...,O=...`).
    #[arg(long, env = "CXLKAFKA_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Enforce ACLs (CreateAcls/DescribeAcls/DeleteAcls): a principal may
    /// do only what an ACL allows. Off: every principal may do everything.
    #[arg(long, env = "CXLKAFKA_AUTHORIZER", default_value_t = false, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub authorizer: bool,

    /// Principals allowed everything whatever the ACLs, separated by ';'
    /// (Kafka's super.users), e.g. "User:admin". Naming User:ANONYMOUS
    /// makes every client that does not authenticate (any PLAINTEXT
    /// connection, any SSL one without a client certificate) a super user.
    #[arg(long, env = "CXLKAFKA_SUPER_USERS", default_value = "")]
    pub super_users: String,

    /// With --authorizer, let every principal use a resource that no ACL
    /// covers, whoever's principal it names (Kafka's
    /// allow.everyone.if.no.acl.found). Off, as in Kafka: only super users
    /// may use it.
    #[arg(long, env = "CXLKAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", default_value_t = false,
          action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_everyone_if_no_acl_found: bool,

    /// Milliseconds a failed SASL authentication (wrong credentials, or a
    /// mechanism the listener does not enable) waits before it is answered
    /// and the connection closed (Kafka's
    /// connection.failed.authentication.delay.ms): slows password guessing
    /// without holding up other connections. 0 answers at once.
    #[arg(long, env = "CXLKAFKA_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS",
          default_value_t = DEFAULT_FAILED_AUTHENTICATION_DELAY_MS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_FAILED_AUTHENTICATION_DELAY_MS))]
    pub connection_failed_authentication_delay_ms: u64,
}

/// Kafka's default `connection.failed.authentication.delay.ms`.
pub const DEFAULT_FAILED_AUTHENTICATION_DELAY_MS: u64 = 100;
/// Largest `--connection-failed-authentication-delay-ms`: a delayed
/// connection keeps its slot (`--max-connections`) meanwhile.
pub const MAX_FAILED_AUTHENTICATION_DELAY_MS: u64 = 60_000;

impl Default for SecurityArgs {
    fn default() -> Self {
        Self {
            listen_protocol: PlainProtocol::Plaintext,
            listen_sasl_mechanisms: SaslMechanisms::ALL,
            tls_listen: None,
            tls_listen_protocol: TlsProtocol::Ssl,
            tls_listen_sasl_mechanisms: SaslMechanisms::ALL,
            tls_advertised_listener: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            authorizer: false,
            super_users: String::new(),
            allow_everyone_if_no_acl_found: false,
            connection_failed_authentication_delay_ms: DEFAULT_FAILED_AUTHENTICATION_DELAY_MS,
        }
    }
}

impl SecurityArgs {
    /// The `--listen` listener's protocol.
    pub fn plain_listener(&self) -> Arc<ListenerSecurity> {
        Arc::new(ListenerSecurity {
            kind: ListenerKind::Plain,
            tls: None,
            sasl: self.listen_protocol == PlainProtocol::SaslPlaintext,
            sasl_mechanisms: self.listen_sasl_mechanisms,
        })
    }

    /// The TLS listener's protocol, with its certificate loaded; `None`
    /// without `--tls-listen`.
    pub fn tls_listener(&self) -> Result<Option<Arc<ListenerSecurity>>, String> {
        if self.tls_listen.is_none() {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Err("--tls-listen needs --tls-cert and --tls-key".into());
        };
        let acceptor = tls::acceptor(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: self.tls_client_ca.clone(),
        })?;
        Ok(Some(Arc::new(ListenerSecurity {
            kind: ListenerKind::Tls,
            tls: Some(acceptor),
            sasl: self.tls_listen_protocol == TlsProtocol::SaslSsl,
            sasl_mechanisms: self.tls_listen_sasl_mechanisms,
        })))
    }

    /// What handlers consult, once the TLS listener (if any) is bound to
    /// `tls_bound`.
    pub fn config(&self, tls_bound: Option<SocketAddr>) -> SecurityConfig {
        SecurityConfig {
            authorizer: self.authorizer,
            super_users: self
                .super_users
                .split(';')
                .map(str::trim)
                .filter(|user| !user.is_empty())
                .map(str::to_owned)
                .collect(),
            without_acls: if self.allow_everyone_if_no_acl_found {
                WithoutAcls::Allow
            } else {
                WithoutAcls::Deny
            },
            tls_advertised: tls_bound.map(|bound| {
                self.tls_advertised_listener
                    .clone()
                    .unwrap_or_else(|| AdvertisedListener::from_socket_addr(bound))
            }),
            failed_authentication_delay: Duration::from_millis(
                self.connection_failed_authentication_delay_ms,
            ),
        }
    }
}

/// `host:port` or `[v6]:port`, optionally behind `SSL://` or `SASL_SSL://`.
fn parse_host_port(s: &str) -> Result<AdvertisedListener, String> {
    let rest = s
        .strip_prefix("SASL_SSL://")
        .or_else(|| s.strip_prefix("SSL://"))
        .unwrap_or(s);
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("expected host:port, got {s:?}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| format!("invalid port in {s:?}"))?;
    if host.is_empty() || port == 0 {
        return Err(format!("invalid address {s:?}"));
    }
    Ok(AdvertisedListener {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_users_split_on_semicolons() {
        let args = SecurityArgs {
            super_users: "User:admin; User:ANONYMOUS;".into(),
            ..SecurityArgs::default()
        };
        assert_eq!(
            args.config(None).super_users,
            vec!["User:admin".to_owned(), "User:ANONYMOUS".to_owned()]
        );
    }

    #[test]
    fn sasl_mechanisms_and_the_failure_delay_come_from_the_flags() {
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let argv = ["cxlkafka", "serve"].iter().chain(extra).copied();
            let cli = crate::config::Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
            match cli.command {
                crate::config::Command::Serve(args) => Ok(args.security),
                _ => Err("not serve".to_owned()),
            }
        };
        let security = parse(&[
            "--listen-protocol",
            "SASL_PLAINTEXT",
            "--listen-sasl-mechanisms",
            "SCRAM-SHA-256,SCRAM-SHA-512",
            "--connection-failed-authentication-delay-ms",
            "250",
        ])
        .expect("parses");
        let plain = security.plain_listener();
        assert!(plain.sasl);
        assert!(!plain.sasl_mechanisms.enables("PLAIN"));
        assert!(plain.sasl_mechanisms.enables("SCRAM-SHA-512"));
        assert_eq!(
            security.config(None).failed_authentication_delay,
            Duration::from_millis(250)
        );
        for bad in [
            ["--listen-sasl-mechanisms", "GSSAPI"],
            ["--tls-listen-sasl-mechanisms", ""],
            ["--connection-failed-authentication-delay-ms", "-1"],
            ["--connection-failed-authentication-delay-ms", "60001"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} should fail");
        }
        if std::env::vars().any(|(k, _)| k.starts_with("CXLKAFKA_")) {
            return;
        }
        let defaults = parse(&[]).expect("parses");
        assert_eq!(defaults, SecurityArgs::default());
        assert_eq!(
            defaults.config(None).failed_authentication_delay,
            Duration::from_millis(100)
        );
        assert_eq!(
            defaults.plain_listener().sasl_mechanisms,
            SaslMechanisms::ALL
        );
    }

    #[test]
    fn a_tls_listener_needs_its_files() {
        let args = SecurityArgs {
            tls_listen: Some("127.0.0.1:0".into()),
            ..SecurityArgs::default()
        };
        assert!(args.tls_listener().is_err());
        assert!(SecurityArgs::default()
            .tls_listener()
            .expect("no TLS listener")
            .is_none());
        assert_eq!(
            parse_host_port("SASL_SSL://broker:9093").map(|a| a.port),
            Ok(9093)
        );
    }
}
