//! Keeps counter series in the scrape while what they count exists, and
//! lets the per-topic ones of a deleted topic go.
//!
//! The `metrics` facade cannot unregister a series; the Prometheus exporter
//! drops a series that was not touched for its idle timeout. For gauges,
//! each owner sets them again (see `telemetry::install_prometheus`); a
//! counter, though, may rightly stay unchanged for hours. So the global
//! recorder is wrapped in a [`KeptRecorder`] that remembers every counter
//! key registered, and [`keep_counters`] touches each one (an increment of
//! 0) well within the idle timeout, except those whose `topic` label names a
//! topic that is gone: those are forgotten and leave the scrape.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::cluster::{ClusterLog, ORDER_TOPIC};

/// How often the counters are touched: well within the idle timeout (at
/// least 15 s, `--metrics-idle-timeout-ms`).
pub const KEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Touches the counters every [`KEEP_INTERVAL`], keeping those of `log`'s
/// live topics, until `log` is dropped.
pub fn spawn(log: &Arc<dyn ClusterLog>) {
    let log = Arc::downgrade(log);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(KEEP_INTERVAL);
        loop {
            interval.tick().await;
            let Some(log) = log.upgrade() else { return };
            let live: HashSet<String> = log.topics().into_iter().map(|t| t.name).collect();
            keep_counters(|topic| topic == ORDER_TOPIC || live.contains(topic));
        }
    });
}

/// Every counter key registered so far (but those of deleted topics).
fn kept() -> &'static RwLock<HashSet<Key>> {
    static KEPT: OnceLock<RwLock<HashSet<Key>>> = OnceLock::new();
    KEPT.get_or_init(Default::default)
}

/// A recorder that forwards everything to `inner` and remembers the keys
/// of the counters registered through it.
pub struct KeptRecorder<R> {
    inner: R,
}

impl<R> KeptRecorder<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }
}

impl<R: Recorder> Recorder for KeptRecorder<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let known = kept()
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(key);
        if !known {
            kept()
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(key.clone());
        }
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner.register_histogram(key, metadata)
    }
}

/// Touches every remembered counter, and forgets (so lets expire) those
/// whose `topic` label names no live topic. Returns how many were kept.
pub fn keep_counters(topic_is_live: impl Fn(&str) -> bool) -> usize {
    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
    let mut keys = kept()
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    keys.retain(|key| {
        key.labels()
            .find(|label| label.key() == "topic")
            .is_none_or(|label| topic_is_live(label.value()))
    });
    let kept: Vec<Key> = keys.iter().cloned().collect();
    drop(keys);
    metrics::with_recorder(|recorder| {
        for key in &kept {
            recorder.register_counter(key, &METADATA).increment(0);
        }
    });
    kept.len()
}

#[cfg(test)]
mod tests {
    use metrics::{Label, NoopRecorder};

    use super::*;

    fn key(label: (&'static str, &'static str)) -> Key {
        Key::from_parts("kept_in_a_test_total", vec![Label::new(label.0, label.1)])
    }

    fn is_kept(key: &Key) -> bool {
        kept().read().expect("not poisoned").contains(key)
    }

    #[test]
    fn counters_are_remembered_and_a_deleted_topic_s_forgotten() {
        static METADATA: Metadata<'static> = Metadata::new("test", metrics::Level::INFO, None);
        let recorder = KeptRecorder::new(NoopRecorder);
        let (live, gone, other) = (
            key(("topic", "kept-live")),
            key(("topic", "kept-gone")),
            key(("api", "Produce")),
        );
        for key in [&live, &gone, &other] {
            recorder.register_counter(key, &METADATA).increment(1);
        }
        assert!(is_kept(&live) && is_kept(&gone) && is_kept(&other));
        keep_counters(|topic| topic != "kept-gone");
        assert!(is_kept(&live) && is_kept(&other), "what exists is kept");
        assert!(!is_kept(&gone), "a deleted topic's counter is let go");
    }
}
