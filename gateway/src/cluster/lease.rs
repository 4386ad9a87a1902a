//! The sequencer thread: waits for the sequencer lease (the lowest live
//! gateway takes it once its holder is gone), and while holding it runs
//! [`Sequencer::pass`] over every gateway's ring. The lease word itself is
//! the sequencer crate's ([`cxlkafka_sequencer::lease`]). Every epoch it
//! sees or takes goes to the data dir's epoch record first (`data_dir.rs`),
//! and a takeover's epoch is above all of them: epochs only increase, across
//! rebuilt regions too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_sequencer::wait::Backoff;
use cxlkafka_sequencer::{lease, membership, Sequencer};

use super::Cluster;
use crate::telemetry;

/// How often a holder re-reads the lease, so that it stops ordering soon
/// after a successor took it.
const LEASE_CHECK_PERIOD: Duration = Duration::from_millis(10);
/// How often a gateway that does not hold the lease looks at it again.
const LEASE_POLL_PERIOD: Duration = Duration::from_millis(20);

impl<B: MemoryBackend> Cluster<B> {
    /// Holds the sequencer lease when the holder is gone and this is the
    /// lowest live gateway, and orders every ring while holding it.
    pub(super) fn sequencer_loop(&self) {
        let held = metrics::gauge!(telemetry::SEQUENCER_LEASE_HELD);
        held.set(0.0);
        while !self.stopping() {
            if self.fenced() {
                return;
            }
            let state = lease::read(
                &self.region,
                self.gateway,
                self.incarnation,
                self.lease_timeout_ns,
            );
            self.record_epoch(state.lease.epoch);
            let lowest_live = membership::live_members(&self.region, self.lease_timeout_ns)
                .first()
                .map(|member| member.gateway);
            let may_take_over = state.free && lowest_live == Some(self.gateway);
            if !(state.mine || may_take_over) {
                // Set on every look: a gauge not set again leaves the
                // scrape (`telemetry::install_prometheus`).
                held.set(0.0);
                std::thread::sleep(LEASE_POLL_PERIOD);
                continue;
            }
            let epoch = if state.mine {
                state.lease.epoch
            } else {
                // Above the region's epoch and every one this data dir
                // recorded (a rebuilt region's lease starts blank), and
                // recorded before the lease word says so.
                self.epochs.next_above(state.lease.epoch)
            };
            self.record_epoch(epoch);
            lease::take(&self.region, self.gateway, self.incarnation, epoch);
            tracing::info!(gateway = self.gateway, epoch, "holding the sequencer lease");
            held.set(1.0);
            self.run_sequencer(epoch, &held);
            held.set(0.0);
        }
    }

    /// Records an epoch this gateway takes or sees in its data dir
    /// (`data_dir.rs`); a failed write is logged once per epoch, and the
    /// epoch is still kept in memory.
    fn record_epoch(&self, epoch: u64) {
        if let Err(error) = self.epochs.record(epoch, self.region.generation()) {
            tracing::warn!(gateway = self.gateway, %error, "epoch kept in memory only");
        }
    }

    fn run_sequencer(&self, epoch: u64, held: &metrics::Gauge) {
        let mut sequencer = Sequencer::recover(Arc::clone(&self.region), self.lease_timeout_ns);
        let mut backoff = Backoff::default();
        let mut last_lease_check = Instant::now();
        let ordered = metrics::counter!(telemetry::SEQUENCER_BATCHES_ORDERED_TOTAL);
        let answered = metrics::counter!(telemetry::SEQUENCER_BATCHES_ANSWERED_TOTAL);
        let passes = metrics::counter!(telemetry::SEQUENCER_SCAN_PASSES_TOTAL);
        let order_log_full = metrics::counter!(telemetry::SEQUENCER_ORDER_LOG_FULL_TOTAL);
        while !self.stopping() {
            if self.fenced() {
                tracing::warn!(
                    gateway = self.gateway,
                    epoch,
                    "stopped ordering: region fenced"
                );
                return;
            }
            if last_lease_check.elapsed() > LEASE_CHECK_PERIOD {
                last_lease_check = Instant::now();
                if !lease::still_held(&self.region, self.gateway, epoch) {
                    tracing::warn!(gateway = self.gateway, epoch, "lost the sequencer lease");
                    return;
                }
                held.set(1.0);
            }
            let rings = self.bells.sequencer.rings();
            let report = sequencer.pass();
            passes.increment(1);
            if report.order_log_full {
                order_log_full.increment(1);
            }
            if report.ordered + report.answered > 0 {
                ordered.increment(report.ordered);
                answered.increment(report.answered);
                self.bells.order.ring();
                backoff.reset();
            } else {
                backoff.wait_on(&self.bells.sequencer, rings);
            }
        }
    }
}
