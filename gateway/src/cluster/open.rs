//! Opening the region a `cxlkafka serve` process was pointed at, with the
//! backend it asked for, and starting its cluster side.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cxlkafka_log::layout::{GatewayIndex, Geometry};
use cxlkafka_log::memory::{Coherent, NonCoherent};
use cxlkafka_log::open::{cluster_id, open_or_create, MappedBackend, Opened, RegionOptions};

use cxlkafka_sequencer::membership;

use super::data_dir;
use super::startup::{start, ClusterOptions};
use super::ClusterLog;

/// Where and how to open the region.
#[derive(Clone, Debug)]
pub struct RegionSettings {
    /// Region file or device.
    pub path: PathBuf,
    /// Size when this gateway creates it.
    pub bytes: u64,
    /// Gateway slots when this gateway creates it.
    pub max_gateways: u32,
    /// Cluster name (checked against the region's).
    pub cluster: String,
    /// Map with explicit flushes and invalidations.
    pub non_coherent: bool,
}

/// Opens (or creates) the region and joins it.
pub fn open_cluster(
    region: &RegionSettings,
    options: ClusterOptions,
) -> Result<Arc<dyn ClusterLog>, String> {
    if region.non_coherent {
        open_with::<NonCoherent>(region, options)
    } else {
        open_with::<Coherent>(region, options)
    }
}

fn open_with<B: MappedBackend>(
    settings: &RegionSettings,
    options: ClusterOptions,
) -> Result<Arc<dyn ClusterLog>, String> {
    let geometry = Geometry::for_region_size(settings.bytes, settings.max_gateways)?;
    let region_options = RegionOptions {
        path: settings.path.clone(),
        region_bytes: settings.bytes,
        geometry,
        cluster_id: cluster_id(&settings.cluster).map_err(|e| e.to_string())?,
        format_wait: Duration::from_secs(5),
    };
    // Another cluster's data dir is refused before the region is touched,
    // so that mistake leaves no region formatted for nobody. Nothing is
    // written yet: a start that fails on the region (a mistyped --cluster)
    // leaves a new data dir unclaimed.
    data_dir::refuse_another_cluster(&options.data_dir, &settings.cluster, options.adopt_data_dir)?;
    let (region, opened) = match open_or_create::<B>(&region_options) {
        Ok(opened) => opened,
        // Another size was asked for than the region has: attach anyway,
        // the region's own geometry wins.
        Err(cxlkafka_log::RegionError::GeometryMismatch { .. }) => {
            let region = cxlkafka_log::open::attach_file::<B>(
                &settings.path,
                None,
                Some(region_options.cluster_id),
                region_options.format_wait,
            )
            .map_err(|e| e.to_string())?;
            (region, Opened::Attached)
        }
        Err(error) => return Err(error.to_string()),
    };
    tracing::info!(path = %settings.path.display(), ?opened, "region ready");
    let created = (opened == Opened::Created)
        .then(|| region_file(&settings.path))
        .flatten();
    let lease_timeout_ns = u64::try_from(options.lease_timeout.as_nanos()).unwrap_or(u64::MAX);
    match start(region, options) {
        Ok(cluster) => Ok(cluster),
        Err(error) => {
            if let Some(file) = created {
                remove_created_region::<B>(&settings.path, file, lease_timeout_ns);
            }
            Err(error)
        }
    }
}

/// A regular file's identity (device, inode); `None` for anything else
/// (a device-DAX node is never removed).
fn region_file(path: &Path) -> Option<(u64, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    metadata.is_file().then(|| (metadata.dev(), metadata.ino()))
}

/// Removes the region file this gateway formatted and then failed to
/// start on, if it is still that file and no gateway is live in it: a
/// failed start leaves no region behind that no gateway serves, and never
/// pulls one from under gateways that joined it meanwhile.
fn remove_created_region<B: MappedBackend>(
    path: &Path,
    created: (u64, u64),
    lease_timeout_ns: u64,
) {
    if region_file(path) != Some(created) {
        return;
    }
    let Ok(region) = cxlkafka_log::open::attach_file::<B>(path, None, None, Duration::ZERO) else {
        return;
    };
    let live = membership::live_members(&region, lease_timeout_ns).len();
    drop(region);
    if live > 0 {
        tracing::warn!(
            path = %path.display(),
            live,
            "keeping the region this gateway formatted: other gateways joined it"
        );
        return;
    }
    match std::fs::remove_file(path) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            "removed the region this gateway formatted: the start failed"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(),
            %error,
            "cannot remove the region this gateway formatted before its start failed"
        ),
    }
}

/// The gateway slot a Kafka node id names.
pub fn slot_for_node_id(node_id: Option<i32>) -> Result<Option<GatewayIndex>, String> {
    node_id
        .map(|id| {
            GatewayIndex::try_from(id).map_err(|_| format!("node id {id} is not a region slot"))
        })
        .transpose()
}
