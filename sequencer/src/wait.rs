//! Adaptive waiting for work that appears in the region: spin while work
//! is likely, then yield, then sleep in growing steps up to
//! [`MAX_IDLE_SLEEP`]. A sleep on a [`Bell`] ends at once when a thread of
//! this process rings it (a local publish, a local sequencer pass), so
//! only work made by other processes or hosts waits for the timeout, and
//! an idle gateway costs a wake-up per millisecond per thread rather than
//! one every few microseconds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Longest sleep between two looks at the region: how late an idle
/// thread may see work that another process made.
pub const MAX_IDLE_SLEEP: Duration = Duration::from_millis(1);
/// The first sleep; each following one doubles, up to [`MAX_IDLE_SLEEP`].
/// A timed sleep lasts at least Linux's default timer slack (50 µs)
/// whatever it asks for, so shorter first steps only add wake-ups (each a
/// context switch) without seeing other processes' work any sooner.
const FIRST_SLEEP: Duration = Duration::from_micros(50);
const SPINS: u32 = 64;
/// Each yield is a system call; on a machine whose cores are all busy it
/// hands the core to a runnable thread, which is the point, but more than a
/// few in a row only burn the time a sleep would have saved.
const YIELDS: u32 = 4;

/// Wakes the threads of this process that sleep waiting for a kind of work.
#[derive(Debug, Default)]
pub struct Bell {
    rings: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    signal: Condvar,
}

impl Bell {
    /// How often the bell was rung so far: read it before looking for
    /// work, and hand it to [`Backoff::wait_on`].
    pub fn rings(&self) -> u64 {
        self.rings.load(Ordering::SeqCst)
    }

    /// Wakes every sleeper; costs a system call only when one sleeps.
    pub fn ring(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        // SeqCst on both sides: either this load sees the sleeper, or the
        // sleeper's check below sees the new ring count.
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.signal.notify_all();
        }
    }

    /// Sleeps up to `timeout` unless the bell rang since `seen`.
    fn sleep(&self, seen: u64, timeout: Duration) {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        let guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.rings.load(Ordering::SeqCst) == seen {
            let _ = self
                .signal
                .wait_timeout(guard, timeout)
                .unwrap_or_else(|e| e.into_inner());
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Default)]
pub struct Backoff {
    idle: u32,
}

impl Backoff {
    /// Call after a pass that found work.
    pub fn reset(&mut self) {
        self.idle = 0;
    }

    /// Call after a pass that found nothing.
    pub fn wait(&mut self) {
        if let Some(sleep) = self.next_sleep() {
            std::thread::sleep(sleep);
        }
    }

    /// Call after a pass that found nothing, with what `bell.rings()` said
    /// before the pass: a ring since then ends the sleep.
    pub fn wait_on(&mut self, bell: &Bell, seen: u64) {
        if let Some(sleep) = self.next_sleep() {
            bell.sleep(seen, sleep);
        }
    }

    /// Spins and yields, or says how long to sleep.
    fn next_sleep(&mut self) -> Option<Duration> {
        self.idle = self.idle.saturating_add(1);
        if self.idle <= SPINS {
            std::hint::spin_loop();
            None
        } else if self.idle <= SPINS + YIELDS {
            std::thread::yield_now();
            None
        } else {
            let doublings = (self.idle - SPINS - YIELDS - 1).min(16);
            Some((FIRST_SLEEP * (1 << doublings)).min(MAX_IDLE_SLEEP))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn sleeps_grow_to_the_idle_limit_and_restart_after_work() {
        let mut backoff = Backoff::default();
        let sleeps: Vec<_> = (0..200).filter_map(|_| backoff.next_sleep()).collect();
        assert_eq!(sleeps.first(), Some(&FIRST_SLEEP));
        assert!(sleeps.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(sleeps.last(), Some(&MAX_IDLE_SLEEP));
        backoff.reset();
        assert_eq!(backoff.next_sleep(), None, "spins first again");
    }

    #[test]
    fn a_ring_before_the_sleep_keeps_the_sleeper_awake() {
        let bell = Bell::default();
        let seen = bell.rings();
        bell.ring();
        // A ring since `seen`: the sleep returns without waiting at all,
        // which a timeout this long would otherwise make plain.
        bell.sleep(seen, Duration::from_secs(3600));
    }

    #[test]
    fn a_ring_wakes_a_sleeper() {
        let bell = Arc::new(Bell::default());
        let seen = bell.rings();
        let sleeper = {
            let bell = Arc::clone(&bell);
            std::thread::spawn(move || bell.sleep(seen, Duration::from_secs(3600)))
        };
        while bell.sleepers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let rang_at = Instant::now();
        bell.ring();
        sleeper.join().expect("sleeper");
        // Liveness only: the hour-long timeout did not end the sleep.
        assert!(rang_at.elapsed() < Duration::from_secs(600));
    }
}
