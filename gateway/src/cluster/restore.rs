//! Before a gateway joins the order: filling what its segments lack from
//! the other gateways' segments, and rebuilding a region that was lost.
//!
//! Gateways started with one `--data-dir` keep their chains side by side
//! (`<data dir>/gateway-<slot>`), and read each other's without changing
//! them. Two cases use that:
//!
//! - **a gap**: this gateway was down while entries were ordered and then
//!   recycled from the region; it copies them from the longest sibling
//!   chain, so it can serve every offset;
//! - **a lost region** (file deleted, machine rebooted): the region comes
//!   back blank; the gateway with the most complete segments ([`Rebuild`])
//!   takes the sequencer lease, copies what siblings (or, over the
//!   peer-copy listener, other gateways) have beyond its own chain, and
//!   replays its chain into the region with [`Sequencer::restore`]: the
//!   same topics, offsets, log starts, committed offsets and producer ids.
//!   Gateways starting meanwhile wait for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{kind, Frontier, GatewayIndex, SequencerCheckpoint};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::{read_chain, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::sequencer::RestoredEntry;
use cxlkafka_sequencer::{lease, membership, Sequencer};

use super::data_dir::EpochRecord;
use super::peer_copy::fetch::Copying;
use super::replica::DiskTier;
use crate::limits::LogGate;

/// How long a gateway waits for another one to rebuild a lost region.
const RESTORE_WAIT: Duration = Duration::from_secs(120);

/// The chain directories of the other gateways under `data_dir`.
fn sibling_dirs(data_dir: &Path, own: &Path) -> Vec<PathBuf> {
    let Ok(items) = std::fs::read_dir(data_dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = items
        .filter_map(Result::ok)
        .map(|item| item.path())
        .filter(|path| {
            path.is_dir()
                && path != own
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("gateway-"))
        })
        .collect();
    dirs.sort();
    dirs
}

/// Copies into this gateway's chain the entries after its last one, up to
/// `upto` (inclusive; `None`: as far as any sibling has), from the sibling
/// chain that reaches furthest. Returns the entries copied.
pub(super) fn backfill(
    disk: &DiskTier,
    data_dir: &Path,
    own_dir: &Path,
    upto: Option<u64>,
) -> Result<Vec<StoredEntry>, String> {
    let own_last = disk.last_stored();
    if upto.is_some_and(|upto| upto <= own_last) {
        return Ok(Vec::new());
    }
    let mut best = None;
    for dir in sibling_dirs(data_dir, own_dir) {
        match read_chain(&dir) {
            Ok((entries, files)) => {
                let last = entries.last().map_or(0, |entry| entry.header.sequence);
                if best
                    .as_ref()
                    .is_none_or(|(_, _, _, best_last)| last > *best_last)
                {
                    best = Some((dir, entries, files, last));
                }
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot read a sibling's segments")
            }
        }
    }
    let Some((dir, entries, files, last)) = best else {
        return Ok(Vec::new());
    };
    if last <= own_last {
        return Ok(Vec::new());
    }
    let mut copied = Vec::new();
    let mut payload = Vec::new();
    for entry in entries.iter().filter(|entry| {
        entry.header.sequence > own_last && upto.is_none_or(|upto| entry.header.sequence <= upto)
    }) {
        payload.resize(entry.header.length as usize, 0);
        files
            .read_payload(entry.location, &mut payload)
            .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
        copied.push(disk.append_copied(&entry.header, &payload)?);
    }
    disk.sync_now()?;
    if let (Some(first), Some(last)) = (copied.first(), copied.last()) {
        tracing::info!(
            from = %dir.display(),
            first = first.header.sequence,
            last = last.header.sequence,
            "copied entries this gateway lacked from a sibling's segments"
        );
    }
    Ok(copied)
}

/// Whether nothing was ever ordered in this region (new or recreated).
pub(super) fn region_is_blank<B: MemoryBackend>(region: &Region<B>) -> bool {
    let checkpoint: SequencerCheckpoint = region.read_fresh(region.layout().checkpoint());
    checkpoint.next_sequence <= 1 && checkpoint.catalog_version == 0
}

/// A gateway with segments on a blank region: it rebuilds the region from
/// them, or waits while another gateway does.
///
/// Every such gateway published what its chain holds in its slot before
/// joining (`holds_from` and, as its durable frontier, the sequence after
/// its last entry). The region is rebuilt only:
///
/// - once every gateway that was live when this one last ran is live again
///   (their segments may hold acknowledged entries this one lacks), unless
///   the operator said `--unclean-region-rebuild`;
/// - after a short gathering time (two lease timeouts), so that gateways
///   restarted together all show their chains;
/// - by the gateway whose chain is most complete (lowest `holds_from`, then
///   furthest end, then lowest slot), which first copies from any longer
///   chain the entries after its own last one.
pub(super) struct Rebuild<'a, B: MemoryBackend> {
    pub region: &'a Arc<Region<B>>,
    pub gateway: GatewayIndex,
    pub incarnation: u64,
    pub lease_timeout_ns: u64,
    pub disk: &'a DiskTier,
    pub epochs: &'a EpochRecord,
    pub copying: &'a Copying<'a, B>,
    /// The gateways live when this one last ran (`data_dir::MembersRecord`).
    pub last_members: Vec<GatewayIndex>,
    /// Rebuild without waiting for them.
    pub unclean: bool,
}

/// One gateway's chain as it published it on the blank region.
#[derive(Clone, Copy, Debug)]
struct Chain {
    gateway: GatewayIndex,
    holds_from: u64,
    /// The sequence after its last entry.
    end: u64,
}

/// What this gateway does about the blank region now.
enum Turn {
    Rebuild,
    Wait(String),
}

static WAITING_LOG: LogGate = LogGate::new();

impl<B: MemoryBackend> Rebuild<'_, B> {
    /// Returns once the region is no longer blank (rebuilt by this gateway
    /// with `stored` and what it copied, added to `stored`, or by another).
    pub(super) fn run(&self, stored: &mut Vec<StoredEntry>) -> Result<(), String> {
        let began = Instant::now();
        let gathering = Duration::from_nanos(self.lease_timeout_ns.saturating_mul(2));
        let deadline = began + RESTORE_WAIT;
        let mut why = String::from("another gateway holds the sequencer lease");
        // Its heartbeat thread does not run yet: it beats here, so that the
        // others see it live while they decide (and wait for it).
        let mut beats = 1u64;
        loop {
            beats += 1;
            membership::beat(self.region, self.gateway, self.incarnation, beats, true);
            if !region_is_blank(self.region) {
                // Rebuilt by another: until this gateway caught up, it
                // holds nothing anyone may rely on.
                self.region
                    .set_frontier(self.gateway, Frontier::HoldsFrom, 0);
                return Ok(());
            }
            let state = lease::read(
                self.region,
                self.gateway,
                self.incarnation,
                self.lease_timeout_ns,
            );
            let held_by_me = state.lease.holder == u64::from(self.gateway) + 1;
            if state.free || held_by_me {
                match self.turn(began.elapsed() >= gathering) {
                    Turn::Rebuild => return self.rebuild(stored, state.lease.epoch),
                    Turn::Wait(reason) => why = reason,
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the region is blank and was not rebuilt within {} s: {why}",
                    RESTORE_WAIT.as_secs()
                ));
            }
            if let Some(suppressed) = WAITING_LOG.admit() {
                tracing::warn!(
                    gateway = self.gateway,
                    suppressed,
                    "waiting to rebuild the lost region: {why}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn turn(&self, gathered: bool) -> Turn {
        let live: Vec<GatewayIndex> = membership::live_members(self.region, self.lease_timeout_ns)
            .iter()
            .map(|member| member.gateway)
            .collect();
        let missing: Vec<GatewayIndex> = self
            .last_members
            .iter()
            .copied()
            .filter(|gateway| *gateway != self.gateway && !live.contains(gateway))
            .collect();
        if !missing.is_empty() && !self.unclean {
            return Turn::Wait(format!(
                "gateways {missing:?} were live when this one last ran, and their segments may \
                 hold acknowledged entries this one lacks: start them, or pass \
                 --unclean-region-rebuild to rebuild from the segments present"
            ));
        }
        if !gathered {
            return Turn::Wait("gathering the chains of gateways restarting together".into());
        }
        match self.chains(&live).first() {
            Some(best) if best.gateway != self.gateway => Turn::Wait(format!(
                "gateway {} holds the most complete segments and rebuilds the region",
                best.gateway
            )),
            _ => Turn::Rebuild,
        }
    }

    /// The chains the live gateways published, most complete first.
    fn chains(&self, live: &[GatewayIndex]) -> Vec<Chain> {
        let mut chains: Vec<Chain> = live
            .iter()
            .map(|&gateway| Chain {
                gateway,
                holds_from: self.region.frontier(gateway, Frontier::HoldsFrom),
                end: self.region.frontier(gateway, Frontier::Durable),
            })
            .filter(|chain| chain.holds_from != 0)
            .collect();
        chains.sort_by_key(|chain| {
            (
                chain.holds_from,
                std::cmp::Reverse(chain.end),
                chain.gateway,
            )
        });
        chains
    }

    fn rebuild(&self, stored: &mut Vec<StoredEntry>, lease_epoch: u64) -> Result<(), String> {
        while_beating(
            self.region,
            self.gateway,
            self.incarnation,
            self.lease_timeout_ns,
            || self.copy_longer_tail(stored),
        );
        // A rebuilt region's lease starts blank: take an epoch above every
        // one this data dir saw, so epochs never go back.
        let epoch = self.epochs.next_above(lease_epoch);
        if let Err(error) = self.epochs.record(epoch, self.region.generation()) {
            tracing::warn!(%error, "taking the sequencer lease all the same");
        }
        lease::take(self.region, self.gateway, self.incarnation, epoch);
        tracing::info!(
            gateway = self.gateway,
            epoch,
            "holding the sequencer lease to rebuild the region"
        );
        let began = Instant::now();
        let next = while_beating(
            self.region,
            self.gateway,
            self.incarnation,
            self.lease_timeout_ns,
            || replay(self.region, self.disk, stored),
        )?;
        tracing::info!(
            entries = stored.len(),
            next_sequence = next,
            took_ms = began.elapsed().as_millis() as u64,
            "rebuilt the lost region from this gateway's segments"
        );
        Ok(())
    }

    /// Copies, from the live gateway whose chain reaches furthest beyond
    /// this one's, the entries after this chain's last one.
    fn copy_longer_tail(&self, stored: &mut Vec<StoredEntry>) {
        let own_end = self.disk.last_stored() + 1;
        let live: Vec<GatewayIndex> = membership::live_members(self.region, self.lease_timeout_ns)
            .iter()
            .map(|member| member.gateway)
            .collect();
        let mut longer: Vec<Chain> = self
            .chains(&live)
            .into_iter()
            .filter(|chain| chain.gateway != self.gateway && chain.end > own_end)
            .collect();
        longer.sort_by_key(|chain| std::cmp::Reverse(chain.end));
        for chain in longer {
            match self.copying.copy_from_gateway(chain.gateway, self.disk) {
                Ok(copy) => {
                    tracing::info!(
                        from = chain.gateway,
                        entries = copy.entries.len(),
                        "copied the end of a longer chain before rebuilding the region"
                    );
                    stored.extend(copy.entries);
                    return;
                }
                Err(error) => tracing::warn!(
                    from = chain.gateway,
                    %error,
                    "cannot copy the end of a longer chain"
                ),
            }
        }
    }
}

/// A gateway without segments on a blank region: while gateways with
/// segments are live (they restart together after losing the region), it
/// waits until one of them rebuilt it, instead of beginning a new history
/// that would set all their segments aside. It goes on when a running
/// gateway holds the sequencer lease already (a new cluster whose history
/// began), or when no gateway with segments showed up within one lease
/// timeout (a new cluster's first gateway).
pub(super) fn wait_for_a_rebuild<B: MemoryBackend>(
    region: &Region<B>,
    gateway: GatewayIndex,
    incarnation: u64,
    lease_timeout_ns: u64,
) -> Result<(), String> {
    let began = Instant::now();
    let gathering = Duration::from_nanos(lease_timeout_ns);
    let mut beats = 1u64;
    while region_is_blank(region) {
        beats += 1;
        membership::beat(region, gateway, incarnation, beats, true);
        // A chain's summary: what it holds from, and the sequence after its
        // last entry (a running gateway of a new cluster publishes 1).
        let chains_present = membership::live_members(region, lease_timeout_ns)
            .iter()
            .any(|member| {
                member.gateway != gateway
                    && region.frontier(member.gateway, Frontier::HoldsFrom) != 0
                    && region.frontier(member.gateway, Frontier::Durable) > 1
            });
        if !chains_present {
            let lease = lease::read(region, gateway, incarnation, lease_timeout_ns);
            if !lease.free || began.elapsed() >= gathering {
                return Ok(());
            }
        }
        if began.elapsed() >= RESTORE_WAIT {
            return Err(format!(
                "the region is blank and the gateways with segments did not rebuild it within {} s",
                RESTORE_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Runs `work` while keeping this gateway's heartbeat fresh (its own
/// heartbeat thread does not run yet), so nobody takes the lease from it.
fn while_beating<B: MemoryBackend, T>(
    region: &Region<B>,
    gateway: GatewayIndex,
    incarnation: u64,
    lease_timeout_ns: u64,
    work: impl FnOnce() -> T,
) -> T {
    let done = std::sync::atomic::AtomicBool::new(false);
    let period = Duration::from_nanos(lease_timeout_ns / 8).max(Duration::from_millis(5));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut beats = 1u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                beats += 1;
                membership::beat(region, gateway, incarnation, beats, true);
                std::thread::sleep(period);
            }
        });
        let result = work();
        done.store(true, std::sync::atomic::Ordering::Release);
        result
    })
}

fn replay<B: MemoryBackend>(
    region: &Arc<Region<B>>,
    disk: &DiskTier,
    stored: &[StoredEntry],
) -> Result<u64, String> {
    // Control payloads are small and few: read them all first.
    let mut controls = Vec::new();
    for entry in stored
        .iter()
        .filter(|entry| entry.header.kind != kind::DATA)
    {
        let mut payload = vec![0u8; entry.header.length as usize];
        disk.files()
            .read_payload(entry.location, &mut payload)
            .map_err(|error| format!("cannot read a control record from the segments: {error}"))?;
        controls.push(payload);
    }
    let mut controls = controls.iter();
    let entries = stored.iter().map(|entry| {
        let header = &entry.header;
        RestoredEntry {
            sequence: header.sequence,
            kind: header.kind,
            stream: header.stream,
            base_offset: header.base_offset,
            record_count: header.record_count,
            control: (header.kind != kind::DATA)
                .then(|| controls.next().map(Vec::as_slice))
                .flatten(),
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
        }
    });
    Ok(Sequencer::restore(Arc::clone(region), entries))
}
