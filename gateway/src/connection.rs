//! One client connection: Kafka framing and the ordered response pipeline.
//!
//! Framing is a 4-byte big-endian size followed by that many bytes, both
//! ways. [`FrameReader`] enforces the frame limit on the size prefix alone,
//! before any of the frame is buffered, and never allocates more than it
//! has received plus one chunk, so a client cannot make the gateway reserve
//! memory it never sends.
//!
//! [`Connection::run`] reads requests and runs each handler's ordered part in
//! turn (see [`crate::dispatch`]), then queues the reply. A separate writer
//! task takes replies from that queue strictly in request order, waiting for
//! a deferred reply even when later ones are ready, so clients that
//! pipeline (librdkafka sends several requests before reading) always see
//! responses in the order they asked. A semaphore bounds the requests in
//! flight; at the bound the reader stops reading and TCP pushes back.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, warn};

use crate::context::GatewayContext;
use crate::dispatch::{DispatchTable, Reply, ResponseFrame};
use crate::error::CloseReason;
use crate::limits;
use crate::security::ListenerSecurity;
use crate::telemetry;

/// Size of the frame length prefix.
const SIZE_PREFIX: usize = 4;
/// Buffer growth when no frame size is known yet.
const READ_CHUNK: usize = 8 * 1024;
/// Largest buffer growth at once while a known frame arrives: big frames
/// are buffered as their bytes arrive, not at their declared size.
const MAX_READ_RESERVE: usize = 1024 * 1024;
/// Buffer bytes a frame may use without taking from the receive budget:
/// ordinary requests never wait for it, and what connections hold this way
/// is bounded by their number.
const BUDGET_FREE_BYTES: usize = 64 * 1024;
/// Capacity of the response writer's buffer.
const WRITE_BUFFER: usize = 64 * 1024;

/// Why reading a frame stopped.
#[derive(Debug)]
pub enum FrameError {
    /// The socket failed.
    Io(io::Error),
    /// The frame violates the protocol; the connection must close.
    Protocol(CloseReason),
}

impl From<io::Error> for FrameError {
    fn from(error: io::Error) -> Self {
        FrameError::Io(error)
    }
}

/// Reads size-prefixed frames.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buffer: BytesMut,
    max_frame_bytes: usize,
    /// The bytes every connection's incomplete frames may hold together
    /// (`--queued-max-request-bytes`), and the part of it this reader holds
    /// for the frame it is receiving: a reader that would pass it stops
    /// reading (TCP pushes back) until other frames complete.
    budget: Option<Arc<Semaphore>>,
    held: Option<OwnedSemaphorePermit>,
    /// An incomplete frame whose bytes stop arriving for this long is
    /// refused (`--frame-timeout-ms`).
    frame_timeout: Option<Duration>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader refusing frames above `max_frame_bytes`.
    pub fn new(inner: R, max_frame_bytes: usize) -> Self {
        Self {
            inner,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            max_frame_bytes,
            budget: None,
            held: None,
            frame_timeout: None,
        }
    }

    /// Takes the buffer space of incomplete frames from `budget`, shared
    /// with the other connections' readers.
    pub fn with_receive_budget(mut self, budget: Arc<Semaphore>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Refuses an incomplete frame whose bytes stop arriving for `limit`.
    pub fn with_frame_timeout(mut self, limit: Duration) -> Self {
        self.frame_timeout = Some(limit);
        self
    }

    /// Changes the bound for the frames read from now on.
    pub fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// The next frame's payload, or `None` on a clean end of stream (the
    /// peer closed between frames).
    ///
    /// Cancel safe: bytes read before a cancellation stay buffered for the
    /// next call, so it can sit in a `select!` beside a shutdown signal.
    pub async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let wanted = match self.parse()? {
                Parsed::Frame(frame) => return Ok(Some(frame)),
                Parsed::Need(total) => total,
            };
            let missing = wanted.saturating_sub(self.buffer.len());
            self.buffer
                .reserve(missing.clamp(READ_CHUNK, MAX_READ_RESERVE));
            if self.read_more(wanted).await? == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Protocol(CloseReason::TruncatedFrame {
                    received: self.buffer.len(),
                    expected: wanted,
                }));
            }
        }
    }

    /// How much the next read may take. Without a budget, whatever the
    /// buffer has room for. With one, a frame reads at most as much again
    /// as it already received (at least [`BUDGET_FREE_BYTES`]), and what it
    /// holds beyond [`BUDGET_FREE_BYTES`] comes from the budget first: its
    /// share grows with what its client actually sends, not with the size
    /// it declared, and waits while other frames hold the budget.
    async fn next_read_limit(&mut self, wanted: usize) -> Result<usize, FrameError> {
        let spare = self.buffer.capacity() - self.buffer.len();
        let Some(budget) = &self.budget else {
            return Ok(spare);
        };
        let received = self.buffer.len();
        let step = spare.min(received.max(BUDGET_FREE_BYTES));
        let held = self
            .held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits);
        let needed = (received + step).saturating_sub(BUDGET_FREE_BYTES + held);
        if needed > 0 {
            let permits = u32::try_from(needed).unwrap_or(u32::MAX);
            let acquired = match Arc::clone(budget).try_acquire_many_owned(permits) {
                Ok(permit) => Ok(permit),
                Err(_) => {
                    metrics::counter!(telemetry::LIMIT_WAITS_TOTAL, "limit" => limits::QUEUED_MAX_REQUEST_BYTES)
                        .increment(1);
                    let wait = Arc::clone(budget).acquire_many_owned(permits);
                    // A begun frame waits for the budget no longer than it
                    // may stall: otherwise stalled senders, each holding its
                    // share until it times out, queue every other frame
                    // behind the ones still waiting.
                    match self.frame_timeout {
                        Some(limit) => timeout(limit, wait).await.map_err(|_elapsed| {
                            FrameError::Protocol(CloseReason::StalledFrame {
                                received,
                                expected: wanted,
                                after: limit,
                            })
                        })?,
                        None => wait.await,
                    }
                }
            };
            // A closed budget (the server never closes it) bounds nothing.
            if let Ok(permit) = acquired {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
            }
        }
        Ok(step)
    }

    /// Reads what the socket has, up to [`Self::next_read_limit`]; within a
    /// frame, bounded by the frame timeout.
    async fn read_more(&mut self, wanted: usize) -> Result<usize, FrameError> {
        let limit = self.next_read_limit(wanted).await?;
        let received = self.buffer.len();
        let mut room = (&mut self.buffer).limit(limit);
        let read = self.inner.read_buf(&mut room);
        match self.frame_timeout {
            Some(timeout_after) if received > 0 => match timeout(timeout_after, read).await {
                Ok(read) => Ok(read?),
                Err(_elapsed) => Err(FrameError::Protocol(CloseReason::StalledFrame {
                    received,
                    expected: wanted,
                    after: timeout_after,
                })),
            },
            _ => Ok(read.await?),
        }
    }

    /// Splits a complete frame off the buffer, or says how many bytes the
    /// current frame needs in total (prefix included).
    fn parse(&mut self) -> Result<Parsed, FrameError> {
        let Some(prefix) = self.buffer.first_chunk::<SIZE_PREFIX>() else {
            return Ok(Parsed::Need(SIZE_PREFIX));
        };
        let size = i32::from_be_bytes(*prefix);
        let size = usize::try_from(size)
            .map_err(|_| FrameError::Protocol(CloseReason::NegativeFrameSize { size }))?;
        if size > self.max_frame_bytes {
            return Err(FrameError::Protocol(CloseReason::FrameTooLarge {
                size,
                max: self.max_frame_bytes,
            }));
        }
        let total = SIZE_PREFIX + size;
        if self.buffer.len() < total {
            return Ok(Parsed::Need(total));
        }
        self.buffer.advance(SIZE_PREFIX);
        // Complete: what it held of the budget goes back for the next frame.
        self.held = None;
        Ok(Parsed::Frame(self.buffer.split_to(size).freeze()))
    }
}

enum Parsed {
    Frame(Bytes),
    Need(usize),
}

/// Writes complete response frames, buffering until [`flush`](Self::flush).
#[derive(Debug)]
pub struct FrameWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A buffered frame writer.
    pub fn new(inner: W) -> Self {
        Self {
            inner: BufWriter::with_capacity(WRITE_BUFFER, inner),
        }
    }

    /// Queues one frame (it already carries its size prefix).
    pub async fn write_frame(&mut self, frame: &ResponseFrame) -> io::Result<()> {
        self.inner.write_all(frame.as_bytes()).await
    }

    /// Queues one frame in pieces, each of which must be accepted within
    /// `stall` (see [`limits::write_with_progress`]).
    pub async fn write_frame_within(
        &mut self,
        frame: &ResponseFrame,
        stall: Duration,
    ) -> Result<(), limits::WriteError> {
        limits::write_with_progress(&mut self.inner, frame.as_bytes(), stall).await
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    /// Flushes and closes the write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

/// A reply waiting for its turn to be written; the permit counts it as in
/// flight until it is.
enum Outgoing {
    Ready(ResponseFrame, OwnedSemaphorePermit),
    Deferred(
        JoinHandle<Result<Option<ResponseFrame>, CloseReason>>,
        &'static str,
        OwnedSemaphorePermit,
    ),
}

/// How a connection ended, for the log and the metrics.
#[derive(Debug)]
enum End {
    /// The peer closed between requests.
    Eof,
    /// The server is shutting down.
    Shutdown,
    /// No request for the idle timeout.
    Idle(Duration),
    /// The writer stopped (its own reason is reported separately).
    WriterGone,
    /// The socket failed.
    Io(io::Error),
    /// Bad input.
    Protocol(CloseReason),
}

/// A client connection and what serving it needs.
#[derive(Debug)]
pub struct Connection {
    /// The socket.
    pub stream: TcpStream,
    /// The client's address, for logs.
    pub peer: SocketAddr,
    /// Shared state handed to handlers.
    pub ctx: Arc<GatewayContext>,
    /// Where requests are routed.
    pub table: Arc<DispatchTable>,
    /// Fires (or closes) when the server shuts down.
    pub shutdown: broadcast::Receiver<()>,
    /// The listener's TLS and SASL requirements ([`crate::security`]).
    pub security: Arc<ListenerSecurity>,
}

impl Connection {
    /// Serves the connection until the peer leaves, bad input arrives, it
    /// idles out, or the server shuts down; then writes the responses still
    /// owed (within the shutdown grace period) and closes.
    pub async fn run(self) {
        let Connection {
            stream,
            peer,
            ctx,
            table,
            mut shutdown,
            security,
        } = self;
        let limits = ctx.limits.clone();
        // The TLS handshake, and the SASL state every request passes.
        let Some((stream, mut session)) = security.accept(stream, peer, limits.idle_timeout).await
        else {
            return;
        };
        let max_in_flight = limits.max_in_flight;
        let (read_half, write_half) = stream.into_split();
        let mut reader = FrameReader::new(read_half, limits.max_frame_bytes)
            .with_receive_budget(Arc::clone(&ctx.receive_budget))
            .with_frame_timeout(limits.frame_timeout);
        let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
        // The semaphore is the bound; the channel never holds more entries
        // than there are permits.
        let (queue, replies) = mpsc::channel(limits.max_in_flight);
        let mut writer = tokio::spawn(write_replies(
            FrameWriter::new(write_half),
            replies,
            peer,
            limits.write_timeout,
        ));

        let end = loop {
            let permit = tokio::select! {
                biased;
                _ = shutdown.recv() => break End::Shutdown,
                () = queue.closed() => break End::WriterGone,
                permit = crate::limits::in_flight_slot(&in_flight, max_in_flight, peer) => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => break End::WriterGone,
                },
            };
            reader.set_max_frame_bytes(if session.authenticating() {
                limits
                    .max_frame_bytes
                    .min(crate::security::sasl::UNAUTHENTICATED_MAX_FRAME_BYTES)
            } else {
                limits.max_frame_bytes
            });
            let frame = tokio::select! {
                biased;
                _ = shutdown.recv() => break End::Shutdown,
                () = queue.closed() => break End::WriterGone,
                read = timeout(limits.idle_timeout, reader.read_frame()) => match read {
                    Err(_elapsed) => break End::Idle(limits.idle_timeout),
                    Ok(Ok(Some(frame))) => frame,
                    Ok(Ok(None)) => break End::Eof,
                    Ok(Err(FrameError::Io(error))) => break End::Io(error),
                    Ok(Err(FrameError::Protocol(reason))) => break End::Protocol(reason),
                },
            };
            let mut dispatched = match session.dispatch(&ctx, &table, frame, Instant::now()).await {
                Ok(dispatched) => dispatched,
                Err(reason) => break End::Protocol(reason),
            };
            let close_after = dispatched.close_after.take();
            let outgoing = match dispatched.reply {
                Reply::NoResponse => continue,
                Reply::Ready(response) => Outgoing::Ready(response, permit),
                // Spawned so that it progresses while later requests are
                // read and handled; the writer awaits it in turn.
                Reply::Deferred(pending) => {
                    Outgoing::Deferred(tokio::spawn(pending), dispatched.api, permit)
                }
            };
            if queue.send(outgoing).await.is_err() {
                break End::WriterGone;
            }
            if let Some(reason) = close_after {
                break End::Protocol(reason);
            }
        };
        // Dropping the queue lets the writer finish what is owed and stop.
        drop(queue);
        report_end(peer, &end);

        match timeout(limits.shutdown_grace, &mut writer).await {
            Ok(Ok(())) => {}
            Ok(Err(join_error)) => warn!(%peer, %join_error, "response writer failed"),
            Err(_elapsed) => {
                writer.abort();
                warn!(%peer, grace = ?limits.shutdown_grace, "responses still owed after the grace period; closing");
            }
        }
    }
}

/// Counts a connection closed for `reason` and logs it, at most one line
/// per reason per second (the count says how many were held back).
fn log_protocol_close(peer: SocketAddr, reason: &CloseReason) {
    telemetry::record_protocol_error(reason.label());
    if let Some(held_back) = limits::log_gate(reason.label()).admit() {
        warn!(%peer, reason = reason.label(), error = %reason, held_back, "closing connection");
    }
}

/// Logs how the read side ended and counts protocol errors.
fn report_end(peer: SocketAddr, end: &End) {
    match end {
        End::Protocol(reason) => log_protocol_close(peer, reason),
        End::Io(error) => debug!(%peer, %error, "connection failed"),
        End::Idle(idle) => limits::closed_idle(peer, *idle),
        End::Eof | End::Shutdown | End::WriterGone => debug!(%peer, ?end, "connection ended"),
    }
}

/// Writes replies in queue order, flushing whenever the queue runs dry, and
/// closes the write side when the queue ends.
async fn write_replies<W: AsyncWrite + Unpin>(
    mut writer: FrameWriter<W>,
    mut replies: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
    write_timeout: Duration,
) {
    while let Some(outgoing) = replies.recv().await {
        let (response, _permit) = match outgoing {
            Outgoing::Ready(response, permit) => (Some(response), permit),
            Outgoing::Deferred(task, api, permit) => match task.await {
                Ok(Ok(response)) => (response, permit),
                Ok(Err(reason)) => {
                    log_protocol_close(peer, &reason);
                    break;
                }
                Err(join_error) => {
                    let reason = CloseReason::HandlerFailed {
                        api,
                        detail: join_error.to_string(),
                    };
                    log_protocol_close(peer, &reason);
                    break;
                }
            },
        };
        if let Some(response) = response {
            let written = writer.write_frame_within(&response, write_timeout).await;
            if !write_succeeded(written, write_timeout, peer) {
                return;
            }
        }
        if replies.is_empty() {
            let flushed = limits::within(write_timeout, writer.flush()).await;
            if !write_succeeded(flushed, write_timeout, peer) {
                return;
            }
        }
        // `_permit` drops here: the request is no longer in flight.
    }
    let _ = limits::within(write_timeout, writer.shutdown()).await;
}

/// Whether a write step succeeded; a client that stopped reading (no
/// progress within the write timeout) cannot hold the writer forever.
fn write_succeeded(
    result: Result<(), limits::WriteError>,
    write_timeout: Duration,
    peer: SocketAddr,
) -> bool {
    match result {
        Ok(()) => true,
        Err(limits::WriteError::Io(error)) => {
            debug!(%peer, %error, "write failed");
            false
        }
        Err(limits::WriteError::Stalled) => {
            limits::closed_slow_writer(peer, write_timeout);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = i32::try_from(payload.len())
            .expect("small payload")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn frames_split_across_writes_and_packed_together_are_read_whole() {
        let (mut client, server) = duplex(64);
        let mut reader = FrameReader::new(server, 1024);
        let mut stream = framed(b"first");
        stream.extend(framed(b""));
        stream.extend(framed(&[7; 100]));
        let writer = tokio::spawn(async move {
            for piece in stream.chunks(3) {
                client.write_all(piece).await.expect("write");
            }
        });
        assert_eq!(
            reader.read_frame().await.expect("frame").as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(
            reader.read_frame().await.expect("frame").as_deref(),
            Some(&b""[..])
        );
        assert_eq!(
            reader.read_frame().await.expect("frame").map(|f| f.len()),
            Some(100)
        );
        writer.await.expect("writer");
        assert!(reader.read_frame().await.expect("clean end").is_none());
    }

    #[tokio::test]
    async fn a_negative_size_is_a_protocol_error() {
        let (mut client, server) = duplex(64);
        client
            .write_all(&(-1_i32).to_be_bytes())
            .await
            .expect("write");
        let mut reader = FrameReader::new(server, 1024);
        let error = reader.read_frame().await.expect_err("negative size");
        assert!(matches!(
            error,
            FrameError::Protocol(CloseReason::NegativeFrameSize { size: -1 })
        ));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_refused_from_its_prefix_alone() {
        let (mut client, server) = duplex(64);
        client
            .write_all(&1025_i32.to_be_bytes())
            .await
            .expect("write");
        let mut reader = FrameReader::new(server, 1024);
        let error = reader.read_frame().await.expect_err("too large");
        assert!(matches!(
            error,
            FrameError::Protocol(CloseReason::FrameTooLarge {
                size: 1025,
                max: 1024
            })
        ));
    }

    #[tokio::test]
    async fn a_frame_at_the_limit_is_accepted() {
        let (mut client, server) = duplex(4096);
        client.write_all(&framed(&[1; 1024])).await.expect("write");
        let mut reader = FrameReader::new(server, 1024);
        assert_eq!(
            reader.read_frame().await.expect("frame").map(|f| f.len()),
            Some(1024)
        );
    }

    #[tokio::test]
    async fn eof_inside_a_frame_or_its_prefix_is_truncation() {
        for sent in [&[0_u8, 0][..], &[0, 0, 0, 10, 1, 2, 3]] {
            let (mut client, server) = duplex(64);
            client.write_all(sent).await.expect("write");
            drop(client);
            let mut reader = FrameReader::new(server, 1024);
            let error = reader.read_frame().await.expect_err("truncated");
            let FrameError::Protocol(CloseReason::TruncatedFrame { received, .. }) = error else {
                panic!("expected truncation, got {error:?}");
            };
            assert_eq!(received, sent.len());
        }
    }

    #[tokio::test]
    async fn a_frame_whose_bytes_stop_arriving_is_refused() {
        let (mut client, server) = duplex(64);
        client
            .write_all(&100_i32.to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[0; 10]).await.expect("write");
        let mut reader =
            FrameReader::new(server, 1024).with_frame_timeout(Duration::from_millis(20));
        match reader.read_frame().await {
            Err(FrameError::Protocol(CloseReason::StalledFrame {
                received, expected, ..
            })) => {
                assert_eq!(received, 14);
                assert_eq!(expected, 104);
            }
            other => panic!("a stalled frame is refused, got {other:?}"),
        }
        // Between frames the idle timeout governs, not the frame timeout.
        let (_client, server) = duplex(64);
        let mut reader =
            FrameReader::new(server, 1024).with_frame_timeout(Duration::from_millis(1));
        let idle = timeout(Duration::from_millis(50), reader.read_frame()).await;
        assert!(idle.is_err(), "no frame begun, so nothing stalled");
    }

    /// A reader of a 3 MiB frame of which 256 KiB were sent.
    async fn partly_sent_big_frame() -> (
        tokio::io::DuplexStream,
        FrameReader<tokio::io::DuplexStream>,
    ) {
        let (mut client, server) = duplex(1 << 20);
        let prefix = i32::try_from(3 * MAX_READ_RESERVE)
            .expect("fits")
            .to_be_bytes();
        client.write_all(&prefix).await.expect("write");
        client.write_all(&[7; 256 * 1024]).await.expect("write");
        (client, FrameReader::new(server, 1 << 30))
    }

    #[tokio::test]
    async fn a_frame_reads_no_further_than_the_receive_budget_allows() {
        let sent = 4 + 256 * 1024;
        // Without a budget everything sent is read.
        let (_client, mut unbounded) = partly_sent_big_frame().await;
        while unbounded.buffer.len() < sent {
            let _ = timeout(Duration::from_millis(10), unbounded.read_frame()).await;
        }
        // With 128 KiB of budget it stops short, whatever the time given.
        let budget = Arc::new(Semaphore::new(128 * 1024));
        let (_client, reader) = partly_sent_big_frame().await;
        let mut reader = reader.with_receive_budget(Arc::clone(&budget));
        let pending = timeout(Duration::from_millis(50), reader.read_frame()).await;
        assert!(pending.is_err(), "the frame is incomplete");
        assert!(reader.buffer.len() < sent, "it waits for the budget");
        assert!(reader.buffer.len() <= 128 * 1024 + BUDGET_FREE_BYTES);
        // Budget freed elsewhere: it reads on.
        budget.add_permits(1 << 20);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reader.buffer.len() < sent {
            assert!(Instant::now() < deadline, "the freed budget is taken up");
            let _ = timeout(Duration::from_millis(10), reader.read_frame()).await;
        }
        // A closed connection gives its share back.
        drop(reader);
        assert_eq!(budget.available_permits(), (128 * 1024) + (1 << 20));

        // A begun frame waits for the budget no longer than it may stall.
        let empty = Arc::new(Semaphore::new(0));
        let (_client, reader) = partly_sent_big_frame().await;
        let mut reader = reader
            .with_receive_budget(empty)
            .with_frame_timeout(Duration::from_millis(20));
        match reader.read_frame().await {
            Err(FrameError::Protocol(CloseReason::StalledFrame { .. })) => {}
            other => panic!("a frame starved of budget is refused, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_declared_size_is_not_allocated_before_it_arrives() {
        let (mut client, server) = duplex(64);
        client
            .write_all(&(100_000_000_i32).to_be_bytes())
            .await
            .expect("write");
        client.write_all(&[0; 10]).await.expect("write");
        let mut reader = FrameReader::new(server, 200_000_000);
        let pending = timeout(Duration::from_millis(50), reader.read_frame()).await;
        assert!(pending.is_err(), "the frame is incomplete");
        assert!(reader.buffer.capacity() <= 2 * MAX_READ_RESERVE);
    }
}
