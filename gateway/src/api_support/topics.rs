//! Topics as handlers look them up and create them: Kafka's rules for a
//! topic name, fresh topic ids, lookup by id, and the partition cap.
//!
//! Metadata validates the names it auto-creates with [`validate_topic_name`]
//! and the admin APIs word its refusals (see [`super::admin`]); CreateTopics
//! and Metadata draw ids from [`new_topic_id`]; Produce, Fetch, DeleteTopics
//! and Metadata find a topic named by id with [`by_id`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use cxlkafka_sequencer::catalog::Topic;
use uuid::Uuid;

use crate::context::GatewayContext;

/// Kafka's longest topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Largest partition count of one topic (the catalog's streams per topic):
/// CreateTopics and CreatePartitions refuse more.
pub const MAX_PARTITIONS: i32 = cxlkafka_log::layout::MAX_PARTITIONS_PER_TOPIC as i32;

/// A live topic by id.
pub fn by_id(ctx: &GatewayContext, id: Uuid) -> Option<Topic> {
    let bytes = *id.as_bytes();
    if bytes == [0; 16] {
        return None;
    }
    ctx.log
        .topics()
        .into_iter()
        .find(|topic| topic.topic_id == bytes)
}

/// A fresh topic id: random (hashed from the name, the time, the process
/// and the OS-seeded keys of [`RandomState`]), shaped as a version-4 UUID,
/// so never all zeros nor Kafka's reserved metadata topic id, and, as Kafka
/// ensures, never one whose base64 form starts with '-'.
pub fn new_topic_id(name: &str) -> [u8; 16] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mut id = [0u8; 16];
    for (half, chunk) in id.chunks_mut(8).enumerate() {
        let hash = RandomState::new().hash_one((name, now, std::process::id(), half));
        chunk.copy_from_slice(&hash.to_be_bytes());
    }
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    if id[0] >> 2 == 0x3e {
        id[0] &= 0x7f;
    }
    id
}

/// Why a topic name is illegal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidTopicName {
    /// Empty.
    Empty,
    /// "." or "..".
    Dots,
    /// Longer than [`MAX_TOPIC_NAME_LEN`].
    TooLong,
    /// A character outside `[a-zA-Z0-9._-]`.
    IllegalCharacter,
}

/// Kafka's `Topic.validate`: 1 to 249 characters from `[a-zA-Z0-9._-]`,
/// and neither "." nor "..".
pub fn validate_topic_name(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() {
        Err(InvalidTopicName::Empty)
    } else if name == "." || name == ".." {
        Err(InvalidTopicName::Dots)
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        Err(InvalidTopicName::TooLong)
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err(InvalidTopicName::IllegalCharacter)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::api_support::brokers::base64url;

    #[test]
    fn topic_names_follow_kafkas_rules() {
        for good in ["a", "orders", "a.b_c-D9", &"x".repeat(249)] {
            assert_eq!(validate_topic_name(good), Ok(()), "{good}");
        }
        assert_eq!(validate_topic_name(""), Err(InvalidTopicName::Empty));
        assert_eq!(validate_topic_name("."), Err(InvalidTopicName::Dots));
        assert_eq!(validate_topic_name(".."), Err(InvalidTopicName::Dots));
        assert_eq!(
            validate_topic_name(&"x".repeat(250)),
            Err(InvalidTopicName::TooLong)
        );
        for bad in ["a b", "a/b", "ü", "a:b", "a\0"] {
            assert_eq!(
                validate_topic_name(bad),
                Err(InvalidTopicName::IllegalCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn topic_ids_are_random_v4_shaped_and_never_reserved() {
        let ids: HashSet<[u8; 16]> = (0..1000).map(|_| new_topic_id("t")).collect();
        assert_eq!(ids.len(), 1000, "no repeats");
        for id in ids {
            assert_ne!(id, [0; 16]);
            assert_eq!(id[6] >> 4, 4, "version 4");
            assert_eq!(id[8] >> 6, 2, "RFC 4122 variant");
            assert!(!base64url(&id).starts_with('-'));
        }
    }
}
