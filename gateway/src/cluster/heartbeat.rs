//! The heartbeat thread: keeps this gateway live in the region (the lease,
//! acks=all and arena recycling all count live gateways by it), checks on
//! the same beat that the region is still the one at its path (`fence.rs`)
//! and exports the region gauges.

use std::time::Duration;

use cxlkafka_log::layout::SequencerCheckpoint;
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_sequencer::membership;

use super::Cluster;
use crate::limits::LogGate;
use crate::telemetry;

impl<B: MemoryBackend> Cluster<B> {
    pub(super) fn heartbeat_loop(&self) {
        let period = Duration::from_nanos(self.lease_timeout_ns / 8).max(Duration::from_millis(10));
        let mut beats = 1u64;
        while !self.stopping() {
            if !self.region_still_ours() {
                // Fenced (`fence.rs`): a heartbeat would write into a region
                // that is not this gateway's any more.
                return;
            }
            if self.paused() {
                std::thread::sleep(period);
                continue;
            }
            beats += 1;
            membership::beat(&self.region, self.gateway, self.incarnation, beats, true);
            self.record_members();
            self.record_region_gauges();
            std::thread::sleep(period);
        }
    }

    /// Keeps the data dir's record of the live gateways current: a lost
    /// region is rebuilt only once they are all back (`restore.rs`).
    fn record_members(&self) {
        static RECORD_LOG: LogGate = LogGate::new();
        let live: Vec<_> = membership::live_members(&self.region, self.lease_timeout_ns)
            .iter()
            .map(|member| member.gateway)
            .collect();
        if let Err(error) = self.members.record(&live) {
            if let Some(suppressed) = RECORD_LOG.admit() {
                tracing::warn!(%error, suppressed, "cannot record the live gateways");
            }
        }
    }

    /// Region, arena and order-log gauges of this gateway.
    fn record_region_gauges(&self) {
        let layout = *self.region.layout();
        let arena_used = self.publisher.arena_used(&self.region);
        metrics::gauge!(telemetry::REGION_SIZE_BYTES).set(layout.total_bytes as f64);
        metrics::gauge!(telemetry::ARENA_SIZE_BYTES).set(layout.geometry.arena_bytes as f64);
        metrics::gauge!(telemetry::ARENA_USED_BYTES).set(arena_used as f64);
        // `applied` is the next sequence to apply, as is the checkpoint's.
        let next = self.applied();
        let checkpoint: SequencerCheckpoint = self.region.read_fresh(layout.checkpoint());
        metrics::gauge!(telemetry::ORDER_LOG_APPLIED_SEQUENCE).set(next.saturating_sub(1) as f64);
        metrics::gauge!(telemetry::ORDER_LOG_LAG_ENTRIES)
            .set(checkpoint.next_sequence.saturating_sub(next) as f64);
        metrics::gauge!(telemetry::REPLICA_DURABLE_LAG_ENTRIES)
            .set(checkpoint.next_sequence.saturating_sub(self.disk.durable()) as f64);
        // Also set by the syncer after each fsync; set here too so an idle
        // gateway keeps the series (`telemetry::install_prometheus`).
        metrics::gauge!(telemetry::REPLICA_DURABLE_SEQUENCE)
            .set(self.disk.durable().saturating_sub(1) as f64);
        metrics::gauge!(telemetry::SEGMENT_BYTES).set(self.disk.stored_bytes() as f64);
        metrics::gauge!(telemetry::REPLICA_HOLDS_FROM_SEQUENCE).set(self.disk.holds_from() as f64);
        metrics::gauge!(telemetry::UNDER_REPLICATED_PARTITIONS)
            .set(self.under_replicated_partitions() as f64);
        // Beating means the region is still this gateway's (`fence.rs`
        // sets 1 once it is not, and the heartbeat stops).
        metrics::gauge!(telemetry::REGION_FENCED).set(0.0);
    }

    /// Partitions whose replication factor asks for more disk copies than
    /// there are live gateways holding every entry (every gateway copies
    /// every partition; the region is the remaining copy).
    fn under_replicated_partitions(&self) -> u64 {
        let complete_disks = membership::holders(&self.region, self.lease_timeout_ns).len();
        self.all_topics()
            .iter()
            .filter(|topic| {
                usize::from(topic.replication_factor).saturating_sub(1) > complete_disks
            })
            .map(|topic| u64::from(topic.partitions))
            .sum()
    }
}
