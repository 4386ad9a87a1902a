//! What the bench tools print: a progress line per second and a final line,
//! both in kafka-producer-perf-test's words, so figures read like the Kafka
//! world's. Latencies are kept per request, weighted by the records each
//! carried, as kafka-producer-perf-test weighs its per-record samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Bytes in kafka-producer-perf-test's "MB".
const MB: f64 = 1024.0 * 1024.0;

/// Per-request latencies in microseconds, with the records each carried.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<(u32, u32)>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Mean over records.
    pub avg_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// 50th percentile.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
}

impl Latencies {
    /// Adds one request's latency.
    pub fn record(&mut self, micros: u32, records: u32) {
        self.samples.push((micros, records));
    }

    /// The figures over everything recorded.
    pub fn summary(&mut self) -> LatencySummary {
        self.samples.sort_unstable();
        let total: u64 = self.samples.iter().map(|&(_, n)| u64::from(n)).sum();
        if total == 0 {
            return LatencySummary::default();
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|&(us, n)| f64::from(us) * f64::from(n))
            .sum();
        let max = self.samples.last().map_or(0, |&(us, _)| us);
        let quantile = |q: f64| {
            let target = (q * total as f64).ceil() as u64;
            let mut seen = 0u64;
            for &(us, n) in &self.samples {
                seen += u64::from(n);
                if seen >= target {
                    return f64::from(us) / 1000.0;
                }
            }
            f64::from(max) / 1000.0
        };
        LatencySummary {
            avg_ms: sum / total as f64 / 1000.0,
            max_ms: f64::from(max) / 1000.0,
            p50_ms: quantile(0.5),
            p95_ms: quantile(0.95),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
        }
    }
}

/// The outcome of a bench run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Records acknowledged (produce) or received (consume).
    pub records: u64,
    /// Bytes those records count for: record values for produce (as
    /// kafka-producer-perf-test counts), record batch bytes for consume.
    pub bytes: u64,
    /// Wall time from the first request to the last answer.
    pub seconds: f64,
    /// Request latencies.
    pub latency: LatencySummary,
}

impl Summary {
    /// Records per second.
    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.seconds.max(1e-9)
    }

    /// MB (2^20 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / MB / self.seconds.max(1e-9)
    }

    /// kafka-producer-perf-test's final line; `verb` is "sent" or "received".
    pub fn final_line(&self, verb: &str) -> String {
        let l = self.latency;
        format!(
            "{} records {verb}, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.0} ms 50th, {:.0} ms 95th, {:.0} ms 99th, {:.0} ms 99.9th.",
            self.records,
            self.records_per_sec(),
            self.mb_per_sec(),
            l.avg_ms,
            l.max_ms,
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.p999_ms,
        )
    }
}

/// Counters the load tasks bump and the reporter reads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records done.
    pub records: AtomicU64,
    /// Bytes done.
    pub bytes: AtomicU64,
}

/// A latency sample: (microseconds, records).
pub type Sample = (u32, u32);

/// Collects samples until every sender is gone, printing one progress line
/// per second (`verb`: "sent" or "received"); returns all samples.
pub async fn collect(
    mut samples: mpsc::UnboundedReceiver<Sample>,
    counters: Arc<Counters>,
    verb: &'static str,
) -> Latencies {
    let mut all = Latencies::default();
    let mut window = Latencies::default();
    let mut last_report = Instant::now();
    let (mut last_records, mut last_bytes) = (0u64, 0u64);
    loop {
        tokio::select! {
            sample = samples.recv() => match sample {
                Some((micros, records)) => {
                    all.record(micros, records);
                    window.record(micros, records);
                }
                None => break,
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            let records = counters.records.load(Ordering::Relaxed);
            let bytes = counters.bytes.load(Ordering::Relaxed);
            let seconds = last_report.elapsed().as_secs_f64();
            let latency = window.summary();
            let rate = (records - last_records) as f64 / seconds;
            println!(
                "{} records {verb}, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                records - last_records,
                rate,
                (bytes - last_bytes) as f64 / MB / seconds,
                latency.avg_ms,
                latency.max_ms
            );
            window = Latencies::default();
            (last_records, last_bytes) = (records, bytes);
            last_report = Instant::now();
        }
    }
    all
}

/// Microseconds since `since`, saturated to `u32`.
pub fn micros_since(since: Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_weigh_each_request_by_its_records() {
        let mut latencies = Latencies::default();
        latencies.record(1_000, 98);
        latencies.record(5_000, 1);
        latencies.record(9_000, 1);
        let summary = latencies.summary();
        assert_eq!(summary.p50_ms, 1.0);
        assert_eq!(summary.p99_ms, 5.0);
        assert_eq!(summary.p999_ms, 9.0);
        assert_eq!(summary.max_ms, 9.0);
        assert!((summary.avg_ms - 1.12).abs() < 1e-9);
    }

    #[test]
    fn the_final_line_reads_like_kafka_producer_perf_test() {
        let summary = Summary {
            records: 2048,
            bytes: 2 << 20,
            seconds: 2.0,
            latency: LatencySummary {
                avg_ms: 1.5,
                max_ms: 7.0,
                p50_ms: 1.0,
                p95_ms: 2.0,
                p99_ms: 3.0,
                p999_ms: 7.0,
            },
        };
        assert_eq!(
            summary.final_line("sent"),
            "2048 records sent, 1024.0 records/sec (1.00 MB/sec), 1.50 ms avg latency, 7.00 ms max latency, 1 ms 50th, 2 ms 95th, 3 ms 99th, 7 ms 99.9th."
        );
    }
}
