//! The region fence: a gateway serves only while the region it mapped is
//! still the cluster's region.
//!
//! A region file that was unlinked stays mapped: a gateway would go on
//! ordering and acknowledging in memory that no other gateway sees, while a
//! restarted one formats a new region at the same path. Two clusters under
//! one name would both accept writes, and one side's would be lost. So the
//! heartbeat thread checks, every beat, that the path still names the file
//! this gateway mapped and that the region still holds the generation it
//! mapped ([`RegionWatch::check`]). The first time it does not:
//!
//! - nothing more is acknowledged: publishing answers
//!   [`AppendError::RegionLost`] (NOT_LEADER_OR_FOLLOWER, retriable, so
//!   clients refresh Metadata and go elsewhere), batches already published
//!   get no completion, and acks=all waits fail;
//! - the sequencer thread stops ordering and the heartbeat stops beating;
//!   when the memory itself was formatted again (not merely unlinked), the
//!   tailer stops applying it too and a stop does not wait for the disk tier
//!   to catch up, since that memory is another region's now. Entries the
//!   dead mapping of an unlinked file ordered are still applied and copied
//!   to disk before the process exits;
//! - one error line, and `cxlkafka_region_fenced` goes to 1;
//!
//! The same holds for a gateway the sequencer overtook (it was paused
//! while counted dead, and a whole order log was written past what its
//! tailer applied: [`RegionChange::Overtaken`]): it can never apply those
//! entries, and its stale applied frontier, once it beats again, would hold
//! the sequencer back for good. Its tailer fences it off and it leaves the
//! region at once; a restart copies what it lacks from a holder.
//!
//! - [`ClusterLog::region_lost`](super::ClusterLog::region_lost) completes,
//!   and `cxlkafka serve` stops and exits with [`EXIT_REGION_LOST`]: a
//!   restart joins the region now at the path.

use std::sync::atomic::{AtomicBool, Ordering};

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::{RegionChange, RegionWatch};
use tokio::sync::watch;

use super::{AppendError, Cluster};
use crate::telemetry;

/// Exit status of `cxlkafka serve` after it found its region unlinked,
/// replaced or formatted again, or itself overtaken (EX_TEMPFAIL): restart
/// it to join the region at the path.
pub const EXIT_REGION_LOST: u8 = 75;

/// What this gateway mapped, and whether it found that gone.
pub(super) struct RegionFence {
    watch: RegionWatch,
    /// Read on every publish and sequencer pass: a load, not a lock.
    lost: AtomicBool,
    /// The lost region's memory was formatted again (in place).
    memory_reused: AtomicBool,
    /// The change once found; [`RegionFence::wait_lost`] waits on it.
    change: watch::Sender<Option<RegionChange>>,
}

impl RegionFence {
    pub(super) fn new(watch: RegionWatch) -> Self {
        metrics::gauge!(telemetry::REGION_FENCED).set(0.0);
        Self {
            watch,
            lost: AtomicBool::new(false),
            memory_reused: AtomicBool::new(false),
            change: watch::Sender::new(None),
        }
    }

    /// Whether this gateway found its region gone.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Completes once this gateway found its region gone, with how.
    pub(super) async fn wait_lost(&self) -> RegionChange {
        let mut receiver = self.change.subscribe();
        loop {
            if let Some(change) = receiver.borrow_and_update().clone() {
                return change;
            }
            if receiver.changed().await.is_err() {
                // The fence is gone with its cluster: nothing left to lose.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether the memory this gateway mapped now holds another region.
    pub(super) fn memory_reused(&self) -> bool {
        self.memory_reused.load(Ordering::Acquire)
    }

    /// The error for a request that needs the region.
    pub(super) fn refusal(&self) -> Option<AppendError> {
        self.is_lost().then_some(AppendError::RegionLost)
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// Checks that the region this gateway mapped is still the one at its
    /// path; fences this gateway off the first time it is not. Returns
    /// whether it may go on serving.
    pub(super) fn region_still_ours(&self) -> bool {
        if self.fence.is_lost() {
            return false;
        }
        match self.fence.watch.check(&self.region) {
            Ok(()) => true,
            Err(change) => {
                self.fence_off(change);
                false
            }
        }
    }

    pub(super) fn fence_off(&self, change: RegionChange) {
        if matches!(change, RegionChange::Reformatted { .. }) {
            self.fence.memory_reused.store(true, Ordering::Release);
        }
        if self.fence.lost.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(
            gateway = self.gateway,
            mapped_generation = %self.fence.watch.generation(),
            change = change.kind(),
            "{change}: this gateway no longer acknowledges anything; it must be restarted to \
             join the region at its path and copy what it lacks"
        );
        metrics::gauge!(telemetry::REGION_FENCED).set(1.0);
        self.fence.change.send_replace(Some(change));
        // Wake whoever waits on region work, so each sees the fence now.
        self.bells.sequencer.ring();
        self.bells.order.ring();
        self.publisher.wake_completions();
    }

    /// Whether this gateway stopped serving its region.
    pub(super) fn fenced(&self) -> bool {
        self.fence.is_lost()
    }
}
