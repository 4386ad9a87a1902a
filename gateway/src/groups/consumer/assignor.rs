//! The server-side assignors of the consumer group protocol (KIP-848):
//! `uniform`, Kafka's default, and `range`. Both are pure functions of the
//! members (sorted by id), their subscriptions and the topics' partition
//! counts, so any gateway that takes the group over computes the same
//! target from the same input.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignor a member asks for when it names none.
pub const DEFAULT_ASSIGNOR: &str = "uniform";
/// The assignors served, as `group.consumer.assignors` lists them.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// What an assignor knows of one member.
#[derive(Clone, Debug)]
pub struct AssignorMember<'a> {
    /// Member id.
    pub id: &'a str,
    /// Topic ids it subscribes to (that exist).
    pub subscribed: BTreeSet<Uuid>,
    /// Its previous target, which `uniform` keeps where it can.
    pub previous: Option<&'a Assignment>,
}

/// The target assignment of every member (members with nothing get an
/// empty one).
pub fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, u32>,
) -> BTreeMap<String, Assignment> {
    let mut targets: BTreeMap<String, Assignment> = members
        .iter()
        .map(|member| (member.id.to_owned(), Assignment::new()))
        .collect();
    let owners = match assignor {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    };
    for ((topic, partition), id) in owners {
        if let Some(target) = targets.get_mut(id) {
            target.entry(topic).or_default().insert(partition);
        }
    }
    targets
}

/// Each assigned partition's member.
type Owners<'a> = HashMap<(Uuid, i32), &'a str>;

/// Every subscribed partition to exactly one subscriber, member counts as
/// even as the subscriptions allow, each member keeping what it had up to
/// its fair share.
fn uniform<'a>(members: &[AssignorMember<'a>], partitions: &BTreeMap<Uuid, u32>) -> Owners<'a> {
    let subscribers: HashMap<Uuid, Vec<&str>> = partitions
        .keys()
        .map(|topic| {
            let ids = members
                .iter()
                .filter(|member| member.subscribed.contains(topic))
                .map(|member| member.id)
                .collect();
            (*topic, ids)
        })
        .collect();
    // A member's fair share: its part of every topic it subscribes to.
    let share = |member: &AssignorMember<'_>| -> usize {
        let exact: f64 = member
            .subscribed
            .iter()
            .filter_map(|topic| {
                let count = *partitions.get(topic)? as f64;
                let readers = subscribers.get(topic).map_or(1, Vec::len).max(1) as f64;
                Some(count / readers)
            })
            .sum();
        exact.floor() as usize
    };
    let mut counts: HashMap<&str, usize> = members.iter().map(|member| (member.id, 0)).collect();
    let mut owner: Owners<'a> = HashMap::new();
    // Sticky pass: what a member had, while it still subscribes to the
    // topic, up to its fair share.
    for member in members {
        let Some(previous) = member.previous else {
            continue;
        };
        let limit = share(member);
        for (topic, kept) in previous {
            let Some(&count) = partitions.get(topic) else {
                continue;
            };
            if !member.subscribed.contains(topic) {
                continue;
            }
            for &partition in kept {
                let taken = counts.get(member.id).copied().unwrap_or(0);
                if taken >= limit {
                    break;
                }
                if partition < 0 || partition as u32 >= count {
                    continue;
                }
                if owner.contains_key(&(*topic, partition)) {
                    continue;
                }
                owner.insert((*topic, partition), member.id);
                counts.insert(member.id, taken + 1);
            }
        }
    }
    // The rest, one by one, to the least loaded subscriber; the previous
    // owner wins a tie.
    let previous_owner: HashMap<(Uuid, i32), &str> = members
        .iter()
        .filter_map(|member| member.previous.map(|previous| (member.id, previous)))
        .flat_map(|(id, previous)| {
            previous
                .iter()
                .flat_map(move |(topic, kept)| kept.iter().map(move |&p| ((*topic, p), id)))
        })
        .collect();
    // Topics with the fewest subscribers first: their partitions have the
    // fewest places to go.
    let mut topics: Vec<(&Uuid, u32)> = partitions.iter().map(|(t, &n)| (t, n)).collect();
    topics.sort_by_key(|(topic, _)| (subscribers.get(*topic).map_or(0, Vec::len), **topic));
    for (topic, count) in topics {
        let Some(readers) = subscribers.get(topic).filter(|readers| !readers.is_empty()) else {
            continue;
        };
        for partition in 0..count as i32 {
            if owner.contains_key(&(*topic, partition)) {
                continue;
            }
            let least = readers
                .iter()
                .map(|id| counts.get(id).copied().unwrap_or(0))
                .min()
                .unwrap_or(0);
            let chosen = previous_owner
                .get(&(*topic, partition))
                .filter(|id| readers.contains(id) && counts.get(*id).copied().unwrap_or(0) == least)
                .copied()
                .or_else(|| {
                    readers
                        .iter()
                        .find(|id| counts.get(*id).copied().unwrap_or(0) == least)
                        .copied()
                });
            if let Some(id) = chosen {
                owner.insert((*topic, partition), id);
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    owner
}

/// Per topic, its subscribers (by member id) each take a contiguous range
/// of partitions; the first `partitions % subscribers` take one more.
fn range<'a>(members: &[AssignorMember<'a>], partitions: &BTreeMap<Uuid, u32>) -> Owners<'a> {
    let mut owner: Owners<'a> = HashMap::new();
    for (topic, &count) in partitions {
        let mut readers: Vec<&'a str> = members
            .iter()
            .filter(|member| member.subscribed.contains(topic))
            .map(|member| member.id)
            .collect();
        readers.sort_unstable();
        if readers.is_empty() {
            continue;
        }
        let each = count as usize / readers.len();
        let extra = count as usize % readers.len();
        let mut next = 0usize;
        for (index, id) in readers.iter().enumerate() {
            let take = each + usize::from(index < extra);
            if take == 0 {
                continue;
            }
            for partition in next..next + take {
                owner.insert((*topic, partition as i32), id);
            }
            next += take;
        }
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn member<'a>(
        id: &'a str,
        topics: &[u8],
        previous: Option<&'a Assignment>,
    ) -> AssignorMember<'a> {
        AssignorMember {
            id,
            subscribed: topics.iter().map(|&t| topic(t)).collect(),
            previous,
        }
    }

    fn counts(targets: &BTreeMap<String, Assignment>) -> Vec<usize> {
        targets
            .values()
            .map(|target| target.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn all_once(targets: &BTreeMap<String, Assignment>, partitions: &BTreeMap<Uuid, u32>) {
        let mut seen = BTreeSet::new();
        for target in targets.values() {
            for (topic, assigned) in target {
                for &p in assigned {
                    assert!(seen.insert((*topic, p)), "{p} of {topic} assigned twice");
                }
            }
        }
        let expected: usize = partitions.values().map(|&n| n as usize).sum();
        assert_eq!(seen.len(), expected, "every partition assigned");
    }

    #[test]
    fn uniform_balances_twelve_partitions_over_three_members() {
        let partitions = BTreeMap::from([(topic(1), 12)]);
        let members = [
            member("a", &[1], None),
            member("b", &[1], None),
            member("c", &[1], None),
        ];
        let targets = assign("uniform", &members, &partitions);
        all_once(&targets, &partitions);
        assert_eq!(counts(&targets), vec![4, 4, 4]);
    }

    #[test]
    fn uniform_keeps_what_members_had_when_one_joins() {
        let partitions = BTreeMap::from([(topic(1), 12)]);
        let first = assign(
            "uniform",
            &[member("a", &[1], None), member("b", &[1], None)],
            &partitions,
        );
        let (a, b) = (first["a"].clone(), first["b"].clone());
        let members = [
            member("a", &[1], Some(&a)),
            member("b", &[1], Some(&b)),
            member("c", &[1], None),
        ];
        let second = assign("uniform", &members, &partitions);
        all_once(&second, &partitions);
        assert_eq!(counts(&second), vec![4, 4, 4]);
        // Only the 4 partitions the new member takes move.
        let kept = |id: &str, before: &Assignment| {
            second[id][&topic(1)]
                .intersection(&before[&topic(1)])
                .count()
        };
        assert_eq!(kept("a", &a) + kept("b", &b), 8);
    }

    #[test]
    fn uniform_gives_a_topic_only_to_its_subscribers() {
        let partitions = BTreeMap::from([(topic(1), 4), (topic(2), 2)]);
        let members = [member("a", &[1], None), member("b", &[1, 2], None)];
        let targets = assign("uniform", &members, &partitions);
        all_once(&targets, &partitions);
        assert!(!targets["a"].contains_key(&topic(2)));
        assert_eq!(counts(&targets), vec![3, 3]);
    }

    #[test]
    fn range_hands_out_contiguous_ranges_by_member_id() {
        let partitions = BTreeMap::from([(topic(1), 5)]);
        let members = [member("b", &[1], None), member("a", &[1], None)];
        let targets = assign("range", &members, &partitions);
        all_once(&targets, &partitions);
        assert_eq!(targets["a"][&topic(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(targets["b"][&topic(1)], BTreeSet::from([3, 4]));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let partitions = BTreeMap::from([(topic(1), 2)]);
        let members = [
            member("a", &[1], None),
            member("b", &[1], None),
            member("c", &[1], None),
        ];
        for assignor in ASSIGNORS {
            let targets = assign(assignor, &members, &partitions);
            all_once(&targets, &partitions);
            let mut sizes = counts(&targets);
            sizes.sort_unstable();
            assert_eq!(sizes, vec![0, 1, 1], "{assignor}");
        }
    }
}
