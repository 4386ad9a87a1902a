//! SaslAuthenticate (key 36) once SASL is not expected: on a listener
//! without SASL, or after the connection authenticated (re-authentication
//! is not offered: sessions report a lifetime of 0). Kafka answers
//! ILLEGAL_SASL_STATE (34) then; the exchange itself is run by
//! [`crate::security::sasl`].

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, VersionPolicy};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::SaslAuthenticate,
    name: "SaslAuthenticate",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::Bytes)];

fn handler(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let _: SaslAuthenticateRequest = request.decode_bounded(REQUEST)?;
        let mut response = SaslAuthenticateResponse::default();
        response.error_code = ResponseError::IllegalSaslState.code();
        response.error_message = Some(StrBytes::from_static_str(
            "SaslAuthenticate request received after successful authentication",
        ));
        telemetry::record_error_code(ENTRY.name, response.error_code);
        request.respond(&response)
    })
}
