//! `cxlkafka bench produce`, `bench consume` and `bench sink` against real
//! servers in this process: every record sent is acknowledged, and a
//! consume reads back exactly what is there. Counts only, never timings.

mod common;

use common::TestGateway;
use cxlkafka_gateway::bench::sink::SinkBenchArgs;
use cxlkafka_gateway::bench::{self, CompressionArg, ConsumeBenchArgs, ProduceBenchArgs};
use cxlkafka_gateway::config::ByteSize;
use cxlkafka_gateway::context::{Limits, TopicDefaults};
use cxlkafka_gateway::DispatchTable;

async fn gateway_with_partitions(partitions: i32) -> TestGateway {
    TestGateway::start_with_topics(
        Limits::default(),
        DispatchTable::standard(),
        TopicDefaults {
            partitions,
            ..TopicDefaults::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_counts_every_record_once() {
    let mut gateway = gateway_with_partitions(3).await;
    let mut produce = ProduceBenchArgs::new(gateway.addr);
    produce.topic = "counted".into();
    produce.record_size = 100;
    produce.records = 5_000;
    produce.batch_bytes = ByteSize(16 * 1024);
    produce.partitions = 3;
    produce.connections = 2;
    produce.in_flight = 3;
    let sent = bench::produce(produce).await.expect("produce runs");
    assert_eq!(sent.records, 5_000);
    assert_eq!(sent.bytes, 500_000);

    let mut consume = ConsumeBenchArgs::new(gateway.addr);
    consume.topic = "counted".into();
    consume.partitions = 3;
    consume.connections = 2;
    consume.in_flight = 3;
    // Small fetches, so that lanes meet inside batches.
    consume.partition_max_bytes = ByteSize(20_000);
    consume.check_crcs = true;
    let received = bench::consume(consume.clone()).await.expect("consume runs");
    assert_eq!(received.records, 5_000);
    assert!(received.bytes > 500_000, "batch bytes include the headers");

    consume.repeat = 2;
    let twice = bench::consume(consume).await.expect("consume runs");
    assert_eq!(twice.records, 10_000);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_bytes_acks_and_compression_are_honoured() {
    let mut gateway = gateway_with_partitions(1).await;
    let mut produce = ProduceBenchArgs::new(gateway.addr);
    produce.topic = "sized".into();
    produce.record_size = 1000;
    produce.bytes = Some(ByteSize(300_500));
    produce.batch_bytes = ByteSize(64 * 1024);
    produce.compression = CompressionArg::Lz4;
    produce.acks = 1;
    let sent = bench::produce(produce.clone()).await.expect("produce runs");
    assert_eq!(sent.records, 301, "300,500 bytes round up to whole records");

    produce.compression = CompressionArg::None;
    produce.acks = 0;
    produce.bytes = None;
    produce.records = 99;
    let unacknowledged = bench::produce(produce).await.expect("produce runs");
    assert_eq!(unacknowledged.records, 99);

    let mut consume = ConsumeBenchArgs::new(gateway.addr);
    consume.topic = "sized".into();
    consume.check_crcs = true;
    // acks=0 batches are published before the next request is read, but
    // may be ordered a little later: read only what acks=1 confirmed.
    consume.records = 301;
    let received = bench::consume(consume).await.expect("consume runs");
    assert_eq!(received.records, 301);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_sink_serves_fetches_from_its_template_batch() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let args = SinkBenchArgs {
        listen: "127.0.0.1:0".parse().expect("address"),
        metrics_addr: None,
    };
    let server = bench::sink::start(&args, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the sink starts");
    let addr = server.local_addr();
    let mut produce = ProduceBenchArgs::new(addr);
    produce.record_size = 100;
    produce.batch_bytes = ByteSize(16_300);
    // Ten full batches of 163 records.
    produce.records = 1_630;
    let sent = bench::produce(produce).await.expect("produce runs");
    assert_eq!(sent.records, 1_630);

    let mut consume = ConsumeBenchArgs::new(addr);
    consume.in_flight = 3;
    consume.check_crcs = true;
    let received = bench::consume(consume).await.expect("consume runs");
    assert_eq!(received.records, 1_630);
    let _ = stop.send(());
    server.stopped().await;
}
