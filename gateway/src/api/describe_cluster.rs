//! DescribeCluster (key 60): the cluster id, the controller and the brokers,
//! as the admin clients' `describeCluster` reads them.
//!
//! The answer agrees with Metadata: the brokers are the live gateways
//! (lowest node id first, one per address, this one included), the
//! controller is the lowest of them (the gateway that holds, or is next in
//! line for, the sequencer lease), and the cluster id is the region's id in
//! Kafka's base64 form ([`cluster_id`]). No gateway is
//! fenced and none has a rack.
//!
//! Asked for cluster authorized operations, it lists every operation Kafka
//! supports on the CLUSTER resource (CREATE, ALTER, DESCRIBE,
//! CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE), as a
//! Kafka broker without an authorizer does; otherwise the field keeps its
//! "not requested" value, `i32::MIN`.
//!
//! v1+ requests name an endpoint type: gateways are brokers (1); asking a
//! broker for controllers (2) is MISMATCHED_ENDPOINT_TYPE (114), any other
//! type UNSUPPORTED_ENDPOINT_TYPE (115).

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use crate::api_support::brokers::{cluster_id, live_brokers};
use crate::context::GatewayContext;
use crate::dispatch::{ApiEntry, ApiRequest, HandlerFuture, Reply, VersionPolicy};
use crate::error::CloseReason;
use crate::security::{AclOperation, Resource};
use crate::shape::{Field, BOOLEAN, INT8};
use crate::telemetry;

/// Versions served: all the crate decodes.
pub const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

/// The dispatch table row.
pub const ENTRY: ApiEntry = ApiEntry {
    key: ApiKey::DescribeCluster,
    name: "DescribeCluster",
    versions: VERSIONS,
    advertised_min: VERSIONS.min,
    version_policy: VersionPolicy::Strict,
    handler,
};

/// The request's layout (see [`crate::shape`]).
pub const REQUEST: &[Field] = &[
    Field::always(BOOLEAN),
    Field::since(INT8, 1),
    Field::since(BOOLEAN, 2),
];

/// Endpoint types of KIP-919.
const BROKER_ENDPOINT: i8 = 1;
const CONTROLLER_ENDPOINT: i8 = 2;

/// Kafka's `AclOperation` codes supported on the CLUSTER resource.
const CLUSTER_OPERATIONS: [u8; 7] = [
    5,  // CREATE
    7,  // ALTER
    8,  // DESCRIBE
    9,  // CLUSTER_ACTION
    10, // DESCRIBE_CONFIGS
    11, // ALTER_CONFIGS
    12, // IDEMPOTENT_WRITE
];

/// The operations as Kafka's 32-bit field: bit n set for operation code n.
pub fn cluster_authorized_operations() -> i32 {
    CLUSTER_OPERATIONS
        .iter()
        .fold(0, |bits, &code| bits | (1 << code))
}

fn handler(ctx: Arc<GatewayContext>, request: ApiRequest) -> HandlerFuture {
    Box::pin(async move { handle(&ctx, &request) })
}

fn handle(ctx: &GatewayContext, request: &ApiRequest) -> Result<Reply, CloseReason> {
    let body: DescribeClusterRequest = request.decode_bounded(REQUEST)?;
    let mut response = DescribeClusterResponse::default().with_endpoint_type(BROKER_ENDPOINT);
    let refusal = match body.endpoint_type {
        BROKER_ENDPOINT => None,
        CONTROLLER_ENDPOINT => Some((
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of \
             type CONTROLLER"
                .to_owned(),
        )),
        other => Some((
            ResponseError::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        )),
    };
    if let Some((error, message)) = refusal {
        telemetry::record_error_code(ENTRY.name, error.code());
        response = response
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_string(message)));
        return request.respond(&response);
    }
    if !request.authorized(ctx, AclOperation::Describe, Resource::Cluster) {
        let error = ResponseError::ClusterAuthorizationFailed;
        telemetry::record_error_code(ENTRY.name, error.code());
        return request.respond(&response.with_error_code(error.code()));
    }
    let brokers = request.advertise(ctx, live_brokers(ctx));
    let controller = brokers
        .first()
        .map_or(-1, |member| i32::from(member.gateway));
    response = response
        .with_cluster_id(StrBytes::from_string(cluster_id(&ctx.cluster)))
        .with_controller_id(BrokerId(controller))
        .with_brokers(
            brokers
                .into_iter()
                .map(|member| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(i32::from(member.gateway)))
                        .with_host(StrBytes::from_string(member.host))
                        .with_port(i32::from(member.port))
                })
                .collect(),
        );
    if body.include_cluster_authorized_operations {
        response = response.with_cluster_authorized_operations(cluster_authorized_operations());
    }
    request.respond(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_operations_are_kafkas_bit_field() {
        // What a Kafka broker without an authorizer answers.
        assert_eq!(cluster_authorized_operations(), 8096);
    }
}
