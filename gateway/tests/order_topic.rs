//! The total order, read as a Kafka topic: `__cxlkafka_order` lists every
//! ordered batch across topics and partitions, in global-sequence order, and
//! refuses writes.

mod common;
mod data_path;

use common::TestGateway;
use data_path::{batch, create_topic, decode_records, fetch, produce};

#[tokio::test]
async fn the_order_topic_lists_every_batch_in_global_order() {
    let mut gateway = TestGateway::start().await;
    let mut client = gateway.client().await;
    create_topic(&mut client, "alpha").await;
    create_topic(&mut client, "beta").await;
    let produced = [("alpha", 2), ("beta", 1), ("alpha", 3), ("beta", 4)];
    let mut expected_offsets = std::collections::HashMap::new();
    for (topic, records) in produced {
        let values: Vec<&[u8]> = (0..records).map(|_| &b"v"[..]).collect();
        let (error, base_offset) = produce(&mut client, topic, 0, batch(&values, 1, None)).await;
        assert_eq!(error, 0);
        let next = expected_offsets.entry(topic).or_insert(0i64);
        assert_eq!(base_offset, *next);
        *next += i64::from(records);
    }

    let answer = fetch(&mut client, "__cxlkafka_order", 0, 0).await;
    assert_eq!(answer.error_code, 0);
    let records = decode_records(&answer.records.expect("records"));
    // Two topic creations came first; then the four batches, in order.
    let data: Vec<String> = records
        .iter()
        .map(|(_, _, value)| String::from_utf8(value.to_vec()).unwrap())
        .filter(|value| !value.contains("\"control\""))
        .collect();
    let described: Vec<(String, i64, u32)> = data
        .iter()
        .map(|value| {
            let field = |name: &str| {
                let start = value.find(&format!("\"{name}\":")).unwrap() + name.len() + 3;
                value[start..]
                    .split([',', '}'])
                    .next()
                    .unwrap()
                    .trim_matches('"')
                    .to_string()
            };
            (
                field("topic"),
                field("offset").parse().unwrap(),
                field("records").parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            ("alpha".to_string(), 0, 2),
            ("beta".to_string(), 0, 1),
            ("alpha".to_string(), 2, 3),
            ("beta".to_string(), 1, 4),
        ]
    );
    // Offsets are global sequence - 1, gap-free, keys are the sequences.
    for (index, (offset, key, _)) in records.iter().enumerate() {
        assert_eq!(*offset, index as i64);
        assert_eq!(&key[..], (index + 1).to_string().as_bytes());
    }
    assert_eq!(answer.high_watermark, records.len() as i64);

    // Nobody but the sequencer writes it.
    let (error, _) = produce(&mut client, "__cxlkafka_order", 0, batch(&[b"x"], 1, None)).await;
    assert_eq!(error, 17, "INVALID_TOPIC_EXCEPTION");
    gateway.stop().await;
}
