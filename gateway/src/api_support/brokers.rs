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

/// The node ids of the live gateways that hold every entry (see
/// [`crate::cluster::ClusterLog::holders`]).
pub fn holder_ids(ctx: &GatewayContext) -> HashSet<i32> {
    ctx.log
        .holders()
        .iter()
        .map(|member| i32::from(member.gateway))
        .collect()
}

/// Replica node ids of a partition, leader first: the leader is the holder
/// at `(slot + partition) % holders` (so leaders spread over the gateways
/// that hold every entry, and never land on one that lacks older data),
/// followed by the live gateways after it in slot order, up to
/// `replication_factor` in all. Empty when no live gateway holds every
/// entry: the partition has no leader.
pub fn replicas(
    brokers: &[Member],
    holders: &HashSet<i32>,
    topic: &Topic,
    partition: u32,
    replication_factor: i16,
) -> Vec<i32> {
    let count = brokers.len();
    let leaders: Vec<usize> = (0..count)
        .filter(|&at| holders.contains(&i32::from(brokers[at].gateway)))
        .collect();
    let Some(&leader) =
        leaders.get((topic.slot as usize + partition as usize) % leaders.len().max(1))
    else {
        return Vec::new();
    };
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
        let all = HashSet::from([0, 2, 5]);
        assert_eq!(replicas(&live, &all, &topic(0), 0, 2), vec![0, 2]);
        assert_eq!(replicas(&live, &all, &topic(0), 1, 2), vec![2, 5]);
        assert_eq!(replicas(&live, &all, &topic(0), 2, 2), vec![5, 0]);
        assert_eq!(replicas(&live, &all, &topic(1), 0, 1), vec![2]);
        assert_eq!(
            replicas(&live, &all, &topic(0), 0, 9),
            vec![0, 2, 5],
            "at most one copy per gateway"
        );
        assert_eq!(replicas(&live, &all, &topic(0), 0, -1), vec![0]);
        assert!(replicas(&[], &all, &topic(0), 0, 2).is_empty());
    }

    #[test]
    fn only_gateways_that_hold_every_entry_lead() {
        let live = members(&[0, 2, 5]);
        let holders = HashSet::from([0, 5]);
        let leaders: Vec<i32> = (0..6)
            .map(|partition| replicas(&live, &holders, &topic(0), partition, 2)[0])
            .collect();
        assert_eq!(
            leaders,
            vec![0, 5, 0, 5, 0, 5],
            "spread over the holders only"
        );
        assert_eq!(
            replicas(&live, &holders, &topic(0), 1, 2),
            vec![5, 0],
            "followers follow in slot order"
        );
        assert!(
            replicas(&live, &HashSet::new(), &topic(0), 1, 1).is_empty(),
            "no live gateway holds every entry: no leader"
        );
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
