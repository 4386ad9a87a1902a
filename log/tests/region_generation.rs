//! The region generation: every format draws a new one, an attach reads the
//! one it found, and a [`RegionWatch`] notices when the region at a path is
//! no longer the one a handle mapped (unlinked, replaced by another file,
//! formatted again in place), on a real file and on the simulated
//! non-coherent backend.

use std::path::Path;
use std::time::Duration;

use cxlkafka_log::layout::{Geometry, FORMAT_VERSION};
use cxlkafka_log::memory::{Coherent, NonCoherent, SimFaults, SimulatedMemory};
use cxlkafka_log::open::{attach, attach_file, cluster_id, format, open_or_create, RegionOptions};
use cxlkafka_log::{RegionChange, RegionError, RegionWatch};

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

#[test]
fn every_format_draws_a_new_generation_that_attaching_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let (first, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    let attached = attach_file::<NonCoherent>(&path, None, None, Duration::ZERO).unwrap();
    let first_generation = first.generation();
    assert!(!first_generation.is_none());
    assert_eq!(attached.generation(), first_generation);

    drop((first, attached));
    std::fs::remove_file(&path).unwrap();
    let (second, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    let attached = attach_file::<Coherent>(&path, None, None, Duration::ZERO).unwrap();
    assert_eq!(attached.generation(), second.generation());
    assert_ne!(second.generation(), first_generation);
    // Its text (as a data dir keeps it) reads back as the same generation.
    let text = second.generation().to_string();
    assert_eq!(text.parse().ok(), Some(second.generation()));
}

#[test]
fn a_region_of_the_previous_format_version_is_refused_with_how_to_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    drop(open_or_create::<Coherent>(&options(&path)).unwrap());
    let mut contents = std::fs::read(&path).unwrap();
    contents[8..12].copy_from_slice(&(FORMAT_VERSION - 1).to_le_bytes());
    std::fs::write(&path, &contents).unwrap();

    let error = match open_or_create::<Coherent>(&options(&path)) {
        Ok(_) => panic!("a version {} region must be refused", FORMAT_VERSION - 1),
        Err(error) => error,
    };
    assert!(
        matches!(error, RegionError::UnsupportedVersion { found, .. } if found == FORMAT_VERSION - 1),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("remove the region file"), "{message}");
    assert!(
        message.contains("rebuilds it from its segments"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        contents,
        "refused, not touched"
    );
}

#[test]
fn a_watch_is_quiet_while_the_path_names_the_mapped_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let (region, _) = open_or_create::<NonCoherent>(&options(&path)).unwrap();
    let watch = RegionWatch::of_file(&path, &region).unwrap();
    assert_eq!(watch.generation(), region.generation());
    assert_eq!(watch.check(&region), Ok(()));
    // Another gateway attaching changes nothing.
    drop(attach_file::<Coherent>(&path, None, None, Duration::ZERO).unwrap());
    assert_eq!(watch.check(&region), Ok(()));
}

#[test]
fn a_watch_reports_an_unlinked_region_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let (region, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    let watch = RegionWatch::of_file(&path, &region).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        watch.check(&region),
        Err(RegionChange::Unlinked { path: path.clone() })
    );
}

#[test]
fn a_watch_reports_a_region_file_replaced_by_a_new_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let (region, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    let watch = RegionWatch::of_file(&path, &region).unwrap();
    std::fs::remove_file(&path).unwrap();
    // What a restarted gateway does on finding no region: format a new one.
    let (replacement, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    let change = watch.check(&region).unwrap_err();
    assert_eq!(
        change,
        RegionChange::Replaced {
            path: path.clone(),
            found: Some(replacement.generation()),
        }
    );
    assert_eq!(change.kind(), "replaced");
    assert!(
        change
            .to_string()
            .contains(&replacement.generation().to_string()),
        "{change}"
    );
    // The replacement's own watch is quiet.
    let current = RegionWatch::of_file(&path, &replacement).unwrap();
    assert_eq!(current.check(&replacement), Ok(()));
}

#[test]
fn a_watch_begun_after_the_path_was_replaced_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("region");
    let (region, _) = open_or_create::<Coherent>(&options(&path)).unwrap();
    std::fs::remove_file(&path).unwrap();
    drop(open_or_create::<Coherent>(&options(&path)).unwrap());
    let watch = RegionWatch::of_file(&path, &region).unwrap();
    assert!(
        matches!(watch.check(&region), Err(RegionChange::Replaced { .. })),
        "the path held another generation when watching began"
    );
}

#[test]
fn a_watch_on_the_simulated_non_coherent_backend_reports_a_format_in_place() {
    for seed in 0..4u64 {
        let geometry = small_geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let memory = SimulatedMemory::new(bytes as usize);
        let id = cluster_id("test").unwrap();
        let formatted = format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            id,
        )
        .expect("formatted");
        let region = attach(
            memory.participant(SimFaults::hostile(seed)),
            Path::new("sim"),
            Some(&geometry),
            Some(id),
            Duration::ZERO,
        )
        .expect("attached");
        assert_eq!(region.generation(), formatted.generation());
        let watch = RegionWatch::of_memory(&region);
        assert_eq!(watch.check(&region), Ok(()));

        let again = format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            id,
        )
        .expect("formatted again");
        let change = watch.check(&region).unwrap_err();
        assert_eq!(change.kind(), "reformatted");
        assert!(
            matches!(change, RegionChange::Reformatted { found, .. } if found == again.generation()),
            "seed {seed}: {change}"
        );
    }
}
