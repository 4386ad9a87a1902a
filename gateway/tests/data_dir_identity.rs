//! A data dir records the cluster that wrote it: a gateway of another
//! cluster refuses it before joining its region (issue 20: `serve --cluster
//! B --data-dir <A's data>` silently served A's topics), unless told to
//! adopt it, and then serves it as its own. On the simulated non-coherent
//! backend and on a real mapped file.

mod storage_side;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cxlkafka_gateway::cluster::{start, ClusterLog, ClusterOptions};
use cxlkafka_log::memory::{MemoryBackend, NonCoherent, SimFaults, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format, open_or_create, RegionOptions};
use cxlkafka_log::Region;
use cxlkafka_sequencer::membership;
use storage_side::{create_topic, geometry, options, produce_acks_all};

fn adopting(options: ClusterOptions) -> ClusterOptions {
    ClusterOptions {
        adopt_data_dir: true,
        ..options
    }
}

/// `open(cluster)` is a blank region formatted for `cluster` (a new one per
/// call); `look(cluster)` another handle on the last one opened for it.
async fn another_clusters_data_dir_is_refused_unless_adopted<B: MemoryBackend + 'static>(
    open: impl Fn(&str) -> Region<B>,
    look: impl Fn(&str) -> Region<B>,
) {
    let data = tempfile::tempdir().unwrap();
    let alpha = start(open("alpha"), options(0, data.path(), None)).expect("alpha starts");
    let stream = create_topic(alpha.as_ref(), "alphas-topic").await;
    produce_acks_all(alpha.as_ref(), stream)
        .await
        .expect("acknowledged");
    alpha.shutdown();
    drop(alpha);
    let recorded = std::fs::read_to_string(data.path().join("cluster")).unwrap();
    assert!(recorded.contains("cluster.name=alpha\n"), "{recorded}");

    let error = match start(open("beta"), options(0, data.path(), None)) {
        Ok(_) => panic!("beta must not serve alpha's data dir"),
        Err(error) => error,
    };
    assert!(
        error.contains("\"alpha\"")
            && error.contains("\"beta\"")
            && error.contains("--adopt-data-dir"),
        "{error}"
    );
    let beta = look("beta");
    assert!(
        membership::live_members(&beta, 300_000_000).is_empty(),
        "refused before joining: nobody in beta's region"
    );
    assert_eq!(beta.lease().holder, 0, "and nobody took its lease");
    assert_eq!(
        std::fs::read_to_string(data.path().join("cluster")).unwrap(),
        recorded,
        "the data dir still names alpha"
    );

    let adopted = start(open("beta"), adopting(options(0, data.path(), None)))
        .expect("beta adopts alpha's data dir when told to");
    assert!(
        adopted.topic("alphas-topic").is_some(),
        "and serves what it holds"
    );
    adopted.shutdown();
    let recorded = std::fs::read_to_string(data.path().join("cluster")).unwrap();
    assert!(recorded.contains("cluster.name=beta\n"), "{recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_non_coherent_gateway_refuses_another_clusters_data_dir() {
    let geometry = geometry();
    let bytes = geometry.layout().unwrap().total_bytes;
    let memories: Mutex<HashMap<String, Arc<SimulatedMemory>>> = Mutex::default();
    let handle = |cluster: &str, salt: u64| {
        let memory = Arc::clone(&memories.lock().unwrap()[cluster]);
        attach(
            memory.participant(SimFaults::hostile(salt)),
            Path::new("sim"),
            Some(&geometry),
            Some(cluster_id(cluster).unwrap()),
            Duration::ZERO,
        )
        .expect("attached")
    };
    let open = |cluster: &str| {
        let memory = SimulatedMemory::new(bytes as usize);
        let id = cluster_id(cluster).unwrap();
        drop(format(memory.participant(SimFaults::none(1)), geometry, bytes, id).unwrap());
        memories.lock().unwrap().insert(cluster.to_owned(), memory);
        handle(cluster, 2)
    };
    another_clusters_data_dir_is_refused_unless_adopted(open, |cluster| handle(cluster, 3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_file_gateway_refuses_another_clusters_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let geometry = geometry();
    let region_options = |cluster: &str| RegionOptions {
        path: dir.path().join(format!("region-{cluster}")),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id(cluster).unwrap(),
        format_wait: Duration::from_secs(5),
    };
    let open = |cluster: &str| {
        let options = region_options(cluster);
        let _ = std::fs::remove_file(&options.path);
        open_or_create::<NonCoherent>(&options).expect("region").0
    };
    let look = |cluster: &str| {
        open_or_create::<NonCoherent>(&region_options(cluster))
            .expect("region")
            .0
    };
    another_clusters_data_dir_is_refused_unless_adopted(open, look).await;
}
