//! Reservation arithmetic of a gateway's payload arena.
//!
//! Positions are absolute, monotonic byte counts; the physical offset is
//! `position % size`. A payload never wraps: one that does not fit before the
//! end skips to the start, and the skipped tail counts as used until released.
//! Space is released in publish order, once the consumer frontier (and, with
//! replication, the durable frontier) has passed the batches stored there.

/// Why a reservation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArenaError {
    #[error("payload of {length} bytes can never fit an arena of {size} bytes")]
    TooLarge { length: u64, size: u64 },
    #[error("arena full: {needed} bytes needed, {free} free until the consumer releases space")]
    Full { needed: u64, free: u64 },
}

/// The writer's view of its arena: what is reserved and what was released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaAllocator {
    size: u64,
    head: u64,
    released: u64,
}

impl ArenaAllocator {
    /// An empty arena of `size` bytes whose next position is `start`.
    pub fn new(size: u64, start: u64) -> Self {
        assert!(size > 0, "an arena needs at least one byte");
        Self {
            size,
            head: start,
            released: start,
        }
    }

    /// An arena whose bytes `released..head` are still held (a restarted
    /// writer resuming after batches its predecessor published).
    pub fn resume(size: u64, released: u64, head: u64) -> Self {
        assert!(
            released <= head && head - released <= size,
            "resume range {released}..{head} exceeds {size}"
        );
        Self {
            size,
            head,
            released,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Next position a reservation would start at (before any skip).
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Bytes reserved and not yet released (skipped tails included).
    pub fn used(&self) -> u64 {
        self.head - self.released
    }

    /// Positions below this may have been overwritten by reservations so far.
    pub fn floor(&self) -> u64 {
        self.head.saturating_sub(self.size)
    }

    /// Reserves `length` contiguous bytes and returns their absolute position.
    pub fn reserve(&mut self, length: u64) -> Result<u64, ArenaError> {
        if length > self.size {
            return Err(ArenaError::TooLarge {
                length,
                size: self.size,
            });
        }
        let physical = self.head % self.size;
        let skip = if physical + length > self.size {
            self.size - physical
        } else {
            0
        };
        let needed = skip + length;
        let free = self.size - self.used();
        if needed > free {
            return Err(ArenaError::Full { needed, free });
        }
        let position = self.head + skip;
        self.head = position + length;
        debug_assert!(self.used() <= self.size);
        Ok(position)
    }

    /// Releases every byte below `position` (the end of a consumed payload).
    pub fn release(&mut self, position: u64) {
        assert!(
            position <= self.head,
            "release of {position} beyond the reserved head {}",
            self.head
        );
        // Releases arrive in publish order; an older one is already covered.
        self.released = self.released.max(position);
    }

    /// Physical offset of an absolute position.
    pub fn physical(&self, position: u64) -> u64 {
        position % self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_payload_that_would_wrap_skips_to_the_start() {
        let mut arena = ArenaAllocator::new(100, 0);
        assert_eq!(arena.reserve(60), Ok(0));
        arena.release(60);
        assert_eq!(arena.reserve(50), Ok(100), "40 tail bytes are skipped");
        assert_eq!(arena.physical(100), 0);
        assert_eq!(arena.used(), 90);
    }

    #[test]
    fn a_full_arena_refuses_until_released() {
        let mut arena = ArenaAllocator::new(100, 0);
        assert_eq!(arena.reserve(70), Ok(0));
        assert_eq!(
            arena.reserve(40),
            Err(ArenaError::Full {
                needed: 70,
                free: 30
            })
        );
        arena.release(70);
        assert_eq!(arena.reserve(40), Ok(100));
    }

    #[test]
    fn a_payload_larger_than_the_arena_is_refused_outright() {
        let mut arena = ArenaAllocator::new(100, 0);
        assert_eq!(
            arena.reserve(101),
            Err(ArenaError::TooLarge {
                length: 101,
                size: 100
            })
        );
    }

    proptest! {
        #[test]
        fn live_payloads_never_overlap_and_never_wrap(
            size in 1u64..4096,
            ops in proptest::collection::vec((1u64..600, any::<bool>()), 1..400),
        ) {
            let mut arena = ArenaAllocator::new(size, 0);
            let mut live: std::collections::VecDeque<(u64, u64)> = Default::default();
            for (length, release) in ops {
                if release {
                    if let Some((position, length)) = live.pop_front() {
                        arena.release(position + length);
                    }
                }
                match arena.reserve(length) {
                    Ok(position) => {
                        let physical = arena.physical(position);
                        prop_assert!(physical + length <= size, "payload wraps");
                        prop_assert!(position >= arena.floor());
                        for &(other, other_length) in &live {
                            // Live payloads are within one arena length of each other,
                            // so absolute overlap is physical overlap.
                            prop_assert!(position >= other + other_length, "overlaps a live payload");
                            prop_assert!(position + length - other <= size, "overwrites a live payload");
                        }
                        live.push_back((position, length));
                    }
                    Err(ArenaError::Full { needed, free }) => {
                        prop_assert!(needed > free);
                        prop_assert_eq!(free, size - arena.used());
                    }
                    Err(ArenaError::TooLarge { .. }) => prop_assert!(length > size),
                }
                prop_assert!(arena.used() <= size);
            }
        }
    }
}
