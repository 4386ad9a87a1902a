//! Two OS processes share one region file: this process publishes 1,000,000
//! batches of 1 B to 1 MiB through wrap-around, a child process (this same
//! binary, re-executed) reads and checks every one. Zero lost, zero
//! corrupted, zero duplicated, or the test fails.
//!
//! A `harness = false` test: `main` is the parent unless called as the child.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cxlkafka_log::memory::Coherent;
use cxlkafka_log::open::{attach_file, cluster_id, open_or_create, RegionOptions};
use support::{geometry, publish_all, read_all};

const BATCHES: u64 = 1_000_000;
const MAX_LEN: usize = 1 << 20;
const SEED: u64 = 0xC71_CAFE;
const CHILD_FLAG: &str = "--ring-reader-child";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == CHILD_FLAG) {
        child(&args[position + 1]);
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        // cargo test --list asks every test binary for its tests.
        println!("two_process_ring: test");
        return;
    }
    parent();
}

fn parent() {
    let dir = tempfile::Builder::new()
        .prefix("cxlkafka-two-process")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory");
    let path = dir.path().join("region");
    let geometry = geometry(1024, 64 << 20);
    let options = RegionOptions {
        path: path.clone(),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("two-process").unwrap(),
        format_wait: Duration::from_secs(1),
    };
    let (region, _) = open_or_create::<Coherent>(&options).expect("create the region");

    let reader = Command::new(std::env::current_exe().unwrap())
        .arg(CHILD_FLAG)
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the reader process");
    let started = Instant::now();
    let published = publish_all(
        &region,
        SEED,
        MAX_LEN,
        BATCHES,
        Duration::from_secs(900),
        || false,
    );
    let output = reader.wait_with_output().expect("reader process");
    let report = String::from_utf8_lossy(&output.stdout);
    println!(
        "two_process_ring: published {published} in {:.1?}; reader: {}",
        started.elapsed(),
        report.trim()
    );
    assert!(output.status.success(), "reader process failed: {report}");
    assert_eq!(published, BATCHES);
    assert_eq!(
        report.trim(),
        format!("received {BATCHES} corrupted 0 recycled 0")
    );
    println!("test two_process_ring ... ok");
}

fn child(path: &str) {
    let region = attach_file::<Coherent>(
        path.as_ref(),
        None,
        Some(cluster_id("two-process").unwrap()),
        Duration::from_secs(5),
    )
    .expect("attach the region");
    let summary = read_all(&region, SEED, MAX_LEN, BATCHES, Duration::from_secs(60));
    println!(
        "received {} corrupted {} recycled {}",
        summary.received, summary.corrupted, summary.recycled
    );
    let clean = summary.received == BATCHES && summary.corrupted == 0 && summary.recycled == 0;
    std::process::exit(if clean { 0 } else { 1 });
}
