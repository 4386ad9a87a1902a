//! The live gateways as Kafka brokers: who is listed, who leads and holds
//! which partition, and the cluster id, as Metadata and DescribeCluster
//! report them and the admin APIs check replica assignments against them.

use std::collections::HashSet;

use cxlkafka_sequencer::catalog::Topic;

use crate::cluster::Member;
use crate::context::GatewayContext;

/// The live gateways, lowest slot first, one per advertised address, this
/// one always included.
pub fn live_brokers(ctx: &GatewayContext) -> Vec<Member> {
    let mut members = ctx.log.members();
    let this_listed = members
        .iter()
        .any(|member| i32::from(member.gateway) == ctx.node_id);
    if !this_listed {
        if let Ok(gateway) = ctx.node_id.try_into() {
            members.push(Member {
                gateway,
                host: ctx.advertised.host.clone(),
                port: ctx.advertised.port,
            });
            members.sort_by_key(|member| member.gateway);
        }
    }
    let mut addresses = HashSet::new();
    members.retain(|member| addresses.insert((member.host.clone(), member.port)));
    members
}

/// Replica node ids of a partition, leader first: the live gateway at
/// `(slot + partition) % live` and the ones after it, up to
/// `replication_factor` of them.
pub fn replicas(
    brokers: &[Member],
    topic: &Topic,
    partition: u32,
    replication_factor: i16,
) -> Vec<i32> {
    let count = brokers.len();
    if count == 0 {
        return Vec::new();
    }
    let leader = (topic.slot as usize + partition as usize) % count;
    let copies = usize::try_from(replication_factor)
        .unwrap_or(1)
        .clamp(1, count);
    (0..copies)
        .filter_map(|k| brokers.get((leader + k) % count))
        .map(|member| i32::from(member.gateway))
        .collect()
}

/// The cluster id Metadata (and DescribeCluster) report: the 16-byte id the
/// region stores for the cluster name, base64url-encoded without padding
/// like a Kafka cluster id. A name the region would refuse is used as is.
pub fn cluster_id(cluster: &str) -> String {
    match cxlkafka_log::open::cluster_id(cluster) {
        Ok(bytes) => base64url(&bytes),
        Err(_) => cluster.to_owned(),
    }
}

/// `bytes` in base64url without padding, the form of Kafka's cluster and
/// topic ids.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |word, (i, &b)| word | u32::from(b) << (16 - 8 * i));
        let symbols = chunk.len() + 1;
        for k in 0..symbols {
            let index = (word >> (18 - 6 * k)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(slot: u32) -> Topic {
        Topic {
            slot,
            name: "t".into(),
            topic_id: [1; 16],
            partitions: 4,
            retention_ms: -1,
            retention_bytes: -1,
            configs: String::new(),
            replication_factor: 2,
            changed_at: 0,
        }
    }

    fn members(slots: &[u16]) -> Vec<Member> {
        slots
            .iter()
            .map(|&gateway| Member {
                gateway,
                host: "h".into(),
                port: 9092 + gateway,
            })
            .collect()
    }

    #[test]
    fn leaders_spread_and_replicas_follow_in_ring_order() {
        let live = members(&[0, 2, 5]);
        assert_eq!(replicas(&live, &topic(0), 0, 2), vec![0, 2]);
        assert_eq!(replicas(&live, &topic(0), 1, 2), vec![2, 5]);
        assert_eq!(replicas(&live, &topic(0), 2, 2), vec![5, 0]);
        assert_eq!(replicas(&live, &topic(1), 0, 1), vec![2]);
        assert_eq!(
            replicas(&live, &topic(0), 0, 9),
            vec![0, 2, 5],
            "at most one copy per gateway"
        );
        assert_eq!(replicas(&live, &topic(0), 0, -1), vec![0]);
        assert!(replicas(&[], &topic(0), 0, 2).is_empty());
    }

    #[test]
    fn the_cluster_id_is_the_regions_id_in_kafkas_form() {
        assert_eq!(cluster_id("test"), "dGVzdAAAAAAAAAAAAAAAAA");
        assert_eq!(cluster_id("test").len(), 22);
        assert_eq!(cluster_id("test"), cluster_id("test"), "stable");
        assert_ne!(cluster_id("prod"), cluster_id("test"));
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }
}
