//! cxlkafka-log: the shared CXL region.
//!
//! - [`layout`]: every on-region structure and where it lives;
//! - [`memory`]: the coherent, non-coherent and simulated memory backends;
//! - [`accessor`]: [`Region`], the one typed accessor that applies the
//!   publish and read rules;
//! - [`open`]: creating and attaching region files and device-DAX nodes;
//! - [`generation`]: which formatting of a region a handle mapped, and
//!   whether the file at the region's path is still that one;
//! - [`ring`] and [`arena`]: a gateway's batch ring and payload arena;
//! - [`segment`]: the disk tier, segment files of ordered entries;
//! - [`crc`]: CRC32C of a concatenation from the parts' CRCs.
//!
//! This crate knows nothing about Kafka: it moves batches of bytes for
//! numbered streams.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod accessor;
pub mod arena;
pub mod crc;
pub mod error;
pub mod generation;
pub mod layout;
pub mod memory;
pub mod open;
pub mod ring;
pub mod segment;

pub use accessor::Region;
pub use error::RegionError;
pub use generation::{RegionChange, RegionGeneration, RegionWatch};
