//! Empty: this crate exists only so that `cargo fetch` downloads rdkafka-sys.
