//! The peer-copy listener: sends this gateway's durable entries to a peer of
//! the same region that lacks them. One connection at a time (copies are
//! rare: a gateway joining or restarting empty), on the `peer-copy` thread.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::segment::read_chain;

use super::{write_ready, Ready, Request, Status, REQUEST_BYTES, TAG_END, TAG_ENTRY};
use crate::cluster::{lock, Cluster};
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
    fn reason(&self) -> &'static str {
        match self {
            Refusal::WrongRegion => "wrong_region",
            Refusal::Malformed => "malformed",
            Refusal::Stopping => "stopping",
            Refusal::Io(_) => "io",
        }
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// Answers peers until this gateway stops.
    pub(in crate::cluster) fn peer_copy_loop(&self) {
        let Some(listener) = lock(&self.peer_listener).take() else {
            return;
        };
        while !self.stopping() {
            match listener.accept() {
                Ok((stream, peer)) => match self.serve_copy(stream) {
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

    /// Reads one request and sends every durable entry from its first
    /// sequence on; returns how many were sent.
    fn serve_copy(&self, stream: TcpStream) -> Result<u64, Refusal> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut out = BufWriter::with_capacity(SEND_BUFFER_BYTES, stream);
        let mut request = [0u8; REQUEST_BYTES];
        out.get_mut().read_exact(&mut request)?;
        let Some(request) = Request::decode(&request) else {
            out.write_all(&[Status::Unsupported as u8])?;
            out.flush()?;
            return Err(Refusal::Malformed);
        };
        if request.generation != self.region.generation().to_bytes() {
            out.write_all(&[Status::WrongRegion as u8])?;
            out.flush()?;
            return Err(Refusal::WrongRegion);
        }
        let holds_from = self.disk.holds_from();
        if holds_from == 0 {
            out.write_all(&[Status::NotReady as u8])?;
            out.flush()?;
            return Ok(0);
        }
        // Only what is durable here: an entry above it may still be half
        // written (its payload lands before its header is indexed).
        let durable = self.disk.durable();
        let (entries, files) =
            read_chain(self.disk.dir()).map_err(|error| io::Error::other(error.to_string()))?;
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
        for entry in entries
            .iter()
            .filter(|entry| (request.from_sequence..durable).contains(&entry.header.sequence))
        {
            if self.stopping() {
                return Err(Refusal::Stopping);
            }
            payload.resize(entry.header.length as usize, 0);
            // The files stay open while retention may unlink them: what
            // this copy began with is what it sends.
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
}
