//! Why the gateway closes a client connection.
//!
//! Kafka answers bad input in one of two ways: an error code inside a
//! well-formed response (a CRC mismatch, an unknown topic), or, when no
//! well-formed response is possible, a closed connection. [`CloseReason`] is
//! the second kind: each variant is a log line, a
//! `cxlkafka_protocol_errors_total{reason}` increment (its [`label`]) and a
//! closed socket. Error codes of the first kind live with the handlers and
//! [`crate::records::BatchError`].
//!
//! [`label`]: CloseReason::label

use thiserror::Error;

/// An error from the `kafka-protocol` crate's decoders and encoders.
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Input after which no response can be given, so the connection closes.
#[derive(Debug, Error)]
pub enum CloseReason {
    /// The size prefix of a frame is negative.
    #[error("frame size {size} is negative")]
    NegativeFrameSize {
        /// The size prefix.
        size: i32,
    },
    /// The size prefix exceeds the configured maximum frame size.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The size prefix.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The peer closed its side in the middle of a frame.
    #[error("connection closed after {received} of {expected} frame bytes")]
    TruncatedFrame {
        /// Bytes of the frame received, size prefix included.
        received: usize,
        /// Bytes the frame needed, size prefix included (4 while the prefix
        /// itself is incomplete).
        expected: usize,
    },
    /// The bytes of a frame stopped arriving: none for the frame timeout
    /// while the frame was incomplete (a stalled or deliberately slow
    /// client holding memory).
    #[error("frame stalled after {received} of {expected} bytes for {after:?}")]
    StalledFrame {
        /// Bytes of the frame received, size prefix included.
        received: usize,
        /// Bytes the frame needs, size prefix included.
        expected: usize,
        /// How long no byte arrived.
        after: std::time::Duration,
    },
    /// The request header could not be decoded.
    #[error("malformed request header: {reason}")]
    MalformedHeader {
        /// What was wrong.
        reason: String,
    },
    /// An API key Kafka does not define.
    #[error("unknown API key {api_key}")]
    UnknownApiKey {
        /// The key received.
        api_key: i16,
    },
    /// A Kafka API this gateway does not serve (and does not advertise).
    #[error("API {name:?} (key {api_key}) is not served by this gateway")]
    UnsupportedApi {
        /// The key received.
        api_key: i16,
        /// Kafka's name for it.
        name: String,
    },
    /// A version outside the served range of an API that, like every Kafka
    /// API but ApiVersions, gets no response for it.
    #[error("{api} v{version} is not supported (supported {min}..={max})")]
    UnsupportedVersion {
        /// The API's name.
        api: &'static str,
        /// The version received.
        version: i16,
        /// Lowest version served.
        min: i16,
        /// Highest version served.
        max: i16,
    },
    /// The request body could not be decoded.
    #[error("malformed {api} v{version} request: {source}")]
    MalformedRequest {
        /// The API's name.
        api: &'static str,
        /// The request version.
        version: i16,
        /// The decoder's complaint.
        source: CodecError,
    },
    /// A response could not be encoded (a handler built a response the
    /// version cannot carry); a bug, but the client still needs closure.
    #[error("encoding the {api} v{version} response failed: {source}")]
    EncodeFailed {
        /// The API's name.
        api: &'static str,
        /// The response version.
        version: i16,
        /// The encoder's complaint.
        source: CodecError,
    },
    /// A Produce with `acks=0` failed for some partition. There is no
    /// response to carry the error, so, as Kafka does, the connection
    /// closes: the client notices, reconnects and refreshes its metadata.
    #[error("an acks=0 produce failed with error code {code}")]
    UnacknowledgedProduceFailed {
        /// The first partition's Kafka error code.
        code: i16,
    },
    /// A request other than ApiVersions and the SASL exchange arrived on a
    /// SASL listener before authentication finished. Kafka closes the
    /// connection (answering ApiVersions and SaslHandshake with
    /// ILLEGAL_SASL_STATE first when the exchange had begun).
    #[error("{api} before SASL authentication finished")]
    SaslRequired {
        /// Kafka's name for the API (or the key, when unknown).
        api: String,
    },
    /// SASL authentication failed; the response saying so was sent first.
    #[error("SASL authentication failed: {reason}")]
    AuthenticationFailed {
        /// What was wrong, for the log only.
        reason: String,
    },
    /// A deferred response's task panicked or was cancelled.
    #[error("the {api} handler failed: {detail}")]
    HandlerFailed {
        /// The API's name.
        api: &'static str,
        /// The join error.
        detail: String,
    },
}

impl CloseReason {
    /// Every [`CloseReason::label`]: their counters are exported at 0 from
    /// the start, so an alert on the first one has a series to compare.
    pub const LABELS: [&'static str; 14] = [
        "negative_frame_size",
        "frame_too_large",
        "truncated_frame",
        "stalled_frame",
        "malformed_header",
        "unknown_api_key",
        "unsupported_api",
        "unsupported_version",
        "malformed_request",
        "encode_failed",
        "unacknowledged_produce_failed",
        "handler_failed",
        "sasl_required",
        "authentication_failed",
    ];

    /// The `reason` label of `cxlkafka_protocol_errors_total`.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::NegativeFrameSize { .. } => "negative_frame_size",
            CloseReason::FrameTooLarge { .. } => "frame_too_large",
            CloseReason::TruncatedFrame { .. } => "truncated_frame",
            CloseReason::StalledFrame { .. } => "stalled_frame",
            CloseReason::MalformedHeader { .. } => "malformed_header",
            CloseReason::UnknownApiKey { .. } => "unknown_api_key",
            CloseReason::UnsupportedApi { .. } => "unsupported_api",
            CloseReason::UnsupportedVersion { .. } => "unsupported_version",
            CloseReason::MalformedRequest { .. } => "malformed_request",
            CloseReason::EncodeFailed { .. } => "encode_failed",
            CloseReason::UnacknowledgedProduceFailed { .. } => "unacknowledged_produce_failed",
            CloseReason::HandlerFailed { .. } => "handler_failed",
            CloseReason::SaslRequired { .. } => "sasl_required",
            CloseReason::AuthenticationFailed { .. } => "authentication_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CloseReason;

    #[test]
    fn every_reason_s_label_is_listed_once() {
        let source = || -> super::CodecError { "bad".into() };
        let reasons = [
            CloseReason::NegativeFrameSize { size: -1 },
            CloseReason::FrameTooLarge { size: 2, max: 1 },
            CloseReason::TruncatedFrame {
                received: 1,
                expected: 2,
            },
            CloseReason::StalledFrame {
                received: 1,
                expected: 2,
                after: std::time::Duration::ZERO,
            },
            CloseReason::MalformedHeader { reason: "x".into() },
            CloseReason::UnknownApiKey { api_key: 999 },
            CloseReason::UnsupportedApi {
                api_key: 1,
                name: "x".into(),
            },
            CloseReason::UnsupportedVersion {
                api: "Fetch",
                version: 99,
                min: 0,
                max: 1,
            },
            CloseReason::MalformedRequest {
                api: "Fetch",
                version: 1,
                source: source(),
            },
            CloseReason::EncodeFailed {
                api: "Fetch",
                version: 1,
                source: source(),
            },
            CloseReason::UnacknowledgedProduceFailed { code: 1 },
            CloseReason::HandlerFailed {
                api: "Fetch",
                detail: "x".into(),
            },
            CloseReason::SaslRequired { api: "x".into() },
            CloseReason::AuthenticationFailed { reason: "x".into() },
        ];
        let labels: Vec<_> = reasons.iter().map(CloseReason::label).collect();
        assert_eq!(labels, CloseReason::LABELS);
    }
}
