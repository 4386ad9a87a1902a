//! Enforcement of the connection limits in [`Limits`]: what happens, what
//! is logged and what is counted when a client reaches one.
//!
//! | limit (flag) | at the limit | metric |
//! |---|---|---|
//! | `--max-frame-bytes` | the connection closes on the size prefix | `cxlkafka_protocol_errors_total{reason="frame_too_large"}` |
//! | `--max-connections` | the listener stops accepting; clients wait in the backlog | `cxlkafka_limit_waits_total{limit="max_connections"}` |
//! | `--max-connections-per-ip` | the new connection is closed at once | `cxlkafka_limit_closes_total{limit="max_connections_per_ip"}` |
//! | `--max-in-flight-per-connection` | the connection stops reading until a response is written | `cxlkafka_limit_waits_total{limit="max_in_flight"}` |
//! | `--connections-max-idle-ms` | the connection closes | `cxlkafka_limit_closes_total{limit="idle_timeout"}` |
//! | `--write-timeout-ms` | the connection closes | `cxlkafka_limit_closes_total{limit="write_timeout"}` |
//! | `--queued-max-request-bytes` | the connection stops reading until other connections' incomplete frames complete | `cxlkafka_limit_waits_total{limit="queued_max_request_bytes"}` |
//! | `--frame-timeout-ms` | the connection closes | `cxlkafka_protocol_errors_total{reason="stalled_frame"}` |
//!
//! Waits are backpressure, not errors: a client at the in-flight bound
//! simply finds TCP pushing back. Closes are what Kafka does for the same
//! limits (`max.connections.per.ip`, `connections.max.idle.ms`).
//!
//! Every enforcement is counted; the log lines are rate limited
//! ([`LogGate`]), so a flood of connections or requests cannot turn into a
//! flood of log lines.
//!
//! [`Limits`]: crate::context::Limits

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::timeout;
use tracing::{info, warn};

use crate::telemetry;

/// `limit` label: the listener reached `--max-connections`.
pub const MAX_CONNECTIONS: &str = "max_connections";
/// `limit` label: an address reached `--max-connections-per-ip`.
pub const MAX_CONNECTIONS_PER_IP: &str = "max_connections_per_ip";
/// `limit` label: a connection reached `--max-in-flight-per-connection`.
pub const MAX_IN_FLIGHT: &str = "max_in_flight";
/// `limit` label: no complete request for `--connections-max-idle-ms`.
pub const IDLE_TIMEOUT: &str = "idle_timeout";
/// `limit` label: a response write made no progress for `--write-timeout-ms`.
pub const WRITE_TIMEOUT: &str = "write_timeout";
/// `limit` label: incomplete frames of all connections hold
/// `--queued-max-request-bytes`.
pub const QUEUED_MAX_REQUEST_BYTES: &str = "queued_max_request_bytes";

/// The limits that make connections wait (`cxlkafka_limit_waits_total`).
pub const WAITING_LIMITS: [&str; 3] = [MAX_CONNECTIONS, MAX_IN_FLIGHT, QUEUED_MAX_REQUEST_BYTES];
/// The limits that close connections (`cxlkafka_limit_closes_total`).
pub const CLOSING_LIMITS: [&str; 3] = [MAX_CONNECTIONS_PER_IP, IDLE_TIMEOUT, WRITE_TIMEOUT];

/// Shortest interval between two log lines about one limit.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Response bytes handed to the socket at once: each such piece must be
/// accepted within the write timeout, so a slow client that keeps reading
/// is served however large the response, while one that stopped is not.
pub const WRITE_CHUNK: usize = 64 * 1024;

/// Lets one log line through per `LOG_INTERVAL` and counts the others,
/// so the line that gets through can say how many it stands for.
#[derive(Debug)]
pub struct LogGate {
    /// Milliseconds since [`epoch`] of the last line let through, plus one
    /// (0: never).
    last: AtomicU64,
    /// Events since the last line let through.
    suppressed: AtomicU64,
}

impl LogGate {
    /// A gate that lets the first line through.
    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now, `n` being the events whose
    /// lines were held back since the previous one; `None` otherwise.
    pub fn admit(&self) -> Option<u64> {
        let now = u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.admit_at(now)
    }

    /// [`admit`](Self::admit) at `now_ms` milliseconds on a monotonic clock.
    fn admit_at(&self, now_ms: u64) -> Option<u64> {
        let now = now_ms.saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last) >= interval;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The gate of one kind of event, by its label (a small, fixed set: the
/// reasons of [`crate::error::CloseReason`]), so that a flood of one kind
/// cannot hide the first line of another.
pub fn log_gate(label: &'static str) -> &'static LogGate {
    static GATES: OnceLock<Mutex<HashMap<&'static str, &'static LogGate>>> = OnceLock::new();
    let mut gates = GATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    gates
        .entry(label)
        .or_insert_with(|| Box::leak(Box::new(LogGate::new())))
}

impl Default for LogGate {
    fn default() -> Self {
        Self::new()
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

static MAX_CONNECTIONS_LOG: LogGate = LogGate::new();
static PER_IP_LOG: LogGate = LogGate::new();
static IN_FLIGHT_LOG: LogGate = LogGate::new();
static IDLE_LOG: LogGate = LogGate::new();
static WRITE_TIMEOUT_LOG: LogGate = LogGate::new();

fn count_wait(limit: &'static str) {
    metrics::counter!(telemetry::LIMIT_WAITS_TOTAL, "limit" => limit).increment(1);
}

fn count_close(limit: &'static str) {
    metrics::counter!(telemetry::LIMIT_CLOSES_TOTAL, "limit" => limit).increment(1);
}

/// A permit from `slots` at once if one is free; otherwise `report_wait`
/// runs (the limit's log line and metric) before waiting for one. Fails
/// only if the semaphore is closed.
async fn acquire_reporting_waits(
    slots: &Arc<Semaphore>,
    report_wait: impl FnOnce(),
) -> Result<OwnedSemaphorePermit, AcquireError> {
    match Arc::clone(slots).try_acquire_owned() {
        Ok(permit) => return Ok(permit),
        Err(TryAcquireError::Closed) => {}
        Err(TryAcquireError::NoPermits) => report_wait(),
    }
    Arc::clone(slots).acquire_owned().await
}

/// A connection slot under `--max-connections`: takes a permit, and when
/// none is free says so (log line, metric) before waiting for one. Fails
/// only if the semaphore is closed.
pub async fn connection_slot(
    slots: &Arc<Semaphore>,
    max: usize,
) -> Result<OwnedSemaphorePermit, AcquireError> {
    acquire_reporting_waits(slots, || {
        count_wait(MAX_CONNECTIONS);
        if let Some(suppressed) = MAX_CONNECTIONS_LOG.admit() {
            warn!(
                max_connections = max,
                suppressed, "connection limit reached: not accepting until a connection closes"
            );
        }
    })
    .await
}

/// A request slot under `--max-in-flight-per-connection`: while none is
/// free, the connection does not read, which pushes back on the client
/// through TCP. Fails only if the semaphore is closed.
pub async fn in_flight_slot(
    slots: &Arc<Semaphore>,
    max: usize,
    peer: SocketAddr,
) -> Result<OwnedSemaphorePermit, AcquireError> {
    acquire_reporting_waits(slots, || {
        count_wait(MAX_IN_FLIGHT);
        if let Some(suppressed) = IN_FLIGHT_LOG.admit() {
            info!(
                %peer,
                max_in_flight = max,
                suppressed,
                "requests in flight at the limit: reading paused until a response is written"
            );
        }
    })
    .await
}

/// Reports a connection closed for sending no request within the idle
/// timeout (Kafka's `connections.max.idle.ms`).
pub fn closed_idle(peer: SocketAddr, idle: Duration) {
    count_close(IDLE_TIMEOUT);
    if let Some(suppressed) = IDLE_LOG.admit() {
        info!(%peer, ?idle, suppressed, "closing idle connection");
    }
}

/// Reports a connection closed because a response write made no progress
/// within the write timeout.
pub fn closed_slow_writer(peer: SocketAddr, limit: Duration) {
    count_close(WRITE_TIMEOUT);
    if let Some(suppressed) = WRITE_TIMEOUT_LOG.admit() {
        warn!(%peer, ?limit, suppressed, "client stopped reading responses; closing");
    }
}

/// Why [`write_with_progress`] stopped.
#[derive(Debug)]
pub enum WriteError {
    /// The socket failed.
    Io(std::io::Error),
    /// One piece of the write was not accepted within the timeout.
    Stalled,
}

/// Writes `bytes` in [`WRITE_CHUNK`] pieces, each of which must be accepted
/// within `stall`: a deadline on progress, not on the whole response.
pub async fn write_with_progress<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    stall: Duration,
) -> Result<(), WriteError> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        within(stall, writer.write_all(chunk)).await?;
    }
    Ok(())
}

/// Runs one I/O step with a deadline.
pub async fn within(
    stall: Duration,
    step: impl Future<Output = std::io::Result<()>>,
) -> Result<(), WriteError> {
    match timeout(stall, step).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(WriteError::Io(error)),
        Err(_elapsed) => Err(WriteError::Stalled),
    }
}

/// Open connections per client address, under `--max-connections-per-ip`.
#[derive(Debug)]
pub struct PerIpLimiter {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIpLimiter {
    /// A limiter allowing `max` connections per address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `peer`, held until the connection
    /// ends; `None` (logged and counted) when the address already has the
    /// maximum, and the connection must be closed at once, as Kafka does.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<IpSlot> {
        let ip = peer.ip();
        let admitted = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let count = open.entry(ip).or_insert(0);
            if *count < self.max {
                *count += 1;
                true
            } else {
                false
            }
        };
        if admitted {
            return Some(IpSlot {
                limiter: Arc::clone(self),
                ip,
            });
        }
        count_close(MAX_CONNECTIONS_PER_IP);
        if let Some(suppressed) = PER_IP_LOG.admit() {
            warn!(
                %peer,
                max_connections_per_ip = self.max,
                suppressed,
                "rejected connection: the address already has the maximum number of connections"
            );
        }
        None
    }

    /// Connections open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

/// One connection counted against its address; released on drop.
#[derive(Debug)]
pub struct IpSlot {
    limiter: Arc<PerIpLimiter>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_slot_that_must_be_waited_for_is_reported() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slots = Arc::new(Semaphore::new(1));
        let reports = Arc::new(AtomicUsize::new(0));
        let count = |reports: &Arc<AtomicUsize>| {
            let reports = Arc::clone(reports);
            move || {
                reports.fetch_add(1, Ordering::SeqCst);
            }
        };
        let held = acquire_reporting_waits(&slots, count(&reports))
            .await
            .expect("a free slot");
        assert_eq!(reports.load(Ordering::SeqCst), 0);
        let waiter = tokio::spawn({
            let slots = Arc::clone(&slots);
            let report = count(&reports);
            async move { acquire_reporting_waits(&slots, report).await }
        });
        while reports.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "no slot was free");
        drop(held);
        let _permit = waiter.await.expect("joins").expect("the freed slot");
        assert_eq!(reports.load(Ordering::SeqCst), 1);
    }

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn per_ip_slots_are_counted_per_address_and_released_on_drop() {
        let limiter = PerIpLimiter::new(2);
        let first = limiter.admit(addr([10, 0, 0, 1], 1)).expect("first");
        let second = limiter.admit(addr([10, 0, 0, 1], 2)).expect("second");
        assert!(limiter.admit(addr([10, 0, 0, 1], 3)).is_none());
        let other = limiter
            .admit(addr([10, 0, 0, 2], 1))
            .expect("another address");
        drop(first);
        let third = limiter.admit(addr([10, 0, 0, 1], 4)).expect("a freed slot");
        assert_eq!(limiter.open_from(IpAddr::from([10, 0, 0, 1])), 2);
        drop((second, third, other));
        assert_eq!(limiter.open_from(IpAddr::from([10, 0, 0, 1])), 0);
        assert!(limiter.open.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn the_log_gate_lets_one_line_per_interval_through_and_counts_the_rest() {
        let gate = LogGate::new();
        assert_eq!(gate.admit_at(5_000), Some(0));
        assert_eq!(gate.admit_at(5_001), None);
        assert_eq!(gate.admit_at(5_999), None);
        assert_eq!(gate.admit_at(6_000), Some(2));
        assert_eq!(gate.admit_at(6_500), None);
        assert_eq!(gate.admit_at(9_000), Some(1));
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_stalls() {
        let (mut client, _server) = tokio::io::duplex(16);
        let error = write_with_progress(&mut client, &[0; 64], Duration::from_millis(20))
            .await
            .expect_err("nobody reads");
        assert!(matches!(error, WriteError::Stalled));
    }

    #[tokio::test]
    async fn a_large_write_read_steadily_completes() {
        use tokio::io::AsyncReadExt;
        let (mut client, mut server) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            server.read_to_end(&mut received).await.expect("read");
            received.len()
        });
        let payload = vec![7; 3 * WRITE_CHUNK + 5];
        write_with_progress(&mut client, &payload, Duration::from_secs(30))
            .await
            .expect("the reader keeps up");
        drop(client);
        assert_eq!(reader.await.expect("reader"), payload.len());
    }
}
