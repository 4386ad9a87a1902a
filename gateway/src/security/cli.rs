//! `cxlkafka user add|delete|list`: manages SCRAM users through a running
//! gateway's PLAINTEXT listener with AlterUserScramCredentials and
//! DescribeUserScramCredentials, as Kafka's `kafka-configs.sh
//! --alter --add-config 'SCRAM-SHA-256=[password=...]'` does.
//!
//! The password is read from a file (never the command line) and salted
//! and hashed here: only the salt, the iteration count and
//! `SaltedPassword` travel, as KIP-554 specifies. With `--authorizer`, the
//! listener's principal (`User:ANONYMOUS` on PLAINTEXT) needs ALTER on the
//! cluster; rather than making `User:ANONYMOUS` a super user (every client
//! that does not authenticate would be one), create the first user with the
//! gateway on loopback and without `--authorizer`, then manage users as that
//! user over SASL with any Kafka admin client (docs/security.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::scram::{
    random_salt, ScramMechanism, DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS,
};
use crate::bench::wire::Conn;

/// `cxlkafka user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or replace its credential for one mechanism.
    Add(UserAddArgs),
    /// Delete a user's credential for one mechanism.
    Delete(UserDeleteArgs),
    /// List users and the mechanisms they have credentials for.
    List(UserListArgs),
}

/// A SCRAM mechanism on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MechanismArg {
    /// SCRAM-SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM-SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl MechanismArg {
    fn mechanism(self) -> ScramMechanism {
        match self {
            MechanismArg::ScramSha256 => ScramMechanism::Sha256,
            MechanismArg::ScramSha512 => ScramMechanism::Sha512,
        }
    }
}

/// Flags of `cxlkafka user add`.
#[derive(Debug, Clone, Args)]
pub struct UserAddArgs {
    /// The user name.
    pub name: String,
    /// SCRAM mechanism of the credential.
    #[arg(long, env = "CXLKAFKA_USER_MECHANISM", value_enum, default_value_t = MechanismArg::ScramSha256)]
    pub mechanism: MechanismArg,
    /// File holding the password (one trailing newline is ignored).
    #[arg(long, env = "CXLKAFKA_USER_PASSWORD_FILE")]
    pub password_file: PathBuf,
    /// PBKDF2 iterations (4096..=16384).
    #[arg(long, env = "CXLKAFKA_USER_ITERATIONS", default_value_t = DEFAULT_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_ITERATIONS)..=i64::from(MAX_ITERATIONS)))]
    pub iterations: u32,
    /// A gateway's PLAINTEXT listener.
    #[arg(
        long,
        env = "CXLKAFKA_USER_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_parser = crate::config::parse_socket_addr
    )]
    pub bootstrap: SocketAddr,
}

/// Flags of `cxlkafka user delete`.
#[derive(Debug, Clone, Args)]
pub struct UserDeleteArgs {
    /// The user name.
    pub name: String,
    /// SCRAM mechanism of the credential to delete.
    #[arg(long, env = "CXLKAFKA_USER_MECHANISM", value_enum, default_value_t = MechanismArg::ScramSha256)]
    pub mechanism: MechanismArg,
    /// A gateway's PLAINTEXT listener.
    #[arg(
        long,
        env = "CXLKAFKA_USER_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_parser = crate::config::parse_socket_addr
    )]
    pub bootstrap: SocketAddr,
}

/// Flags of `cxlkafka user list`.
#[derive(Debug, Clone, Args)]
pub struct UserListArgs {
    /// A gateway's PLAINTEXT listener.
    #[arg(
        long,
        env = "CXLKAFKA_USER_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_parser = crate::config::parse_socket_addr
    )]
    pub bootstrap: SocketAddr,
}

/// The password a file holds: its text without one trailing newline (LF
/// or CRLF); an empty one is refused.
pub fn read_password_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let password = text
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(format!("{}: empty password", path.display()));
    }
    Ok(password.to_owned())
}

/// Runs a `user` subcommand; returns what to print.
pub async fn run(command: UserCommand) -> Result<String, String> {
    match command {
        UserCommand::Add(args) => {
            let password = read_password_file(&args.password_file)?;
            let mechanism = args.mechanism.mechanism();
            let salt = random_salt();
            let salted = mechanism.salted_password(password.as_bytes(), &salt, args.iterations);
            let mut upsertion = ScramCredentialUpsertion::default();
            upsertion.name = StrBytes::from_string(args.name.clone());
            upsertion.mechanism = mechanism.code();
            upsertion.iterations = i32::try_from(args.iterations).unwrap_or(i32::MAX);
            upsertion.salt = Bytes::from(salt);
            upsertion.salted_password = Bytes::from(salted);
            let mut request = AlterUserScramCredentialsRequest::default();
            request.upsertions.push(upsertion);
            alter(args.bootstrap, &request).await?;
            Ok(format!(
                "user {} has a {} credential",
                args.name,
                mechanism.name()
            ))
        }
        UserCommand::Delete(args) => {
            let mechanism = args.mechanism.mechanism();
            let mut deletion = ScramCredentialDeletion::default();
            deletion.name = StrBytes::from_string(args.name.clone());
            deletion.mechanism = mechanism.code();
            let mut request = AlterUserScramCredentialsRequest::default();
            request.deletions.push(deletion);
            alter(args.bootstrap, &request).await?;
            Ok(format!(
                "user {}: {} credential deleted",
                args.name,
                mechanism.name()
            ))
        }
        UserCommand::List(args) => {
            let mut conn = Conn::connect(args.bootstrap).await?;
            let request = DescribeUserScramCredentialsRequest::default().with_users(None);
            let response: DescribeUserScramCredentialsResponse = conn
                .call(ApiKey::DescribeUserScramCredentials, 0, &request)
                .await?;
            if response.error_code != 0 {
                return Err(format!(
                    "error {}: {}",
                    response.error_code,
                    response.error_message.as_deref().unwrap_or("")
                ));
            }
            let lines: Vec<String> = response
                .results
                .iter()
                .map(|result| {
                    let mechanisms: Vec<String> = result
                        .credential_infos
                        .iter()
                        .map(|info| {
                            let name = ScramMechanism::from_code(info.mechanism)
                                .map_or("unknown", ScramMechanism::name);
                            format!("{name} (iterations {})", info.iterations)
                        })
                        .collect();
                    format!("{}: {}", result.user.as_str(), mechanisms.join(", "))
                })
                .collect();
            Ok(lines.join("\n"))
        }
    }
}

async fn alter(
    bootstrap: SocketAddr,
    request: &AlterUserScramCredentialsRequest,
) -> Result<(), String> {
    let mut conn = Conn::connect(bootstrap).await?;
    let response: AlterUserScramCredentialsResponse = conn
        .call(ApiKey::AlterUserScramCredentials, 0, request)
        .await?;
    for result in &response.results {
        if result.error_code != 0 {
            return Err(format!(
                "user {}: error {}: {}",
                result.user.as_str(),
                result.error_code,
                result.error_message.as_deref().unwrap_or("")
            ));
        }
    }
    Ok(())
}
