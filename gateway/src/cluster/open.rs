//! Opening the region a `cxlkafka serve` process was pointed at, with the
//! backend it asked for, and starting its cluster side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cxlkafka_log::layout::{GatewayIndex, Geometry};
use cxlkafka_log::memory::{Coherent, NonCoherent};
use cxlkafka_log::open::{cluster_id, open_or_create, MappedBackend, Opened, RegionOptions};

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
    let (region, opened) = match open_or_create::<B>(&region_options) {
        Ok(opened) => opened,
        // Another size was asked for than the region has: attach anyway,
        // the region's own geometry wins.
        Err(cxlkafka_log::RegionError::GeometryMismatch { field, .. }) if field != "cluster id" => {
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
    let cluster = start(region, options)?;
    Ok(cluster)
}

/// The gateway slot a Kafka node id names.
pub fn slot_for_node_id(node_id: Option<i32>) -> Result<Option<GatewayIndex>, String> {
    node_id
        .map(|id| {
            GatewayIndex::try_from(id).map_err(|_| format!("node id {id} is not a region slot"))
        })
        .transpose()
}
