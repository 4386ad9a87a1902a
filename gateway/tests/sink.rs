//! `cxlkafka serve --sink`: a broker that acknowledges and stores nothing,
//! the baseline every bandwidth figure is divided by.

mod common;
mod data_path;

use std::sync::Arc;

use common::Client;
use cxlkafka_gateway::cluster::SinkLog;
use cxlkafka_gateway::context::AdvertisedListener;
use cxlkafka_gateway::{DispatchTable, GatewayContext, Server};
use data_path::{batch, create_topic, fetch, produce};

#[tokio::test]
async fn the_sink_acknowledges_with_advancing_offsets_and_keeps_nothing() {
    let server = Server::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr();
    let log = Arc::new(SinkLog::new(addr.ip().to_string(), addr.port()));
    let ctx = GatewayContext::new(log, "sink", AdvertisedListener::from_socket_addr(addr));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = server.spawn(
        Arc::new(ctx),
        Arc::new(DispatchTable::standard()),
        async move {
            let _ = stopped.await;
        },
    );
    let mut client = Client::connect(addr).await;
    create_topic(&mut client, "void").await;
    assert_eq!(
        produce(&mut client, "void", 0, batch(&[b"a", b"b", b"c"], 1, None)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut client, "void", 0, batch(&[b"d"], 1, None)).await,
        (0, 3)
    );
    let answer = fetch(&mut client, "void", 0, 4).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.high_watermark, 4);
    assert!(
        answer.records.is_none_or(|records| records.is_empty()),
        "the sink keeps nothing"
    );
    assert_eq!(
        fetch(&mut client, "void", 0, 0).await.error_code,
        1,
        "nothing below the high watermark"
    );
    let _ = stop.send(());
    handle.stopped().await;
}
