//! The layering rules of ARCHITECTURE.md that a reading of the source can
//! check: the gateway never computes a region address, handlers never
//! import each other, the dispatch machinery names no handler, and
//! `unsafe` lives only in log/'s memory accessor.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root (this crate is `gateway/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway/ has a parent")
        .to_path_buf()
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in fs::read_dir(&dir).expect("source folder is readable") {
            let path = item.expect("folder entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Lines of the file outside `//` comments, with their numbers.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    fs::read_to_string(path)
        .expect("source file is readable")
        .lines()
        .enumerate()
        .map(|(number, line)| (number + 1, line.trim().to_string()))
        .filter(|(_, line)| !line.starts_with("//"))
        .collect()
}

fn report(path: &Path, number: usize, line: &str) -> String {
    format!(
        "{}:{number}: {line}",
        path.strip_prefix(workspace()).unwrap_or(path).display()
    )
}

#[test]
fn the_gateway_never_computes_a_region_offset() {
    let found: Vec<String> = rust_files(&workspace().join("gateway/src"))
        .iter()
        .flat_map(|path| {
            code_lines(path)
                .into_iter()
                .filter(|(_, line)| line.contains("offset_of!") || line.contains("sequencer_lines"))
                .map(move |(number, line)| report(path, number, &line))
        })
        .collect();
    assert!(
        found.is_empty(),
        "region addresses belong to log/'s accessors (Region::frontier, Layout::lease, ...):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_handler_imports_another_handler() {
    let api = workspace().join("gateway/src/api");
    let found: Vec<String> = rust_files(&api)
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name != "mod.rs"))
        .flat_map(|path| {
            code_lines(path)
                .into_iter()
                .filter(|(_, line)| {
                    let from_parent = line.starts_with("use super::") && line != "use super::*;";
                    from_parent || line.contains("crate::api::")
                })
                .map(move |(number, line)| report(path, number, &line))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a handler imports the support modules, never another handler:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_dispatch_machinery_names_no_handler() {
    // The one list of handlers is the table in api/mod.rs; dispatch.rs is
    // what every handler imports, so it importing a handler is a loop.
    let path = workspace().join("gateway/src/dispatch.rs");
    let found: Vec<String> = code_lines(&path)
        .into_iter()
        .filter(|(_, line)| line.contains("api::") && !line.contains("api_support::"))
        .map(|(number, line)| report(&path, number, &line))
        .collect();
    assert!(
        found.is_empty(),
        "dispatch.rs must not name handlers:\n{}",
        found.join("\n")
    );
}

#[test]
fn unsafe_code_lives_only_in_the_memory_accessor() {
    let allowed = workspace().join("log/src/memory/mapped.rs");
    let found: Vec<String> = ["log/src", "sequencer/src", "gateway/src"]
        .iter()
        .flat_map(|dir| rust_files(&workspace().join(dir)))
        .filter(|path| *path != allowed)
        .flat_map(|path| {
            code_lines(&path)
                .into_iter()
                .filter(|(_, line)| {
                    line.contains("unsafe {")
                        || line.contains("unsafe fn")
                        || line.contains("unsafe impl")
                })
                .map(|(number, line)| report(&path, number, &line))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        found.is_empty(),
        "unsafe belongs in log/src/memory/mapped.rs only:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_crate_but_log_forbids_unsafe_code() {
    for root in [
        "sequencer/src/lib.rs",
        "gateway/src/lib.rs",
        "gateway/src/main.rs",
    ] {
        let text = fs::read_to_string(workspace().join(root)).expect("crate root is readable");
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{root} must forbid unsafe code"
        );
    }
    let log = fs::read_to_string(workspace().join("log/src/lib.rs")).expect("log's root");
    assert!(
        log.contains("clippy::undocumented_unsafe_blocks"),
        "log/ must deny unsafe blocks without a SAFETY comment"
    );
}
