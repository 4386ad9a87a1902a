//! ApiVersions (key 18): which APIs, at which versions, this gateway serves.
//!
//! Clients send it first on every connection and pick, per API, the highest
//! version both sides support. Three compatibility rules shape the answer:
//!
//! - **KIP-511**: a client sends the newest ApiVersions version it knows. A
//!   version above ours gets a v0-format response (response header v0, as
//!   always for ApiVersions) with UNSUPPORTED_VERSION (35) and our full list,
//!   so the client can retry at a version we do support. Kafka itself sends
//!   only the ApiVersions row; the full list serves the same purpose and
//!   lets a client skip the retry's round trip if it wishes.
//! - **No tagged fields in v3+**: librdkafka 2.0.2 (Debian's kcat 1.7.1)
//!   mis-skips the response's top-level tagged fields and fails with "Read
//!   underflow". So no supported/finalized features and no ZK-migration
//!   flag are ever set; the response ends with an empty tagged-field section.
//! - **Advertised = routed**: the list comes from the dispatch table, so an
//!   API is advertised exactly when a handler serves it, and Produce from
//!   version 0 (KAFKA-18659, see [`crate::dispatch::ApiEntry::advertised_min`]).
//!
//! Like Kafka, v3+ requests must name the client software with letters,
//! digits, '.' and '-' (starting and ending alphanumeric), or get
//! INVALID_REQUEST (42) with an empty list.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::telemetry;

/// Versions answered in their own format; all others get the v0 fallback.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Kafka's error code for success.
const NO_ERROR: i16 = 0;

/// First version whose request carries the client software name and version.
const FIRST_VERSION_WITH_SOFTWARE_NAME: i16 = 3;

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::ApiVersions,
    name: "ApiVersions",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::AnyVersion,
    handler,
};

fn handler(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&request) })
}

/// Builds the answer; nothing here waits, so the reply is always ready.
fn handle(request: &ApiRequest) -> Result<Reply, CloseReason> {
    if !(VERSIONS.min..=VERSIONS.max).contains(&request.version) {
        // KIP-511. The body is not decoded: its format is unknown to us.
        let response = answer(request, ResponseError::UnsupportedVersion.code());
        return request.responder().frame_at(&response, 0).map(Reply::Ready);
    }
    let body: ApiVersionsRequest = request.decode()?;
    if request.version >= FIRST_VERSION_WITH_SOFTWARE_NAME
        && !(is_valid_software_token(&body.client_software_name)
            && is_valid_software_token(&body.client_software_version))
    {
        let error = ResponseError::InvalidRequest;
        telemetry::record_error_code(ENTRY.name, error.code());
        let mut response = ApiVersionsResponse::default();
        response.error_code = error.code();
        return request.respond(&response);
    }
    request.respond(&answer(request, NO_ERROR))
}

/// The full list with error `code`.
fn answer(request: &ApiRequest, code: i16) -> ApiVersionsResponse {
    telemetry::record_error_code(ENTRY.name, code);
    let mut response = ApiVersionsResponse::default();
    response.error_code = code;
    response.api_keys = request.table.advertised();
    // Deliberately left at their defaults, which encode no tagged field:
    // supported_features, finalized_features(_epoch), zk_migration_ready.
    response
}

/// Kafka's `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` for client software
/// names and versions.
fn is_valid_software_token(token: &str) -> bool {
    let bytes = token.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_tokens_follow_kafkas_pattern() {
        for good in [
            "librdkafka",
            "2.0.2",
            "apache-kafka-java",
            "4.3.0",
            "a",
            "x1.y-z",
        ] {
            assert!(is_valid_software_token(good), "{good}");
        }
        for bad in [
            "",
            "-lead",
            "trail.",
            "has space",
            "1.0+build",
            "ünï",
            "a_b",
        ] {
            assert!(!is_valid_software_token(bad), "{bad}");
        }
    }

    #[test]
    fn the_entry_advertises_from_its_own_minimum() {
        assert_eq!(ENTRY.advertised_min, 0);
        assert_eq!(ENTRY.version_policy, VersionPolicy::AnyVersion);
        assert!(ENTRY.versions.max <= ApiKey::ApiVersions.valid_versions().max);
    }
}
