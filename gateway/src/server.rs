//! The Kafka listener: accepts connections and runs each on its own task,
//! with a cap on open connections and a graceful shutdown.
//!
//! Shaped like mini-redis's `server.rs`: a `Listener` owns the socket, a
//! semaphore bounds connections, a broadcast channel tells every connection
//! to stop, and an mpsc channel whose senders live in the connection tasks
//! tells the listener when the last one is gone.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use thiserror::Error;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};
use tracing::{error, info, warn};

use crate::broker_config::loggers::Loggers;
use crate::cluster::{open_cluster, ClusterLog, RegionChange, SinkLog};
use crate::config::{ConfigError, ServeArgs};
use crate::connection::Connection;
use crate::context::GatewayContext;
use crate::dispatch::DispatchTable;
use crate::limits::{self, PerIpLimiter};
use crate::security::{ListenerSecurity, ANONYMOUS};
use crate::telemetry;

/// First pause after a failed `accept()`.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between `accept()` retries. Errors such as running out of
/// file descriptors clear when connections close, so the listener retries
/// forever rather than taking the broker down, but never busy-loops.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A bound Kafka listener, not yet accepting.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// TLS and SASL requirements of its connections (PLAINTEXT by default).
    security: Arc<ListenerSecurity>,
    /// A second listener (the TLS one) served beside this one.
    beside: Option<Box<Server>>,
}

impl Server {
    /// Binds the listener. Binding before building the context lets port 0
    /// resolve to the real port that is then advertised.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            security: ListenerSecurity::plaintext(),
            beside: None,
        })
    }

    /// Sets the listener's security protocol (see [`crate::security`]).
    pub fn with_security(mut self, security: Arc<ListenerSecurity>) -> Self {
        self.security = security;
        self
    }

    /// Serves `other` (a TLS listener) beside this one, with the same
    /// context, table and shutdown.
    pub fn with_listener_beside(mut self, other: Server) -> Self {
        self.beside = Some(Box::new(other));
        self
    }

    /// The bound address of the listener beside this one, if any.
    pub fn beside_addr(&self) -> Option<SocketAddr> {
        self.beside.as_ref().map(|other| other.local_addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, tells every
    /// connection to finish the responses it owes, and waits for them (at
    /// most the context's shutdown grace, plus a second).
    pub async fn run(
        mut self,
        ctx: Arc<GatewayContext>,
        table: Arc<DispatchTable>,
        shutdown: impl Future<Output = ()>,
    ) {
        // Transactions past their timeout, and those a dead coordinator
        // left prepared, are ended by a tick, whether or not this gateway
        // has served a transactional request yet.
        ctx.transactions.ensure_ticker(&ctx.log);
        let Some(other) = self.beside.take() else {
            return self.run_one(ctx, table, shutdown).await;
        };
        // One shutdown for both listeners: a watch whose sender drops.
        let (stop, stopped) = tokio::sync::watch::channel(());
        let stopping = |mut stopped: tokio::sync::watch::Receiver<()>| async move {
            let _ = stopped.changed().await;
        };
        tokio::join!(
            async move {
                shutdown.await;
                drop(stop);
            },
            self.run_one(
                Arc::clone(&ctx),
                Arc::clone(&table),
                stopping(stopped.clone())
            ),
            Box::pin(other.run_one(ctx, table, stopping(stopped))),
        );
    }

    async fn run_one(
        self,
        ctx: Arc<GatewayContext>,
        table: Arc<DispatchTable>,
        shutdown: impl Future<Output = ()>,
    ) {
        let (notify_shutdown, _) = broadcast::channel(1);
        let (shutdown_complete_tx, mut shutdown_complete_rx) = mpsc::channel(1);
        let grace = ctx.limits.shutdown_grace;
        let mut listener = Listener {
            limit_connections: Arc::new(Semaphore::new(ctx.limits.max_connections)),
            per_ip: PerIpLimiter::new(ctx.limits.max_connections_per_ip),
            listener: self.listener,
            security: self.security,
            ctx,
            table,
            notify_shutdown,
            shutdown_complete_tx,
        };
        tokio::select! {
            () = listener.accept_loop() => {}
            () = shutdown => info!("shutting down: no new connections"),
        }
        let Listener {
            listener: socket,
            notify_shutdown,
            shutdown_complete_tx,
            ..
        } = listener;
        // Closing the socket first makes new clients fail fast instead of
        // queueing in the backlog of a listener that will never accept.
        drop(socket);
        drop(notify_shutdown);
        drop(shutdown_complete_tx);
        let drain = grace + Duration::from_secs(1);
        if timeout(drain, shutdown_complete_rx.recv()).await.is_err() {
            warn!(
                ?drain,
                "connections still open after the shutdown grace period"
            );
        }
    }

    /// Runs the server on a new task; see [`Server::run`].
    pub fn spawn(
        self,
        ctx: Arc<GatewayContext>,
        table: Arc<DispatchTable>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> ServerHandle {
        let local_addr = self.local_addr;
        let beside_addr = self.beside_addr();
        let log = Arc::clone(&ctx.log);
        let task = tokio::spawn(self.run(ctx, table, shutdown));
        ServerHandle {
            local_addr,
            beside_addr,
            task,
            log,
            region_lost: Arc::new(OnceLock::new()),
        }
    }
}

/// A server running on its own task.
pub struct ServerHandle {
    local_addr: SocketAddr,
    /// The TLS listener's bound address, if any.
    beside_addr: Option<SocketAddr>,
    task: JoinHandle<()>,
    /// Left cleanly once the listener has stopped.
    log: Arc<dyn ClusterLog>,
    /// Set when the server stopped because its region was lost.
    region_lost: Arc<OnceLock<RegionChange>>,
}

/// Why a server stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Its shutdown future completed (a signal, or a test).
    Requested,
    /// The region it mapped was unlinked, replaced or formatted again
    /// (`cluster/fence.rs`): the process must be restarted to join the
    /// region now at its path; `cxlkafka serve` exits with
    /// [`crate::cluster::EXIT_REGION_LOST`].
    RegionLost(RegionChange),
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TLS listener's bound address (`--tls-listen`), if any.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.beside_addr
    }

    /// Waits until the server has shut down, and says why it did.
    pub async fn stopped(self) -> Stopped {
        if let Err(join_error) = self.task.await {
            error!(%join_error, "server task failed");
        }
        let log = self.log;
        let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
        match self.region_lost.get() {
            Some(change) => Stopped::RegionLost(change.clone()),
            None => Stopped::Requested,
        }
    }
}

/// Why [`serve`] could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The flags describe an unusable configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The TLS listener's certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The region could not be opened or joined.
    #[error("region: {0}")]
    Region(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
}

/// Binds `args.listen`, builds the context from the flags and the bound
/// address, and serves the standard dispatch table on a new task until
/// `shutdown` completes. The returned handle knows the bound address (useful
/// with port 0). Log level changes (BROKER_LOGGER) are kept but reach no
/// subscriber: see [`serve_with_loggers`].
pub async fn serve(
    args: &ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServerHandle, ServeError> {
    let loggers = Arc::new(Loggers::fixed(&args.log_level));
    serve_with_loggers(args, loggers, shutdown).await
}

/// [`serve`], with `loggers` over the process's log filter (built with the
/// subscriber's reload handle), so BROKER_LOGGER changes apply live.
pub async fn serve_with_loggers(
    args: &ServeArgs,
    loggers: Arc<Loggers>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServerHandle, ServeError> {
    let mut server = Server::bind(args.listen.as_str())
        .await
        .map_err(|source| ServeError::Bind {
            addr: args.listen.clone(),
            source,
        })?
        .with_security(args.security.plain_listener());
    if let (Some(addr), Some(tls)) = (
        &args.security.tls_listen,
        args.security.tls_listener().map_err(ServeError::Tls)?,
    ) {
        let tls_server = Server::bind(addr.as_str())
            .await
            .map_err(|source| ServeError::Bind {
                addr: addr.clone(),
                source,
            })?
            .with_security(tls);
        server = server.with_listener_beside(tls_server);
    }
    let options = args.cluster_options(server.local_addr())?;
    let settings = args.region_settings();
    // Mapping and formatting the region touches memory and may wait for a
    // gateway that is formatting it: keep that off the async workers.
    let log: Arc<dyn ClusterLog> = if args.sink {
        tracing::warn!("running as a sink: produces are acknowledged and discarded");
        Arc::new(SinkLog::new(
            options.advertised_host,
            options.advertised_port,
        ))
    } else {
        tokio::task::spawn_blocking(move || open_cluster(&settings, options))
            .await
            .map_err(|error| ServeError::Region(error.to_string()))?
            .map_err(ServeError::Region)?
    };
    crate::partition_metrics::spawn(&log);
    crate::counter_keeper::spawn(&log);
    if !args.sink {
        crate::cluster::retention::spawn(
            Arc::clone(&log),
            Duration::from_millis(args.log_retention_check_interval_ms),
        );
    }
    let shutdown = stop_on_region_loss(Arc::clone(&log), shutdown);
    let ctx = args
        .context(log, server.local_addr())?
        .with_security(args.security.config(server.beside_addr()))
        .with_loggers(loggers);
    // Lag is exported from the start, also for groups whose consumers are
    // all gone (the case worth an alert), not only after the first join.
    ctx.groups.ensure_reporter(&ctx.log);
    if ctx.security.authorizer
        && ctx
            .security
            .super_users
            .iter()
            .any(|user| user == ANONYMOUS)
    {
        warn!(
            "--super-users names User:ANONYMOUS: every client that does not authenticate \
             (PLAINTEXT, or SSL without a client certificate) is allowed everything"
        );
    }
    info!(
        listen = %server.local_addr(),
        tls_listen = ?server.beside_addr(),
        advertised = %ctx.advertised,
        node_id = ctx.node_id,
        cluster = %ctx.cluster,
        "Kafka listener ready"
    );
    let (shutdown, region_lost) = shutdown;
    let mut handle = server.spawn(Arc::new(ctx), Arc::new(DispatchTable::standard()), shutdown);
    handle.region_lost = region_lost;
    Ok(handle)
}

/// `shutdown`, or the storage side finding its region lost, whichever comes
/// first; the second half is set in the latter case.
fn stop_on_region_loss(
    log: Arc<dyn ClusterLog>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (
    impl Future<Output = ()> + Send + 'static,
    Arc<OnceLock<RegionChange>>,
) {
    let region_lost = Arc::new(OnceLock::new());
    let lost = Arc::clone(&region_lost);
    let either = async move {
        tokio::select! {
            () = shutdown => {}
            change = log.region_lost() => {
                warn!(%change, "shutting down: this gateway can no longer serve its region");
                let _ = lost.set(change);
            }
        }
    };
    (either, region_lost)
}

/// Accept-side state. Each field exists for one reason, noted beside it.
struct Listener {
    /// The bound socket.
    listener: TcpListener,
    /// Handed to each connection: TLS handshake and SASL requirements.
    security: Arc<ListenerSecurity>,
    /// Shared by every handler.
    ctx: Arc<GatewayContext>,
    /// Shared by every connection.
    table: Arc<DispatchTable>,
    /// One permit per open connection: at the cap, the listener stops
    /// accepting and further clients wait in the kernel backlog.
    limit_connections: Arc<Semaphore>,
    /// Connections per client address: one address cannot take every slot
    /// of `limit_connections`.
    per_ip: Arc<PerIpLimiter>,
    /// Closed on shutdown; each connection holds a receiver.
    notify_shutdown: broadcast::Sender<()>,
    /// Cloned into each connection task and dropped when it ends, so the
    /// receiving side learns when the last connection is gone.
    shutdown_complete_tx: mpsc::Sender<()>,
}

impl Listener {
    /// Accepts forever; returns only if the semaphore is closed, which
    /// nothing does.
    async fn accept_loop(&mut self) {
        loop {
            let max = self.ctx.limits.max_connections;
            let Ok(permit) = limits::connection_slot(&self.limit_connections, max).await else {
                return;
            };
            let (stream, peer) = self.accept().await;
            let Some(ip_slot) = self.per_ip.admit(peer) else {
                // Closed at once (logged and counted by the limiter).
                drop(stream);
                continue;
            };
            if let Err(error) = stream.set_nodelay(true) {
                // Responses are written whole; without NODELAY, Nagle would
                // hold small responses back behind the client's delayed ACK.
                warn!(%peer, %error, "cannot set TCP_NODELAY");
            }
            metrics::counter!(telemetry::CONNECTIONS_TOTAL).increment(1);
            let connection = Connection {
                stream,
                peer,
                ctx: Arc::clone(&self.ctx),
                table: Arc::clone(&self.table),
                shutdown: self.notify_shutdown.subscribe(),
                security: Arc::clone(&self.security),
            };
            let shutdown_complete = self.shutdown_complete_tx.clone();
            tokio::spawn(async move {
                let _open = OpenConnection::new();
                connection.run().await;
                drop(ip_slot);
                drop(permit);
                drop(shutdown_complete);
            });
        }
    }

    /// Accepts one connection, backing off exponentially while accept fails.
    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(error) => {
                    metrics::counter!(telemetry::ACCEPT_ERRORS_TOTAL).increment(1);
                    warn!(%error, ?backoff, "accept failed; retrying");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// Keeps `cxlkafka_connections` right even if a connection task panics.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        telemetry::connection_opened();
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        telemetry::connection_closed();
    }
}
