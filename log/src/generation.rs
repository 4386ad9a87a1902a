//! Which formatting of a region a handle mapped, and whether the region at
//! its path is still that one.
//!
//! Every format draws a new [`RegionGeneration`] (128 random bits, kept in
//! the superblock). A gateway that keeps serving a mapping after its file was
//! unlinked, or after another file took its path, or after its memory was
//! formatted again, serves a region no other gateway sees: two clusters under
//! one name, both acknowledging writes. [`RegionWatch::check`] tells it so:
//! the path must still exist, name the same file (device and inode) it
//! mapped, and that memory must still hold the generation it mapped.

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::accessor::Region;
use crate::error::RegionError;
use crate::layout::{Superblock, FORMAT_VERSION, MAGIC};
use crate::memory::MemoryBackend;

/// One formatting of a region: drawn at random by the formatter, never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RegionGeneration(u128);

impl RegionGeneration {
    /// A fresh generation from the kernel's random source. Should that be
    /// unreadable, the time in nanoseconds mixed with the process id still
    /// tells two formats apart (they cannot share both).
    pub fn mint() -> Self {
        let mut bytes = [0u8; 16];
        let random = File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
        let mut value = u128::from_le_bytes(bytes);
        if random.is_err() {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos());
            value = nanos ^ (u128::from(std::process::id()) << 96);
        }
        Self(value.max(1))
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(u128::from_le_bytes(bytes))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// Zero: no generation (a region formatted before version 3, or none).
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for RegionGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for RegionGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionGeneration({self})")
    }
}

impl FromStr for RegionGeneration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        u128::from_str_radix(text.trim(), 16)
            .map(Self)
            .map_err(|error| format!("{text:?} is not a region generation: {error}"))
    }
}

/// How the region a handle mapped stopped being the region at its path, or
/// one this gateway can go on serving.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegionChange {
    /// No file at the path any more: the mapping is the only thing left of
    /// the region, and whoever starts next formats a new one.
    #[error("region file {path} was unlinked")]
    Unlinked { path: PathBuf },
    /// Another file sits at the path (its generation, when readable).
    #[error("region file {path} was replaced by another file (generation {})",
        found.map_or_else(|| "unreadable".to_string(), |found| found.to_string()))]
    Replaced {
        path: PathBuf,
        found: Option<RegionGeneration>,
    },
    /// The same memory holds another superblock: it was formatted again.
    #[error("region {name} was formatted again (generation {found})")]
    Reformatted {
        name: String,
        found: RegionGeneration,
    },
    /// The region is the same, but the sequencer wrote a whole order log
    /// past what this gateway applied while it counted it dead (it was
    /// paused): the entries it lacks are no longer in the region.
    #[error("the order log was overwritten past sequence {next} (by {found}) while this gateway was counted dead")]
    Overtaken { next: u64, found: u64 },
}

impl RegionChange {
    /// A short label for metrics and logs: `unlinked`, `replaced`,
    /// `reformatted`, `overtaken`.
    pub fn kind(&self) -> &'static str {
        match self {
            RegionChange::Unlinked { .. } => "unlinked",
            RegionChange::Replaced { .. } => "replaced",
            RegionChange::Reformatted { .. } => "reformatted",
            RegionChange::Overtaken { .. } => "overtaken",
        }
    }
}

/// Device and inode of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

/// What a handle mapped: its generation and, for a file or device node,
/// the path and the file it named then.
#[derive(Clone, Debug)]
pub struct RegionWatch {
    generation: RegionGeneration,
    file: Option<WatchedPath>,
}

#[derive(Clone, Debug)]
struct WatchedPath {
    path: PathBuf,
    /// The file the path named when watching began; `None` when it already
    /// held another generation than the one mapped (replaced while the
    /// handle was being opened), which no later look can undo.
    mapped: Option<FileId>,
}

impl RegionWatch {
    /// Watches `region`, mapped from `path` a moment ago.
    pub fn of_file<B: MemoryBackend>(path: &Path, region: &Region<B>) -> Result<Self, RegionError> {
        let metadata = std::fs::metadata(path).map_err(|source| RegionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let replaced_meanwhile =
            generation_at(path).is_some_and(|found| found != region.generation());
        let mapped = (!replaced_meanwhile).then(|| FileId {
            device: metadata.dev(),
            inode: metadata.ino(),
        });
        Ok(Self {
            generation: region.generation(),
            file: Some(WatchedPath {
                path: path.to_path_buf(),
                mapped,
            }),
        })
    }

    /// Watches only the memory (a region without a path, such as the
    /// simulated backend's): a new format of it is still noticed.
    pub fn of_memory<B: MemoryBackend>(region: &Region<B>) -> Self {
        Self {
            generation: region.generation(),
            file: None,
        }
    }

    /// The generation this handle mapped.
    pub fn generation(&self) -> RegionGeneration {
        self.generation
    }

    /// `Ok` while the path names the file `region` mapped and that memory
    /// holds the generation it mapped. An error other than "not found"
    /// from looking at the path (a transient permission change, say) says
    /// nothing about the region and is not a change.
    pub fn check<B: MemoryBackend>(&self, region: &Region<B>) -> Result<(), RegionChange> {
        if let Some(WatchedPath { path, mapped }) = &self.file {
            match std::fs::metadata(path) {
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    return Err(RegionChange::Unlinked { path: path.clone() });
                }
                Err(_) => {}
                Ok(metadata) => {
                    let now = FileId {
                        device: metadata.dev(),
                        inode: metadata.ino(),
                    };
                    if *mapped != Some(now) {
                        return Err(RegionChange::Replaced {
                            path: path.clone(),
                            found: generation_at(path),
                        });
                    }
                }
            }
        }
        let found = region.generation_in_memory();
        if found != self.generation {
            return Err(RegionChange::Reformatted {
                name: self.file.as_ref().map_or_else(
                    || region.backend().name().to_string(),
                    |watched| watched.path.display().to_string(),
                ),
                found,
            });
        }
        Ok(())
    }
}

/// The generation of the region file at `path`, read with `read(2)` rather
/// than a mapping; `None` when it is not a formatted region of this version
/// (or a device node, which cannot be read that way).
pub fn generation_at(path: &Path) -> Option<RegionGeneration> {
    let mut superblock = <Superblock as bytemuck::Zeroable>::zeroed();
    File::open(path)
        .and_then(|mut file| file.read_exact(bytemuck::bytes_of_mut(&mut superblock)))
        .ok()?;
    let formatted = superblock.magic == MAGIC
        && superblock.format_version == FORMAT_VERSION
        && superblock.crc == superblock.compute_crc();
    formatted.then(|| RegionGeneration::from_bytes(superblock.generation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_generations_differ_and_are_never_zero() {
        let first = RegionGeneration::mint();
        let second = RegionGeneration::mint();
        assert_ne!(first, second);
        assert!(!first.is_none() && !second.is_none());
    }

    #[test]
    fn a_generation_reads_back_from_its_text() {
        let generation = RegionGeneration::mint();
        let text = generation.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<RegionGeneration>(), Ok(generation));
        assert!("not hex".parse::<RegionGeneration>().is_err());
    }
}
