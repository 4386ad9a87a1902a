//! SASL APIs: SaslHandshake and SaslAuthenticate (the exchange itself is
//! [`crate::security::sasl`]), and the SCRAM credential APIs
//! DescribeUserScramCredentials and AlterUserScramCredentials.

pub mod alter_user_scram_credentials;
pub mod describe_user_scram_credentials;
pub mod sasl_authenticate;
pub mod sasl_handshake;
