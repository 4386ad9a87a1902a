//! InitProducerId over a real socket: fresh ids for idempotent producers,
//! no transactions.

mod common;
mod data_path;

use std::collections::HashSet;

use common::TestGateway;
use data_path::call;
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn every_request_gets_a_fresh_id_at_epoch_zero() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let mut ids = HashSet::new();
    for version in 0..=5 {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = None;
        request.transaction_timeout_ms = 60_000;
        if version >= 3 {
            // An earlier id and epoch change nothing without a transactional id.
            request.producer_id = (7).into();
            request.producer_epoch = 3;
        }
        let response: InitProducerIdResponse = call(
            &mut client,
            ApiKey::InitProducerId,
            version,
            i32::from(version),
            &request,
        )
        .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert!(response.producer_id.0 >= 0, "v{version}");
        assert_eq!(response.producer_epoch, 0, "v{version}");
        assert!(ids.insert(response.producer_id.0), "v{version}: a fresh id");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn transactional_ids_find_no_coordinator() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    for (id, code) in [("my-transactions", 16), ("", 42)] {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(TransactionalId(StrBytes::from_string(id.into())));
        request.transaction_timeout_ms = 60_000;
        let response: InitProducerIdResponse =
            call(&mut client, ApiKey::InitProducerId, 4, 1, &request).await;
        assert_eq!(response.error_code, code, "{id:?}");
        assert_eq!(response.producer_id.0, -1);
        assert_eq!(response.producer_epoch, -1);
    }
    gateway.stop().await;
}
