//! SaslHandshake (key 17) once SASL is not expected: on a listener without
//! SASL, or after the connection authenticated. Kafka answers
//! ILLEGAL_SASL_STATE (34) then; the exchange itself, on SASL listeners
//! before authentication, is run by [`crate::security::sasl`].

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::VersionRange;
use kafka_protocol::ResponseError;

use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, VersionPolicy};
use crate::shape::{Field, Kind};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::SaslHandshake,
    name: "SaslHandshake",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[Field::always(Kind::String)];

fn handler(_ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move {
        let _: SaslHandshakeRequest = request.decode_bounded(REQUEST)?;
        let mut response = SaslHandshakeResponse::default();
        response.error_code = ResponseError::IllegalSaslState.code();
        telemetry::record_error_code(ENTRY.name, response.error_code);
        request.respond(&response)
    })
}
