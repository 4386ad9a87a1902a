//! The client side of SCRAM (RFC 5802, RFC 7677), for the admin tools that
//! log in to a SASL listener: client-first, then client-final with the
//! proof, then the server's signature checked, so a server that does not
//! know the password cannot pass for the cluster.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use super::scram::{random_nonce, ScramMechanism};

/// One login in progress.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    /// Set once client-final is built: what server-final must carry.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A login of `user` with a fresh random nonce.
    pub fn new(mechanism: ScramMechanism, user: &str, password: &[u8]) -> Self {
        Self::with_nonce(mechanism, user, password, random_nonce())
    }

    fn with_nonce(mechanism: ScramMechanism, user: &str, password: &[u8], nonce: String) -> Self {
        let client_first_bare = format!("n={},r={nonce}", encode_saslname(user));
        Self {
            mechanism,
            password: password.to_vec(),
            nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    /// client-first-message: no channel binding, no authzid.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// client-final-message for `server_first`, with the proof.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first-message is not UTF-8".to_owned())?;
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(name))
                .ok_or_else(|| format!("server-first-message has no {name}"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend this client's".into());
        }
        let salt = BASE64
            .decode(field("s=")?)
            .map_err(|_| "server-first-message has a salt that is not base64".to_owned())?;
        let iterations: u32 = field("i=")?
            .parse()
            .map_err(|_| "server-first-message has no iteration count".to_owned())?;
        if iterations == 0 {
            return Err("server-first-message asks for 0 iterations".into());
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let mechanism = self.mechanism;
        let salted = mechanism.salted_password(&self.password, &salt, iterations);
        let client_key = mechanism.hmac_of(&salted, b"Client Key");
        let stored_key = mechanism.hash_of(&client_key);
        let signature = mechanism.hmac_of(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(key, sig)| key ^ sig)
            .collect();
        let server_key = mechanism.hmac_of(&salted, b"Server Key");
        self.expected_server_signature =
            Some(mechanism.hmac_of(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks server-final-message: the server proved it knows the
    /// credential.
    pub fn check_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final-message is not UTF-8".to_owned())?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("the server refused the login: {error}"));
        }
        let verifier = text
            .strip_prefix("v=")
            .and_then(|v| BASE64.decode(v).ok())
            .ok_or("server-final-message has no verifier")?;
        match &self.expected_server_signature {
            Some(expected) if *expected == verifier => Ok(()),
            _ => Err(
                "the server's signature does not match: it does not hold this user's \
                      credential"
                    .into(),
            ),
        }
    }
}

/// A user name as a SCRAM saslname: ',' and '=' escaped.
fn encode_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::rfc7677::{
        CLIENT_FINAL, CLIENT_FIRST, CLIENT_NONCE, SERVER_FINAL, SERVER_FIRST,
    };

    fn rfc_client() -> ScramClient {
        ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            b"pencil",
            CLIENT_NONCE.into(),
        )
    }

    #[test]
    fn the_rfc_7677_exchange_gives_the_rfc_messages() {
        let mut client = rfc_client();
        assert_eq!(client.client_first(), CLIENT_FIRST.as_bytes());
        let last = client.client_final(SERVER_FIRST.as_bytes()).expect("valid");
        assert_eq!(String::from_utf8(last).expect("utf-8"), CLIENT_FINAL);
        assert_eq!(client.check_server_final(SERVER_FINAL.as_bytes()), Ok(()));
    }

    #[test]
    fn a_server_without_the_credential_or_a_foreign_nonce_is_refused() {
        let mut client = rfc_client();
        client.client_final(SERVER_FIRST.as_bytes()).expect("valid");
        let forged = "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert!(client.check_server_final(forged.as_bytes()).is_err());
        assert!(client
            .check_server_final(b"e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
        let mut other = rfc_client();
        let foreign = SERVER_FIRST.replace("rOprNGfwEbeRWgbNEkqO", "somebodyelsesnonce00");
        assert!(other.client_final(foreign.as_bytes()).is_err());
        assert!(other.client_final(b"r=x,s=,i=1").is_err());
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    }
}
