//! Copying from a peer: a gateway whose segments lack entries that already
//! left the region copies them from a live holder.
//!
//! The cases (all but the gap while running before this gateway counts as
//! a holder):
//!
//! - **empty** (a new gateway, or one restarted with an empty data dir): it
//!   copies everything the holder has and takes the holder's `holds_from`;
//! - **behind** (it was down while entries were ordered and recycled): it
//!   copies the entries after its last one;
//! - **a gap** inside its own copy (it missed entries that no holder could
//!   give it while it ran): a
//!   segment chain only appends, so the gap cannot be filled in place; the
//!   chain is set aside (`<dir>.gap`), copied anew from the holder, and the
//!   old chain deleted once the new one is complete, or put back if it is
//!   not;
//! - **a gap while running** (its replicator found an entry gone from the
//!   region: it was paused, or too slow, while the sequencer thought it
//!   dead): the entries from there on are copied from a holder into the
//!   running chain ([`Copying::fill_gap`]), so no gap opens;
//! - **another history** (its last entry differs from the holder's at that
//!   sequence, or it reaches past the region's order: the region was
//!   rebuilt without its last entries): set aside as `<dir>.diverged`,
//!   kept, and copied anew; never merged with the region's history.

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cxlkafka_log::layout::{Frontier, GatewayIndex};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::{DiskLocation, EntryHeader, SegmentLog, StoredEntry};
use cxlkafka_log::Region;
use cxlkafka_sequencer::membership;

use super::{fingerprint, read_answer, read_entries, Ready, Request, Status};
use crate::cluster::replica::{read_holds_from, DiskTier};
use crate::telemetry;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the copy waits for the next bytes from the peer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const RECEIVE_BUFFER_BYTES: usize = 1 << 20;
/// Copies before joining repeat while each still brings this many payload
/// bytes: what was produced during one copy is copied by the next, until
/// the rest is small enough to take while this gateway holds the arena.
const SHORT_COPY_BYTES: u64 = 64 << 20;
const MAX_COPIES_BEFORE_JOINING: usize = 8;

/// What one copy from a peer brought.
pub(in crate::cluster) struct PeerCopy {
    pub entries: Vec<StoredEntry>,
    pub bytes: u64,
}

/// A gateway about to join, and what it needs to find and ask a holder.
pub(in crate::cluster) struct Copying<'a, B: MemoryBackend> {
    pub region: &'a Region<B>,
    pub gateway: GatewayIndex,
    pub lease_timeout_ns: u64,
}

impl<B: MemoryBackend> Copying<'_, B> {
    /// Live holders other than this gateway that serve copies and have
    /// published what they hold (a gateway still starting answers no
    /// copy yet), with their `holds_from`, lowest first.
    fn serving_holders(&self) -> Vec<(GatewayIndex, u64)> {
        let mut holders: Vec<(GatewayIndex, u64)> =
            membership::holders(self.region, self.lease_timeout_ns)
                .into_iter()
                .filter(|member| member.gateway != self.gateway)
                .map(|member| {
                    let from = self.region.frontier(member.gateway, Frontier::HoldsFrom);
                    (member.gateway, from)
                })
                .filter(|&(gateway, from)| {
                    from != 0 && membership::peer_address(self.region, gateway).is_some()
                })
                .collect();
        holders.sort_by_key(|&(gateway, from)| (from, gateway));
        holders
    }

    /// When this gateway's own chain in `dir` has a gap that a live holder
    /// can fill (its recorded `holds_from` is above the holder's), moves
    /// the chain aside so that it is copied anew.
    pub(in crate::cluster) fn set_aside_a_copy_with_a_gap(
        &self,
        dir: &Path,
    ) -> Result<Option<SetAside>, String> {
        let own = read_holds_from(dir)?;
        let Some(&(holder, holder_from)) = self.serving_holders().first() else {
            return Ok(None);
        };
        // 0: never recorded (no gap known); 1: complete from the start.
        if own <= 1 || own <= holder_from {
            return Ok(None);
        }
        tracing::warn!(
            dir = %dir.display(),
            holds_from = own,
            holder,
            holder_holds_from = holder_from,
            "this gateway's copy has a gap: copying it anew from a holder"
        );
        set_aside(dir, AsideReason::Gap).map(Some)
    }

    /// Copies, before joining, what this gateway lacks from a holder, again
    /// while each copy brings much (the region moved on meanwhile); returns
    /// every entry copied and whether a holder answered.
    pub(in crate::cluster) fn copy_before_joining(
        &self,
        disk: &DiskTier,
    ) -> Result<(Vec<StoredEntry>, bool), Diverged> {
        let mut copied = Vec::new();
        let mut answered = false;
        for _ in 0..MAX_COPIES_BEFORE_JOINING {
            let Some(copy) = self.copy_from_a_holder(disk)? else {
                break;
            };
            answered = true;
            let bytes = copy.bytes;
            copied.extend(copy.entries);
            if bytes < SHORT_COPY_BYTES {
                break;
            }
        }
        Ok((copied, answered))
    }

    /// One copy of what this gateway's segments lack after their last
    /// entry, from the first live holder that answers; `None` when none
    /// does. A holder whose entry before that differs says the two copies
    /// hold different histories: [`Diverged`].
    pub(in crate::cluster) fn copy_from_a_holder(
        &self,
        disk: &DiskTier,
    ) -> Result<Option<PeerCopy>, Diverged> {
        for (holder, _) in self.serving_holders() {
            match self.copy_from_gateway(holder, disk) {
                Ok(copy) => {
                    if !copy.entries.is_empty() {
                        tracing::info!(
                            from = holder,
                            entries = copy.entries.len(),
                            bytes = copy.bytes,
                            "copied the entries this gateway lacked from a holder"
                        );
                    }
                    return Ok(Some(copy));
                }
                Err(CopyError::Diverged) => return Err(Diverged { holder }),
                Err(error) => tracing::warn!(peer = holder, %error, "cannot copy from this holder"),
            }
        }
        Ok(None)
    }

    /// What this gateway's segments lack after their last entry, from
    /// gateway `peer`.
    pub(in crate::cluster) fn copy_from_gateway(
        &self,
        peer: GatewayIndex,
        disk: &DiskTier,
    ) -> Result<PeerCopy, CopyError> {
        let (host, port) = membership::peer_address(self.region, peer)
            .ok_or_else(|| CopyError::Failed("it serves no copies".into()))?;
        self.copy_from(&host, port, disk)
    }

    fn copy_from(&self, host: &str, port: u16, disk: &DiskTier) -> Result<PeerCopy, CopyError> {
        let last = disk.last_stored();
        let from = last + 1;
        let mut answer = self.ask(host, port, from, disk.last_header())?;
        let ready = answer.ready;
        // A chain with entries can only be continued by a copy without a
        // hole right after them.
        if last > 0 && ready.holds_from > from {
            return Err(format!(
                "it holds entries only from {}, and this gateway needs {from} on",
                ready.holds_from
            )
            .into());
        }
        if last == 0 {
            // An empty chain continues the holder's from here on, cut or
            // not: whatever arrives starts where the holder's copy starts.
            disk.adopt_peer_holds_from(ready.holds_from);
        }
        let mut copy = PeerCopy {
            entries: Vec::new(),
            bytes: 0,
        };
        let outcome = read_entries(&mut answer.input, from, ready.durable, |header, payload| {
            copy.entries.push(disk.append_copied(header, payload)?);
            copy.bytes += u64::from(header.length);
            Ok(())
        });
        // What arrived is valid whatever came after it: keep it durable.
        disk.sync_now().map_err(CopyError::Failed)?;
        count_copied(copy.entries.len(), copy.bytes);
        outcome.map_err(|error| {
            CopyError::Failed(format!(
                "{}: the copy stopped after {} entries: {error}",
                answer.address,
                copy.entries.len()
            ))
        })?;
        Ok(copy)
    }

    /// While this gateway runs: entry `from` left the region before its
    /// replicator copied it (it was paused, or too slow, while the
    /// sequencer thought it dead). Copies the entries from `from` on, below
    /// `until` (what the tailer applied), from a live holder into
    /// `segments`, handing each with its payload to `copied`; returns the
    /// next sequence to copy from the region, or `None` when no holder had
    /// `from` (the entry is then missed, a gap in this gateway's copy). A
    /// write this disk refuses ends the fill like a holder that has nothing.
    pub(in crate::cluster) fn fill_gap(
        &self,
        segments: &mut SegmentLog,
        from: u64,
        until: u64,
        mut copied: impl FnMut(&EntryHeader, &[u8], DiskLocation),
    ) -> Option<u64> {
        // A copy continues the chain right after its last entry, which the
        // holder checks is its own too (an empty chain, from the start).
        let previous = segments.last_header();
        if previous.map_or(1, |header| header.sequence + 1) != from {
            return None;
        }
        // Only a holder that says it has `from` durable is asked: an entry
        // gone from the region is usually followed by thousands more.
        let holders = self.serving_holders();
        let has_it = |&&(holder, holds_from): &&(GatewayIndex, u64)| {
            holds_from <= from && self.region.frontier(holder, Frontier::Durable) > from
        };
        for (holder, _) in holders.iter().filter(has_it) {
            let Some((host, port)) = membership::peer_address(self.region, *holder) else {
                continue;
            };
            let mut next = from;
            let mut bytes = 0u64;
            let outcome = self
                .ask(&host, port, from, previous)
                .map_err(|error| error.to_string())
                .and_then(|mut answer| {
                    let durable = answer.ready.durable;
                    read_entries(&mut answer.input, from, durable, |header, payload| {
                        // Past what the tailer applied, the index does not
                        // know the entry yet: it is copied once it does
                        // (from the region, or by the next fill).
                        if header.sequence >= until {
                            return Ok(());
                        }
                        if header.sequence != next {
                            return Err(format!("entry {next} is missing"));
                        }
                        let location = segments
                            .append(header, payload)
                            .map_err(|error| format!("cannot copy into the disk tier: {error}"))?;
                        copied(header, payload, location);
                        next += 1;
                        bytes += u64::from(header.length);
                        Ok(())
                    })
                });
            count_copied((next - from) as usize, bytes);
            if let Err(error) = &outcome {
                tracing::warn!(peer = holder, %error, filled_to = next, "a gap fill from this holder stopped");
            }
            if next > from {
                tracing::info!(
                    from = holder,
                    first = from,
                    entries = next - from,
                    bytes,
                    "copied entries that left the region before this gateway copied them from a holder"
                );
                return Some(next);
            }
        }
        None
    }

    /// Connects to the peer at `host:port` and asks for its durable
    /// entries from `from` on, after `previous` (which the peer checks it
    /// holds too); returns its answer, ready to read the entries from.
    fn ask(
        &self,
        host: &str,
        port: u16,
        from: u64,
        previous: Option<EntryHeader>,
    ) -> Result<Answer, CopyError> {
        let address = (host, port)
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        let io_error = |error: io::Error| format!("{address}: {error}");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(io_error)?;
        let previous_fingerprint = previous
            .filter(|header| header.sequence + 1 == from)
            .map_or(0, |header| fingerprint(&header));
        (&stream)
            .write_all(
                &Request {
                    generation: self.region.generation().to_bytes(),
                    from_sequence: from,
                    previous_fingerprint,
                }
                .encode(),
            )
            .map_err(io_error)?;
        let mut input = BufReader::with_capacity(RECEIVE_BUFFER_BYTES, stream);
        let ready = match read_answer(&mut input).map_err(io_error)? {
            Ok(ready) => ready,
            Err(Status::Diverged) => return Err(CopyError::Diverged),
            Err(Status::WrongRegion) => return Err("it mapped another region".into()),
            Err(Status::NotReady) => return Err("it is still starting".into()),
            Err(status) => return Err(format!("it refused the request ({status:?})").into()),
        };
        Ok(Answer {
            address,
            input,
            ready,
        })
    }
}

/// A peer's answer to a request: what it holds, then its entries to read.
struct Answer {
    address: SocketAddr,
    input: BufReader<TcpStream>,
    ready: Ready,
}

fn count_copied(entries: usize, bytes: u64) {
    metrics::counter!(telemetry::PEER_COPY_ENTRIES_TOTAL).increment(entries as u64);
    metrics::counter!(telemetry::PEER_COPY_BYTES_TOTAL).increment(bytes);
}

/// A holder's entry before the ones asked for differs from this gateway's
/// last: the two copies hold different histories.
#[derive(Debug)]
pub(in crate::cluster) struct Diverged {
    pub holder: GatewayIndex,
}

/// Why a copy from one peer did not happen or was cut.
#[derive(Debug, thiserror::Error)]
pub(in crate::cluster) enum CopyError {
    #[error("its entry before the ones asked for differs from this gateway's last")]
    Diverged,
    #[error("{0}")]
    Failed(String),
}

impl From<String> for CopyError {
    fn from(error: String) -> Self {
        CopyError::Failed(error)
    }
}

impl From<&str> for CopyError {
    fn from(error: &str) -> Self {
        CopyError::Failed(error.into())
    }
}

/// Why a chain is set aside: its name's extension, and whether it is
/// deleted once the new copy is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::cluster) enum AsideReason {
    /// It lacks entries a holder has (`<dir>.gap`): deleted after.
    Gap,
    /// It holds another history than the region's (`<dir>.diverged`):
    /// its own entries may be records acknowledged before the region was
    /// rebuilt without them, so it is kept for the operator.
    Diverged,
}

/// Moves the chain in `dir` aside (replacing an older one set aside for the
/// same reason) so that it is copied anew into an empty `dir`.
pub(in crate::cluster) fn set_aside(dir: &Path, reason: AsideReason) -> Result<SetAside, String> {
    let aside = dir.with_extension(match reason {
        AsideReason::Gap => "gap",
        AsideReason::Diverged => "diverged",
    });
    if aside.exists() {
        std::fs::remove_dir_all(&aside)
            .map_err(|error| format!("cannot remove {}: {error}", aside.display()))?;
    }
    std::fs::rename(dir, &aside).map_err(|error| {
        format!(
            "cannot move {} aside to {}: {error}",
            dir.display(),
            aside.display()
        )
    })?;
    Ok(SetAside {
        dir: dir.to_path_buf(),
        aside,
        reason,
    })
}

/// A chain moved aside while it is copied anew.
pub(in crate::cluster) struct SetAside {
    dir: PathBuf,
    aside: PathBuf,
    reason: AsideReason,
}

impl SetAside {
    /// The new copy is complete: a copy with a gap goes; one with another
    /// history stays where it is, named in a log line.
    pub(in crate::cluster) fn discard(self) {
        if self.reason == AsideReason::Diverged {
            tracing::warn!(
                dir = %self.aside.display(),
                "kept the segments with another history for inspection; delete them when done"
            );
            return;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.aside) {
            tracing::warn!(dir = %self.aside.display(), %error, "cannot remove the copy set aside");
        }
    }

    /// The new copy failed: the old one comes back (the caller closed the
    /// new chain first).
    pub(in crate::cluster) fn restore(self) -> Result<(), String> {
        std::fs::remove_dir_all(&self.dir)
            .and_then(|()| std::fs::rename(&self.aside, &self.dir))
            .map_err(|error| {
                format!(
                    "cannot put {} back as {}: {error}",
                    self.aside.display(),
                    self.dir.display()
                )
            })
    }
}
