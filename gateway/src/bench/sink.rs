//! `cxlkafka bench sink`: the sink of `cxlkafka serve --sink`, whose fetches
//! also return data, so a consumer has a baseline too.
//!
//! `serve --sink` stores nothing and so has nothing to fetch: a fetch below
//! its high watermark is out of range. This sink keeps the first batch
//! produced to each partition as a template and answers a fetch below the
//! high watermark with copies of it, tiled over the offsets (batch k covers
//! offsets k*n..(k+1)*n for a template of n records), each with its base
//! offset rewritten: one copy per batch served, and no storage behind it.
//! Everything else is `serve --sink`'s [`SinkLog`], behind the same server,
//! connection pipeline, dispatch table and Fetch handler as a gateway, so
//! `bench consume` against it measures what a fetch costs without storage.
//!
//! It belongs in [`SinkLog`] itself; it lives here until that file is free
//! to change.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Args;
use cxlkafka_log::layout::Completion;
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};

use crate::cluster::{
    AppendBatch, AppendError, ClusterLog, FetchRead, Member, PendingAppend, SinkLog,
};
use crate::context::AdvertisedListener;
use crate::records::set_base_offset;
use crate::{telemetry, DispatchTable, GatewayContext, Server, ServerHandle};

/// Flags of `cxlkafka bench sink`.
#[derive(Debug, Clone, Args)]
pub struct SinkBenchArgs {
    /// Address the Kafka listener binds (host:port; port 0 picks a free one).
    #[arg(long, env = "CXLKAFKA_BENCH_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// Serve Prometheus metrics here, as `serve` does by default (so both
    /// sides of a comparison pay for them); none when absent.
    #[arg(long, env = "CXLKAFKA_BENCH_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// A partition's template batch.
#[derive(Clone)]
struct Template {
    batch: Bytes,
    records: i64,
}

/// [`SinkLog`] plus fetches served from template batches.
pub struct FetchSink {
    inner: SinkLog,
    templates: Mutex<HashMap<u32, Template>>,
}

impl FetchSink {
    /// A sink answering as node 0 at the advertised address.
    pub fn new(host: String, port: u16) -> Self {
        Self {
            inner: SinkLog::new(host, port),
            templates: Mutex::new(HashMap::new()),
        }
    }

    fn template(&self, stream: u32) -> Option<Template> {
        self.templates
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&stream)
            .cloned()
    }
}

#[async_trait::async_trait]
impl ClusterLog for FetchSink {
    fn node_id(&self) -> i32 {
        self.inner.node_id()
    }

    fn members(&self) -> Vec<Member> {
        self.inner.members()
    }

    fn topics(&self) -> Vec<Topic> {
        self.inner.topics()
    }

    fn topic(&self, name: &str) -> Option<Topic> {
        self.inner.topic(name)
    }

    async fn publish(
        &self,
        batch: AppendBatch<'_>,
        timeout: Duration,
    ) -> Result<PendingAppend, AppendError> {
        if batch.record_count > 0 {
            let mut templates = self
                .templates
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            templates.entry(batch.stream).or_insert_with(|| Template {
                batch: Bytes::copy_from_slice(batch.payload),
                records: i64::from(batch.record_count),
            });
        }
        self.inner.publish(batch, timeout).await
    }

    async fn control(
        &self,
        record: &ControlRecord,
        timeout: Duration,
    ) -> Result<Completion, AppendError> {
        self.inner.control(record, timeout).await
    }

    fn offsets(&self, stream: u32) -> (i64, i64) {
        let (_, high_watermark) = self.inner.offsets(stream);
        (0, high_watermark)
    }

    fn read(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead {
        let (log_start, high_watermark) = self.offsets(stream);
        if offset < log_start || offset > high_watermark {
            return FetchRead::OutOfRange {
                high_watermark,
                log_start,
            };
        }
        let mut batches = Vec::new();
        if let Some(template) = self.template(stream) {
            let mut base = offset - offset % template.records;
            let mut taken = 0usize;
            while base < high_watermark && (taken == 0 || taken + template.batch.len() <= max_bytes)
            {
                let mut copy = BytesMut::from(&template.batch[..]);
                if set_base_offset(&mut copy, base).is_err() {
                    break;
                }
                taken += copy.len();
                batches.push(copy.freeze());
                base += template.records;
            }
        }
        FetchRead::Batches {
            batches,
            high_watermark,
            log_start,
        }
    }

    fn offset_for_timestamp(&self, stream: u32, timestamp: i64) -> Option<(i64, i64)> {
        self.inner.offset_for_timestamp(stream, timestamp)
    }

    fn max_timestamp(&self, stream: u32) -> Option<(i64, i64)> {
        self.inner.max_timestamp(stream)
    }

    fn committed_offsets(&self, group: &str) -> HashMap<u32, CommittedOffset> {
        self.inner.committed_offsets(group)
    }

    fn offset_groups(&self) -> Vec<String> {
        self.inner.offset_groups()
    }

    fn security(&self) -> std::sync::Arc<crate::security::SecurityStore> {
        self.inner.security()
    }

    async fn wait_for_order(&self, sequence: u64, timeout: Duration) -> u64 {
        self.inner.wait_for_order(sequence, timeout).await
    }

    fn applied(&self) -> u64 {
        self.inner.applied()
    }

    async fn wait_durable(
        &self,
        sequence: u64,
        disks: usize,
        deadline: std::time::Instant,
    ) -> Result<(), crate::cluster::AppendError> {
        self.inner.wait_durable(sequence, disks, deadline).await
    }

    fn retention_start(
        &self,
        stream: u32,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Option<i64> {
        self.inner
            .retention_start(stream, retention_ms, retention_bytes, now_ms)
    }

    fn delete_expired_segments(&self) -> (u64, u64) {
        self.inner.delete_expired_segments()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// Binds `args.listen` and serves the fetch sink until `shutdown`
/// completes; the handle knows the bound address.
pub async fn start(
    args: &SinkBenchArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServerHandle, String> {
    if let Some(addr) = args.metrics_addr {
        telemetry::install_prometheus(addr).map_err(|e| format!("metrics on {addr}: {e}"))?;
    }
    let server = Server::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let bound = server.local_addr();
    let advertised = AdvertisedListener::from_socket_addr(bound);
    let log = Arc::new(FetchSink::new(advertised.host.clone(), advertised.port));
    let ctx = GatewayContext::new(log, "bench-sink", advertised);
    println!("bench sink listening on {bound}");
    Ok(server.spawn(Arc::new(ctx), Arc::new(DispatchTable::standard()), shutdown))
}
