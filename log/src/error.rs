use std::path::PathBuf;

/// Why a region could not be created or attached. Every variant names the
/// path and the problem; none of them is raised after writing to the file.
#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("region {path}: permission denied (the gateway needs read and write access)")]
    PermissionDenied { path: PathBuf },
    #[error("region {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("region {path} is truncated: {found} bytes, the format needs {needed}")]
    Truncated {
        path: PathBuf,
        found: u64,
        needed: u64,
    },
    #[error("region {path}: bad magic {found:#018x}, not a cxlkafka region")]
    BadMagic { path: PathBuf, found: u64 },
    #[error("region {path} was never formatted (no magic after waiting {waited_ms} ms)")]
    NotFormatted { path: PathBuf, waited_ms: u64 },
    #[error("region {path} has format version {found}; this build reads version {supported} only. {advice}")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
        /// What the operator can do, which depends on which build is older.
        advice: &'static str,
    },
    #[error("region {path}: superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadChecksum {
        path: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("region {path} was formatted with {field} = {region}, but {requested} was requested")]
    GeometryMismatch {
        path: PathBuf,
        field: &'static str,
        region: u64,
        requested: u64,
    },
    #[error(
        "region {path} belongs to cluster {region:?}, but this gateway serves cluster \
         {requested:?}: pass --cluster {region} to join it, or point --region-path at \
         {requested:?}'s region (by default /dev/shm/cxlkafka-{requested})"
    )]
    ClusterMismatch {
        path: PathBuf,
        /// The cluster name the region was formatted for.
        region: String,
        /// The cluster name this gateway was started with.
        requested: String,
    },
    #[error("region {path} is too small: {size} bytes, the geometry needs {needed}")]
    TooSmall {
        path: PathBuf,
        size: u64,
        needed: u64,
    },
    #[error("invalid region geometry: {0}")]
    InvalidGeometry(String),
    #[error("device-DAX {path}: cannot read its size from {sysfs}: {reason}")]
    DaxSize {
        path: PathBuf,
        sysfs: PathBuf,
        reason: String,
    },
}
