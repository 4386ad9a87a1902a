//! The region fence through the storage side of real gateways: once the
//! region a gateway mapped is formatted again (simulated non-coherent
//! backend), unlinked, or replaced by a new region file (real mapped files),
//! the gateway acknowledges nothing more: publishing and acks=all waits
//! fail with `AppendError::RegionLost`, `region_lost` says how, and
//! `cxlkafka_region_fenced` reads 1. A gateway on the new region is not
//! disturbed.
//!
//! The gauge is one per process and these tests start several gateways in
//! one: they take [`SERIAL`] so that no other test's gateway resets it
//! between a loss and its reading.

mod storage_side;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{start, AppendError, ClusterLog, RegionChange};
use cxlkafka_gateway::telemetry;
use cxlkafka_log::memory::{Coherent, NonCoherent, SimFaults, SimulatedMemory};
use cxlkafka_log::open::{
    attach, cluster_id, format, open_or_create, MappedBackend, RegionOptions,
};
use metrics_exporter_prometheus::PrometheusHandle;
use storage_side::{create_topic, geometry, options, produce_acks_all, DEADLINE};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `cxlkafka_region_fenced` as this process's recorder holds it now.
fn region_fenced_gauge() -> Option<f64> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        telemetry::prometheus_builder()
            .expect("builder")
            .install_recorder()
            .expect("the only recorder of this test binary")
    });
    handle
        .render()
        .lines()
        .find_map(|line| line.strip_prefix("cxlkafka_region_fenced "))
        .map(|value| value.trim().parse().expect("a number"))
}

/// Waits (bounded by [`DEADLINE`]) for the gateway to find its region gone.
async fn region_lost(log: &dyn ClusterLog) -> RegionChange {
    tokio::time::timeout(DEADLINE, log.region_lost())
        .await
        .expect("the gateway notices its region is gone")
}

/// After the loss: nothing is acknowledged any more, whatever is asked.
async fn assert_acknowledges_nothing(log: &dyn ClusterLog, stream: u32, sequence: u64) {
    assert_eq!(
        produce_acks_all(log, stream).await,
        Err(AppendError::RegionLost),
        "a produce after the loss is refused, not acknowledged"
    );
    assert_eq!(
        log.wait_durable(sequence + 1_000, 1, Instant::now() + DEADLINE)
            .await,
        Err(AppendError::RegionLost),
        "an acks=all wait fails at once rather than at its deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_gateways_stop_acknowledging_once_their_region_is_formatted_again() {
    let _serial = SERIAL.lock().await;
    region_fenced_gauge();
    for seed in 0..2u64 {
        let dir = tempfile::tempdir().expect("temp dir");
        let geometry = geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let memory = SimulatedMemory::new(bytes as usize);
        let id = cluster_id("fence").unwrap();
        drop(
            format(
                memory.participant(SimFaults::none(seed)),
                geometry,
                bytes,
                id,
            )
            .unwrap(),
        );
        let gateway = |node: u16| -> Arc<dyn ClusterLog> {
            let region = attach(
                memory.participant(SimFaults::hostile(seed * 10 + u64::from(node))),
                Path::new("sim"),
                Some(&geometry),
                Some(id),
                Duration::ZERO,
            )
            .expect("attached");
            start(region, options(node, dir.path(), None)).expect("started")
        };
        let first = gateway(0);
        let second = gateway(1);
        let stream = create_topic(first.as_ref(), "fenced").await;
        let sequence = produce_acks_all(second.as_ref(), stream)
            .await
            .expect("acknowledged while the region is the cluster's");
        assert_eq!(region_fenced_gauge(), Some(0.0));

        let again = format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            id,
        )
        .expect("formatted again");
        for log in [&first, &second] {
            let change = region_lost(log.as_ref()).await;
            assert_eq!(
                change,
                RegionChange::Reformatted {
                    name: "simulated".into(),
                    found: again.generation(),
                },
                "seed {seed}"
            );
            assert_acknowledges_nothing(log.as_ref(), stream, sequence).await;
        }
        assert_eq!(region_fenced_gauge(), Some(1.0));
        first.shutdown();
        second.shutdown();
    }
}

/// Two gateways on one region file; `lose` takes the file away (and says
/// what a restarted gateway would find there), and both must stop.
async fn two_gateways_lose_their_region_file<B: MappedBackend>(
    lose: impl FnOnce(&Path, &RegionOptions) -> Option<Arc<dyn ClusterLog>>,
    expected: fn(&RegionChange) -> bool,
) {
    region_fenced_gauge();
    let dir = tempfile::tempdir().expect("temp dir");
    let region_path = dir.path().join("region");
    let geometry = geometry();
    let region_options = RegionOptions {
        path: region_path.clone(),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("fence").unwrap(),
        format_wait: Duration::from_secs(5),
    };
    let gateway = |node: u16| -> Arc<dyn ClusterLog> {
        let (region, _) = open_or_create::<B>(&region_options).expect("region");
        let data = dir.path().join(format!("data-{node}"));
        start(region, options(node, &data, Some(region_path.clone()))).expect("started")
    };
    let first = gateway(0);
    let second = gateway(1);
    let stream = create_topic(first.as_ref(), "fenced").await;
    let sequence = produce_acks_all(second.as_ref(), stream)
        .await
        .expect("acknowledged while the file is the region");
    assert_eq!(region_fenced_gauge(), Some(0.0));

    let successor = lose(&region_path, &region_options);
    for log in [&first, &second] {
        let change = region_lost(log.as_ref()).await;
        assert!(expected(&change), "{change:?}");
        assert!(change.to_string().contains("region file"), "{change}");
        assert_acknowledges_nothing(log.as_ref(), stream, sequence).await;
    }
    if successor.is_none() {
        // (A successor's own start sets the process-wide gauge back to 0.)
        assert_eq!(region_fenced_gauge(), Some(1.0));
    }
    if let Some(successor) = successor {
        // The gateway on the new region keeps acknowledging.
        let stream = create_topic(successor.as_ref(), "after").await;
        produce_acks_all(successor.as_ref(), stream)
            .await
            .expect("the new region's gateway acknowledges");
        successor.shutdown();
    }
    first.shutdown();
    second.shutdown();
}

fn unlink(path: &Path, _: &RegionOptions) -> Option<Arc<dyn ClusterLog>> {
    std::fs::remove_file(path).expect("unlinked");
    None
}

fn was_unlinked(change: &RegionChange) -> bool {
    matches!(change, RegionChange::Unlinked { .. })
}

/// What issue 20 saw: a gateway restarted on a lost region formats a new
/// one at the path (here with an empty data dir of its own). Formatted
/// beside the path and renamed over it, so the path never lacks a file.
fn replace<B: MappedBackend>(path: &Path, options: &RegionOptions) -> Option<Arc<dyn ClusterLog>> {
    let beside = path.with_file_name("region.new");
    let (region, _) = open_or_create::<B>(&RegionOptions {
        path: beside.clone(),
        ..options.clone()
    })
    .expect("a new region");
    std::fs::rename(&beside, path).expect("renamed over the old region");
    let data = path.with_file_name("data-restarted");
    Some(start(region, self::options(1, &data, Some(path.to_path_buf()))).expect("started"))
}

/// Replaced by a region this build formatted, so its generation is read.
fn was_replaced(change: &RegionChange) -> bool {
    matches!(change, RegionChange::Replaced { found: Some(_), .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_on_an_unlinked_region_file_stop_acknowledging() {
    let _serial = SERIAL.lock().await;
    two_gateways_lose_their_region_file::<Coherent>(unlink, was_unlinked).await;
    two_gateways_lose_their_region_file::<NonCoherent>(unlink, was_unlinked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_on_a_replaced_region_file_stop_acknowledging_while_the_new_one_serves() {
    let _serial = SERIAL.lock().await;
    two_gateways_lose_their_region_file::<Coherent>(replace::<Coherent>, was_replaced).await;
    two_gateways_lose_their_region_file::<NonCoherent>(replace::<NonCoherent>, was_replaced).await;
}
