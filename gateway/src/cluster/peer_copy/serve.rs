//! The peer-copy listener: sends this gateway's durable entries to a peer of
//! the same region that lacks them. One connection at a time (copies are
//! rare: a gateway joining, restarting empty or rebuilding a lost region),
//! on the `peer-copy` thread.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::read_chain;
use cxlkafka_log::Region;

use super::{fingerprint, write_ready, Ready, Request, Status, REQUEST_BYTES, TAG_END, TAG_ENTRY};
use crate::cluster::replica::DiskTier;
use crate::limits::LogGate;
use crate::telemetry;

/// How long a peer may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write to a peer that stopped reading may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the accept loop looks whether the gateway is stopping.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// Bytes buffered before a write to the socket.
const SEND_BUFFER_BYTES: usize = 1 << 20;

static REFUSED_LOG: LogGate = LogGate::new();

/// Binds the listener (before joining, so its port is in the slot).
pub(in crate::cluster) fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(address)
        .map_err(|error| format!("cannot listen for peer copies on {address}: {error}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| format!("peer-copy listener: {error}"))?;
    Ok(listener)
}

/// Why a copy was refused or cut (the metric's `reason`).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("the peer mapped another region")]
    WrongRegion,
    #[error("not a peer-copy request of this version")]
    Malformed,
    #[error("this gateway is stopping")]
    Stopping,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Refusal {
    /// Every `reason` label, exported at 0 from the start.
    const REASONS: [&'static str; 4] = ["wrong_region", "malformed", "stopping", "io"];

    fn reason(&self) -> &'static str {
        match self {
            Refusal::WrongRegion => "wrong_region",
            Refusal::Malformed => "malformed",
            Refusal::Stopping => "stopping",
            Refusal::Io(_) => "io",
        }
    }
}

/// Exports the peer-copy counters at 0, so a dashboard sees 0 rather than
/// nothing before the first copy.
pub(in crate::cluster) fn export_counters() {
    metrics::counter!(telemetry::PEER_COPY_ENTRIES_TOTAL).increment(0);
    metrics::counter!(telemetry::PEER_COPY_BYTES_TOTAL).increment(0);
    metrics::counter!(telemetry::PEER_SERVED_ENTRIES_TOTAL).increment(0);
    for reason in Refusal::REASONS {
        metrics::counter!(telemetry::PEER_COPY_REFUSED_TOTAL, "reason" => reason).increment(0);
    }
}

/// The `peer-copy` thread, from before this gateway joins (a gateway
/// rebuilding a lost region may copy from it) until it stops.
pub(in crate::cluster) struct PeerServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PeerServer {
    /// Starts answering peers on `listener` with the entries of `disk`.
    pub(in crate::cluster) fn start<B: MemoryBackend>(
        listener: TcpListener,
        region: Arc<Region<B>>,
        disk: Arc<DiskTier>,
    ) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cxlkafka-peer-copy".into())
            .spawn(move || accept_loop(&listener, &region, &disk, &stopping))
            .map_err(|error| format!("cannot start the peer-copy thread: {error}"))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops answering (a copy being sent is cut) and waits for the thread.
    pub(in crate::cluster) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop<B: MemoryBackend>(
    listener: &TcpListener,
    region: &Region<B>,
    disk: &DiskTier,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, peer)) => match serve_copy(stream, region, disk, stop) {
                Ok(sent) => {
                    tracing::info!(%peer, entries = sent, "sent a peer the entries it lacked")
                }
                Err(refusal) => {
                    metrics::counter!(telemetry::PEER_COPY_REFUSED_TOTAL, "reason" => refusal.reason())
                        .increment(1);
                    if let Some(suppressed) = REFUSED_LOG.admit() {
                        tracing::warn!(%peer, %refusal, suppressed, "a peer copy was refused or cut");
                    }
                }
            },
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL)
            }
            Err(error) => {
                tracing::warn!(%error, "peer-copy listener cannot accept");
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// Reads one request and sends every durable entry from its first sequence
/// on; returns how many were sent.
fn serve_copy<B: MemoryBackend>(
    stream: TcpStream,
    region: &Region<B>,
    disk: &DiskTier,
    stop: &AtomicBool,
) -> Result<u64, Refusal> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut out = BufWriter::with_capacity(SEND_BUFFER_BYTES, stream);
    let mut request = [0u8; REQUEST_BYTES];
    out.get_mut().read_exact(&mut request)?;
    let answer = |out: &mut BufWriter<TcpStream>, status: Status| -> io::Result<()> {
        out.write_all(&[status as u8])?;
        out.flush()
    };
    let Some(request) = Request::decode(&request) else {
        answer(&mut out, Status::Unsupported)?;
        return Err(Refusal::Malformed);
    };
    if request.generation != region.generation().to_bytes() {
        answer(&mut out, Status::WrongRegion)?;
        return Err(Refusal::WrongRegion);
    }
    let holds_from = disk.holds_from();
    if holds_from == 0 {
        answer(&mut out, Status::NotReady)?;
        return Ok(0);
    }
    // Only what is durable here: an entry above it may still be half
    // written (its payload lands before its header is indexed).
    let durable = disk.durable();
    let (entries, files) =
        read_chain(disk.dir()).map_err(|error| io::Error::other(error.to_string()))?;
    let previous = request.from_sequence.checked_sub(1).and_then(|sequence| {
        entries
            .binary_search_by_key(&sequence, |entry| entry.header.sequence)
            .ok()
            .map(|at| &entries[at])
    });
    if previous.is_some_and(|entry| fingerprint(&entry.header) != request.previous_fingerprint) {
        answer(&mut out, Status::Diverged)?;
        return Ok(0);
    }
    write_ready(
        &mut out,
        Ready {
            holds_from,
            durable,
        },
    )?;
    let served = metrics::counter!(telemetry::PEER_SERVED_ENTRIES_TOTAL);
    let mut payload = Vec::new();
    let mut sent = 0;
    let first = entries.partition_point(|entry| entry.header.sequence < request.from_sequence);
    for entry in entries[first..]
        .iter()
        .take_while(|entry| entry.header.sequence < durable)
    {
        if stop.load(Ordering::Acquire) {
            return Err(Refusal::Stopping);
        }
        payload.resize(entry.header.length as usize, 0);
        // The files stay open while retention may unlink them: what this
        // copy began with is what it sends.
        files.read_payload(entry.location, &mut payload)?;
        out.write_all(&[TAG_ENTRY])?;
        out.write_all(&entry.header.encode(&payload))?;
        out.write_all(&payload)?;
        sent += 1;
        served.increment(1);
    }
    out.write_all(&[TAG_END])?;
    out.flush()?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_is_exported_from_the_start() {
        let refusals = [
            Refusal::WrongRegion,
            Refusal::Malformed,
            Refusal::Stopping,
            Refusal::Io(io::Error::other("cut")),
        ];
        for refusal in &refusals {
            assert!(Refusal::REASONS.contains(&refusal.reason()), "{refusal:?}");
        }
        assert_eq!(refusals.len(), Refusal::REASONS.len());
    }
}
