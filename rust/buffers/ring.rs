//! Per-thread bounded event storage.
//!
//! Each thread appends records to its own ring of chunks, so the hot path is one
//! bounds check and a store. `tracer_entries` bounds the records of *all* threads
//! together: a thread reserves room from the shared [`Budget`] one chunk at a time
//! (small chunks first, so idle threads stay small), and when the budget is spent the
//! oldest chunk among all threads is evicted and its memory reused. Memory therefore
//! stays at about 24 bytes per entry plus one partly filled chunk per thread, and
//! after an overflow the trace keeps the most recent `tracer_entries - chunk` to
//! `tracer_entries` records.

use crate::buffers::record::Record;
use std::collections::VecDeque;

/// Largest chunk a thread reserves at once.
const MAX_CHUNK: usize = 4096;
/// First chunk of a thread; later chunks double up to the maximum.
const FIRST_CHUNK: usize = 64;

/// The shared entry budget (`tracer_entries`), and the memory of chunks that were
/// emptied by `clear()`, kept for the next chunks: a program that traces, clears and
/// traces again reuses pages it already touched instead of faulting fresh ones in (on
/// these VMs a page fault costs about a microsecond, some 10 ns per traced call).
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    reserved: usize,
    max_chunk: usize,
    overflowed: bool,
    /// Empty vectors with their capacity; at most `limit` entries of it in all.
    spare: Vec<Vec<Record>>,
    spare_entries: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        // Eviction works chunk by chunk, so chunks stay small against the limit: a
        // buffer of 10 entries keeps exactly 10, one of 1M keeps at least 99.6%.
        let max_chunk = (limit / 256).clamp(1, MAX_CHUNK);
        Budget { limit, reserved: 0, max_chunk, overflowed: false, spare: Vec::new(), spare_entries: 0 }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub fn mark_overflow(&mut self) {
        self.overflowed = true;
    }

    pub fn reset_overflow(&mut self) {
        self.overflowed = false;
    }

    /// Room not yet reserved by any ring.
    pub fn available(&self) -> usize {
        self.limit - self.reserved
    }

    /// Reserves up to `want` entries; returns how many were granted (possibly 0).
    pub fn reserve(&mut self, want: usize) -> usize {
        let n = want.min(self.available());
        self.reserved += n;
        n
    }

    pub fn release(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Keeps the memory of an emptied chunk for a later one (dropped if the spare
    /// memory would exceed the budget).
    pub fn give_back(&mut self, mut chunk: Vec<Record>) {
        if self.spare_entries + chunk.capacity() > self.limit {
            return;
        }
        chunk.clear();
        self.spare_entries += chunk.capacity();
        self.spare.push(chunk);
    }

    /// Memory for a new chunk, if some was given back (the largest first).
    fn take_spare(&mut self) -> Option<Vec<Record>> {
        let (i, _) = self.spare.iter().enumerate().max_by_key(|(_, v)| v.capacity())?;
        let v = self.spare.swap_remove(i);
        self.spare_entries -= v.capacity();
        Some(v)
    }
}

/// A sealed chunk: `records` were reserved with `cap` entries of budget.
#[derive(Debug)]
struct Chunk {
    records: Vec<Record>,
    cap: usize,
}

/// One thread's records, oldest first.
#[derive(Debug, Default)]
pub struct Ring {
    sealed: VecDeque<Chunk>,
    cur: Vec<Record>,
    cur_cap: usize,
    next_chunk: usize,
    len: usize,
}

impl Ring {
    pub fn new() -> Self {
        Ring::default()
    }

    /// Appends without touching the budget; fails when the current chunk is full.
    #[inline(always)]
    pub fn try_push(&mut self, r: Record) -> Result<(), Record> {
        if self.cur.len() < self.cur_cap {
            // `start_chunk` reserved `cur_cap`, so this never finds the vector full.
            crate::ffi::vec_ext::push_within_capacity(&mut self.cur, r)?;
            self.len += 1;
            Ok(())
        } else {
            Err(r)
        }
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Budget held by this ring (sealed chunks plus the current one).
    pub fn reserved(&self) -> usize {
        self.sealed.iter().map(|c| c.cap).sum::<usize>() + self.cur_cap
    }

    /// How much budget the next chunk asks for.
    pub fn wanted_chunk(&self, budget: &Budget) -> usize {
        if self.next_chunk == 0 {
            FIRST_CHUNK.min(budget.max_chunk)
        } else {
            self.next_chunk.min(budget.max_chunk)
        }
    }

    /// Seals the current chunk and starts a new one with `cap` entries of budget,
    /// reusing `storage` (an evicted chunk's memory) when given.
    pub fn start_chunk(&mut self, cap: usize, storage: Option<Vec<Record>>) {
        let old = std::mem::take(&mut self.cur);
        if !old.is_empty() {
            self.sealed.push_back(Chunk { records: old, cap: self.cur_cap });
        }
        let mut v = storage.unwrap_or_default();
        v.clear();
        // (The vector is empty: this makes its capacity at least `cap`, which the
        // hot path's no-growth push relies on.)
        v.reserve_exact(cap);
        self.cur = v;
        self.cur_cap = cap;
        self.next_chunk = (cap * 2).max(FIRST_CHUNK);
    }

    /// When the oldest record still held was written (for choosing what to evict).
    pub fn oldest_written_at(&self) -> Option<u64> {
        match self.sealed.front() {
            Some(c) => c.records.first().map(Record::written_at),
            None => self.cur.first().map(Record::written_at),
        }
    }

    /// Removes the oldest chunk; returns its records (for freeing payloads and reusing
    /// the memory) and the budget it held.
    pub fn evict_oldest(&mut self) -> Option<(Vec<Record>, usize)> {
        if let Some(c) = self.sealed.pop_front() {
            self.len -= c.records.len();
            return Some((c.records, c.cap));
        }
        if self.cur.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.cur);
        let cap = std::mem::replace(&mut self.cur_cap, 0);
        self.len -= records.len();
        Some((records, cap))
    }

    /// Takes every record out (oldest first) and returns them with the budget held.
    pub fn take_all(&mut self) -> (Vec<Vec<Record>>, usize) {
        let reserved = self.reserved();
        let mut out: Vec<Vec<Record>> = self.sealed.drain(..).map(|c| c.records).collect();
        let cur = std::mem::take(&mut self.cur);
        if !cur.is_empty() {
            out.push(cur);
        }
        self.cur_cap = 0;
        self.next_chunk = 0;
        self.len = 0;
        (out, reserved)
    }

    /// Iterates over the records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.sealed.iter().flat_map(|c| c.records.iter()).chain(self.cur.iter())
    }
}

/// Appends `r` to `rings[me]`, reserving budget or evicting the oldest chunk among all
/// rings when the budget is spent. `on_evict` sees every evicted record (to free its
/// payload) together with the index of the ring it came from.
pub fn push_slow(
    rings: &mut [&mut Ring],
    me: usize,
    budget: &mut Budget,
    r: Record,
    mut on_evict: impl FnMut(usize, &Record),
) {
    loop {
        let r_me = &mut rings[me];
        if r_me.try_push(r).is_ok() {
            return;
        }
        let want = r_me.wanted_chunk(budget);
        let granted = budget.reserve(want);
        if granted > 0 {
            let storage = budget.take_spare();
            rings[me].start_chunk(granted, storage);
            continue;
        }
        // The budget is spent: evict the chunk holding the oldest record of all threads.
        let victim = rings
            .iter()
            .enumerate()
            .filter_map(|(i, ring)| ring.oldest_written_at().map(|t| (t, i)))
            .min()
            .map(|(_, i)| i);
        let Some(victim) = victim else {
            // Nothing is stored anywhere, yet the budget is spent: cannot happen, but
            // dropping the record beats looping forever.
            budget.mark_overflow();
            return;
        };
        let Some((records, cap)) = rings[victim].evict_oldest() else {
            budget.mark_overflow();
            return;
        };
        for rec in &records {
            on_evict(victim, rec);
        }
        budget.mark_overflow();
        budget.release(cap);
        let granted = budget.reserve(cap);
        rings[me].start_chunk(granted, Some(records));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_given_back_are_reused_within_the_budget() {
        let mut budget = Budget::new(10_000);
        let mut ring = Ring::new();
        for i in 0..1000 {
            let mut rings = [&mut ring];
            push_slow(&mut rings, 0, &mut budget, rec(i), |_, _| {});
        }
        let (chunks, reserved) = ring.take_all();
        budget.release(reserved);
        let addresses: Vec<usize> = chunks.iter().map(|c| c.as_ptr() as usize).collect();
        for c in chunks {
            budget.give_back(c);
        }
        assert!(budget.spare_entries > 0 && budget.spare_entries <= 10_000);
        // The next chunk starts in memory that was given back.
        let mut rings = [&mut ring];
        push_slow(&mut rings, 0, &mut budget, rec(1), |_, _| {});
        assert!(addresses.contains(&(ring.iter().next().unwrap() as *const Record as usize)));
        // Tracing again after a clear keeps the whole budget: reused memory is grown to
        // each new chunk's size, so no chunk is sealed half full (chunks of 64 to 3906
        // entries with a budget of 1M).
        let mut budget = Budget::new(1_000_000);
        let mut ring = Ring::new();
        for round in 0..2 {
            for i in 0..20_000 {
                let mut rings = [&mut ring];
                push_slow(&mut rings, 0, &mut budget, rec(i), |_, _| {});
            }
            assert_eq!(ring.len(), 20_000);
            // Budget held beyond the records: only the current chunk's free room.
            assert!(ring.reserved() - ring.len() < 3906, "round {round}: {} reserved", ring.reserved());
            let (chunks, reserved) = ring.take_all();
            budget.release(reserved);
            for c in chunks {
                budget.give_back(c);
            }
        }
        // Memory smaller than the new chunk is grown to the chunk's whole size.
        let mut ring = Ring::new();
        ring.start_chunk(3906, Some(Vec::with_capacity(1024)));
        for i in 0..3906 {
            assert!(ring.try_push(rec(i)).is_ok(), "record {i} did not fit");
        }
        // Never more spare memory than the budget.
        let mut small = Budget::new(10);
        small.give_back(Vec::with_capacity(64));
        assert_eq!((small.spare_entries, small.spare.len()), (0, 0));
    }

    use super::*;

    fn rec(t: u64) -> Record {
        Record::complete(t, 0, t as u32, None)
    }

    fn push(rings: &mut [Ring], me: usize, budget: &mut Budget, r: Record) -> usize {
        let mut evicted = 0;
        let mut refs: Vec<&mut Ring> = rings.iter_mut().collect();
        if refs[me].try_push(r).is_err() {
            push_slow(&mut refs, me, budget, r, |_, _| evicted += 1);
        }
        evicted
    }

    #[test]
    fn small_buffer_keeps_exactly_the_newest() {
        let mut budget = Budget::new(10);
        let mut rings = vec![Ring::new()];
        for t in 0..15 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        let kept: Vec<u64> = rings[0].iter().map(|r| r.ts).collect();
        assert_eq!(kept, (5..15).collect::<Vec<_>>());
        assert!(budget.overflowed());
    }

    #[test]
    fn no_overflow_below_the_limit() {
        let mut budget = Budget::new(1000);
        let mut rings = vec![Ring::new()];
        for t in 0..1000 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        assert_eq!(rings[0].len(), 1000);
        assert!(!budget.overflowed());
    }

    #[test]
    fn large_buffer_stays_bounded_and_keeps_the_newest() {
        let limit = 100_000;
        let mut budget = Budget::new(limit);
        let mut rings = vec![Ring::new()];
        for t in 0..1_000_000u64 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        let n = rings[0].len();
        assert!(n <= limit && n > limit - MAX_CHUNK, "{n}");
        let first = rings[0].iter().next().unwrap().ts;
        assert_eq!(first, 1_000_000 - n as u64);
        assert!(rings[0].reserved() <= limit);
    }

    #[test]
    fn threads_share_the_budget_and_evict_globally_oldest() {
        let limit = 2048;
        let mut budget = Budget::new(limit);
        let mut rings = vec![Ring::new(), Ring::new()];
        // Thread 0 fills the buffer early, then thread 1 keeps writing.
        for t in 0..limit as u64 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        for t in 0..(limit as u64 * 2) {
            push(&mut rings, 1, &mut budget, rec(10_000 + t));
        }
        let total = rings[0].len() + rings[1].len();
        assert!(total <= limit);
        assert!(rings[0].is_empty(), "the old thread's records are the oldest");
        assert!(rings[1].len() > limit - 16);
    }

    #[test]
    fn idle_threads_hold_little_budget() {
        let mut budget = Budget::new(1_000_000);
        let mut rings: Vec<Ring> = (0..100).map(|_| Ring::new()).collect();
        for (i, t) in (0..100).zip(0u64..) {
            push(&mut rings, i, &mut budget, rec(t));
        }
        assert!(budget.available() >= 1_000_000 - 100 * FIRST_CHUNK);
    }

    #[test]
    fn take_all_returns_everything_in_order() {
        let mut budget = Budget::new(500);
        let mut rings = vec![Ring::new()];
        for t in 0..300 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        let (chunks, reserved) = rings[0].take_all();
        budget.release(reserved);
        let all: Vec<u64> = chunks.iter().flatten().map(|r| r.ts).collect();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
        assert_eq!(budget.available(), 500);
        assert!(rings[0].is_empty());
    }
}
