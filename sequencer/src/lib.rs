//! cxlkafka-sequencer: one total order over every gateway's batches.
//!
//! - [`sequencer`]: the scan-and-order loop ([`Sequencer::pass`]) and its
//!   recovery from the region ([`Sequencer::recover`]);
//! - [`idempotence`]: Kafka's idempotent-producer rules;
//! - [`membership`]: gateway slots, heartbeats, who is live;
//! - [`lease`]: which gateway runs the sequencer;
//! - [`control`]: control records (topic changes, producer ids);
//! - [`catalog`]: the topic catalog gateways read;
//! - [`status`]: the answers carried in completions;
//! - [`wait`]: adaptive polling without fixed sleeps.
//!
//! Nothing here knows about sockets or the Kafka wire format; the only thing
//! shared with gateways is the region.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod control;
pub mod idempotence;
pub mod lease;
pub mod membership;
pub mod sequencer;
pub mod status;
pub mod wait;

pub use sequencer::{PassReport, Sequencer};
