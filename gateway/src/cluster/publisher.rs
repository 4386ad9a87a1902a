//! The publishing side: this gateway's ring writer, the batches published
//! and still waiting for the sequencer's completion, and the completion
//! thread that answers them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use cxlkafka_log::arena::ArenaError;
use cxlkafka_log::layout::{BatchHeader, Completion, Frontier, GatewayIndex};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::{PublishError, RingWriter};
use cxlkafka_log::Region;
use cxlkafka_sequencer::sequencer::unix_ns;
use cxlkafka_sequencer::wait::Backoff;
use tokio::sync::oneshot;

use super::{lock, AppendError, Cluster};
use crate::telemetry;

/// First wait of a publish that found the region full; it doubles up to
/// [`MAX_FULL_WAIT`].
const FIRST_FULL_WAIT: Duration = Duration::from_micros(50);
const MAX_FULL_WAIT: Duration = Duration::from_millis(5);

/// A published batch's waiter and when it was published.
type Waiter = (oneshot::Sender<Completion>, u64);

/// This gateway's ring writer and the waiters of its published slots.
pub(super) struct Publisher {
    writer: Mutex<RingWriter>,
    /// Waiters by ring slot, with the batch's `publish_unix_ns`.
    pending: Mutex<BTreeMap<u64, Waiter>>,
    /// Wakes the completion thread when the first waiter arrives.
    pending_signal: Condvar,
    /// First ring slot of this gateway not yet released to the arena.
    recycle_next: AtomicU64,
}

impl Publisher {
    /// A publisher resuming `writer`, whose slots from `recycle_from` on
    /// are still held.
    pub(super) fn new(mut writer: RingWriter, recycle_from: u64) -> Self {
        writer.set_recycle_limit(recycle_from);
        Self {
            writer: Mutex::new(writer),
            pending: Mutex::new(BTreeMap::new()),
            pending_signal: Condvar::new(),
            recycle_next: AtomicU64::new(recycle_from),
        }
    }

    /// Publishes one batch if the ring and arena have room, registering its
    /// waiter before the writer is released so the completion thread cannot
    /// miss the slot.
    fn try_publish<B: MemoryBackend>(
        &self,
        region: &Region<B>,
        header: BatchHeader,
        payload: &[u8],
    ) -> Result<oneshot::Receiver<Completion>, PublishError> {
        let mut writer = lock(&self.writer);
        let slot = writer.publish(region, header, payload)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(slot, (tx, header.publish_unix_ns));
        drop(writer);
        self.pending_signal.notify_one();
        Ok(rx)
    }

    /// Bytes of the arena in use.
    pub(super) fn arena_used<B: MemoryBackend>(&self, region: &Region<B>) -> u64 {
        let mut writer = lock(&self.writer);
        writer.refresh_consumed(region);
        writer.arena_used()
    }

    /// First ring slot not yet released for reuse.
    pub(super) fn recycle_next(&self) -> u64 {
        self.recycle_next.load(Ordering::Acquire)
    }

    /// Releases this gateway's ring slots below `limit` (and their arena
    /// bytes) for reuse, and publishes it so a restart keeps holding the
    /// rest.
    pub(super) fn release_below<B: MemoryBackend>(
        &self,
        region: &Region<B>,
        gateway: GatewayIndex,
        limit: u64,
    ) {
        self.recycle_next.store(limit, Ordering::Release);
        lock(&self.writer).set_recycle_limit(limit);
        region.set_frontier(gateway, Frontier::RecycledSlot, limit);
    }

    /// Wakes the completion thread (on stop).
    pub(super) fn wake_completions(&self) {
        self.pending_signal.notify_all();
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// Publishes one batch, retrying while the region is full, and returns
    /// the channel its completion arrives on.
    pub(super) async fn publish_header(
        &self,
        header: BatchHeader,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Completion>, AppendError> {
        let mut wait = FIRST_FULL_WAIT;
        loop {
            if self.stopping() {
                return Err(AppendError::ShuttingDown);
            }
            if let Some(refusal) = self.fence.refusal() {
                return Err(refusal);
            }
            match self.publisher.try_publish(&self.region, header, payload) {
                Ok(receiver) => {
                    self.bells.sequencer.ring();
                    return Ok(receiver);
                }
                Err(PublishError::Arena(ArenaError::TooLarge { length, .. })) => {
                    return Err(AppendError::TooLarge(length as usize));
                }
                Err(_) if Instant::now() >= deadline => {
                    metrics::counter!(telemetry::REGION_FULL_TOTAL).increment(1);
                    return Err(AppendError::Full);
                }
                Err(_) => {
                    // The arena recycles only what this gateway's disk
                    // holds: while it cannot write, waiting ends at the
                    // timeout, so say why now.
                    if let Some(fault) = self.disk.fault() {
                        metrics::counter!(telemetry::REGION_FULL_TOTAL).increment(1);
                        return Err(AppendError::Storage(fault));
                    }
                    // Space comes back as the disk tier catches up.
                    self.advance_recycle_limit();
                    // Backpressure: the sequencer (or a lagging replica)
                    // has not released space yet.
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_FULL_WAIT);
                }
            }
        }
    }

    /// Answers published batches as the sequencer completes their slots.
    pub(super) fn completion_loop(&self) {
        let publisher = &self.publisher;
        let mut backoff = Backoff::default();
        let ordering_lag = metrics::histogram!(telemetry::ORDERING_LAG_SECONDS);
        // Once fenced, no completion is delivered: what the old region's
        // sequencer ordered from now on is not acknowledged.
        while !self.stopping() && !self.fenced() {
            let next = {
                let pending = lock(&publisher.pending);
                if pending.is_empty() {
                    // Nothing outstanding: sleep until a publish signals.
                    let _unused = publisher
                        .pending_signal
                        .wait_timeout(pending, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                pending.keys().next().copied()
            };
            let Some(slot) = next else { continue };
            let rings = self.bells.order.rings();
            let offset = self.region.layout().completion(self.gateway, slot);
            match self.region.read_committed::<Completion>(offset, slot) {
                Some(completion) => {
                    if let Some((waiter, published_ns)) = lock(&publisher.pending).remove(&slot) {
                        let lag_ns = unix_ns().saturating_sub(published_ns);
                        ordering_lag.record(lag_ns as f64 / 1e9);
                        let _ = waiter.send(completion);
                    }
                    backoff.reset();
                }
                None => backoff.wait_on(&self.bells.order, rings),
            }
        }
        // Wake every waiter with a closed channel (answered as the gateway
        // going away: NOT_LEADER_OR_FOLLOWER, retried elsewhere).
        lock(&publisher.pending).clear();
    }
}
