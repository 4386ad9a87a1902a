//! A deterministic model of non-coherent shared memory for tests.
//!
//! [`SimulatedMemory`] is the memory every participant shares.
//! Each [`Simulated`] participant (one per simulated host) keeps a private
//! cache of 64-byte lines in front of it:
//!
//! - a write lands in the private cache only; others see it after a flush;
//! - a read is served from the private cache once a line is cached, so a
//!   participant keeps seeing a stale line until it invalidates it.
//!
//! Seeded faults make the hardware's freedoms visible:
//! - *eviction*: after a write, a random dirty line may be written back early,
//!   so a multi-line record can become visible torn, line by line;
//! - *delayed flushes*: a flush completes only at the next fence, in random
//!   order, so a reader between the two sees any subset of the lines;
//! - *crash*: after a chosen number of stores the participant dies: some of
//!   its dirty and pending lines reach memory, the rest are lost, and nothing it
//!   does afterwards is visible.
//!
//! A protocol that forgets a flush, a fence or an invalidation fails against
//! this backend even though the machine running the test is coherent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{MemoryBackend, CACHE_LINE};

type Line = [u8; CACHE_LINE];

/// The memory shared by every simulated participant.
pub struct SimulatedMemory {
    lines: Box<[Mutex<Line>]>,
    next_participant: AtomicU64,
}

impl SimulatedMemory {
    /// Zeroed shared memory of `len` bytes (rounded up to whole lines).
    pub fn new(len: usize) -> Arc<Self> {
        let line_count = len.div_ceil(CACHE_LINE);
        let lines = (0..line_count)
            .map(|_| Mutex::new([0u8; CACHE_LINE]))
            .collect();
        Arc::new(Self {
            lines,
            next_participant: AtomicU64::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.lines.len() * CACHE_LINE
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// A new participant (a simulated host) with its own empty cache.
    pub fn participant(self: &Arc<Self>, faults: SimFaults) -> Simulated {
        let id = self.next_participant.fetch_add(1, Ordering::Relaxed);
        Simulated {
            memory: Arc::clone(self),
            state: Mutex::new(CacheState {
                lines: HashMap::new(),
                pending: Vec::new(),
                rng: SmallRng::seed_from_u64(faults.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                stores: 0,
            }),
            faults,
            crashed: AtomicBool::new(false),
        }
    }

    fn line(&self, index: usize) -> MutexGuard<'_, Line> {
        // A poisoned line only means a test thread panicked while copying
        // 64 bytes; the bytes themselves are still a line.
        self.lines[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Seeded fault injection for one participant.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimFaults {
    pub seed: u64,
    /// Probability, after each write, that one random dirty line is written
    /// back before its flush (models cache eviction; exposes torn records).
    pub evict_probability: f64,
    /// Flushes complete at the next fence, in random order, not at once.
    pub delay_flushes: bool,
    /// The participant crashes after this many writes and stores.
    pub crash_after_stores: Option<u64>,
}

impl SimFaults {
    /// No faults: only the private cache itself.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Eviction and delayed flushes, the faults every protocol must survive.
    pub fn hostile(seed: u64) -> Self {
        Self {
            seed,
            evict_probability: 0.05,
            delay_flushes: true,
            crash_after_stores: None,
        }
    }
}

struct CachedLine {
    data: Line,
    dirty: bool,
}

struct CacheState {
    lines: HashMap<usize, CachedLine>,
    /// Lines flushed but not yet fenced: (line index, bytes at flush time).
    pending: Vec<(usize, Line)>,
    rng: SmallRng,
    stores: u64,
}

/// One participant's private, non-coherent view of [`SimulatedMemory`].
pub struct Simulated {
    memory: Arc<SimulatedMemory>,
    state: Mutex<CacheState>,
    faults: SimFaults,
    crashed: AtomicBool,
}

impl Simulated {
    /// True once the participant has crashed; its later effects are lost.
    pub fn is_crashed(&self) -> bool {
        self.crashed.load(Ordering::Acquire)
    }

    /// Crashes the participant now: a random subset of its dirty and pending
    /// lines reaches memory (evicted before the crash), the rest is lost.
    pub fn crash(&self) {
        let mut state = self.lock();
        self.crash_locked(&mut state);
    }

    fn crash_locked(&self, state: &mut CacheState) {
        if self.crashed.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending = std::mem::take(&mut state.pending);
        for (index, data) in pending {
            if state.rng.gen_bool(0.5) {
                *self.memory.line(index) = data;
            }
        }
        let dirty: Vec<usize> = state
            .lines
            .iter()
            .filter(|(_, line)| line.dirty)
            .map(|(index, _)| *index)
            .collect();
        for index in dirty {
            if state.rng.gen_bool(0.5) {
                *self.memory.line(index) = state.lines[&index].data;
            }
        }
        state.lines.clear();
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached<'a>(&self, state: &'a mut CacheState, index: usize) -> &'a mut CachedLine {
        state.lines.entry(index).or_insert_with(|| CachedLine {
            data: *self.memory.line(index),
            dirty: false,
        })
    }

    fn check(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|end| end <= self.memory.len()),
            "simulated region access out of bounds: offset {offset} len {len}"
        );
    }

    fn line_range(offset: usize, len: usize) -> std::ops::Range<usize> {
        if len == 0 {
            return 0..0;
        }
        offset / CACHE_LINE..(offset + len - 1) / CACHE_LINE + 1
    }

    /// Counts a store toward the crash point and maybe evicts a dirty line.
    /// Returns false when the participant is (now) crashed.
    fn after_store(&self, state: &mut CacheState) -> bool {
        if self.is_crashed() {
            return false;
        }
        state.stores += 1;
        if self
            .faults
            .crash_after_stores
            .is_some_and(|limit| state.stores >= limit)
        {
            self.crash_locked(state);
            return false;
        }
        if self.faults.evict_probability > 0.0 && state.rng.gen_bool(self.faults.evict_probability)
        {
            let dirty: Vec<usize> = state
                .lines
                .iter()
                .filter(|(_, line)| line.dirty)
                .map(|(index, _)| *index)
                .collect();
            if !dirty.is_empty() {
                let victim = dirty[state.rng.gen_range(0..dirty.len())];
                if let Some(line) = state.lines.get_mut(&victim) {
                    *self.memory.line(victim) = line.data;
                    line.dirty = false;
                }
            }
        }
        true
    }

    fn drain_pending(&self, state: &mut CacheState) {
        let mut pending = std::mem::take(&mut state.pending);
        // Flushes between two fences complete in no particular order.
        for i in (1..pending.len()).rev() {
            let j = state.rng.gen_range(0..=i);
            pending.swap(i, j);
        }
        for (index, data) in pending {
            *self.memory.line(index) = data;
        }
    }
}

impl MemoryBackend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn len(&self) -> usize {
        self.memory.len()
    }

    fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len());
        let mut state = self.lock();
        let mut copied = 0;
        for index in Self::line_range(offset, dst.len()) {
            let line = self.cached(&mut state, index);
            let start = (offset + copied) - index * CACHE_LINE;
            let take = (CACHE_LINE - start).min(dst.len() - copied);
            dst[copied..copied + take].copy_from_slice(&line.data[start..start + take]);
            copied += take;
        }
    }

    /// A device reads memory, never this participant's cache: lines this
    /// participant wrote and did not flush are not in the file.
    fn write_to_file(
        &self,
        offset: usize,
        len: usize,
        file: &std::fs::File,
        file_offset: u64,
    ) -> std::io::Result<()> {
        self.check(offset, len);
        super::write_through_aligned_buffer(len, file, file_offset, |buffer| {
            let mut copied = 0;
            for index in Self::line_range(offset, len) {
                let line = *self.memory.line(index);
                let start = (offset + copied) - index * CACHE_LINE;
                let take = (CACHE_LINE - start).min(len - copied);
                buffer[copied..copied + take].copy_from_slice(&line[start..start + take]);
                copied += take;
            }
        })
    }

    fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len());
        let mut state = self.lock();
        if self.is_crashed() {
            return;
        }
        let mut copied = 0;
        for index in Self::line_range(offset, src.len()) {
            let line = self.cached(&mut state, index);
            let start = (offset + copied) - index * CACHE_LINE;
            let take = (CACHE_LINE - start).min(src.len() - copied);
            line.data[start..start + take].copy_from_slice(&src[copied..copied + take]);
            line.dirty = true;
            copied += take;
        }
        self.after_store(&mut state);
    }

    fn load_u64(&self, offset: usize) -> u64 {
        assert!(offset % 8 == 0, "unaligned region word at offset {offset}");
        let mut word = [0u8; 8];
        self.read(offset, &mut word);
        u64::from_le_bytes(word)
    }

    fn store_u64(&self, offset: usize, value: u64) {
        assert!(offset % 8 == 0, "unaligned region word at offset {offset}");
        self.write(offset, &value.to_le_bytes());
    }

    fn flush(&self, offset: usize, len: usize) {
        self.check(offset, len);
        let mut state = self.lock();
        if self.is_crashed() {
            return;
        }
        for index in Self::line_range(offset, len) {
            let Some(line) = state.lines.get_mut(&index) else {
                continue;
            };
            if !line.dirty {
                continue;
            }
            line.dirty = false;
            let data = line.data;
            if self.faults.delay_flushes {
                state.pending.push((index, data));
            } else {
                *self.memory.line(index) = data;
            }
        }
    }

    fn invalidate(&self, offset: usize, len: usize) {
        self.check(offset, len);
        let mut state = self.lock();
        // clflushopt writes a dirty line back before evicting it.
        self.drain_pending(&mut state);
        let crashed = self.is_crashed();
        for index in Self::line_range(offset, len) {
            if let Some(line) = state.lines.remove(&index) {
                if line.dirty && !crashed {
                    *self.memory.line(index) = line.data;
                }
            }
        }
    }

    fn store_fence(&self) {
        let mut state = self.lock();
        if !self.is_crashed() {
            self.drain_pending(&mut state);
        }
    }

    fn full_fence(&self) {
        self.store_fence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflushed_writes_are_invisible_to_other_participants() {
        let memory = SimulatedMemory::new(4096);
        let writer = memory.participant(SimFaults::none(1));
        let reader = memory.participant(SimFaults::none(2));
        writer.store_u64(64, 7);
        reader.invalidate(64, 8);
        assert_eq!(reader.load_u64(64), 0);
        writer.flush(64, 8);
        writer.store_fence();
        reader.invalidate(64, 8);
        reader.full_fence();
        assert_eq!(reader.load_u64(64), 7);
    }

    #[test]
    fn a_reader_sees_a_stale_line_until_it_invalidates() {
        let memory = SimulatedMemory::new(4096);
        let writer = memory.participant(SimFaults::none(1));
        let reader = memory.participant(SimFaults::none(2));
        assert_eq!(reader.load_u64(128), 0);
        writer.store_u64(128, 42);
        writer.flush(128, 8);
        writer.store_fence();
        assert_eq!(reader.load_u64(128), 0, "cached line must stay stale");
        reader.invalidate(128, 8);
        assert_eq!(reader.load_u64(128), 42);
    }

    #[test]
    fn delayed_flushes_land_at_the_fence() {
        let memory = SimulatedMemory::new(4096);
        let writer = memory.participant(SimFaults {
            delay_flushes: true,
            ..SimFaults::none(3)
        });
        let reader = memory.participant(SimFaults::none(4));
        writer.write(0, &[9u8; 256]);
        writer.flush(0, 256);
        let mut seen = [0u8; 256];
        reader.read(0, &mut seen);
        assert_eq!(seen, [0u8; 256]);
        writer.store_fence();
        reader.invalidate(0, 256);
        reader.read(0, &mut seen);
        assert_eq!(seen, [9u8; 256]);
    }

    #[test]
    fn a_crashed_participant_loses_later_writes() {
        let memory = SimulatedMemory::new(4096);
        let writer = memory.participant(SimFaults {
            crash_after_stores: Some(2),
            ..SimFaults::none(5)
        });
        let reader = memory.participant(SimFaults::none(6));
        writer.store_u64(0, 1);
        writer.flush(0, 8);
        writer.store_fence();
        writer.store_u64(8, 2); // the crash point
        writer.store_u64(16, 3);
        writer.flush(0, 64);
        writer.store_fence();
        assert!(writer.is_crashed());
        reader.invalidate(0, 64);
        assert_eq!(reader.load_u64(0), 1);
        assert_eq!(reader.load_u64(16), 0);
    }

    #[test]
    fn eviction_can_expose_lines_before_their_flush() {
        let memory = SimulatedMemory::new(1 << 16);
        let writer = memory.participant(SimFaults {
            evict_probability: 1.0,
            ..SimFaults::none(7)
        });
        let reader = memory.participant(SimFaults::none(8));
        for line in 0..16 {
            writer.write(line * CACHE_LINE, &[1u8; CACHE_LINE]);
        }
        reader.invalidate(0, 16 * CACHE_LINE);
        let mut seen = [0u8; 16 * CACHE_LINE];
        reader.read(0, &mut seen);
        let visible = seen.chunks(CACHE_LINE).filter(|line| line[0] == 1).count();
        assert!(visible > 0, "eviction must write some unflushed line back");
    }
}
