//! `cxlkafka bench`: load generators that print what Kafka's perf-test
//! tools print, so figures compare with the Kafka world's, and a sink that
//! serves fetches as a consumer's baseline.
//!
//! | file | job |
//! |---|---|
//! | [`mod@produce`] | `bench produce`: pipelined Produce requests of a prebuilt batch |
//! | [`mod@consume`] | `bench consume`: pipelined Fetch requests over offset lanes |
//! | [`sink`] | `bench sink`: `serve --sink` whose fetches return copies of a batch |
//! | `report` | latency percentiles, progress and final lines |
//! | `wire` | the client side: framing, Metadata, ListOffsets |
//!
//! Every figure is meant to be read next to the same tool against a sink
//! in the same run (see `bench/ladder` at the repository root).

pub mod consume;
pub mod produce;
mod report;
pub mod sink;
pub(crate) mod wire;

pub use consume::{consume, ConsumeBenchArgs};
pub use produce::{produce, CompressionArg, ProduceBenchArgs};
pub use report::{LatencySummary, Summary};
pub use sink::SinkBenchArgs;
