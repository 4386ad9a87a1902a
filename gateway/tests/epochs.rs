//! Sequencer lease epochs only increase, across a lost and rebuilt region
//! too (issue 20: a gateway rebuilding a new region took epoch 1 while its
//! old peers had seen 3). Every gateway records the epochs it takes or sees
//! in its data dir; the one rebuilding a region takes an epoch above them.
//! On the simulated non-coherent backend and on a real mapped file.

mod storage_side;

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_gateway::cluster::{start, ClusterLog};
use cxlkafka_log::layout::Lease;
use cxlkafka_log::memory::{Coherent, MemoryBackend, NonCoherent, SimFaults, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format, open_or_create, RegionOptions};
use cxlkafka_log::Region;
use storage_side::{create_topic, geometry, options, produce_acks_all, DEADLINE};

/// A started gateway and a way to read its region's lease.
type Started = (Arc<dyn ClusterLog>, Box<dyn Fn() -> Lease>);

fn started<B: MemoryBackend + 'static>(
    region: Region<B>,
    watcher: Region<B>,
    node: u16,
    data_dir: &Path,
) -> Started {
    // Gateway 0 rebuilds the lost region alone, without gateway 1, which
    // was live when it last ran: the operator's override.
    let options = cxlkafka_gateway::cluster::ClusterOptions {
        unclean_region_rebuild: true,
        ..options(node, data_dir, None)
    };
    let log: Arc<dyn ClusterLog> = start(region, options).expect("started");
    (log, Box::new(move || watcher.lease()))
}

/// Waits until gateway `gateway` holds the lease; returns its epoch.
async fn epoch_held_by(lease: &dyn Fn() -> Lease, gateway: u16) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = lease();
        if now.holder == u64::from(gateway) + 1 {
            return now.epoch;
        }
        assert!(
            Instant::now() < deadline,
            "gateway {gateway} never took the lease: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `data_dir`'s record for `gateway` names `epoch`.
async fn recorded(data_dir: &Path, gateway: u16, epoch: u64) {
    let path = data_dir.join(format!("gateway-{gateway}.epoch"));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().any(|line| line == format!("epoch={epoch}")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never recorded epoch {epoch}: {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Gateway 0 takes the lease, stops; gateway 1 takes it over with a higher
/// epoch; gateway 0 comes back and sees that epoch. The region is lost, and
/// gateway 0 alone starts on a new one from its data dir: the epoch it
/// takes is above the one it only saw. `open(region, node)` starts a
/// gateway on region 0 (the first) or 1 (formatted after the loss).
async fn a_rebuilt_region_takes_an_epoch_above_every_one_seen(
    open: impl Fn(usize, u16, &Path) -> Started,
    lose_the_first_region: impl FnOnce(),
) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (first, lease) = open(0, 0, dirs[0].path());
    let (second, _) = open(0, 1, dirs[1].path());
    let taken = epoch_held_by(lease.as_ref(), 0).await;
    let stream = create_topic(first.as_ref(), "epochs").await;
    produce_acks_all(second.as_ref(), stream)
        .await
        .expect("acknowledged");
    first.shutdown();
    drop(first);

    let taken_over = epoch_held_by(lease.as_ref(), 1).await;
    assert!(taken_over > taken, "{taken_over} after {taken}");
    let (first, _) = open(0, 0, dirs[0].path());
    recorded(dirs[0].path(), 0, taken_over).await;
    first.shutdown();
    second.shutdown();
    drop((first, second, lease));

    lose_the_first_region();
    let (rebuilt, lease) = open(1, 0, dirs[0].path());
    let epoch = epoch_held_by(lease.as_ref(), 0).await;
    assert_eq!(
        epoch,
        taken_over + 1,
        "the new region's first epoch is above every epoch gateway 0 saw"
    );
    recorded(dirs[0].path(), 0, epoch).await;
    assert!(
        rebuilt.topic("epochs").is_some(),
        "the region was rebuilt from gateway 0's segments"
    );
    rebuilt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_epochs_only_increase_across_a_rebuilt_region() {
    for seed in 0..2u64 {
        let geometry = geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let id = cluster_id("epochs").unwrap();
        let blank = || {
            let memory = SimulatedMemory::new(bytes as usize);
            drop(
                format(
                    memory.participant(SimFaults::none(seed)),
                    geometry,
                    bytes,
                    id,
                )
                .unwrap(),
            );
            memory
        };
        let regions = RefCell::new(vec![blank()]);
        let open = |region: usize, node: u16, data_dir: &Path| {
            let memory = Arc::clone(&regions.borrow()[region]);
            let participant = |salt: u64| {
                attach(
                    memory.participant(SimFaults::hostile(seed * 10 + salt)),
                    Path::new("sim"),
                    Some(&geometry),
                    Some(id),
                    Duration::ZERO,
                )
                .expect("attached")
            };
            started(participant(u64::from(node)), participant(7), node, data_dir)
        };
        a_rebuilt_region_takes_an_epoch_above_every_one_seen(&open, || {
            regions.borrow_mut().push(blank())
        })
        .await;
    }
}

async fn on_a_region_file<B: cxlkafka_log::open::MappedBackend + 'static>() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let geometry = geometry();
    let region_options = RegionOptions {
        path: path.clone(),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("epochs").unwrap(),
        format_wait: Duration::from_secs(5),
    };
    // Each region is the file at the path; the second is formatted by the
    // first gateway to start after the first was deleted.
    let open = |_region: usize, node: u16, data_dir: &Path| {
        let (region, _) = open_or_create::<B>(&region_options).expect("region");
        let (watcher, _) = open_or_create::<B>(&region_options).expect("region");
        started(region, watcher, node, data_dir)
    };
    a_rebuilt_region_takes_an_epoch_above_every_one_seen(open, || {
        std::fs::remove_file(&path).expect("region deleted")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_epochs_only_increase_across_a_rebuilt_region() {
    on_a_region_file::<Coherent>().await;
    on_a_region_file::<NonCoherent>().await;
}
