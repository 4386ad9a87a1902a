//! Creating and attaching region files: every refusal is a clear error that
//! names the problem and leaves the file exactly as it was.

use std::path::Path;
use std::time::Duration;

use cxlkafka_log::layout::{Geometry, FORMAT_VERSION, MAGIC};
use cxlkafka_log::memory::Coherent;
use cxlkafka_log::open::{attach_file, cluster_id, open_or_create, Opened, RegionOptions};
use cxlkafka_log::RegionError;

fn small_geometry() -> Geometry {
    Geometry {
        max_gateways: 2,
        ring_slots: 64,
        arena_bytes: 1 << 20,
        order_log_entries: 1024,
        sequencer_state_bytes: 4096,
    }
}

fn options(path: &Path) -> RegionOptions {
    let geometry = small_geometry();
    RegionOptions {
        path: path.to_path_buf(),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("test").unwrap(),
        format_wait: Duration::from_millis(50),
    }
}

fn create(path: &Path) {
    let (_, opened) = open_or_create::<Coherent>(&options(path)).unwrap();
    assert_eq!(opened, Opened::Created);
}

fn attach_error(path: &Path, options: &RegionOptions) -> RegionError {
    let before = std::fs::read(path).unwrap();
    let error = match open_or_create::<Coherent>(options) {
        Ok(_) => panic!("attach to {} should have failed", path.display()),
        Err(error) => error,
    };
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "a refused attach must not touch the file"
    );
    error
}

fn patch(path: &Path, offset: usize, bytes: &[u8]) {
    let mut contents = std::fs::read(path).unwrap();
    contents[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, contents).unwrap();
}

#[test]
fn a_second_gateway_attaches_to_the_region_the_first_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    let (region, opened) = open_or_create::<Coherent>(&options(&path)).unwrap();
    assert_eq!(opened, Opened::Attached);
    assert_eq!(region.layout().geometry, small_geometry());
    assert_eq!(region.cluster_id(), cluster_id("test").unwrap());
}

#[test]
fn attaching_with_another_geometry_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    let mut other = options(&path);
    other.geometry.ring_slots = 128;
    let error = attach_error(&path, &other);
    assert!(
        matches!(
            error,
            RegionError::GeometryMismatch {
                field: "ring_slots",
                region: 64,
                requested: 128,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("ring_slots"));
}

#[test]
fn attaching_to_another_cluster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    let mut other = options(&path);
    other.cluster_id = cluster_id("other").unwrap();
    let error = attach_error(&path, &other);
    match &error {
        RegionError::ClusterMismatch {
            region, requested, ..
        } => assert_eq!((region.as_str(), requested.as_str()), ("test", "other")),
        other => panic!("expected a cluster mismatch, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("\"test\"") && message.contains("\"other\""),
        "the message names both clusters: {message}"
    );
}

#[test]
fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    patch(&path, 8, &(FORMAT_VERSION + 1).to_le_bytes());
    let error = attach_error(&path, &options(&path));
    assert!(
        matches!(error, RegionError::UnsupportedVersion { found, supported, .. } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION),
        "{error}"
    );
}

#[test]
fn a_truncated_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(1 << 20).unwrap();
    let error = attach_error(&path, &options(&path));
    assert!(
        matches!(error, RegionError::Truncated { found, .. } if found == 1 << 20),
        "{error}"
    );

    file.set_len(100).unwrap();
    let error = attach_error(&path, &options(&path));
    assert!(
        matches!(
            error,
            RegionError::Truncated {
                found: 100,
                needed: 4096,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_bad_magic_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    patch(&path, 0, b"NOTKAFKA");
    let error = attach_error(&path, &options(&path));
    assert!(matches!(error, RegionError::BadMagic { .. }), "{error}");
    assert_ne!(MAGIC, u64::from_le_bytes(*b"NOTKAFKA"));
}

#[test]
fn a_corrupted_superblock_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    // Flip a byte of the creation time: still a plausible superblock.
    let mut contents = std::fs::read(&path).unwrap();
    contents[32] ^= 0x40;
    std::fs::write(&path, contents).unwrap();
    let error = attach_error(&path, &options(&path));
    assert!(matches!(error, RegionError::BadChecksum { .. }), "{error}");
}

#[test]
fn an_unformatted_file_is_refused_after_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    std::fs::write(&path, vec![0u8; 1 << 16]).unwrap();
    let error = attach_error(&path, &options(&path));
    assert!(
        matches!(error, RegionError::NotFormatted { waited_ms: 50, .. }),
        "{error}"
    );
}

#[test]
fn a_region_too_small_for_its_geometry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let mut small = options(&path);
    small.region_bytes = 1 << 16;
    let error = match open_or_create::<Coherent>(&small) {
        Ok(_) => panic!("a 64 KiB region cannot hold the geometry"),
        Err(error) => error,
    };
    assert!(
        matches!(error, RegionError::TooSmall { size: 65536, .. }),
        "{error}"
    );
    assert!(
        !path.exists(),
        "nothing is created for a geometry that cannot fit"
    );

    // A superblock that claims a geometry larger than its own region.
    create(&path);
    let mut contents = std::fs::read(&path).unwrap();
    let huge_arena: u64 = 1 << 40;
    contents[56..64].copy_from_slice(&huge_arena.to_le_bytes());
    std::fs::write(&path, &contents).unwrap();
    let error = match attach_file::<Coherent>(&path, None, None, Duration::ZERO) {
        Ok(_) => panic!("corrupted geometry must be refused"),
        Err(error) => error,
    };
    // The checksum catches the edit before the geometry is trusted.
    assert!(matches!(error, RegionError::BadChecksum { .. }), "{error}");
}

#[test]
fn a_path_without_permission_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    create(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let options = options(&path);
    // Root bypasses file modes; drop this thread's filesystem identity to an
    // unprivileged user so the check is the one an operator would hit.
    let error = std::thread::spawn(move || {
        if nix::unistd::geteuid().is_root() {
            nix::unistd::setfsuid(nix::unistd::Uid::from_raw(65534));
            nix::unistd::setfsgid(nix::unistd::Gid::from_raw(65534));
        }
        match open_or_create::<Coherent>(&options) {
            Ok(_) => panic!("a file with mode 000 must be refused"),
            Err(error) => error,
        }
    })
    .join()
    .unwrap();
    assert!(
        matches!(error, RegionError::PermissionDenied { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("permission denied"));
}

#[test]
fn a_missing_directory_is_an_io_error_naming_the_path() {
    let options = options(Path::new("/nonexistent-cxlkafka-dir/region"));
    let error = match open_or_create::<Coherent>(&options) {
        Ok(_) => panic!("cannot create a region in a missing directory"),
        Err(error) => error,
    };
    assert!(
        error
            .to_string()
            .contains("/nonexistent-cxlkafka-dir/region"),
        "{error}"
    );
}

/// Found by `fuzz/` (region_attach): a superblock whose checksum is right
/// but whose sizes overflow the layout arithmetic (arena_bytes 7e16,
/// sequencer_state_bytes 4.7e18 with 512 gateways) panicked in
/// `Geometry::layout` instead of being refused.
const FUZZ_OVERFLOWING_GEOMETRY: &[u8] = &[
    0x43, 0x58, 0x4c, 0x4b, 0x41, 0x46, 0x4b, 0x41, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x32,
    0x73, 0x65, 0x65, 0x64, 0x00, 0xcc, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x3a, 0x92, 0x46, 0x3a, 0xbe, 0x3e, 0xec, 0x18, 0x37, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x10, 0x22, 0x00, 0x00, 0xf9, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x43, 0x58, 0x4c, 0x51, 0x41,
    0x46, 0x4b, 0x41, 0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x5d, 0x5d,
    0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x5d, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x51, 0x41, 0x46, 0x4b, 0x41, 0x02, 0x00, 0x00, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn a_superblock_whose_sizes_overflow_the_layout_is_refused() {
    use cxlkafka_log::layout::Superblock;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let mut image = FUZZ_OVERFLOWING_GEOMETRY.to_vec();
    // The fuzz input had its checksum repaired, as an attacker would, and
    // its version set to this build's (it was found at version 2).
    let size = std::mem::size_of::<Superblock>();
    let mut superblock: Superblock = bytemuck::pod_read_unaligned(&image[..size]);
    superblock.format_version = FORMAT_VERSION;
    superblock.crc = superblock.compute_crc();
    image[..size].copy_from_slice(bytemuck::bytes_of(&superblock));
    image.resize(image.len() + 0xb000, 0);
    std::fs::write(&path, &image).unwrap();
    let error = attach_file::<Coherent>(&path, None, None, Duration::ZERO)
        .err()
        .expect("an overflowing geometry is refused");
    assert!(matches!(error, RegionError::InvalidGeometry(_)), "{error}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        image,
        "the file is untouched"
    );
}
