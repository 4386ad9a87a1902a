//! InitProducerId over a real socket: fresh ids for idempotent producers;
//! one producer id per transactional id, its epoch bumped by each init.

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
async fn a_transactional_id_keeps_its_producer_and_each_init_bumps_the_epoch() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    let init = |id: &str, timeout_ms: i32, expected: Option<(i64, i16)>| {
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(TransactionalId(StrBytes::from_string(id.into())));
        request.transaction_timeout_ms = timeout_ms;
        let (producer_id, epoch) = expected.unwrap_or((-1, -1));
        request.producer_id = producer_id.into();
        request.producer_epoch = epoch;
        request
    };
    let first: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        1,
        &init("payments", 60_000, None),
    )
    .await;
    assert_eq!(first.error_code, 0);
    assert_eq!(first.producer_epoch, 0);
    let again: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        2,
        &init("payments", 60_000, None),
    )
    .await;
    assert_eq!(
        (again.error_code, again.producer_id, again.producer_epoch),
        (0, first.producer_id, 1)
    );
    // KIP-360: a retry whose answer was lost (it names the epoch before
    // the current one, nothing begun since) gets the current epoch again.
    let retried: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        3,
        &init("payments", 60_000, Some((first.producer_id.0, 0))),
    )
    .await;
    assert_eq!((retried.error_code, retried.producer_epoch), (0, 1));
    let third: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        4,
        &init("payments", 60_000, None),
    )
    .await;
    assert_eq!((third.error_code, third.producer_epoch), (0, 2));
    // Otherwise the epoch a client last had must still be the current one.
    let stale: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        5,
        &init("payments", 60_000, Some((first.producer_id.0, 0))),
    )
    .await;
    assert_eq!(stale.error_code, 90, "PRODUCER_FENCED");
    let stale_v3: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        3,
        6,
        &init("payments", 60_000, Some((first.producer_id.0, 0))),
    )
    .await;
    assert_eq!(stale_v3.error_code, 47, "INVALID_PRODUCER_EPOCH below v4");
    let current: InitProducerIdResponse = call(
        &mut client,
        ApiKey::InitProducerId,
        4,
        7,
        &init("payments", 60_000, Some((first.producer_id.0, 2))),
    )
    .await;
    assert_eq!((current.error_code, current.producer_epoch), (0, 3));
    for (id, timeout_ms, code) in [
        ("payments", 900_001, 50),
        ("payments", 0, 50),
        ("", 60_000, 42),
    ] {
        let response: InitProducerIdResponse = call(
            &mut client,
            ApiKey::InitProducerId,
            4,
            6,
            &init(id, timeout_ms, None),
        )
        .await;
        assert_eq!(response.error_code, code, "{id:?} {timeout_ms}");
        assert_eq!(response.producer_id.0, -1);
        assert_eq!(response.producer_epoch, -1);
    }
    gateway.stop().await;
}
