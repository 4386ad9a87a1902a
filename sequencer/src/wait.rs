//! Adaptive polling: spin while work is likely, then yield, then sleep in
//! growing steps of at most [`MAX_SLEEP`]. Never a fixed millisecond sleep
//! in the ack path.

use std::time::Duration;

pub const MAX_SLEEP: Duration = Duration::from_micros(50);
const SPINS: u32 = 64;
const YIELDS: u32 = 64;

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
        self.idle = self.idle.saturating_add(1);
        if self.idle <= SPINS {
            std::hint::spin_loop();
        } else if self.idle <= SPINS + YIELDS {
            std::thread::yield_now();
        } else {
            let step = (self.idle - SPINS - YIELDS).min(6);
            std::thread::sleep(Duration::from_micros(1 << step).min(MAX_SLEEP));
        }
    }
}
