//! SCRAM (RFC 5802, with SHA-256/512 per RFC 7677) as Kafka speaks it:
//! the credential a user is stored as, and the server side of one exchange.
//!
//! A stored credential is what RFC 5802 lets a server keep instead of the
//! password: the salt, the iteration count, `StoredKey = H(ClientKey)` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`. The client proves it
//! knows `ClientKey` without sending it; the server proves it knows
//! `ServerKey`. Neither the password nor `SaltedPassword` is ever stored.
//!
//! Kafka's flavour (KIP-84): no channel binding (gs2 header `n,,` or
//! `y,,`), an optional authorization id that must equal the user name,
//! and client-first extensions after the nonce, of which only `tokenauth`
//! means anything (delegation tokens, which are not served here). The
//! client-final nonce must end with the server-first nonce, as Kafka
//! checks it (older librdkafka repeats its client nonce in front).

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Fewest iterations Kafka accepts for a SCRAM credential.
pub const MIN_ITERATIONS: u32 = 4096;
/// Most iterations Kafka accepts (AlterUserScramCredentials).
pub const MAX_ITERATIONS: u32 = 16_384;
/// Iterations of credentials the CLI creates (Kafka's default).
pub const DEFAULT_ITERATIONS: u32 = 8192;

/// A SCRAM mechanism, with Kafka's wire code (KIP-554).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256 (code 1).
    Sha256,
    /// SCRAM-SHA-512 (code 2).
    Sha512,
}

impl ScramMechanism {
    /// Every mechanism, in code order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's code for it in DescribeUserScramCredentials and
    /// AlterUserScramCredentials.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a Kafka code.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The mechanism of a SASL name (exact, as Kafka compares them).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// Output size of the hash, in bytes.
    pub fn hash_len(self) -> usize {
        self.digest().output_len()
    }

    /// `Hi(password, salt, iterations)`: RFC 5802's SaltedPassword, which
    /// is PBKDF2 with the mechanism's HMAC and one hash-sized block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.hash_len()];
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2(), rounds, salt, password, &mut out);
        out
    }

    pub(crate) fn hmac_of(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    pub(crate) fn hash_of(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

/// A user's stored SCRAM credential for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The mechanism it is for.
    pub mechanism: ScramMechanism,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential of `SaltedPassword` (what AlterUserScramCredentials
    /// carries: the client salts and hashes, the password never travels).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted_password: &[u8],
    ) -> Self {
        let client_key = mechanism.hmac_of(salted_password, b"Client Key");
        Self {
            mechanism,
            iterations,
            salt,
            stored_key: mechanism.hash_of(&client_key),
            server_key: mechanism.hmac_of(salted_password, b"Server Key"),
        }
    }

    /// The credential of a password.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Self {
        let salted = mechanism.salted_password(password, &salt, iterations);
        Self::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// Whether `password` is the one this credential was made from (SASL
    /// PLAIN against a stored SCRAM credential).
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let candidate =
            Self::from_password(self.mechanism, password, self.salt.clone(), self.iterations);
        constant_time_eq(&candidate.stored_key, &self.stored_key)
    }
}

/// Compares without an early exit, so timing does not tell how many leading
/// bytes of a proof were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What one step of an exchange produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramStep {
    /// Send this challenge and wait for the client's next message.
    Continue(Vec<u8>),
    /// The client proved the password: send this final message; the
    /// connection is authenticated as `user`.
    Done {
        /// server-final-message (`v=...`).
        response: Vec<u8>,
        /// The authenticated user name.
        user: String,
    },
    /// Authentication failed; the reason is for the log only (clients get
    /// Kafka's generic message, which says nothing about the user).
    Failed(String),
}

enum State {
    Initial,
    SentFirst {
        user: String,
        credential: ScramCredential,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        gs2_header: String,
    },
    Finished,
}

/// The server side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self {
            mechanism,
            state: State::Initial,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Handles the client's next message. `credential_of` looks a user up;
    /// `server_nonce` makes the server's part of the nonce (random in
    /// service, fixed in tests against RFC 7677's example).
    pub fn step(
        &mut self,
        message: &[u8],
        credential_of: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: impl FnOnce() -> String,
    ) -> ScramStep {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let Ok(message) = std::str::from_utf8(message) else {
            return ScramStep::Failed("SCRAM message is not UTF-8".into());
        };
        match state {
            State::Initial => self.client_first(message, credential_of, server_nonce),
            State::SentFirst {
                user,
                credential,
                client_first_bare,
                server_first,
                nonce,
                gs2_header,
            } => {
                let expected = Expected {
                    credential: &credential,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                    nonce: &nonce,
                    gs2_header: &gs2_header,
                };
                match self.client_final(message, &expected) {
                    Ok(response) => ScramStep::Done { response, user },
                    Err(reason) => ScramStep::Failed(reason),
                }
            }
            State::Finished => ScramStep::Failed("SCRAM exchange already finished".into()),
        }
    }

    fn client_first(
        &mut self,
        message: &str,
        credential_of: impl FnOnce(&str) -> Option<ScramCredential>,
        server_nonce: impl FnOnce() -> String,
    ) -> ScramStep {
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let mut parts = message.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return ScramStep::Failed("client-first-message has no gs2 header".into());
        };
        if cbind != "n" && cbind != "y" {
            return ScramStep::Failed(format!("channel binding {cbind:?} is not supported"));
        }
        let mut attributes = bare.split(',');
        let user = match attributes.next().and_then(|a| a.strip_prefix("n=")) {
            Some(name) => match decode_saslname(name) {
                Some(user) => user,
                None => return ScramStep::Failed("malformed user name".into()),
            },
            None => return ScramStep::Failed("client-first-message has no user name".into()),
        };
        let Some(client_nonce) = attributes.next().and_then(|a| a.strip_prefix("r=")) else {
            return ScramStep::Failed("client-first-message has no nonce".into());
        };
        if client_nonce.is_empty() {
            return ScramStep::Failed("empty client nonce".into());
        }
        for extension in attributes {
            if extension.starts_with("tokenauth=") && extension != "tokenauth=false" {
                return ScramStep::Failed("delegation tokens are not supported".into());
            }
        }
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if decode_saslname(authzid).as_deref() != Some(user.as_str()) {
                return ScramStep::Failed("authorization id differs from the user name".to_owned());
            }
        } else if !authzid.is_empty() {
            return ScramStep::Failed("malformed authorization id".into());
        }
        let Some(credential) = credential_of(&user).filter(|c| c.mechanism == self.mechanism)
        else {
            return ScramStep::Failed(format!(
                "user {user:?} has no {} credential",
                self.mechanism.name()
            ));
        };
        let nonce = format!("{client_nonce}{}", server_nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let challenge = server_first.clone().into_bytes();
        self.state = State::SentFirst {
            user,
            credential,
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
            gs2_header: format!("{cbind},{authzid},"),
        };
        ScramStep::Continue(challenge)
    }

    fn client_final(&self, message: &str, expected: &Expected<'_>) -> Result<Vec<u8>, String> {
        // client-final-message-without-proof "," proof
        let Some((without_proof, proof)) = message.rsplit_once(",p=") else {
            return Err("client-final-message has no proof".into());
        };
        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or("client-final-message has no channel binding")?;
        if BASE64.decode(binding).ok().as_deref() != Some(expected.gs2_header.as_bytes()) {
            return Err("channel binding does not match the gs2 header".into());
        }
        let nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or("client-final-message has no nonce")?;
        // RFC 5802 wants the nonce of server-first back. librdkafka before
        // 2.6.1 prepends its client nonce once more (librdkafka #4895);
        // Kafka 3.8.1+ accepts any nonce ending with the server's (the fix
        // of CVE-2024-56128), and so does this.
        if !nonce.ends_with(expected.nonce) {
            return Err(format!(
                "nonce does not match (expected {:?}, got {nonce:?})",
                expected.nonce
            ));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| "proof is not base64".to_owned())?;
        let mechanism = self.mechanism;
        let credential = expected.credential;
        let auth_message = format!(
            "{},{},{without_proof}",
            expected.client_first_bare, expected.server_first
        );
        let client_signature = mechanism.hmac_of(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err("proof has the wrong length".into());
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&mechanism.hash_of(&client_key), &credential.stored_key) {
            return Err("invalid proof (wrong password)".into());
        }
        let server_signature = mechanism.hmac_of(&credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

struct Expected<'a> {
    credential: &'a ScramCredential,
    client_first_bare: &'a str,
    server_first: &'a str,
    nonce: &'a str,
    gs2_header: &'a str,
}

/// RFC 5802's saslname: `=2C` is ',' and `=3D` is '='; any other '=' is
/// malformed.
fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// A fresh random server nonce (printable, no ',').
pub fn random_nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 24];
    // The system RNG failing leaves zeros; the client nonce still differs
    // per exchange, so a replay would still need the password.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh random salt for a new credential.
pub fn random_salt() -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; 32];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

/// RFC 7677, section 3: the SCRAM-SHA-256 exchange of user "user" with
/// password "pencil", for the server's tests and the client's.
#[cfg(test)]
pub(crate) mod rfc7677 {
    pub const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    pub const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    pub const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    pub const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    pub const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    pub const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    pub const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
}

#[cfg(test)]
mod tests {
    use super::rfc7677::*;
    use super::*;

    fn rfc_credential() -> ScramCredential {
        let salt = BASE64.decode(SALT_B64).expect("salt");
        ScramCredential::from_password(ScramMechanism::Sha256, b"pencil", salt, 4096)
    }

    #[test]
    fn the_rfc_7677_exchange_succeeds_with_the_rfc_messages() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let first = server.step(
            CLIENT_FIRST.as_bytes(),
            |user| (user == "user").then(rfc_credential),
            || SERVER_NONCE.to_owned(),
        );
        assert_eq!(first, ScramStep::Continue(SERVER_FIRST.as_bytes().to_vec()));
        let last = server.step(CLIENT_FINAL.as_bytes(), |_| None, String::new);
        assert_eq!(
            last,
            ScramStep::Done {
                response: SERVER_FINAL.as_bytes().to_vec(),
                user: "user".into()
            }
        );
    }

    #[test]
    fn a_wrong_password_fails_the_proof() {
        let salt = BASE64.decode(SALT_B64).expect("salt");
        let other = ScramCredential::from_password(ScramMechanism::Sha256, b"pen", salt, 4096);
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let first = server.step(
            CLIENT_FIRST.as_bytes(),
            |_| Some(other),
            || SERVER_NONCE.to_owned(),
        );
        assert!(matches!(first, ScramStep::Continue(_)));
        let last = server.step(CLIENT_FINAL.as_bytes(), |_| None, String::new);
        assert!(matches!(last, ScramStep::Failed(reason) if reason.contains("proof")));
    }

    #[test]
    fn unknown_users_tampered_nonces_and_channel_binding_fail() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let step = server.step(CLIENT_FIRST.as_bytes(), |_| None, String::new);
        assert!(matches!(step, ScramStep::Failed(_)));

        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let step = server.step(
            b"p=tls-unique,,n=user,r=abc",
            |_| Some(rfc_credential()),
            String::new,
        );
        assert!(matches!(step, ScramStep::Failed(_)));

        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server.step(
            CLIENT_FIRST.as_bytes(),
            |_| Some(rfc_credential()),
            || "other-nonce".to_owned(),
        );
        let step = server.step(CLIENT_FINAL.as_bytes(), |_| None, String::new);
        assert!(matches!(step, ScramStep::Failed(reason) if reason.contains("nonce")));

        // A SHA-512 exchange does not accept a SHA-256 credential.
        let mut server = ScramServer::new(ScramMechanism::Sha512);
        let step = server.step(
            CLIENT_FIRST.as_bytes(),
            |_| Some(rfc_credential()),
            String::new,
        );
        assert!(matches!(step, ScramStep::Failed(_)));
    }

    #[test]
    fn a_client_nonce_repeated_in_front_is_accepted_as_kafka_does() {
        // librdkafka < 2.6.1 sends c-nonce + (c-nonce + s-nonce).
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        server.step(
            CLIENT_FIRST.as_bytes(),
            |_| Some(rfc_credential()),
            || SERVER_NONCE.to_owned(),
        );
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let without_proof = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO{nonce}");
        let credential = rfc_credential();
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &credential.salt, 4096);
        let client_key = ScramMechanism::Sha256.hmac_of(&salted, b"Client Key");
        let auth_message = format!("n=user,r=rOprNGfwEbeRWgbNEkqO,{SERVER_FIRST},{without_proof}");
        let signature =
            ScramMechanism::Sha256.hmac_of(&credential.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let last = format!("{without_proof},p={}", BASE64.encode(proof));
        let step = server.step(last.as_bytes(), |_| None, String::new);
        assert!(matches!(step, ScramStep::Done { .. }), "{step:?}");
    }

    #[test]
    fn the_stored_credential_matches_the_rfc_derivation() {
        let credential = rfc_credential();
        // From RFC 7677's example: ServerSignature verifies with ServerKey,
        // so recomputing the credential from SaltedPassword agrees.
        let salted = ScramMechanism::Sha256.salted_password(
            b"pencil",
            &BASE64.decode(SALT_B64).expect("salt"),
            4096,
        );
        assert_eq!(
            ScramCredential::from_salted_password(
                ScramMechanism::Sha256,
                credential.salt.clone(),
                4096,
                &salted
            ),
            credential
        );
        assert_eq!(credential.stored_key.len(), 32);
        assert!(credential.verify_password(b"pencil"));
        assert!(!credential.verify_password(b"pencil "));
        let sha512 =
            ScramCredential::from_password(ScramMechanism::Sha512, b"pw", vec![1; 16], 4096);
        assert_eq!(sha512.server_key.len(), 64);
        assert!(sha512.verify_password(b"pw"));
    }

    #[test]
    fn saslnames_unescape_commas_and_equals() {
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(decode_saslname("bad=41"), None);
        assert_eq!(decode_saslname("cut=2"), None);
        assert_eq!(
            ScramMechanism::from_code(2).map(ScramMechanism::name),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(
            ScramMechanism::from_name("SCRAM-SHA-256"),
            Some(ScramMechanism::Sha256)
        );
    }
}
