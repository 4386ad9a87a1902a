//! Creating and attaching regions: files under `/dev/shm` or tmpfs, regular
//! files, and device-DAX nodes.
//!
//! The first gateway creates the file (exclusively, so two starting at once
//! cannot both format it), sizes it and formats the superblock; every other
//! gateway attaches and validates. Attach never writes: a region that fails a
//! check is left exactly as it was found.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::accessor::Region;
use crate::error::RegionError;
use crate::generation::RegionGeneration;
use crate::layout::{Geometry, Superblock, FORMAT_VERSION, MAGIC, SUPERBLOCK_BYTES};
use crate::memory::{Coherent, MappedMemory, MemoryBackend, NonCoherent};

/// First pause while another gateway formats a new region.
const FORMAT_POLL_FIRST: Duration = Duration::from_micros(50);
/// Longest pause between two looks at a region being formatted.
const FORMAT_POLL_MAX: Duration = Duration::from_millis(5);

/// The cluster name a superblock's `cluster_id` holds (the inverse of
/// [`cluster_id`]; bytes that are not UTF-8 are shown replaced).
pub fn cluster_name(cluster_id: &[u8; 16]) -> String {
    let end = cluster_id
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(cluster_id.len());
    String::from_utf8_lossy(&cluster_id[..end]).into_owned()
}

/// The default region of a cluster: emulated CXL on the host's shared memory.
pub fn default_region_path(cluster: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/cxlkafka-{cluster}"))
}

/// The 16-byte cluster id stored in the superblock: the cluster name, padded.
pub fn cluster_id(cluster: &str) -> Result<[u8; 16], RegionError> {
    let bytes = cluster.as_bytes();
    if bytes.is_empty() || bytes.len() > 16 {
        return Err(RegionError::InvalidGeometry(format!(
            "cluster name {cluster:?} must be 1 to 16 bytes"
        )));
    }
    let mut id = [0u8; 16];
    id[..bytes.len()].copy_from_slice(bytes);
    Ok(id)
}

/// A backend that can sit on a real mapping.
pub trait MappedBackend: MemoryBackend + Sized {
    fn from_mapped(memory: MappedMemory) -> Self;
}

impl MappedBackend for Coherent {
    fn from_mapped(memory: MappedMemory) -> Self {
        Coherent::new(memory)
    }
}

impl MappedBackend for NonCoherent {
    fn from_mapped(memory: MappedMemory) -> Self {
        NonCoherent::new(memory)
    }
}

/// What to create, or what to expect when attaching.
#[derive(Clone, Debug)]
pub struct RegionOptions {
    pub path: PathBuf,
    /// Bytes of a region this call creates (ignored for device-DAX).
    pub region_bytes: u64,
    pub geometry: Geometry,
    pub cluster_id: [u8; 16],
    /// How long to wait for another gateway that is formatting the region.
    pub format_wait: Duration,
}

/// Whether [`open_or_create`] made a new region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    Created,
    Attached,
}

/// Creates and formats the region at `options.path`, or attaches to the one
/// already there and checks that it matches `options`.
pub fn open_or_create<B: MappedBackend>(
    options: &RegionOptions,
) -> Result<(Region<B>, Opened), RegionError> {
    let path = &options.path;
    let layout = options
        .geometry
        .layout()
        .map_err(RegionError::InvalidGeometry)?;
    if is_device_dax(path)? {
        return open_dax(options);
    }
    if path.exists() {
        let region = attach_file(
            path,
            Some(&options.geometry),
            Some(options.cluster_id),
            options.format_wait,
        )?;
        return Ok((region, Opened::Attached));
    }
    if layout.total_bytes > options.region_bytes {
        return Err(RegionError::TooSmall {
            path: path.clone(),
            size: options.region_bytes,
            needed: layout.total_bytes,
        });
    }
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => {
            file.set_len(options.region_bytes)
                .map_err(|e| io_error(path, e))?;
            let memory = MappedMemory::map(&file, options.region_bytes as usize)
                .map_err(|e| io_error(path, e))?;
            let region = format(
                B::from_mapped(memory),
                options.geometry,
                options.region_bytes,
                options.cluster_id,
            )?;
            tracing::info!(path = %path.display(), bytes = options.region_bytes, "formatted a new region");
            Ok((region, Opened::Created))
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            // Another gateway created it between our check and our create.
            let region = attach_file(
                path,
                Some(&options.geometry),
                Some(options.cluster_id),
                options.format_wait,
            )?;
            Ok((region, Opened::Attached))
        }
        Err(error) => Err(io_error(path, error)),
    }
}

/// Attaches to an existing region file; `expected` geometry and cluster, when
/// given, must match what the region was formatted with.
pub fn attach_file<B: MappedBackend>(
    path: &Path,
    expected: Option<&Geometry>,
    expected_cluster: Option<[u8; 16]>,
    format_wait: Duration,
) -> Result<Region<B>, RegionError> {
    let file = open_existing(path)?;
    let size = file.metadata().map_err(|e| io_error(path, e))?.len();
    if size < SUPERBLOCK_BYTES {
        return Err(RegionError::Truncated {
            path: path.to_path_buf(),
            found: size,
            needed: SUPERBLOCK_BYTES,
        });
    }
    let memory = MappedMemory::map(&file, size as usize).map_err(|e| io_error(path, e))?;
    attach(
        B::from_mapped(memory),
        path,
        expected,
        expected_cluster,
        format_wait,
    )
}

fn open_existing(path: &Path) -> Result<File, RegionError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> RegionError {
    if source.kind() == ErrorKind::PermissionDenied {
        RegionError::PermissionDenied {
            path: path.to_path_buf(),
        }
    } else {
        RegionError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes a fresh superblock, magic last, onto `backend`, with a new
/// [`RegionGeneration`].
pub fn format<B: MemoryBackend>(
    backend: B,
    geometry: Geometry,
    region_bytes: u64,
    cluster_id: [u8; 16],
) -> Result<Region<B>, RegionError> {
    let layout = geometry.layout().map_err(RegionError::InvalidGeometry)?;
    if layout.total_bytes > region_bytes || region_bytes > backend.len() as u64 {
        return Err(RegionError::TooSmall {
            path: PathBuf::from(backend.name()),
            size: region_bytes.min(backend.len() as u64),
            needed: layout.total_bytes,
        });
    }
    let generation = RegionGeneration::mint();
    let created_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut superblock = Superblock {
        magic: MAGIC,
        format_version: FORMAT_VERSION,
        superblock_bytes: SUPERBLOCK_BYTES as u32,
        cluster_id,
        created_unix_ns,
        region_bytes,
        geometry,
        generation: generation.to_bytes(),
        crc: 0,
        _pad: [0; 28],
    };
    superblock.crc = superblock.compute_crc();
    let bytes = bytemuck::bytes_of(&superblock);
    // Body first, magic last: an attacher that sees the magic sees the rest.
    backend.write(8, &bytes[8..]);
    backend.flush(8, bytes.len() - 8);
    backend.store_fence();
    backend.store_u64(0, MAGIC);
    backend.flush(0, 8);
    backend.store_fence();
    Ok(Region::from_parts(backend, layout, cluster_id, generation))
}

/// Validates the superblock on `backend` and returns the region it describes.
pub fn attach<B: MemoryBackend>(
    backend: B,
    path: &Path,
    expected: Option<&Geometry>,
    expected_cluster: Option<[u8; 16]>,
    format_wait: Duration,
) -> Result<Region<B>, RegionError> {
    let path_buf = || path.to_path_buf();
    let size = backend.len() as u64;
    let started = Instant::now();
    // Formatting takes microseconds to milliseconds: look again soon, then
    // less often, never longer than FORMAT_POLL_MAX between looks.
    let mut pause = FORMAT_POLL_FIRST;
    let superblock = loop {
        let superblock = read_superblock(&backend);
        if superblock.magic != 0 {
            break superblock;
        }
        // A gateway that created the file may still be formatting it.
        if started.elapsed() >= format_wait {
            return Err(RegionError::NotFormatted {
                path: path_buf(),
                waited_ms: format_wait.as_millis() as u64,
            });
        }
        std::thread::sleep(pause.min(format_wait.saturating_sub(started.elapsed())));
        pause = (pause * 2).min(FORMAT_POLL_MAX);
    };
    if superblock.magic != MAGIC {
        return Err(RegionError::BadMagic {
            path: path_buf(),
            found: superblock.magic,
        });
    }
    if superblock.format_version != FORMAT_VERSION {
        return Err(RegionError::UnsupportedVersion {
            path: path_buf(),
            found: superblock.format_version,
            supported: FORMAT_VERSION,
            advice: if superblock.format_version < FORMAT_VERSION {
                "An older build formatted it: stop every gateway of the cluster, remove the \
                 region file and start them with this build; the first formats a new region and \
                 rebuilds it from its segments"
            } else {
                "A newer build formatted it: run that build (or stop every gateway and remove \
                 the region file to start over with this one)"
            },
        });
    }
    let computed = superblock.compute_crc();
    if computed != superblock.crc {
        return Err(RegionError::BadChecksum {
            path: path_buf(),
            stored: superblock.crc,
            computed,
        });
    }
    if superblock.region_bytes > size {
        return Err(RegionError::Truncated {
            path: path_buf(),
            found: size,
            needed: superblock.region_bytes,
        });
    }
    let geometry = superblock.geometry;
    let layout = geometry.layout().map_err(RegionError::InvalidGeometry)?;
    if layout.total_bytes > superblock.region_bytes {
        return Err(RegionError::TooSmall {
            path: path_buf(),
            size: superblock.region_bytes,
            needed: layout.total_bytes,
        });
    }
    if let Some(expected) = expected {
        check_geometry(path, &geometry, expected)?;
    }
    if let Some(cluster) = expected_cluster {
        if cluster != superblock.cluster_id {
            return Err(RegionError::ClusterMismatch {
                path: path_buf(),
                region: cluster_name(&superblock.cluster_id),
                requested: cluster_name(&cluster),
            });
        }
    }
    Ok(Region::from_parts(
        backend,
        layout,
        superblock.cluster_id,
        RegionGeneration::from_bytes(superblock.generation),
    ))
}

fn read_superblock<B: MemoryBackend>(backend: &B) -> Superblock {
    let mut superblock = <Superblock as bytemuck::Zeroable>::zeroed();
    let bytes = bytemuck::bytes_of_mut(&mut superblock);
    backend.invalidate(0, bytes.len());
    backend.full_fence();
    backend.read(0, bytes);
    superblock
}

fn check_geometry(path: &Path, region: &Geometry, requested: &Geometry) -> Result<(), RegionError> {
    let fields: [(&'static str, u64, u64); 5] = [
        (
            "max_gateways",
            region.max_gateways.into(),
            requested.max_gateways.into(),
        ),
        (
            "ring_slots",
            region.ring_slots.into(),
            requested.ring_slots.into(),
        ),
        ("arena_bytes", region.arena_bytes, requested.arena_bytes),
        (
            "order_log_entries",
            region.order_log_entries,
            requested.order_log_entries,
        ),
        (
            "sequencer_state_bytes",
            region.sequencer_state_bytes,
            requested.sequencer_state_bytes,
        ),
    ];
    match fields.iter().find(|(_, found, wanted)| found != wanted) {
        Some(&(field, region, requested)) => Err(RegionError::GeometryMismatch {
            path: path.to_path_buf(),
            field,
            region,
            requested,
        }),
        None => Ok(()),
    }
}

fn is_device_dax(path: &Path) -> Result<bool, RegionError> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(metadata.file_type().is_char_device()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io_error(path, error)),
    }
}

/// Device-DAX nodes cannot be created or truncated: their size comes from
/// sysfs, and a blank (all-zero) device is formatted in place.
fn open_dax<B: MappedBackend>(options: &RegionOptions) -> Result<(Region<B>, Opened), RegionError> {
    let path = &options.path;
    let file = open_existing(path)?;
    let rdev = file.metadata().map_err(|e| io_error(path, e))?.rdev();
    let sysfs = dax_sysfs_size_path(rdev);
    let size = read_sysfs_size(&sysfs).map_err(|reason| RegionError::DaxSize {
        path: path.clone(),
        sysfs: sysfs.clone(),
        reason,
    })?;
    let memory = MappedMemory::map(&file, size as usize).map_err(|e| io_error(path, e))?;
    let backend = B::from_mapped(memory);
    if read_superblock(&backend).magic == 0 {
        let layout = options
            .geometry
            .layout()
            .map_err(RegionError::InvalidGeometry)?;
        if layout.total_bytes > size {
            return Err(RegionError::TooSmall {
                path: path.clone(),
                size,
                needed: layout.total_bytes,
            });
        }
        let region = format(backend, options.geometry, size, options.cluster_id)?;
        return Ok((region, Opened::Created));
    }
    let region = attach(
        backend,
        path,
        Some(&options.geometry),
        Some(options.cluster_id),
        options.format_wait,
    )?;
    Ok((region, Opened::Attached))
}

/// `/sys/dev/char/MAJOR:MINOR/size` for a device number (glibc's encoding).
pub fn dax_sysfs_size_path(rdev: u64) -> PathBuf {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    PathBuf::from(format!("/sys/dev/char/{major}:{minor}/size"))
}

/// Parses a sysfs size file: one decimal byte count.
pub fn read_sysfs_size(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.trim()
        .parse::<u64>()
        .map_err(|e| format!("{:?} is not a byte count: {e}", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_map_to_their_sysfs_size_file() {
        // major 252, minor 3 as glibc encodes it.
        let rdev = (252u64 << 8) | 3;
        assert_eq!(
            dax_sysfs_size_path(rdev),
            PathBuf::from("/sys/dev/char/252:3/size")
        );
        let large =
            (0x1234u64 << 32 & !0xfff) | (0x234 << 8) | (0x5678u64 << 12 & !0xff_u64 << 12) | 0x78;
        let path = dax_sysfs_size_path(large);
        assert!(path.to_string_lossy().starts_with("/sys/dev/char/"));
    }

    #[test]
    fn sysfs_size_is_a_decimal_byte_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("size");
        std::fs::write(&file, "34359738368\n").unwrap();
        assert_eq!(read_sysfs_size(&file), Ok(34_359_738_368));
        std::fs::write(&file, "lots\n").unwrap();
        assert!(read_sysfs_size(&file)
            .unwrap_err()
            .contains("not a byte count"));
    }

    #[test]
    fn a_cluster_id_gives_back_its_name() {
        for name in ["prod", "a", "sixteen-bytes-xy"] {
            assert_eq!(cluster_name(&cluster_id(name).unwrap()), name);
        }
    }

    #[test]
    fn cluster_names_longer_than_sixteen_bytes_are_refused() {
        assert!(cluster_id("prod").is_ok());
        assert!(cluster_id("a-very-long-cluster-name").is_err());
        assert!(cluster_id("").is_err());
    }
}
