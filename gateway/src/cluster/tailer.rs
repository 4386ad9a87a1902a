//! The tailer: applies the order log to this gateway's index (batch
//! locations, the topic catalog, committed offsets, users and ACLs, dynamic
//! broker configs), wakes
//! fetches waiting for new data, and reports how far this gateway took the
//! order log so the sequencer never overwrites an entry it still needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cxlkafka_log::layout::{kind, Frontier, GatewayIndex, OrderEntry};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::RegionChange;
use cxlkafka_sequencer::catalog::read_catalog;
use cxlkafka_sequencer::control::{tag as control_tag, ControlRecord};
use cxlkafka_sequencer::membership;
use cxlkafka_sequencer::wait::Backoff;
use tokio::sync::watch;

use super::{lock_read, lock_write, Cluster, OrderIndex};

/// Entries applied per lock of the index.
const ENTRIES_PER_PASS: usize = 4096;
/// Passes that applied something between two prunes of recycled locations.
const PASSES_PER_PRUNE: u64 = 64;

/// The next order-log sequence this gateway will apply, for readers and
/// for waiters.
pub(super) struct Applied {
    next: AtomicU64,
    changes: watch::Sender<u64>,
}

impl Applied {
    pub(super) fn new(first: u64) -> Self {
        let (changes, _) = watch::channel(first);
        Self {
            next: AtomicU64::new(first),
            changes,
        }
    }

    fn store(&self, next: u64) {
        self.next.store(next, Ordering::Release);
    }

    /// Wakes the waiters of [`Cluster::wait_applied`].
    fn announce(&self, next: u64) {
        // `send` would keep the old value while nobody waits, and the next
        // waiter would then sleep through entries already applied;
        // `send_replace` always stores it.
        self.changes.send_replace(next);
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// Next order-log sequence this gateway will apply.
    pub(super) fn applied(&self) -> u64 {
        self.applied.next.load(Ordering::Acquire)
    }

    /// Waits until the order log moves past `sequence` or `timeout` passes.
    pub(super) async fn wait_applied(&self, sequence: u64, timeout: Duration) -> u64 {
        let mut receiver = self.applied.changes.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            receiver
                .wait_for(|&next| next > sequence)
                .await
                .map(|next| *next)
        })
        .await;
        match reached {
            Ok(Ok(next)) => next,
            _ => self.applied(),
        }
    }

    /// Reports how far this gateway has taken the order log: the lower of
    /// what the index applied and what the disk tier copied, so the
    /// sequencer never overwrites an entry either still needs.
    pub(super) fn publish_applied(&self) {
        let next = self.applied().min(self.disk.replicated());
        self.store_applied(next);
        self.bells.sequencer.ring();
    }

    pub(super) fn store_applied(&self, next: u64) {
        self.region
            .set_frontier(self.gateway, Frontier::OrderLogApplied, next);
    }

    pub(super) fn tail_loop(&self) {
        let mut backoff = Backoff::default();
        let mut since_prune = 0u64;
        while !self.stopping() {
            if self.fence.memory_reused() {
                // Another region's order log now: none of it is ours.
                return;
            }
            if self.paused() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let rings = self.bells.order.rings();
            let (next, applied_any) = self.apply_pass(&mut since_prune);
            if applied_any {
                self.applied.store(next);
                self.publish_applied();
                self.applied.announce(next);
                self.bells.apply.ring();
                backoff.reset();
            } else if let Some(found) = self.overtaken_at(next) {
                self.leave_overtaken(next, found);
                return;
            } else {
                backoff.wait_on(&self.bells.order, rings);
            }
        }
    }

    /// The commit word in the order-log slot of `next`, when the sequencer
    /// already wrote a later lap there: `next` is gone for this gateway.
    fn overtaken_at(&self, next: u64) -> Option<u64> {
        let layout = self.region.layout();
        let found = self.region.load_word_fresh(layout.order_entry(next));
        (found > next).then_some(found)
    }

    /// Fences this gateway off (`fence.rs`) and leaves the region at once:
    /// the applied frontier it would publish on its next beats lies a whole
    /// order log behind, and would stop the sequencer.
    fn leave_overtaken(&self, next: u64, found: u64) {
        self.fence_off(RegionChange::Overtaken { next, found });
        membership::beat(
            &self.region,
            self.gateway,
            self.incarnation,
            u64::MAX,
            false,
        );
    }

    /// Applies up to [`ENTRIES_PER_PASS`] committed entries under one lock
    /// of the index; returns the next sequence and whether any was applied.
    fn apply_pass(&self, since_prune: &mut u64) -> (u64, bool) {
        let layout = *self.region.layout();
        let mut next = lock_read(&self.index).next_sequence;
        let mut applied_any = false;
        let mut catalog_changed = false;
        let mut index = lock_write(&self.index);
        for _ in 0..ENTRIES_PER_PASS {
            let Some(entry) = self
                .region
                .read_committed::<OrderEntry>(layout.order_entry(next), next)
            else {
                break;
            };
            catalog_changed |= self.apply_entry(&mut index, &entry);
            next += 1;
            applied_any = true;
        }
        index.next_sequence = next;
        if catalog_changed {
            index.set_topics(read_catalog(&self.region));
        }
        *since_prune += u64::from(applied_any);
        if *since_prune >= PASSES_PER_PRUNE {
            *since_prune = 0;
            let floors: Vec<u64> = (0..layout.geometry.max_gateways as GatewayIndex)
                .map(|gateway| self.region.frontier(gateway, Frontier::ArenaFloor))
                .collect();
            index.drop_recycled(
                |gateway| floors.get(gateway as usize).copied().unwrap_or(u64::MAX),
                self.disk.replicated(),
            );
        }
        (next, applied_any)
    }

    /// Applies one entry to the index; true when the topic catalog changed.
    fn apply_entry(&self, index: &mut OrderIndex, entry: &OrderEntry) -> bool {
        match entry.kind {
            kind::DATA => index.apply_data(entry),
            _ if entry.control_tag == u16::from(control_tag::CREATE_TOPIC) => {
                index.forget_slot(entry.base_offset as u32);
                return true;
            }
            _ if ControlRecord::changes_catalog(entry.control_tag) => return true,
            _ if super::index::is_ordered_state_tag(entry.control_tag) => {
                self.apply_offset_commit(index, entry)
            }
            _ if crate::security::is_security_tag(entry.control_tag) => {
                index.security.apply_order_entry(&self.region, entry)
            }
            _ if crate::broker_config::is_broker_config_tag(entry.control_tag) => {
                index.broker_configs.apply_order_entry(&self.region, entry)
            }
            _ => {}
        }
        false
    }

    /// Applies an offset commit or a transaction record read from the
    /// order log.
    fn apply_offset_commit(&self, index: &mut OrderIndex, entry: &OrderEntry) {
        match super::control_in_region(&self.region, entry) {
            Some(record) => index.apply_ordered(record, entry.commit),
            None => {
                // The bytes were recycled before this gateway read them (it
                // lagged a whole arena behind): the disk tier copies them
                // from a holder (`replica.rs`).
                index.commits_awaiting_payload.insert(entry.commit);
            }
        }
    }
}
