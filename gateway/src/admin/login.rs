//! Logging the admin tools in to a SASL listener (SASL_PLAINTEXT):
//! SaslHandshake v1, then SaslAuthenticate with PLAIN or SCRAM, on every
//! connection before its first request, as Kafka's own clients do.
//! The password comes from a file, never the command line.

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;
use clap::ValueEnum;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{AdminError, Broker};
use crate::security::cli::read_password_file;
use crate::security::scram::ScramMechanism;
use crate::security::scram_client::ScramClient;

/// SaslHandshake v1: the exchange continues in SaslAuthenticate requests
/// (v0 would send raw frames instead).
const SASL_HANDSHAKE: (i16, i16) = (1, 1);
const SASL_AUTHENTICATE: (i16, i16) = (0, 2);

/// A SASL mechanism on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// PLAIN: the password travels as it is (use it on loopback or TLS).
    #[value(name = "PLAIN")]
    Plain,
    /// SCRAM-SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => ScramMechanism::Sha256.name(),
            Mechanism::ScramSha512 => ScramMechanism::Sha512.name(),
        }
    }
}

/// Who the tools log in as.
#[derive(Clone)]
pub struct Login {
    mechanism: Mechanism,
    user: String,
    password: String,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The login the SASL flags describe: none without a mechanism; with
    /// one, a user name and a password file are needed.
    pub fn from_flags(
        mechanism: Option<Mechanism>,
        user: Option<&str>,
        password_file: Option<&PathBuf>,
    ) -> Result<Option<Login>, AdminError> {
        let Some(mechanism) = mechanism else {
            return Ok(None);
        };
        let (Some(user), Some(password_file)) = (user, password_file) else {
            return Err(AdminError::Other(
                "--sasl-mechanism needs --sasl-username and --sasl-password-file".into(),
            ));
        };
        let password = read_password_file(password_file).map_err(AdminError::Other)?;
        Ok(Some(Login {
            mechanism,
            user: user.to_owned(),
            password,
        }))
    }
}

/// Logs `broker`'s connection in as `login`.
pub async fn authenticate(broker: &mut Broker, login: &Login) -> Result<(), AdminError> {
    let version = broker.version(ApiKey::SaslHandshake, SASL_HANDSHAKE)?;
    let handshake: SaslHandshakeResponse = broker
        .call(
            ApiKey::SaslHandshake,
            version,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_static_str(login.mechanism.name())),
        )
        .await?;
    if handshake.error_code != 0 {
        let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(AdminError::Kafka {
            code: handshake.error_code,
            what: format!("SASL mechanism {}", login.mechanism.name()),
            message: Some(format!("the listener offers {offered:?}")),
        });
    }
    let version = broker.version(ApiKey::SaslAuthenticate, SASL_AUTHENTICATE)?;
    match login.mechanism {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", login.user, login.password);
            exchange(broker, version, login, token.into_bytes()).await?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let mechanism = if login.mechanism == Mechanism::ScramSha256 {
                ScramMechanism::Sha256
            } else {
                ScramMechanism::Sha512
            };
            let mut client = ScramClient::new(mechanism, &login.user, login.password.as_bytes());
            let server_first = exchange(broker, version, login, client.client_first()).await?;
            let client_final = client
                .client_final(&server_first)
                .map_err(AdminError::Other)?;
            let server_final = exchange(broker, version, login, client_final).await?;
            client
                .check_server_final(&server_final)
                .map_err(AdminError::Other)?;
        }
    }
    Ok(())
}

/// One SaslAuthenticate round: sends `token`, returns the server's bytes.
async fn exchange(
    broker: &mut Broker,
    version: i16,
    login: &Login,
    token: Vec<u8>,
) -> Result<Vec<u8>, AdminError> {
    let response: SaslAuthenticateResponse = broker
        .call(
            ApiKey::SaslAuthenticate,
            version,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
        )
        .await?;
    AdminError::check_with(
        response.error_code,
        || {
            format!(
                "login of user {:?} ({})",
                login.user,
                login.mechanism.name()
            )
        },
        response.error_message.as_ref(),
    )?;
    Ok(response.auth_bytes.to_vec())
}
