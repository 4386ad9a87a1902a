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
//!   back blank; the first gateway with segments takes the sequencer lease,
//!   copies what siblings have beyond its own chain, and replays its chain
//!   into the region with [`Sequencer::restore`]: the same topics, offsets,
//!   log starts, committed offsets and producer ids. Gateways starting
//!   meanwhile wait for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{kind, GatewayIndex, SequencerCheckpoint};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::{read_chain, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::sequencer::RestoredEntry;
use cxlkafka_sequencer::{lease, membership, Sequencer};

use super::data_dir::EpochRecord;
use super::replica::DiskTier;

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

/// A blank region and segments to fill it: rebuilds the region from them
/// (taking the sequencer lease first, so that no batch is ordered before
/// the restored ones), or waits while another gateway does. Returns once
/// the region is no longer blank.
pub(super) fn restore_region<B: MemoryBackend>(
    region: &Arc<Region<B>>,
    gateway: GatewayIndex,
    incarnation: u64,
    lease_timeout_ns: u64,
    disk: &DiskTier,
    epochs: &EpochRecord,
    stored: &[StoredEntry],
) -> Result<(), String> {
    let deadline = Instant::now() + RESTORE_WAIT;
    loop {
        if !region_is_blank(region) {
            return Ok(());
        }
        let state = lease::read(region, gateway, incarnation, lease_timeout_ns);
        let held_by_me = state.lease.holder == u64::from(gateway) + 1;
        if state.free || held_by_me {
            // A rebuilt region's lease starts blank: take an epoch above
            // every one this data dir saw, so epochs never go back.
            let epoch = epochs.next_above(state.lease.epoch);
            if let Err(error) = epochs.record(epoch, region.generation()) {
                tracing::warn!(%error, "taking the sequencer lease all the same");
            }
            lease::take(region, gateway, incarnation, epoch);
            tracing::info!(
                gateway,
                epoch,
                "holding the sequencer lease to rebuild the region"
            );
            let began = Instant::now();
            let next = while_beating(region, gateway, incarnation, lease_timeout_ns, || {
                replay(region, disk, stored)
            })?;
            tracing::info!(
                entries = stored.len(),
                next_sequence = next,
                took_ms = began.elapsed().as_millis() as u64,
                "rebuilt the lost region from this gateway's segments"
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the region is blank and gateway {} holds the sequencer lease without \
                 rebuilding it from segments within {} s",
                state.lease.holder - 1,
                RESTORE_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
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
        }
    });
    Ok(Sequencer::restore(Arc::clone(region), entries))
}
