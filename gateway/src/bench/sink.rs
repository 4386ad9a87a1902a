//! `cxlkafka bench sink`: the sink of `cxlkafka serve --sink` whose fetches
//! also return data, so a consumer has a baseline too
//! ([`SinkFetches::Templates`]), behind the same server, connection
//! pipeline, dispatch table and Fetch handler as a gateway.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;

use crate::cluster::{ClusterLog, SinkFetches, SinkLog};
use crate::context::AdvertisedListener;
use crate::{telemetry, DispatchTable, GatewayContext, Server, ServerHandle};

/// Flags of `cxlkafka bench sink`.
#[derive(Debug, Clone, Args)]
pub struct SinkBenchArgs {
    /// Address the Kafka listener binds (host:port; port 0 picks a free one).
    #[arg(long, env = "CXLKAFKA_BENCH_LISTEN", default_value = "127.0.0.1:9092",
          value_parser = crate::config::parse_socket_addr)]
    pub listen: SocketAddr,
    /// Serve Prometheus metrics here, as `serve` does by default (so both
    /// sides of a comparison pay for them); none when absent.
    #[arg(long, env = "CXLKAFKA_BENCH_METRICS_ADDR", value_parser = crate::config::parse_socket_addr)]
    pub metrics_addr: Option<SocketAddr>,
}

/// Binds `args.listen` and serves the fetch sink until `shutdown`
/// completes; the handle knows the bound address.
pub async fn start(
    args: &SinkBenchArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServerHandle, String> {
    if let Some(addr) = args.metrics_addr {
        telemetry::install_prometheus(addr, telemetry::DEFAULT_IDLE_TIMEOUT)
            .map_err(|e| format!("metrics on {addr}: {e}"))?;
    }
    let server = Server::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let bound = server.local_addr();
    let advertised = AdvertisedListener::from_socket_addr(bound);
    let log: Arc<dyn ClusterLog> = Arc::new(SinkLog::with_fetches(
        advertised.host.clone(),
        advertised.port,
        SinkFetches::Templates,
    ));
    if args.metrics_addr.is_some() {
        crate::counter_keeper::spawn(&log);
    }
    let ctx = GatewayContext::new(log, "bench-sink", advertised);
    println!("bench sink listening on {bound}");
    Ok(server.spawn(Arc::new(ctx), Arc::new(DispatchTable::standard()), shutdown))
}
